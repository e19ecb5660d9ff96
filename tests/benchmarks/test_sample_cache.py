"""benchmarks/sample_cache.py --smoke (what CI runs of it): both sides of the SFT VLM step run."""

from tests.benchmarks.conftest import smoke_figures


def test_smoke_times_the_step_reading_from_storage_and_from_memory(tmp_path):
    figures = smoke_figures("sample_cache.py", tmp_path / "sample_cache.json")
    assert figures["smoke"] is True and figures["steps"] == 2 and figures["episodes"] == 64
    assert figures["storage_seconds_per_step"] > 0 and figures["memory_seconds_per_step"] > 0
    assert figures["first_epoch_read_seconds"] > 0
