"""benchmarks/stage_times.py --smoke: every stage of the main job runs in a copy of the project."""

import pytest

from tests.benchmarks.conftest import smoke_figures


@pytest.mark.slow
def test_smoke_times_every_stage_of_the_main_job(tmp_path):
    figures = smoke_figures("stage_times.py", tmp_path / "stage_times.json")
    stages = ["ingest", "caption", "sft", "grpo_vlm", "grpo_vdm", "evaluate"]
    assert figures["smoke"] is True and list(figures["stage_seconds"]) == stages
    assert figures["total_seconds"] == pytest.approx(sum(figures["stage_seconds"].values()))
