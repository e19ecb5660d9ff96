"""benchmarks/grpo_stage1_vs_trl.py --smoke (what CI runs of it): both trainers step on the same prompts."""

from tests.benchmarks.conftest import smoke_figures


def test_smoke_times_trl_and_ours_and_writes_the_ratio(tmp_path):
    figures = smoke_figures("grpo_stage1_vs_trl.py", tmp_path / "stage1_vs_trl.json")
    assert figures["smoke"] is True and figures["steps"] == 3
    for name in ("trl", "ours", "ours+video"):
        assert figures[f"{name}_seconds_per_step"] > 0
    assert figures["ours_over_trl"] == figures["ours_seconds_per_step"] / figures["trl_seconds_per_step"]
