"""benchmarks/grpo_sde.py --smoke: SDE rollouts with log-probabilities against plain sampling."""

from tests.benchmarks.conftest import smoke_figures


def test_smoke_times_both_samplers(tmp_path):
    figures = smoke_figures("grpo_sde.py", tmp_path / "grpo_sde.json")
    assert figures["smoke"] is True and figures["clips"] == 2 and figures["steps"] == 2
    assert figures["plain_seconds"] > 0 and figures["sde_seconds"] > 0
    assert figures["sde_over_plain"] == figures["sde_seconds"] / figures["plain_seconds"]
