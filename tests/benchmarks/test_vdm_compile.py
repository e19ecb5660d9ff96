"""benchmarks/vdm_compile.py --smoke: the VDM eager, compiled and under bf16 autocast, side by side (a minute:
it compiles)."""

import pytest

from tests.benchmarks.conftest import smoke_figures


@pytest.mark.slow
def test_smoke_trains_and_renders_both_ways_to_the_same_adapter(tmp_path):
    figures = smoke_figures("vdm_compile.py", tmp_path / "vdm_compile.json")
    assert figures["smoke"] is True and figures["clips"] == 2 and figures["rendered"] == 2
    for part in ("train", "eval"):
        assert all(figures[part][f"{name}_seconds"] > 0 for name in ("eager", "compiled", "bf16"))
    assert figures["adapter_drift"] < 1e-4  # compiled equals eager up to float rounding
