"""benchmarks/verdict_steps.py --smoke (what CI runs of it): one row per denoising step, shares in [0, 1]."""

from tests.benchmarks.conftest import smoke_figures


def test_smoke_measures_every_step(tmp_path):
    figures = smoke_figures("verdict_steps.py", tmp_path / "verdict_steps.json")
    assert figures["smoke"] is True and figures["prompts"] == 4 and figures["draws"] == 2
    assert [row["step"] for row in figures["rows"]] == [0, 1, 2]
    for row in figures["rows"]:
        assert 0 <= row["accuracy"] <= 1 and 0 <= row["verdict_flips"] <= 1
        assert row["sigma"] > row["sigma_next"]
