"""benchmarks/ingest.py --smoke: ingest of videos with cuts against PyAV's decode of the same files."""

from tests.benchmarks.conftest import smoke_figures


def test_smoke_ingests_the_videos_and_times_every_way(tmp_path):
    figures = smoke_figures("ingest.py", tmp_path / "ingest.json")
    assert figures["smoke"] is True and figures["files"] == 2 and figures["triplets"] > 0
    assert figures["native_frames"] == 2 * 4 * 48  # two videos of four 48-frame shots
    assert set(figures["frames_per_second"]) == {"decode", "decode+rgb", "ingest"}
