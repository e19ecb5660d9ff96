import numpy as np
import pytest

from vans_pipelines.video import VideoError
from vans_pipelines.video.clips import ScanSettings, consecutive_pairs, segment_shots, video_pairs


def test_segment_shots_splits_long_shots_and_drops_remainders():
    segments = segment_shots(40, [10], segment_frames=4)
    # shot 0 = [0, 10): two segments; shot 1 = [10, 40): seven segments
    assert [(s.start, s.stop, s.shot) for s in segments[:3]] == [(0, 4, 0), (4, 8, 0), (10, 14, 1)]
    assert len(segments) == 2 + 7


def test_consecutive_pairs_take_context_end_and_target_start():
    frames = np.arange(40, dtype=np.uint8)[:, None, None, None].repeat(3, axis=-1)
    pairs = consecutive_pairs(frames, fps=8, cut_frames=[10], context_frames=3, target_frames=4)
    first = pairs[0]
    assert first.context[:, 0, 0, 0].tolist() == [1, 2, 3]  # end of segment [0, 4)
    assert first.target[:, 0, 0, 0].tolist() == [4, 5, 6, 7]
    assert not first.crosses_cut
    across = pairs[1]  # segment [4, 8) → [10, 14): across the cut, the 2-frame remainder skipped
    assert across.crosses_cut and across.target[0, 0, 0, 0] == 10
    assert across.target_start == pytest.approx(10 / 8)


def test_max_pairs_spreads_over_the_video():
    frames = np.zeros((100, 2, 2, 3), np.uint8)
    pairs = consecutive_pairs(frames, fps=8, cut_frames=[], context_frames=4, target_frames=4, max_pairs=3)
    # 25 segments → 24 pairs; keep pairs 0, 12, 23 (context of pair i starts at i segments = i * 0.5 s)
    assert [p.context_start for p in pairs] == [0.0, 6.0, 11.5]


def test_video_pairs_from_a_real_file(cut_video):
    path, _ = cut_video  # 6 s with cuts at 2 s and 4 s; 16-frame segments at 8 fps are 2 s = one per shot
    settings = ScanSettings(fps=8, height=32, width=32, context_frames=16, target_frames=16)
    pairs = video_pairs(str(path), settings)
    assert len(pairs) == 2
    assert all(p.crosses_cut for p in pairs)
    assert pairs[0].context.shape == (16, 32, 32, 3)


def test_video_pairs_too_short(cut_video):
    path, _ = cut_video
    with pytest.raises(VideoError, match="too short"):
        video_pairs(str(path), ScanSettings(fps=8, height=32, width=32, context_frames=32, target_frames=32))
