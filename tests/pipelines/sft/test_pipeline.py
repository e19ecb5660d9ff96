"""``kedro run --pipelines sft`` (after ingest and caption) through a real KedroSession on tiny settings,
and its failures."""

import json

import pytest

from tests.conftest import torchrun_kedro
from tests.runs import TINY, run
from vans_pipelines.models.vdm import VideoDiffusionModel
from vans_pipelines.models.vlm import VisionLanguageModel
from vans_pipelines.params import ParameterError


@pytest.mark.slow
def test_caption_and_sft_write_models_and_reports(project_copy):
    run(project_copy, ["ingest", "caption", "sft"], TINY)
    data = project_copy / "data"
    assert len(json.loads((data / "08_reporting" / "scorer_report.json").read_text())["val"]) > 0
    vlm_report = json.loads((data / "08_reporting" / "sft_vlm_report.json").read_text())
    assert vlm_report["steps"] == 3 and vlm_report["world_size"] == 1
    assert {"rouge_l", "format_rate"} <= set(vlm_report["val_after"])
    vdm_report = json.loads((data / "08_reporting" / "sft_vdm_report.json").read_text())
    assert {"pixel_mse", "oracle_event_accuracy"} <= set(vdm_report["val_after"])
    VisionLanguageModel.from_pretrained(data / "06_models" / "sft_vlm")
    VideoDiffusionModel.from_pretrained(data / "06_models" / "sft_vdm")
    runs = list((data / "07_model_output" / "tensorboard").iterdir())
    assert len(runs) == 1 and {"sft_vlm", "sft_vdm", "scorer"} <= {p.name for p in runs[0].iterdir()}
    assert not any((data / "06_models" / "resume").rglob("*.ckpt"))


def test_unknown_model_path_fails_before_training(project_copy):
    params = {**TINY, "sft": {"vlm": {"model": {"source": "pretrained", "path": "no/such-model"}}}}
    with pytest.raises(ParameterError, match=r"sft.vlm.model.path: 'no/such-model' is neither a folder"):
        run(project_copy, ["sft"], params)


def test_batch_larger_than_the_split_fails_before_training(project_copy):
    params = {**TINY, "sft": {"vdm": {"trainer": {"batch_size": 64}}}}
    with pytest.raises(
        ParameterError, match=r"sft.vdm.trainer.batch_size: 64 is larger than the train split"
    ):
        run(project_copy, ["sft"], params)


@pytest.mark.slow
def test_sft_under_torchrun_trains_on_both_ranks_and_writes_once(project_copy):
    """Two CPU processes (gloo) under torchrun: DDP trains on both, only rank 0 writes outputs."""
    run(project_copy, ["ingest", "caption"], TINY)
    params = ",".join(
        f"sft.vlm.{key}"
        for key in ("trainer.max_steps=2", "trainer.batch_size=2", "eval.limit=2", "trainer.accelerator=cpu")
    )
    returncode, log = torchrun_kedro(project_copy, "make_samples_node,train_vlm_node", params, 29533)
    assert returncode == 0, log[-3000:]
    report = json.loads((project_copy / "data" / "08_reporting" / "sft_vlm_report.json").read_text())
    assert report["world_size"] == 2 and report["steps"] == 2
    assert "rank 1: not writing 'sft_vlm'" in log
    assert "rank 0: not writing" not in log
    assert not list((project_copy / "data" / "06_models").glob("sft_vlm.*"))  # no leftover temp folders
