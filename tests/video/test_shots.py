import pytest

from tests.conftest import encode_cut_video
from vans_pipelines.video import ShotDetector, decode_resampled


def test_pyscenedetect_finds_the_hard_cuts(cut_video):
    path, cuts = cut_video
    detector = ShotDetector(threshold=27.0, min_shot_seconds=0.5)
    decode_resampled(str(path), fps=8, height=32, width=32, on_frame=detector)
    assert detector.cut_times() == pytest.approx(cuts, abs=1 / 24 + 1e-9)


def test_no_cut_in_a_single_shot(tmp_path):
    path = tmp_path / "one.mp4"
    encode_cut_video(path, [(120, 40, 40)], seconds_per_shot=3.0)
    detector = ShotDetector()
    decode_resampled(str(path), fps=8, height=32, width=32, on_frame=detector)
    assert detector.cut_times() == []


def test_min_shot_length_suppresses_close_cuts(tmp_path):
    path = tmp_path / "flicker.mp4"
    encode_cut_video(path, [(200, 30, 30), (30, 160, 40), (40, 60, 210)], seconds_per_shot=0.25)
    detector = ShotDetector(min_shot_seconds=1.0)
    decode_resampled(str(path), fps=8, height=32, width=32, on_frame=detector)
    assert detector.cut_times() == []
