"""benchmarks/grpo_vdm_graphs.py --smoke: a stage-2 step with and without kept graphs, same adapter."""

from tests.benchmarks.conftest import smoke_figures


def test_smoke_ends_both_ways_with_the_same_adapter(tmp_path):
    figures = smoke_figures("grpo_vdm_graphs.py", tmp_path / "grpo_vdm_graphs.json")
    assert figures["smoke"] is True and figures["clips"] == 4 and figures["trained_steps"] == 2
    assert figures["same_adapter"] is True
    assert figures["kept_seconds"] > 0 and figures["rerun_seconds"] > 0
