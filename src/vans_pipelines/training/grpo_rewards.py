"""Rewards of GRPO samples and the val loop every GRPO stage reports before and after training.

:func:`score_samples` scores a rollout's (or an evaluation batch's) samples with the reward registry
(:mod:`vans_pipelines.rl.rewards`); :func:`evaluate_rewards` is the val loop, :func:`before_after` the report
section that compares two of its results.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from vans_pipelines.metrics import motion
from vans_pipelines.models.render import eval_noise_seed
from vans_pipelines.models.scorer import VideoTextScorer
from vans_pipelines.rl.rewards import compute_rewards, total_reward
from vans_pipelines.samples import ordered_batches


def score_samples(
    weights: Mapping[str, float],
    batch: Mapping[str, Any],
    scorer: VideoTextScorer,
    repeats: int,
    *,
    completions: Sequence[str],
    captions: Sequence[str],
    videos: Sequence[np.ndarray],
) -> dict[str, torch.Tensor]:
    """Every reward named in ``weights`` for ``repeats`` consecutive samples per prompt of ``batch``:
    ``completions`` are what the VLM wrote, ``captions`` what each video was generated from."""

    def rep(values: Sequence[Any]) -> list[Any]:
        return [v for v in values for _ in range(repeats)]

    return compute_rewards(
        list(weights),
        completions=list(completions),
        captions=list(captions),
        reference_captions=rep(batch["caption"]),
        videos=list(videos),
        reference_videos=list(np.repeat(batch["target"], repeats, axis=0)),
        contexts=list(np.repeat(batch["context"], repeats, axis=0)),
        events=rep(batch["event"]),
        scorer=scorer,
    )


def reward_summary(
    per_seed: Sequence[Mapping[str, torch.Tensor]], weights: Mapping[str, float]
) -> dict[str, Any]:
    """Val figures over evaluation seeds: each reward's mean, the weighted total's mean and its
    seed-to-seed std (the spread an improvement has to beat)."""
    totals = [float(total_reward(r, weights).mean()) for r in per_seed]
    names = list(per_seed[0])
    return {
        "rewards": {n: float(np.mean([float(r[n].mean()) for r in per_seed])) for n in names},
        "total": float(np.mean(totals)),
        "total_seed_std": float(np.std(totals)),
        "total_per_seed": [round(t, 5) for t in totals],
        "weights": dict(weights),
    }


def before_after(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """A stage report's val section: both evaluations, the change of the total and the seed spread it is
    measured against (the larger of the two seed-to-seed stds of the level). Each eval seed draws the
    same noise before and after, so the per-seed (paired) changes and their std are reported too: the
    noise of the *difference*, usually far smaller than the level's."""
    paired = [a - b for a, b in zip(after["total_per_seed"], before["total_per_seed"], strict=True)]
    return {
        "val_before": dict(before),
        "val_after": dict(after),
        "improvement": round(after["total"] - before["total"], 5),
        "seed_spread": round(max(before["total_seed_std"], after["total_seed_std"]), 5),
        "improvement_per_seed": [round(d, 5) for d in paired],
        "improvement_seed_std": round(float(np.std(paired)), 5),
    }


#: ``score(batch, answers, wanted, noise_seed)`` of :func:`evaluate_rewards`: the batch's clips, made with
#: that noise seed from ``answers`` (what ``answer(batch)`` returned), and their ``wanted`` rewards.
ScoreBatch = Callable[
    [dict[str, Any], Any, Mapping[str, float], int], tuple[dict[str, torch.Tensor], np.ndarray]
]


@torch.no_grad()
def evaluate_rewards(
    samples: Dataset,
    weights: Mapping[str, float],
    answer: Callable[[dict[str, Any]], Any],
    score: ScoreBatch,
    *,
    analysis: Sequence[str],
    seeds: Sequence[int],
    draws: int = 1,
    batch_size: int = 32,
    limit: int | None = None,
) -> dict[str, Any]:
    """The val loop of every GRPO stage: each batch answered once, then its clips made and scored for
    each seed and noise draw (the same noise for every model evaluated, so before / after comparisons are
    paired). ``analysis`` rewards (e.g. the oracle's) are measured beside the weighted ones, not in the
    total, on samples the world made. Returns :func:`reward_summary` plus the motion of the clips and of
    the ground truth (first seed and draw)."""
    per_seed: list[dict[str, list[torch.Tensor]]] = [{} for _ in seeds]
    motions, target_motions = [], []
    names = list(weights) + [n for n in analysis if n not in weights]
    for start, batch in ordered_batches(samples, batch_size, limit):
        answers = answer(batch)
        has_events = all(e is not None for e in batch["event"])
        wanted = {n: weights.get(n, 0.0) for n in names if n not in analysis or has_events}
        for k, seed in enumerate(seeds):
            for draw in range(draws):
                rewards, clips = score(batch, answers, wanted, eval_noise_seed(seed, start, draw))
                for name, values in rewards.items():
                    per_seed[k].setdefault(name, []).append(values)
                if k == 0 and draw == 0:
                    motions.append(motion(clips))
                    target_motions.append(motion(batch["target"]))
    merged = [{n: torch.cat(v) for n, v in seed_rewards.items()} for seed_rewards in per_seed]
    return {
        "samples": len(next(iter(merged[0].values()))) // draws,
        "draws": draws,
        **reward_summary(merged, weights),
        "motion": float(np.mean(motions)),
        "target_motion": float(np.mean(target_motions)),
    }
