"""``kedro run --pipeline=joint_grpo`` through real KedroSessions: tiny settings, config errors, torchrun, and
the direction of stage-1 learning on the default data."""

import json
import math
import os

import pandas as pd
import pytest

from benchmarks.training_seeds import copy_finished_project
from tests.conftest import PROJECT_ROOT, make_project_copy, torchrun_kedro
from tests.runs import SMALL_GRPO, TINY, default_sft_run_keys, holds_current_default_sft, run
from vans_pipelines.models.vdm import VideoDiffusionModel
from vans_pipelines.models.vlm import VisionLanguageModel
from vans_pipelines.params import ParameterError


@pytest.fixture(scope="module")
def after_sft(tmp_path_factory):
    """A project copy that has run ingest, caption and sft on tiny settings (shared by the tests here)."""
    root = make_project_copy(tmp_path_factory.mktemp("joint"))
    run(root, ["ingest", "caption", "sft"], TINY)
    return root


@pytest.mark.slow
def test_joint_grpo_writes_both_models_anchors_and_reports(after_sft):
    run(after_sft, ["joint_grpo"], {**TINY, **SMALL_GRPO})
    data = after_sft / "data"
    vlm_report = json.loads((data / "08_reporting" / "grpo_vlm_report.json").read_text())
    assert vlm_report["steps"] == 2 and vlm_report["resumed_from_step"] is None
    assert {"format", "text_fidelity", "video_fidelity", "oracle_event"} <= set(
        vlm_report["val_after"]["rewards"]
    )
    assert len(vlm_report["val_before"]["total_per_seed"]) == 2
    vdm_report = json.loads((data / "08_reporting" / "grpo_vdm_report.json").read_text())
    assert vdm_report["steps"] == 2 and vdm_report["train_anchors"] == 12
    assert {"video_fidelity", "semantic_alignment"} <= set(vdm_report["val_after"]["rewards"])
    assert vdm_report["val_after"]["motion"] >= 0
    anchors = pd.read_parquet(data / "07_model_output" / "anchor_captions.parquet")
    assert set(anchors["split"]) == {"train", "val"} and anchors["kept"].all()
    vlm = VisionLanguageModel.from_pretrained(data / "06_models" / "grpo_vlm")
    assert vlm.lora is not None
    vdm = VideoDiffusionModel.from_pretrained(data / "06_models" / "grpo_vdm")
    assert vdm.lora is not None
    runs = list((data / "07_model_output" / "tensorboard").iterdir())
    assert any({"grpo_vlm", "grpo_vdm"} <= {p.name for p in r.iterdir()} for r in runs)
    assert not any((data / "06_models" / "resume").rglob("*.ckpt"))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"grpo_vlm": {"grpo": {"group_size": 1}}}, r"grpo_vlm\.grpo\.group_size: must be >= 2"),
        ({"grpo_vdm": {"rewards": {"video_fidelity": -1.0}}}, r"grpo_vdm\.rewards\.video_fidelity: weight"),
        ({"grpo_vdm": {"grpo": {"epsilon_high": 0.0}}}, r"grpo_vdm\.grpo\.epsilon_high: the clip range"),
        ({"grpo_vdm": {"sde": {"noise_level": 0.0}}}, r"grpo_vdm\.sde\.noise_level: must be > 0"),
        ({"grpo_vlm": {"lora": {"dropout": 0.1}}}, r"grpo_vlm\.lora\.dropout: must be 0 in a GRPO stage"),
        ({"grpo_vdm": {"lora": {"dropout": 0.1}}}, r"grpo_vdm\.lora\.dropout: must be 0 in a GRPO stage"),
        ({"grpo_vlm": {"trainer": {"batch_size": 64}}}, r"grpo_vlm\.trainer\.batch_size: 64 is larger"),
    ],
)
def test_config_errors_fail_before_any_training(project_copy, override, message):
    with pytest.raises(ParameterError, match=message):
        run(project_copy, ["joint_grpo"], {**TINY, **override})
    assert not (project_copy / "data" / "07_model_output" / "tensorboard").exists()


@pytest.mark.slow
def test_too_few_anchors_name_the_threshold(after_sft):
    params = {**TINY, **SMALL_GRPO, "grpo_vdm": {**SMALL_GRPO["grpo_vdm"], "anchors": {"min_rouge_l": 1.0}}}
    with pytest.raises(ValueError, match=r"grpo_vdm\.anchors\.min_rouge_l: only \d+ train anchors"):
        run(after_sft, ["joint_grpo"], params)


@pytest.mark.slow
def test_stage1_under_torchrun_trains_on_both_ranks_and_writes_once(after_sft):
    """Two CPU processes (gloo): manual-optimisation GRPO under DDP, every backward synchronised by
    Lightning; only rank 0 writes the model and report."""
    overrides = {
        "trainer.max_steps": 2,
        "trainer.batch_size": 2,
        "trainer.accelerator": "cpu",
        "grpo.group_size": 2,
        "render_steps": 2,
        "sampling.max_new_tokens": 16,
        "eval.limit": 2,
        "eval.max_new_tokens": 16,
    }
    params = ",".join(f"grpo_vlm.{k}={v}" for k, v in overrides.items())
    returncode, log = torchrun_kedro(after_sft, "make_samples_node,train_grpo_vlm_node", params, 29541)
    assert returncode == 0, log[-3000:]
    report = json.loads((after_sft / "data" / "08_reporting" / "grpo_vlm_report.json").read_text())
    assert report["world_size"] == 2 and report["steps"] == 2
    assert "rank 1: not writing 'grpo_vlm'" in log
    assert "rank 0: not writing" not in log


@pytest.mark.slow
def test_training_seed_sweep_runs_the_stage_once_per_seed_in_a_copy(after_sft, tmp_path):
    """benchmarks/training_seeds.py: one stage run per training seed, each from the same SFT model (so the
    val figure before training is the same for every seed), in a copy that leaves the project alone."""
    from benchmarks.training_seeds import copy_finished_project, parse_params, run_seeds, summary

    # --params as `kedro run --params` reads them (numbers stay numbers)
    assert parse_params("grpo_vlm.optim.lr=1e-3,grpo_vlm.grpo.group_size=4") == {
        "grpo_vlm": {"optim": {"lr": 0.001}, "grpo": {"group_size": 4}}
    }

    tensorboard = after_sft / "data" / "07_model_output" / "tensorboard"
    tensorboard_runs_before = list(tensorboard.iterdir()) if tensorboard.exists() else []
    project = copy_finished_project(after_sft, tmp_path)
    assert not (project / "data" / "07_model_output" / "tensorboard").exists()
    rows = run_seeds(project, "grpo_vlm", [0, 1], {**TINY, **SMALL_GRPO})
    assert [r["seed"] for r in rows] == [0, 1]
    assert rows[0]["before"] == rows[1]["before"]
    assert len(list((project / "data" / "07_model_output" / "tensorboard").iterdir())) == 2
    assert (list(tensorboard.iterdir()) if tensorboard.exists() else []) == tensorboard_runs_before
    report = json.loads((project / "data" / "08_reporting" / "grpo_vlm_report.json").read_text())
    assert rows[1]["improvement"] == report["improvement"] and rows[1]["seed_spread"] == report["seed_spread"]
    assert "beats the eval-seed spread in" in summary(rows) and "of 2" in summary(rows)
    with pytest.raises(ValueError, match="--stage"):
        run_seeds(project, "sft", [0])
    with pytest.raises(FileNotFoundError, match="06_models"):
        copy_finished_project(tmp_path / "project" / "conf", tmp_path / "elsewhere")


@pytest.mark.slow
def test_default_sft_is_reused_only_when_settings_and_code_match(after_sft, tmp_path, project_copy):
    assert not holds_current_default_sft(project_copy)  # nothing trained
    (tmp_path / "copy").mkdir()
    project = copy_finished_project(after_sft, tmp_path / "copy")
    assert not holds_current_default_sft(project)  # trained, but with the tiny test settings
    reports = project / "data" / "08_reporting"
    for model, key in zip(("vlm", "vdm"), default_sft_run_keys(project), strict=True):
        path = reports / f"sft_{model}_report.json"
        report = json.loads(path.read_text())
        assert report["run_key"] != key
        path.write_text(json.dumps({**report, "run_key": key}))
    assert holds_current_default_sft(project)  # as if made with the default settings
    (project / "conf" / "local" / "parameters.yml").write_text("sft: {vlm: {optim: {lr: 1.0e-3}}}\n")
    assert not holds_current_default_sft(project)  # a local override: not the default
    (project / "conf" / "local" / "parameters.yml").unlink()
    later = (project / "data" / "08_reporting" / "sft_vdm_report.json").stat().st_mtime + 10
    source = project / "conf" / "base" / "parameters_sft.yml"
    os.utime(source, (later, later))
    assert not holds_current_default_sft(project)  # the config changed after the run


@pytest.fixture(scope="module")
def after_default_stage1(tmp_path_factory):
    """A project copy past the default's ingest, caption, sft and grpo_vlm. The SFT models are copied from
    this checkout's own default run when it is current (`make run` before `make test`, as CI does), else
    made here (about ten minutes on 2 CPU cores); stage 1 always runs here."""
    parent = tmp_path_factory.mktemp("default")
    if holds_current_default_sft(PROJECT_ROOT):
        root = copy_finished_project(PROJECT_ROOT, parent)
    else:
        root = make_project_copy(parent)
        run(root, ["ingest", "caption", "sft"])
    run(root, ["grpo_vlm"])
    return root


# On the default run (4096 episodes, 2000-step VLM, 2x VAE, width-128 DiT), with the versions constraints.txt
# pins, the gains depend on the CPU's float kernels (the runs diverge over thousands of steps):
# - one machine: stage 1 +0.0028 (every eval seed +0.0024..+0.0035, paired std 0.0005) below the level's
#   eval-seed spread (0.0099); stage 2 +0.038 against a spread of 0.020;
# - an AMD EPYC with AVX-512 (2026-12-06): stage 1 +0.020 against 0.013; stage 2 +0.018 against 0.031
#   (every seed +0.010..+0.030, paired std 0.008).
# What holds on both is asserted: every eval seed gains, by more than two paired standard errors.


def val_change(report):
    before, after = report["val_before"], report["val_after"]
    return before, after, (before["total_per_seed"], after["total_per_seed"], report["seed_spread"])


def paired_standard_error(report) -> float:
    """Standard error of the mean before/after change over eval seeds (each seed draws the same noise for
    both models, so the noise that the change has to beat is that of the per-seed differences)."""
    changes = report["improvement_per_seed"]
    return report["improvement_seed_std"] / math.sqrt(max(1, len(changes) - 1))


@pytest.mark.slow
def test_stage1_on_the_default_data_gains_on_val_beyond_eval_noise(after_default_stage1):
    """The direction of learning, asserted: after stage 1 every eval seed's val total reward is above the
    SFT VLM's on the same noise, and the mean change is more than two paired standard errors. (Stage 1 does
    not beat the level's seed-to-seed spread here: see the figures above.)"""
    report = json.loads((after_default_stage1 / "data" / "08_reporting" / "grpo_vlm_report.json").read_text())
    before, after, shown = val_change(report)
    assert all(change > 0 for change in report["improvement_per_seed"]), shown
    assert report["improvement"] > 2 * paired_standard_error(report) > 0, shown
    assert all(a > b for a, b in zip(after["total_per_seed"], before["total_per_seed"], strict=True))
    assert after["rewards"]["text_fidelity"] > before["rewards"]["text_fidelity"]


@pytest.mark.slow
def test_stage2_on_the_default_data_gains_on_val_beyond_eval_noise(after_default_stage1):
    """The same for stage 2 on the default's SFT VDM and stage-2 settings; anchors from the stage-1 VLM
    above. About 3 more minutes."""
    root = after_default_stage1
    run(root, ["grpo_vdm"])
    report = json.loads((root / "data" / "08_reporting" / "grpo_vdm_report.json").read_text())
    before, after, shown = val_change(report)
    assert all(change > 0 for change in report["improvement_per_seed"]), shown
    assert report["improvement"] > 2 * paired_standard_error(report) > 0, shown
    assert all(a > b for a, b in zip(after["total_per_seed"], before["total_per_seed"], strict=True))
    assert after["rewards"]["video_fidelity"] > before["rewards"]["video_fidelity"]
    assert after["rewards"]["semantic_alignment"] > before["rewards"]["semantic_alignment"]
    # The still-frame guard: generated clips keep moving.
    assert after["motion"] > 0.5 * before["motion"]
