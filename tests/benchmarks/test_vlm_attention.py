"""benchmarks/vlm_attention.py --smoke (what CI runs of it): both vision-attention paths step alike."""

from tests.benchmarks.conftest import smoke_figures


def test_smoke_times_both_paths_and_finds_the_same_gradients(tmp_path):
    figures = smoke_figures("vlm_attention.py", tmp_path / "vlm_attention.json")
    assert figures["smoke"] is True and figures["steps"] == 2
    assert figures["per_window_seconds_per_step"] > 0 and figures["packed_seconds_per_step"] > 0
    assert figures["max_gradient_difference"] < 1e-5 and figures["loss_difference"] < 1e-5
