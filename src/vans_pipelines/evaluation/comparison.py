"""Which system is better: the winners of each metric, and one system against another, paired per test
sample (and noise seed) with a standard error, the comparison the evaluate and ablate reports share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from vans_pipelines.evaluation.systems import LOWER_IS_BETTER


def winners(summary: Mapping[str, Any]) -> dict[str, list[str]]:
    """The best systems per metric (lowest FVD, highest elsewhere); systems tied on the best mean (e.g.
    two systems sharing one VLM on caption metrics) all win; a metric on which every system ties (or an
    informational one, motion) has no winner. Systems that read the ground truth are not ranked."""
    best: dict[str, list[str]] = {}
    for metric in dict.fromkeys(m for s in summary.values() for m in s["metrics"] if m not in NOT_RANKED):
        scores = {}
        for name, system in summary.items():
            if not system.get("ranked", True):
                continue
            value = system["metrics"].get(metric)
            if value is not None and not np.isnan(value["mean"]):
                scores[name] = -value["mean"] if metric in LOWER_IS_BETTER else value["mean"]
        if scores and max(scores.values()) - min(scores.values()) > 1e-12:  # all tied: nobody wins
            top = max(scores.values())
            best[metric] = [n for n, v in scores.items() if v >= top - 1e-12]
    return best


#: Per-sample columns of the samples table behind each headline metric (FVD is a set statistic).
PER_SAMPLE = {
    "rouge_l": "rouge_l",
    "caption_event_accuracy": "caption_event",
    "clip_v": "clip_v",
    "clip_t": "clip_t",
    "event_accuracy": "event",
}
#: Informational columns: no system "wins" them (motion and likeness to the still frame have no better
#: direction on their own; ground truth has its own).
NOT_RANKED = frozenset({"motion", "still_similarity"})


def paired_comparison(
    summary: Mapping[str, Any],
    samples: pd.DataFrame,
    ours: str,
    baseline: str,
    columns: Mapping[str, str | None] | None = None,
) -> dict[str, dict[str, Any]]:
    """``ours`` against ``baseline`` per metric, paired: per-sample differences (averaged over seeds)
    and their standard error; FVD by its per-seed differences. The verdict is ``ahead`` / ``behind`` only
    beyond two standard errors, else ``within noise`` (``tied`` when nothing differs). ``columns``: metric
    -> per-sample column (``None``: per-seed values), by default the headline metrics and FVD."""
    out: dict[str, dict[str, Any]] = {}
    if ours not in summary or baseline not in summary:
        return out
    for metric, column in (columns or {**PER_SAMPLE, "fvd": None}).items():
        a, b = summary[ours]["metrics"].get(metric), summary[baseline]["metrics"].get(metric)
        if a is None or b is None or np.isnan(a["mean"]) or np.isnan(b["mean"]):
            continue
        if column is None:
            diffs = np.subtract(a["per_seed"], b["per_seed"])
        else:
            per_sample = {
                name: samples[samples["system"] == name].groupby("sample_id")[column].mean()
                for name in (ours, baseline)
            }
            diffs = (per_sample[ours] - per_sample[baseline]).dropna().to_numpy()
        delta = float(np.mean(diffs))
        se = float(np.std(diffs, ddof=1) / np.sqrt(len(diffs))) if len(diffs) > 1 else 0.0
        better = -delta if metric in LOWER_IS_BETTER else delta
        if se == 0 and delta == 0:
            verdict = "tied"
        elif abs(delta) <= 2 * se:
            verdict = "within noise"
        else:
            verdict = "ahead" if better > 0 else "behind"
        out[metric] = {
            "ours": a["mean"],
            "baseline": b["mean"],
            "delta": delta,
            "standard_error": se,
            "pairs": len(diffs),
            "verdict": verdict,
        }
    return out
