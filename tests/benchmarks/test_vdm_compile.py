"""benchmarks/vdm_compile.py --smoke: the VDM eager and compiled, side by side (a minute: it compiles)."""

import pytest

from tests.benchmarks.conftest import smoke_figures


@pytest.mark.slow
def test_smoke_trains_and_renders_both_ways_to_the_same_adapter(tmp_path):
    figures = smoke_figures("vdm_compile.py", tmp_path / "vdm_compile.json")
    assert figures["smoke"] is True and figures["clips"] == 2 and figures["rendered"] == 2
    for part in ("train", "eval"):
        assert figures[part]["eager_seconds"] > 0 and figures[part]["compiled_seconds"] > 0
    assert figures["adapter_drift"] < 1e-4  # compiled equals eager up to float rounding
