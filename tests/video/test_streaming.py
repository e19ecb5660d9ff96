import numpy as np
import pytest

from tests.conftest import encode_cut_video
from vans_pipelines.datasets import VideoFolderDataset
from vans_pipelines.video import VideoError
from vans_pipelines.video.clips import ScanSettings, video_pairs
from vans_pipelines.video.streaming import SourcePairs, StreamedPairClips, ordered_map, scan_videos

SETTINGS = ScanSettings(fps=8.0, height=32, width=32, context_frames=8, target_frames=8)


@pytest.fixture
def folder(tmp_path):
    colours = [(200, 30, 30), (30, 160, 40), (40, 60, 210), (220, 220, 40)]
    for i in range(3):
        encode_cut_video(tmp_path / f"v{i}.mp4", colours[i:] + colours[:i], 1.5)
    (tmp_path / "broken.mp4").write_text("not a video")
    return VideoFolderDataset(path=str(tmp_path)).load()


def one_pass(video):
    return [(p.context, p.target) for p in video_pairs(video.source(), SETTINGS)]


@pytest.mark.parametrize("workers", [1, 2])
def test_streamed_clips_equal_a_one_pass_in_memory_cut(folder, workers):
    scans = scan_videos(folder.files, SETTINGS, workers)
    assert isinstance(scans[0], VideoError) and "not a readable video" in str(scans[0])  # broken.mp4
    sources = [
        SourcePairs(video, tuple(f"{video.relative_path}-{k}" for k in range(len(spans))), tuple(spans))
        for video, spans in zip(folder.files[1:], scans[1:], strict=True)
    ]
    clips = StreamedPairClips(sources, SETTINGS, workers)
    expected = {
        sid: pair
        for video, source in zip(folder.files[1:], sources, strict=True)
        for sid, pair in zip(source.sample_ids, one_pass(video), strict=True)
    }
    order = sorted(expected, reverse=True)  # any order: each run of one video's samples is one decode
    streamed = list(clips.iter_clips(order))
    assert [sid for sid, _ in streamed] == order
    for sid, (context, target) in streamed:
        assert np.array_equal(context, expected[sid][0]) and np.array_equal(target, expected[sid][1])
    single = clips(order[-1])
    assert np.array_equal(single[1], expected[order[-1]][1])
    with pytest.raises(KeyError, match="no ingested pair"):
        clips("nope")


def test_a_file_changed_since_its_scan_names_itself(folder, tmp_path):
    video = folder.files[1]
    spans = scan_videos([video], SETTINGS)[0]
    (tmp_path / video.relative_path).write_text("gone")
    clips = StreamedPairClips([SourcePairs(video, ("a",), (spans[0],))], SETTINGS)
    with pytest.raises(VideoError, match=video.relative_path):
        list(clips.iter_clips(["a"]))


def test_ordered_map_keeps_the_order_and_few_jobs_ahead():
    assert list(ordered_map(pow, ((i, 2) for i in range(9)), workers=2)) == [i * i for i in range(9)]
