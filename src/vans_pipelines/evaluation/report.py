"""The evaluation report: a metrics table with the winner of each column, the paper's own table beside it
(labelled as such), bar and curve plots, and a video grid (context | ground truth | each system)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from vans_pipelines.evaluation.systems import TEXT_METRICS, VIDEO_METRICS

# From ../shared/PAPER.md: the paper's figures on its own benchmarks (real videos, Qwen2.5-VL-3B +
# Wan2.1-1.3B, I3D FVD). Never comparable with numbers measured on the synthetic world.
PAPER_TABLE = pd.DataFrame(
    [
        ("procedural", "SFT", 0.2812, 85.34, 0.7655, 0.3202),
        ("procedural", "Joint-GRPO (VANS)", 0.3631, 78.32, 0.8021, 0.3824),
        ("predictive", "SFT", 0.2435, 94.12, 0.7512, 0.3038),
        ("predictive", "Joint-GRPO (VANS)", 0.3058, 86.85, 0.7872, 0.3759),
    ],
    columns=["benchmark", "system", "ROUGE-L", "FVD", "CLIP-V", "CLIP-T"],
)

METRIC_LABELS = {
    "bleu_1": "BLEU@1",
    "bleu_2": "BLEU@2",
    "bleu_3": "BLEU@3",
    "bleu_4": "BLEU@4",
    "rouge_l": "ROUGE-L",
    "caption_event_accuracy": "caption event acc.",
    "fvd": "FVD ↓",
    "clip_v": "CLIP-V",
    "clip_t": "CLIP-T",
    "event_accuracy": "video event acc.",
    "event_kind_accuracy": "video event-kind acc.",
    "motion": "motion",
    "still_similarity": "still-frame likeness",
}
# Headline metrics of the comparison the acceptance asks about (Joint-GRPO vs the SFT cascade).
HEADLINE = ("rouge_l", "clip_v", "clip_t", "event_accuracy", "caption_event_accuracy", "fvd")


def frame_markdown(frame: pd.DataFrame) -> str:
    """A DataFrame as a Markdown table (without pandas' optional ``tabulate`` dependency)."""
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def system_table(system: Mapping[str, Any]) -> pd.DataFrame:
    """One system's metrics as rows (metric, mean, std, one column per seed): the per-system CSV."""
    rows = []
    for metric, value in system["metrics"].items():
        row = {"metric": metric, "mean": value["mean"], "std": value["std"]}
        row.update({f"seed_{i}": v for i, v in enumerate(value["per_seed"])})
        rows.append(row)
    return pd.DataFrame(rows)


def _cell(value: Mapping[str, Any] | None, bold: bool, digits: int) -> str:
    if value is None or np.isnan(value["mean"]):
        return "n/a"
    text = f"{value['mean']:.{digits}f}"
    if value["std"] > 0:
        text += f" ± {value['std']:.{digits}f}"
    return f"**{text}**" if bold else text


def markdown_rows(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A markdown table's lines: the header, its rule, one line per row of cells."""
    return [
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def markdown_table(summary: Mapping[str, Any], metrics: Sequence[str], best: Mapping[str, list[str]]) -> str:
    rows = (
        [system["label"]] + [_cell(system["metrics"].get(m), name in best.get(m, []), 4) for m in metrics]
        for name, system in summary.items()
    )
    return "\n".join(markdown_rows(["system", *(METRIC_LABELS.get(m, m) for m in metrics)], rows))


def headline(comparison: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """One line per headline metric of a :func:`~vans_pipelines.evaluation.comparison.paired_comparison`:
    Joint-GRPO against the SFT cascade, the paired difference, its standard error and the verdict."""
    lines = []
    for metric in HEADLINE:
        c = comparison.get(metric)
        if c is None:
            continue
        unit = "per-seed pairs" if metric == "fvd" else "paired samples"
        lines.append(
            f"- {METRIC_LABELS.get(metric, metric)}: Joint-GRPO {c['ours']:.4f} vs SFT cascade "
            f"{c['baseline']:.4f} ({c['delta']:+.4f} ± {c['standard_error']:.4f} SE over {c['pairs']} "
            f"{unit}): **{c['verdict']}**"
        )
    return lines


def lead(summary: Mapping[str, Any]) -> list[str]:
    """What a user wants to know first: how often each answer shows the right event (the oracle's
    video event accuracy), Joint-GRPO first, against the SFT cascade and the still-frame floor.

    >>> acc = lambda v: {"metrics": {"event_accuracy": {"mean": v}}}
    >>> print(lead({"joint_grpo": acc(0.5), "sft_cascade": acc(0.25), "still_frame": acc(0.0)})[0][-52:])
    right event (SFT cascade 25.0 %, still frame 0.0 %).
    """

    def accuracy(name: str) -> float | None:
        value = summary.get(name, {}).get("metrics", {}).get("event_accuracy")
        return None if value is None or np.isnan(value["mean"]) else 100 * value["mean"]

    ours = accuracy("joint_grpo")
    if ours is None:
        return []
    others = [
        f"{label} {value:.1f} %"
        for name, label in (("sft_cascade", "SFT cascade"), ("still_frame", "still frame"))
        if (value := accuracy(name)) is not None
    ]
    tail = f" ({', '.join(others)})" if others else ""
    return [f"Joint-GRPO answers **{ours:.1f} %** of test questions with a video of the right event{tail}."]


def markdown_report(
    summary: Mapping[str, Any],
    best: Mapping[str, list[str]],
    *,
    comparison: Mapping[str, Mapping[str, Any]] | None = None,
    feature_extractor: str,
    seeds: Sequence[int],
    num_samples: int,
    scorer: str,
    files: Mapping[str, str],
) -> str:
    """The report a person opens first: which system wins, our table, the paper's table, the files."""
    parts = [
        "# VANS evaluation report",
        "",
        *lead(summary),
        "",
        f"Test split: {num_samples} samples. Seeds: {list(seeds)} (diffusion noise; captions are greedy, so "
        "text metrics have no seed spread). Cells are mean ± std over seeds; **bold** is the best system "
        "of the column.",
        "",
        f"- CLIP-V / CLIP-T scorer: {scorer}.",
        f"- FVD feature extractor: {feature_extractor}. This is a Fréchet distance under that extractor, "
        "not the I3D FVD that papers quote, unless the extractor above says I3D.",
        "- Event accuracy: the synthetic world's oracle reads the event (object and action) back from the "
        "generated clip (video) or parses it from the predicted caption (caption).",
        "",
        *_winners_section(summary, best, comparison or {}),
        *_tables_section(summary, best),
        "## Files",
        "",
        *[f"- {label}: `{path}`" for label, path in files.items()],
        "",
    ]
    return "\n".join(parts)


def _winners_section(
    summary: Mapping[str, Any], best: Mapping[str, list[str]], comparison: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    wins = pd.Series([n for names in best.values() for n in names]).value_counts()
    return [
        "## Which system wins",
        "",
        *[
            f"- {summary[name]['label']}: best (or tied best) on {count} metric(s)"
            for name, count in wins.items()
        ],
        "",
        "Joint-GRPO against the SFT cascade (paired: the same test samples and noise draws; a verdict "
        "needs a difference beyond two standard errors):",
        "",
        *headline(comparison),
        "",
    ]


def _tables_section(summary: Mapping[str, Any], best: Mapping[str, list[str]]) -> list[str]:
    text_metrics = [m for m in TEXT_METRICS if any(m in s["metrics"] for s in summary.values())]
    video_metrics = [m for m in VIDEO_METRICS if any(m in s["metrics"] for s in summary.values())]
    return [
        "## Captions",
        "",
        markdown_table(summary, text_metrics, best),
        "",
        "## Videos",
        "",
        markdown_table({k: v for k, v in summary.items() if v["vdm"] is not None}, video_metrics, best),
        "",
        "## The paper's reported figures (its own data and models, not this run)",
        "",
        "From the VANS paper (arXiv 2511.16669), on its procedural and predictive benchmarks with "
        "Qwen2.5-VL-3B + Wan2.1-1.3B and I3D FVD. Shown for orientation only: these numbers were not "
        "measured by this project and are not comparable with the table above.",
        "",
        frame_markdown(PAPER_TABLE),
        "",
    ]


def plot_metric_bars(summary: Mapping[str, Any], metrics: Sequence[str] = HEADLINE) -> plt.Figure:
    """One panel per metric, one bar per system (error bars: std over seeds)."""
    metrics = [m for m in metrics if any(m in s["metrics"] for s in summary.values())]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.4), squeeze=False)
    names = list(summary)
    colours = plt.get_cmap("tab10")(np.arange(len(names)))
    for ax, metric in zip(axes[0], metrics, strict=True):
        means = [summary[n]["metrics"].get(metric, {}).get("mean", np.nan) for n in names]
        stds = [summary[n]["metrics"].get(metric, {}).get("std", 0.0) for n in names]
        ax.bar(range(len(names)), means, yerr=stds, color=colours, capsize=3)
        ax.set_title(METRIC_LABELS.get(metric, metric))
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    fig.tight_layout()
    return fig


#: The metrics the flat summary (DVC's metric file) carries per system: the headline of each kind.
SUMMARY_METRICS = ("event_accuracy", "clip_v", "clip_t", "fvd", "motion", "rouge_l", "caption_event_accuracy")


def flat_summary(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Numbers only, one level: ``<system>.<metric>`` (the mean over eval seeds) for the headline metrics,
    and ``joint_grpo_vs_sft_cascade.<metric>`` (the paired delta). What ``dvc metrics show`` and
    ``dvc exp show`` list; ``metrics.json`` keeps the whole structure (stds, per-seed values, verdicts)."""
    flat: dict[str, float] = {}
    for name, system in metrics["systems"].items():
        for metric in SUMMARY_METRICS:
            if metric in system["metrics"]:
                flat[f"{name}.{metric}"] = round(float(system["metrics"][metric]["mean"]), 5)
    for metric, row in (metrics.get("joint_grpo_vs_sft_cascade") or {}).items():
        if metric in SUMMARY_METRICS:
            flat[f"joint_grpo_vs_sft_cascade.{metric}"] = round(float(row["delta"]), 5)
    return flat


def curves_of_runs(curves: pd.DataFrame, stage_reports: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """The rows of ``curves`` (``stage, run, tag, step, value``) that the runs named by the stage reports
    wrote: a report's ``tensorboard`` is ``<log dir>/<run>/<stage>``. Curves of other runs (a previous
    Kedro run's, left in the log folder) are dropped, so a plot shows what this run trained."""
    keep = []
    for stage, stage_report in stage_reports.items():
        folder = stage_report.get("tensorboard")
        if not folder:
            continue
        run = Path(folder).parent.name
        keep.append((curves["stage"] == stage) & (curves["run"] == run))
    if not keep:
        return curves.iloc[0:0]
    return curves[np.logical_or.reduce(keep)].reset_index(drop=True)


def training_curves_figure(curves: pd.DataFrame, window: int = 5) -> plt.Figure:
    """Reward curves of the training stages (``stage, tag, step, value`` rows), smoothed by a running
    mean of ``window`` steps; raw values faint behind."""
    stages = sorted(curves["stage"].unique()) if len(curves) else []
    fig, axes = plt.subplots(1, max(1, len(stages)), figsize=(5 * max(1, len(stages)), 3.4), squeeze=False)
    for ax, stage in zip(axes[0], stages, strict=False):
        part = curves[curves["stage"] == stage]
        for tag, series in part.groupby("tag"):
            series = series.sort_values("step")
            line = ax.plot(series["step"], series["value"], alpha=0.25)[0]
            smooth = series["value"].rolling(window, min_periods=1).mean()
            ax.plot(series["step"], smooth, color=line.get_color(), label=tag)
        ax.set_title(stage)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    if not stages:
        axes[0][0].text(0.5, 0.5, "no training curves found", ha="center", va="center")
    fig.tight_layout()
    return fig


def _label(text: str, width: int, height: int) -> np.ndarray:
    image = Image.new("RGB", (width, height), (255, 255, 255))
    ImageDraw.Draw(image).text((2, 2), text, fill=(0, 0, 0))
    return np.asarray(image)


def _hold(clip: np.ndarray, frames: int) -> np.ndarray:
    """Pad a clip to ``frames`` by holding its last frame."""
    if len(clip) >= frames:
        return clip[:frames]
    return np.concatenate([clip, np.repeat(clip[-1:], frames - len(clip), axis=0)])


def video_grid(
    contexts: np.ndarray,
    targets: np.ndarray,
    answers: Mapping[str, np.ndarray],
    *,
    scale: int = 4,
    gap: int = 2,
) -> np.ndarray:
    """One row per sample, columns ``context | ground truth | <system>...``, upscaled ``scale`` times,
    with a header row naming the columns: uint8 ``[T, H, W, 3]``. Answers play after the context ends
    (the context plays first, everything else holds its first frame meanwhile)."""
    n = min([len(contexts), len(targets), *[len(a) for a in answers.values()]])
    columns = ["context", "ground truth", *answers]
    context_frames, target_frames = contexts.shape[1], targets.shape[1]
    total = context_frames + target_frames
    w = contexts.shape[3] * scale
    cell_w = max(w, 8 * max(len(c) for c in columns) // 2)

    def column_clip(name: str, i: int) -> np.ndarray:
        if name == "context":
            return _hold(contexts[i], total)
        clip = targets[i] if name == "ground truth" else answers[name][i]
        return np.concatenate([np.repeat(clip[:1], context_frames, axis=0), _hold(clip, target_frames)])

    rows = []
    header = np.concatenate(
        [np.pad(_label(c, cell_w, 14), ((0, 0), (0, gap), (0, 0)), constant_values=255) for c in columns],
        axis=1,
    )
    rows.append(np.repeat(header[None], total, axis=0))
    for i in range(n):
        cells = []
        for name in columns:
            clip = column_clip(name, i).repeat(scale, axis=1).repeat(scale, axis=2)
            pad = ((0, 0), (0, gap), (0, cell_w - w + gap), (0, 0))
            cells.append(np.pad(clip, pad, constant_values=255))
        rows.append(np.concatenate(cells, axis=2))
    grid = np.concatenate(rows, axis=1)
    # Even sizes for H.264 (yuv420p).
    return np.ascontiguousarray(grid[:, : grid.shape[1] // 2 * 2, : grid.shape[2] // 2 * 2])


def optimisation_history_figure(trials: Sequence[Mapping[str, Any]]) -> plt.Figure:
    """A study's trial values (grey: pruned) and the best so far."""
    trials = [t for t in trials if t["value"] is not None]
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    numbers = [t["number"] for t in trials]
    values = [t["value"] for t in trials]
    colours = ["tab:blue" if t["state"] == "COMPLETE" else "tab:grey" for t in trials]
    ax.scatter(numbers, values, c=colours, label="trial (grey: pruned)")
    best = pd.Series(values).cummax() if values else pd.Series(dtype=float)
    ax.step(numbers, best, where="post", color="tab:red", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel("val objective")
    ax.set_title("Optuna optimisation history")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def parameter_importance_figure(importances: Mapping[str, float]) -> plt.Figure:
    """A study's parameter importances (fANOVA), most important on top."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    if importances:
        names = list(importances)[::-1]
        ax.barh(names, [importances[n] for n in names], color="tab:blue")
        ax.set_xlabel("importance (fANOVA)")
    else:
        ax.text(0.5, 0.5, "fewer than 2 complete trials", ha="center", va="center")
    ax.set_title("Parameter importance")
    fig.tight_layout()
    return fig
