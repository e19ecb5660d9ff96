"""benchmarks/wan_vae.py --smoke: the VAE's fast paths against diffusers' classes, side by side."""

from tests.benchmarks.conftest import smoke_figures


def test_smoke_times_each_pass_both_ways_and_they_agree(tmp_path):
    figures = smoke_figures("wan_vae.py", tmp_path / "wan_vae.json")
    assert figures["smoke"] is True and figures["clips"] == 2
    assert figures["machine"]["cores"] >= 1 and figures["command"].startswith("python -m benchmarks.wan_vae")
    for name in ("decode", "encode", "fit_step"):
        assert figures[name]["diffusers_seconds"] > 0 and figures[name]["fast_seconds"] > 0
        assert figures[name]["max_abs_difference"] < 1e-4  # the same function, float rounding apart
