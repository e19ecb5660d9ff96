"""benchmarks/paper_scale.py --smoke (what CI runs of it): the paper-size step's code on shrunken configs."""

import json

import torch

from benchmarks.paper_scale import PAPER, SMOKE, Measured, main, run_benchmark
from vans_pipelines.training.ablation import adapter_change


def test_smoke_steps_train_both_adapters_and_report_every_part():
    parts, vlm, vdm = run_benchmark(SMOKE, torch.device("cpu"), repeats=1)
    assert [p.name for p in parts] == ["stage1_step", "stage2_step", "eval_batch"]
    assert all(p.seconds > 0 and p.flops > 0 and p.units > 0 for p in parts)
    # LoRA B starts at zero: a non-zero delta means the stage steps back-propagated and stepped.
    assert adapter_change(vlm.model) > 0
    assert adapter_change(vdm.transformer) > 0
    # The Wan VAE compresses time by 4 (4k + 1 frames), as the paper's does.
    assert vdm.latent_shape(SMOKE.frames, SMOKE.height, SMOKE.width)[1] == (SMOKE.frames - 1) // 4 + 1


def test_mfu_is_achieved_flops_over_the_peak():
    row = Measured("x", seconds=2.0, flops=4e12, peak_memory_gb=1.0, units=10, unit_name="tokens").row(8e12)
    assert row["achieved_tflops_per_s"] == 2.0 and row["mfu"] == 0.25 and row["tokens_per_s"] == 5.0
    assert Measured("x", 2.0, 4e12, 1.0, 10, "tokens").row(None)["mfu"] is None


def test_cli_writes_rows_and_the_paper_scale_is_the_published_geometry(tmp_path):
    out = tmp_path / "paper_scale.json"
    rows = main(["--smoke", "--repeats", "1", "--json", str(out)])
    assert json.loads(out.read_text())["rows"] == rows
    assert (PAPER.frames, PAPER.height, PAPER.width, PAPER.context_frames) == (33, 352, 640, 6)
    assert PAPER.wan["num_layers"] == 30 and PAPER.vlm_text["num_hidden_layers"] == 36
