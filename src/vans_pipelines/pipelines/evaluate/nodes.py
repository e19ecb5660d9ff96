"""Evaluate nodes: answer the test split with every system, score the answers, and turn the figures into
the report (tables, plots, video grid). No file I/O here: the catalog loads and saves."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from vans_pipelines.evaluation import report, systems
from vans_pipelines.evaluation.comparison import paired_comparison, winners
from vans_pipelines.evaluation.features import build_features
from vans_pipelines.models.scorer import VideoTextScorer
from vans_pipelines.models.vdm import VideoDiffusionModel
from vans_pipelines.models.vlm import VisionLanguageModel
from vans_pipelines.params import RunContext, parse_section
from vans_pipelines.samples import SplitSamples

logger = logging.getLogger(__name__)

# Sibling files of the report in data/08_reporting (see the catalog), linked from report.md.
REPORT_FILES = {
    "metrics (all figures)": "metrics.json",
    "metric summary (DVC metrics: numbers, one level)": "summary.json",
    "per-system tables (DVC plots)": "systems/<system>.csv",
    "per-sample scores": "evaluation_samples.parquet",
    "metric bars": "metric_bars.png",
    "training reward curves": "training_curves.png",
    "training reward curves, as a table": "training_curves.csv",
    "video grid (context | ground truth | each system)": "video_grid.mp4",
}


def evaluate_systems(
    samples: SplitSamples,
    sft_vlm: VisionLanguageModel,
    grpo_vlm: VisionLanguageModel,
    sft_vdm: VideoDiffusionModel,
    grpo_vdm: VideoDiffusionModel,
    scorer: VideoTextScorer,
    evaluate: dict[str, Any],
    run_context: RunContext,
) -> tuple[dict[str, Any], pd.DataFrame, dict[str, np.ndarray]]:
    """Every configured system on the test split, where ``run.inference`` says. Returns the metrics (DVC
    metrics file), one row per (system, seed, sample), and the clips of the video grid."""
    params = parse_section("evaluate", evaluate)
    features = build_features(params.fvd.kind, scorer, params.fvd.path)
    started = time.perf_counter()
    inference = run_context.inference
    with inference.running(sft_vlm, grpo_vlm, sft_vdm, grpo_vdm, scorer, features):
        result = systems.score_systems(
            systems.system_by_name(params.systems),
            {"sft": sft_vlm, "grpo": grpo_vlm},
            {"sft": sft_vdm, "grpo": grpo_vdm},
            samples.test,
            scorer,
            features,
            seeds=params.seeds,
            num_steps=params.num_steps,
            max_new_tokens=params.max_new_tokens,
            batch_size=params.batch_size,
            limit=params.limit,
            keep_clips=params.grid.samples,
        )
    best = winners(result.summary)
    metrics = {
        "samples": len(result.reference.sample_ids),
        "seeds": list(params.seeds),
        "scorer": type(scorer).__name__,
        "feature_extractor": features.name,
        "inference": {"device": inference.device, "precision": inference.precision},
        "seconds": round(time.perf_counter() - started, 2),
        "systems": result.summary,
        "best": best,
        "joint_grpo_vs_sft_cascade": paired_comparison(
            result.summary, result.samples, "joint_grpo", "sft_cascade"
        ),
    }
    for line in report.headline(metrics["joint_grpo_vs_sft_cascade"]):
        logger.info("evaluate: %s", line.removeprefix("- ").replace("**", ""))
    return metrics, result.samples, grid_clips(result, params.grid.samples)


def grid_clips(result: systems.Evaluation, keep: int) -> dict[str, np.ndarray]:
    """The video grid's columns: the first ``keep`` contexts, their ground truth and each system's answers."""
    reference = result.reference
    return {"context": reference.contexts[:keep], "ground truth": reference.targets[:keep], **result.answers}


def write_system_tables(metrics: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """One CSV per system (metric, mean, std, per seed): the DVC plots' data."""
    return {name: report.system_table(system) for name, system in metrics["systems"].items()}


def summarise_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """The flat numeric summary DVC shows as this stage's metric (see :func:`report.flat_summary`)."""
    return report.flat_summary(metrics)


def plot_metrics(metrics: dict[str, Any]) -> Figure:
    return report.plot_metric_bars(metrics["systems"])


def plot_training_curves(
    training_curves: pd.DataFrame,
    grpo_vlm_report: dict[str, Any],
    grpo_vdm_report: dict[str, Any],
    evaluate: dict[str, Any],
) -> tuple[Figure, pd.DataFrame]:
    """The reward curves of the runs that wrote the two GRPO stage reports (taking the reports as inputs
    also orders this node after training), as a plot and a table."""
    params = parse_section("evaluate", evaluate)
    curves = report.curves_of_runs(
        training_curves, {"grpo_vlm": grpo_vlm_report, "grpo_vdm": grpo_vdm_report}
    )
    curves = curves[curves["tag"].isin(params.curve_tags)].reset_index(drop=True)
    for stage in ("grpo_vlm", "grpo_vdm"):
        if not (curves["stage"] == stage).any():
            logger.warning("no %s training curves from this run under the TensorBoard folder", stage)
    return report.training_curves_figure(curves), curves


def render_video_grid(clips: dict[str, np.ndarray], evaluate: dict[str, Any]) -> np.ndarray:
    params = parse_section("evaluate", evaluate)
    answers = {k: v for k, v in clips.items() if k not in ("context", "ground truth")}
    return report.video_grid(clips["context"], clips["ground truth"], answers, scale=params.grid.scale)


def write_report(metrics: dict[str, Any]) -> str:
    """The Markdown report (our table, the paper's table beside it, the plots inline)."""
    text = report.markdown_report(
        metrics["systems"],
        metrics["best"],
        feature_extractor=metrics["feature_extractor"],
        seeds=metrics["seeds"],
        num_samples=metrics["samples"],
        scorer=metrics["scorer"],
        files=REPORT_FILES,
        comparison=metrics.get("joint_grpo_vs_sft_cascade"),
    )
    return text + "\n![metric bars](metric_bars.png)\n\n![training reward curves](training_curves.png)\n"
