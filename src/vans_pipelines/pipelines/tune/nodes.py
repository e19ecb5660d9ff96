"""Tune nodes: run (or resume) the Optuna study, write the best settings as a parameters file for the next
``joint_grpo`` run, plot the study. The catalog loads and saves the study's results; Optuna keeps the study
in its storage (``tune_storage``) and the trials' trainers write TensorBoard logs (``tune.log_dir``)."""

from __future__ import annotations

import logging
from typing import Any

import optuna
from matplotlib.figure import Figure

from vans_pipelines.evaluation import report
from vans_pipelines.models.scorer import VideoTextScorer
from vans_pipelines.models.vdm import VideoDiffusionModel
from vans_pipelines.models.vlm import VisionLanguageModel
from vans_pipelines.params import RunContext, parse_section
from vans_pipelines.samples import SplitSamples
from vans_pipelines.training import tune as tuning
from vans_pipelines.training.data import check_batch_fits

logger = logging.getLogger(__name__)


def run_study(
    samples: SplitSamples,
    sft_vlm: VisionLanguageModel,
    sft_vdm: VideoDiffusionModel,
    scorer: VideoTextScorer,
    tune_storage: optuna.storages.BaseStorage,
    tune: dict[str, Any],
    grpo_vlm: dict[str, Any],
    run_context: RunContext,
) -> dict[str, Any]:
    """Run the study up to ``tune.n_trials`` finished trials (resuming an interrupted one); return its
    summary (best trial, every trial, importances)."""
    params = parse_section("tune", tune)
    base = parse_section("grpo_vlm", grpo_vlm)
    train, val = samples.train, samples.val
    check_batch_fits("grpo_vlm.trainer.batch_size", base.trainer.batch_size, train)
    study = tuning.open_study(
        tune_storage,
        params.study_name,
        seed=params.seed,
        pruner_startup_trials=params.pruner_startup_trials,
        pruner_warmup_steps=params.pruner_warmup_steps,
    )
    objective = tuning.stage1_objective(
        sft_vlm,
        sft_vdm,
        scorer,
        train,
        val,
        grpo_vlm,
        lambda raw: parse_section("grpo_vlm", raw),
        params,
        run_context.logging_to(params.log_dir),
        fps=samples.fps,
    )
    ran = tuning.run_trials(study, params.n_trials, objective)
    summary = tuning.summarise_study(study, params.search)
    summary["ran_this_time"] = ran
    summary["objective"] = dict(params.objective)
    if "best" in summary:
        _log_best(summary, ran)
    return summary


def _log_best(summary: dict[str, Any], ran: int) -> None:
    best = summary["best"]
    logger.info(
        "tune: %d trials (%d complete, %d pruned; %d run now); best #%d objective %.4f %s",
        len(summary["trials"]),
        summary["complete"],
        summary["pruned"],
        ran,
        best["number"],
        best["value"],
        best["params"],
    )


def write_tuned_parameters(summary: dict[str, Any], grpo_vlm: dict[str, Any]) -> dict[str, Any]:
    """The whole ``grpo_vlm`` section with the best trial's settings (Kedro replaces a top-level section, so
    the file carries all of it): ``kedro run --env tuned --pipeline joint_grpo`` trains with them."""
    tuned = tuning.merge(grpo_vlm, tuning.best_overrides(summary))
    parse_section("grpo_vlm", tuned)  # never write a file the next run would reject
    return {"grpo_vlm": tuned}


def plot_optimisation_history(summary: dict[str, Any]) -> Figure:
    return report.optimisation_history_figure(summary["trials"])


def plot_parameter_importance(summary: dict[str, Any]) -> Figure:
    return report.parameter_importance_figure(summary.get("importances", {}))
