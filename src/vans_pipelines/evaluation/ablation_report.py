"""The ablation's report: the headline, the paper's claims point by point, the verifiable reward, the
proxies' agreement with the oracle, and every recipe's figures, as markdown and a plot."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from vans_pipelines.evaluation.ablation import COMPARED, LABELS
from vans_pipelines.evaluation.report import markdown_rows


def ablation_markdown(ablation: Mapping[str, Any]) -> str:
    """The ablation report (``ablation``: the figures of
    :func:`~vans_pipelines.evaluation.ablation.summarise_recipes`)."""
    baseline = ablation["baseline"]
    lines = [
        "# Ablations on the synthetic world, judged by its oracle",
        "",
        _headline(ablation),
        "",
        "A verdict needs the paired difference (per test sample, averaged over training and noise seeds) "
        "beyond two standard errors; **holds** also needs every training seed to agree.",
        "",
        "## The paper's claims",
        "",
        *_claims_table(ablation["claims"]),
        "",
        "## A verifiable reward",
        "",
        "The oracle's reading of the rendered answer as the reward (stage 1 and stage 2), alone "
        "(`oracle_reward`) and added to the paper's rewards (`paper_plus_oracle`).",
        "",
        *_claims_table(ablation["questions"]),
        "",
        "How well the proxy rewards track the oracle's verdict over the test answers (Pearson r; with a "
        "0/1 verdict, the point-biserial correlation; 95 % interval):",
        "",
        *_correlations_table(ablation["correlations"], baseline),
        "",
        "## Every recipe",
        "",
        *_recipes_table(ablation["systems"]),
        "",
        "## Each recipe against " + baseline,
        "",
        *_comparison_table(ablation["comparisons"]),
        "",
        "## Training runs",
        "",
        f"{len(ablation['runs'])} runs, {ablation['seconds']:.0f} s in all (training and evaluation).",
        "",
    ]
    return "\n".join(lines) + "\n"


def _headline(ablation: Mapping[str, Any]) -> str:
    summary, baseline = ablation["systems"], ablation["baseline"]
    event = {
        n: s["metrics"]["event_accuracy"]["mean"]
        for n, s in summary.items()
        if "event_accuracy" in s["metrics"]
    }
    best = max((n for n in event if summary[n].get("ranked", True)), key=event.get)
    return (
        f"Every recipe was trained from the same SFT models with training seeds {ablation['training_seeds']} "
        f"and evaluated on {ablation['samples']} test samples (noise seeds {ablation['noise_seeds']}). "
        f"The most right events: **{summary[best]['label']}** ({event[best]:.3f}); "
        f"{summary[baseline]['label']}: {event[baseline]:.3f}; SFT cascade: "
        f"{event.get('sft_cascade', float('nan')):.3f}; still frame: "
        f"{event.get('still_frame', float('nan')):.3f}."
    )


def _cell(metric: Mapping[str, Any]) -> str:
    spread = f" ± {metric['std']:.3f}" if len(metric.get("per_training_seed", [])) > 1 else ""
    return f"{metric['mean']:.3f}{spread}"


def _r(entry: Mapping[str, Any]) -> str:
    if np.isnan(entry["r"]):
        return f"n/a (n = {entry['n']})"
    return f"{entry['r']:+.3f} [{entry['low']:+.3f}, {entry['high']:+.3f}] (n = {entry['n']})"


def _claims_table(claims: Sequence[Mapping[str, Any]]) -> list[str]:
    return markdown_rows(
        ["claim", "measured", "per training seed", "verdict"],
        (
            [
                c["claim"],
                f"{LABELS[c['metric']]}: {c['ours']} {c['ours_value']:.3f} vs {c['baseline']} "
                f"{c['baseline_value']:.3f} ({c['delta']:+.3f} ± {c['standard_error']:.3f} SE)",
                ", ".join(f"{d:+.3f}" for d in c["per_training_seed"]),
                f"**{c['verdict']}**",
            ]
            for c in claims
        ),
    )


def _correlations_table(correlations: Mapping[str, Any], baseline: str) -> list[str]:
    return markdown_rows(
        ["proxy", "verdict", "r, all recipes", f"r, {baseline}"],
        (
            [
                LABELS[proxy],
                entry["verdict"],
                _r(entry),
                _r(own) if (own := correlations["baseline"].get(proxy)) else "n/a",
            ]
            for proxy, entry in correlations["all"].items()
        ),
    )


def _recipes_table(summary: Mapping[str, Any]) -> list[str]:
    metrics = list(COMPARED)
    rows = (
        [f"{name}: {system['label']}"]
        + [_cell(system["metrics"][m]) if m in system["metrics"] else "" for m in metrics]
        for name, system in summary.items()
    )
    return [
        *markdown_rows(["recipe", *(LABELS[m] for m in metrics)], rows),
        "",
        "Cells: mean ± std over training seeds (reference systems do not depend on them).",
    ]


def _comparison_table(comparisons: Mapping[str, Mapping[str, Any]]) -> list[str]:
    metrics = list(COMPARED)
    rows = (
        [name]
        + [
            f"{comparison[m]['delta']:+.3f} ± {comparison[m]['standard_error']:.3f}"
            if m in comparison
            else ""
            for m in metrics
        ]
        for name, comparison in comparisons.items()
    )
    return [
        *markdown_rows(["recipe", *(LABELS[m] for m in metrics)], rows),
        "",
        "Cells: paired difference ± standard error (FVD: over noise and training seeds).",
    ]


def plot_recipes(
    summary: Mapping[str, Any], metrics: Sequence[str] = ("event_accuracy", "clip_v", "motion")
) -> plt.Figure:
    """One panel per metric: a bar per recipe (mean), a dot per training seed."""
    names = list(summary)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.8), squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        values = [summary[n]["metrics"].get(metric) for n in names]
        ax.bar(range(len(names)), [v["mean"] if v else np.nan for v in values], color="tab:blue", alpha=0.6)
        for i, v in enumerate(values):
            if v:
                seeds = v["per_training_seed"]
                ax.scatter([i] * len(seeds), seeds, color="black", s=8, zorder=3)
        ax.set_title(LABELS[metric])
        ax.set_xticks(range(len(names)), names, rotation=50, ha="right", fontsize=7)
    fig.suptitle("Ablation recipes (dots: training seeds)", fontsize=9)
    fig.tight_layout()
    return fig
