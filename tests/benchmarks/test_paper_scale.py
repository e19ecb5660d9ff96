"""benchmarks/paper_scale.py --smoke (what CI runs of it): the paper-size step's code on shrunken configs,
run as a user runs it."""

import pytest

from tests.benchmarks.conftest import smoke_figures


def test_smoke_steps_train_both_adapters_and_report_every_part(tmp_path):
    figures = smoke_figures("paper_scale.py", tmp_path / "paper_scale.json", "--peak-tflops", "2")
    rows = figures["rows"]
    assert [r["part"] for r in rows] == ["stage1_step", "stage2_step", "eval_batch"]
    assert all(r["seconds"] > 0 and r["tflops_per_run"] > 0 for r in rows)
    for row in rows:  # MFU: the achieved FLOP rate over the peak given
        assert row["mfu"] == pytest.approx(row["achieved_tflops_per_s"] / 2, abs=1e-3)
    # LoRA B starts at zero: a non-zero delta means the stage steps back-propagated and stepped.
    assert figures["vlm_adapter_change"] > 0 and figures["vdm_adapter_change"] > 0
    # The Wan VAE compresses time by 4 (4k + 1 frames), as the paper's does.
    geometry = figures["geometry"]
    assert geometry["latent_frames"] == (geometry["frames"] - 1) // 4 + 1
