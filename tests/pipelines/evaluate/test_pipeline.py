"""``kedro run --pipelines evaluate`` after a tiny full run: every report file, the table, determinism."""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tests.runs import ALL_TINY, run
from vans_pipelines.models.vdm import VideoDiffusionModel
from vans_pipelines.video.io import decode_all

VIDEO_METRICS = {
    "fvd",
    "clip_v",
    "clip_t",
    "event_accuracy",
    "event_kind_accuracy",
    "motion",
    "still_similarity",
}
TEXT_METRICS = {"bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "caption_event_accuracy"}


@pytest.mark.slow
def test_the_default_run_writes_the_whole_report(finished_run):
    reporting = finished_run / "data" / "08_reporting"
    metrics = json.loads((reporting / "metrics.json").read_text())
    assert metrics["samples"] == 4 and metrics["seeds"] == [0, 1]
    assert "TinyScorer video embeddings" in metrics["feature_extractor"]
    systems = metrics["systems"]
    cascades = ["sft_cascade", "stage1_only", "stage2_only", "joint_grpo"]
    stand_ins = ["still_frame", "truth_caption_sft_vdm", "truth_caption_grpo_vdm"]
    assert list(systems) == ["vlm_only", *cascades, *stand_ins]
    assert set(systems["vlm_only"]["metrics"]) == TEXT_METRICS
    for name in cascades + stand_ins:
        expected = VIDEO_METRICS if name in stand_ins else TEXT_METRICS | VIDEO_METRICS
        assert set(systems[name]["metrics"]) == expected
        assert all(len(v["per_seed"]) == 2 for v in systems[name]["metrics"].values())
        assert np.isfinite(systems[name]["metrics"]["fvd"]["mean"])
    assert systems["still_frame"]["metrics"]["event_accuracy"]["mean"] == 0.0  # the oracle sees no event
    assert systems["still_frame"]["metrics"]["motion"]["mean"] == 0.0
    # Same VDM, different VLMs: the systems really differ in what they render.
    assert systems["sft_cascade"]["vdm"] == systems["stage1_only"]["vdm"] == "sft"

    summary = json.loads((reporting / "summary.json").read_text())  # DVC's metric: one level of numbers
    assert summary["joint_grpo.clip_v"] == pytest.approx(
        systems["joint_grpo"]["metrics"]["clip_v"]["mean"], abs=1e-5
    )
    assert all(isinstance(v, float) for v in summary.values())
    for name in systems:
        table = pd.read_csv(reporting / "systems" / f"{name}.csv")
        assert {"metric", "mean", "std", "seed_0", "seed_1"} <= set(table.columns)
    samples = pd.read_parquet(reporting / "evaluation_samples.parquet")
    assert len(samples) == 4 + 7 * 2 * 4  # text-only rows, then (system, seed, sample) rows

    report = (reporting / "report.md").read_text()
    assert "## Which system wins" in report and "The paper's reported figures" in report
    assert report.split("\n")[2].startswith("Joint-GRPO answers **")  # the lead comes first
    assert "Joint-GRPO (GRPO VLM -> GRPO VDM)" in report
    for image in ("metric_bars.png", "training_curves.png"):
        assert f"]({image})" in report
        assert Image.open(reporting / image).size[0] > 300
    # The curves are this run's: both GRPO stages, from the run folders their reports name.
    curves = pd.read_csv(reporting / "training_curves.csv")
    for stage in ("grpo_vlm", "grpo_vdm"):
        stage_report = json.loads((reporting / f"{stage}_report.json").read_text())
        rows = curves[curves["stage"] == stage]
        assert len(rows) > 0
        assert set(rows["run"]) == {Path(stage_report["tensorboard"]).parent.name}
    grid = decode_all(str(reporting / "video_grid.mp4"))
    assert grid.shape[0] == 16 + 16  # context frames + target frames of the embedded default clip
    assert grid.shape[2] > 9 * 32 * 2  # nine columns (context, truth, seven video systems) at scale 2


@pytest.mark.slow
def test_same_seed_gives_identical_metrics(finished_run, tmp_path):
    copy = tmp_path / "again"
    shutil.copytree(finished_run, copy, ignore=shutil.ignore_patterns("tensorboard"))
    (copy / "data" / "08_reporting" / "metrics.json").unlink()
    run(copy, ["evaluate"], ALL_TINY)
    first = json.loads((finished_run / "data" / "08_reporting" / "metrics.json").read_text())
    second = json.loads((copy / "data" / "08_reporting" / "metrics.json").read_text())
    first.pop("seconds"), second.pop("seconds")
    assert first == second


@pytest.mark.slow
def test_the_stage2_vdm_is_saved_as_its_adapter_over_the_sft_vdms_parts(finished_run):
    """grpo_vdm trains only the transformer's adapter: its folder holds the adapter and references to
    the SFT VDM's transformer, VAE and text encoder, not copies of them, and it loads."""
    models = finished_run / "data" / "06_models"
    saved = models / "grpo_vdm"
    assert sorted(p.name for p in saved.iterdir()) == ["tokenizer", "transformer_adapter", "vans_vdm.json"]
    meta = json.loads((saved / "vans_vdm.json").read_text())
    assert meta["transformer_base"] == "../sft_vdm"
    assert {ref["path"] for ref in meta["parts"].values()} == {"../sft_vdm"}

    def size(folder: Path) -> int:
        return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())

    assert size(saved) < size(models / "sft_vdm") / 4
    vdm = VideoDiffusionModel.from_pretrained(saved)
    assert vdm.lora is not None
