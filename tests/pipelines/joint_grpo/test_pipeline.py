"""``kedro run --pipeline=joint_grpo`` through real KedroSessions: tiny settings, config errors, torchrun, and
the direction of stage-1 learning on the default data."""

import json
import math
import os

import numpy as np
import pandas as pd
import pytest
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from lightning.pytorch.callbacks import Callback
from torch.utils.data import Subset

from tests.conftest import PROJECT_ROOT, make_project_copy, torchrun_kedro
from tests.runs import SMALL_GRPO, TINY, default_sft_run_keys, holds_current_default_sft, run
from vans_pipelines.models.vdm import VideoDiffusionModel
from vans_pipelines.models.vlm import VisionLanguageModel
from vans_pipelines.params import ParameterError, parse_section
from vans_pipelines.pipelines.samples.nodes import make_samples
from vans_pipelines.training.grpo_vlm import fit_stage1
from vans_pipelines.training.trainer import RunPaths


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
def test_default_sft_is_reused_only_when_settings_and_code_match(after_sft, tmp_path, project_copy):
    assert not holds_current_default_sft(project_copy)  # nothing trained
    (tmp_path / "copy").mkdir()
    project = make_project_copy(tmp_path / "copy", data_from=after_sft)
    assert not holds_current_default_sft(project)  # trained, but with the tiny test settings
    reports = project / "data" / "08_reporting"
    for model, key in zip(("vlm", "vdm"), default_sft_run_keys(project), strict=True):
        path = reports / f"sft_{model}_report.json"
        report = json.loads(path.read_text())
        assert report["run_key"] != key
        path.write_text(json.dumps({**report, "run_key": key}))
    assert holds_current_default_sft(project)  # as if made with the default settings
    later = (project / "data" / "08_reporting" / "sft_vdm_report.json").stat().st_mtime + 10
    # What imports and installs rewrite after the run (pytest's doctest collection, `make setup`) is no edit.
    for written in ("vans_pipelines/__pycache__/nodes.cpython-311.pyc", "vans_pipelines.egg-info/PKG-INFO"):
        path = project / "src" / written
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
        os.utime(path, (later, later))
    assert holds_current_default_sft(project)
    (project / "conf" / "local" / "parameters.yml").write_text("sft: {vlm: {optim: {lr: 1.0e-3}}}\n")
    assert not holds_current_default_sft(project)  # a local override: not the default
    (project / "conf" / "local" / "parameters.yml").unlink()
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
        root = make_project_copy(parent, data_from=PROJECT_ROOT)
    else:
        root = make_project_copy(parent)
        run(root, ["ingest", "caption", "sft"])
    run(root, ["grpo_vlm"])
    return root


# Stage 1's change of the val reward on the default run depends on the CPU's float kernels (the runs
# diverge over thousands of SFT steps) and is not a gain on every one: +0.0028 (every eval seed, paired std
# 0.0005) on one machine, +0.020 on an AMD EPYC with AVX-512, -0.016 on the AMD EPYC without it that CI drew
# on 2026-12-06 (docs/log/stage1.md). What holds on every CPU is asserted below: GRPO
# climbs the stage-1 reward of the prompts it trains on, and stage 2 gains on val beyond eval noise.


def val_change(report):
    before, after = report["val_before"], report["val_after"]
    return before, after, (before["total_per_seed"], after["total_per_seed"], report["seed_spread"])


def paired_standard_error(report) -> float:
    """Standard error of the mean before/after change over eval seeds (each seed draws the same noise for
    both models, so the noise that the change has to beat is that of the per-seed differences)."""
    changes = report["improvement_per_seed"]
    return report["improvement_seed_std"] / math.sqrt(max(1, len(changes) - 1))


class RolloutRewards(Callback):
    """The mean total reward of every training step's rollout."""

    def __init__(self):
        self.values: list[float] = []

    def on_train_batch_end(self, trainer, *args):
        self.values.append(float(trainer.callback_metrics["reward/total/mean"]))


@pytest.mark.experiment
def test_stage1_on_the_default_models_climbs_the_reward_of_the_prompts_it_trains_on(
    after_default_stage1, tmp_path
):
    """The direction of learning, asserted where it holds on every CPU: the default stage 1 (its rewards,
    group, sampling, LoRA and renderer, on the default SFT VLM and VDM) trained on four fixed train prompts
    for 40 steps raises their rollout reward: the last ten steps' mean is above the first ten's by more
    than two standard errors (about 40 s; measured on an AMD EPYC Zen 3: 1.662 -> 1.781, step std 0.07)."""
    bootstrap_project(after_default_stage1)
    with KedroSession.create(project_path=after_default_stage1) as session:
        context = session.load_context()
        catalog = context.catalog
        samples = make_samples(
            *(catalog.load(f"{split}_triplets") for split in ("train", "val", "test")),
            catalog.load("captions"),
            context.params["ingest"]["clip"]["fps"],
        )
        vlm, vdm, scorer = (catalog.load(name) for name in ("sft_vlm", "sft_vdm", "scorer"))
        section = context.params["grpo_vlm"]
    params = parse_section(
        "grpo_vlm",
        {
            **section,
            "optim": {**section["optim"], "lr": 2.0e-3},
            "trainer": {**section["trainer"], "max_steps": 40, "batch_size": 4},
        },
    )
    rewards = RolloutRewards()
    run = RunPaths(str(tmp_path / "tb"), str(tmp_path / "checkpoints"), "climb").training(
        "grpo_vlm", "climb", callbacks=(rewards,)
    )
    fit_stage1(vlm, vdm, scorer, params, Subset(samples.train, range(4)), run, fps=samples.fps)
    first, last = np.array(rewards.values[:10]), np.array(rewards.values[-10:])
    error = math.sqrt(first.var(ddof=1) / len(first) + last.var(ddof=1) / len(last))
    assert last.mean() - first.mean() > 2 * error, (first.round(3).tolist(), last.round(3).tolist())


@pytest.mark.experiment
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
