"""Joint-GRPO stage 2: a context-faithful VDM.

The stage-1 VLM (frozen) has written an anchor caption for each training sample; anchors too far from the
ground truth were dropped. For each (anchor, context) the VDM samples G clips with Flow-GRPO's SDE sampler,
keeping every stochastic step's log-probability; the reward scores fidelity to the ground-truth clip and
agreement with the anchor; GRPO updates the transformer's LoRA adapter step by step (one backward per
denoising step, so memory does not grow with the number of steps).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from vans_pipelines.metrics import motion, rouge_l
from vans_pipelines.models.answer_format import parse_answer
from vans_pipelines.models.lora import adapters_disabled
from vans_pipelines.models.scorer import VideoTextScorer
from vans_pipelines.models.vdm import VideoDiffusionModel
from vans_pipelines.models.vlm import VisionLanguageModel
from vans_pipelines.models.wan_vae import to_uint8_video
from vans_pipelines.rl.flow_sde import (
    SDEConfig,
    SDEStep,
    policy_weight,
    sample_sde,
    sde_step,
    sigma_cap,
    step_kl,
)
from vans_pipelines.rl.grpo import GRPOConfig, LossScale, LossStats, clipped_policy_loss
from vans_pipelines.samples import ordered_batches
from vans_pipelines.training.grpo import GRPOModule, GRPOSettings, Rollout, fit_grpo
from vans_pipelines.training.grpo_rewards import evaluate_rewards, score_samples
from vans_pipelines.training.rollouts import Trajectories
from vans_pipelines.training.trainer import FitResult, TrainingRun

if TYPE_CHECKING:
    from vans_pipelines.params import GRPOVDMParams

#: Columns of the anchor table (:func:`anchor_captions`).
ANCHOR_COLUMNS = ("sample_id", "split", "anchor", "rouge_l", "kept")


class AnchoredSamples(Dataset):
    """Samples with an ``anchor`` caption, restricted to the sample ids in ``anchors``."""

    def __init__(self, samples: Dataset, anchors: Mapping[str, str]):
        self.samples = samples
        self.anchors = dict(anchors)
        ids = [samples.triplets.index["sample_id"].iloc[i] for i in range(len(samples))]
        self.rows = [i for i, s in enumerate(ids) if s in self.anchors]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = self.samples[self.rows[i]]
        return {**item, "anchor": self.anchors[item["sample_id"]]}


def stage2_rewards(
    weights: Mapping[str, float],
    videos: np.ndarray,
    batch: Mapping[str, Any],
    scorer: VideoTextScorer,
    repeats: int,
) -> dict[str, torch.Tensor]:
    """Every configured reward of stage-2 clips (``repeats`` per prompt of ``batch``), the anchor caption
    being the caption each clip was generated from."""
    anchors = [a for a in batch["anchor"] for _ in range(repeats)]
    return score_samples(
        weights, batch, scorer, repeats, completions=anchors, captions=anchors, videos=list(videos)
    )


@torch.no_grad()
def sample_trajectories(
    vdm: VideoDiffusionModel,
    captions: Sequence[str],
    contexts: np.ndarray,
    frames: int,
    sde: SDEConfig,
    generator: torch.Generator,
    group_size: int = 1,
) -> Trajectories:
    """One Flow-GRPO SDE trajectory per caption (with its context), decoded to uint8 clips. With
    ``sde.share_initial_noise`` each run of ``group_size`` consecutive clips (a group) starts from its
    first clip's initial noise; the draws are the same either way, so the steps' noise is too."""
    height, width = contexts.shape[2:4]
    noise, text, cond = vdm.prepare(list(captions), contexts, frames, height, width, generator)
    if sde.share_initial_noise:
        if len(captions) % group_size:
            raise ValueError(f"{len(captions)} clips do not split into groups of {group_size}")
        noise = noise[::group_size].repeat_interleave(group_size, dim=0)
    trajectory = sample_sde(
        lambda x, s: vdm.velocity(x, s, text, cond),
        noise,
        vdm.sigmas(sde.num_steps),
        sde,
        generator=generator,
    )
    return Trajectories(trajectory, text, cond, to_uint8_video(vdm.decode(trajectory.final)))


def backward_trajectories(
    module: GRPOModule,
    vdm: VideoDiffusionModel,
    trajectories: Trajectories,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    grpo: GRPOConfig,
    sde: SDEConfig,
    micro_batch_size: int | None = None,
) -> tuple[float, LossStats]:
    """Back-propagate (``module.manual_backward``) the loss of each trained step of a rollout's
    trajectories in turn, in micro-batches of ``micro_batch_size`` clips (:func:`trajectory_losses`);
    their total and merged statistics."""
    total, stats = 0.0, []
    losses = trajectory_losses(vdm, trajectories, advantages, mask, grpo, sde, micro_batch_size)
    for loss, step_stats in losses:
        module.manual_backward(loss)
        total += float(loss.detach())
        stats.append(step_stats)
    return total, merge_loss_stats(stats)


@dataclass(frozen=True, kw_only=True)
class Stage2Settings(GRPOSettings):
    """Stage 2: the VDM samples its group with Flow-GRPO's SDE sampler (``sde``) and back-propagates it
    ``micro_batch_size`` clips at a time (None: the whole batch at once)."""

    sde: SDEConfig
    micro_batch_size: int | None = None


class GRPOVDMModule(GRPOModule):
    """Stage 2: the VDM transformer's adapter trained by Flow-GRPO from anchor captions."""

    trains_transformer = True

    def __init__(self, vdm: VideoDiffusionModel, scorer: VideoTextScorer, settings: Stage2Settings):
        super().__init__(settings, vdm, scorer)
        self.sde = settings.sde

    def rollout(self, batch: dict[str, Any]) -> Rollout:
        G = self.grpo.group_size
        anchors = [a for a in batch["anchor"] for _ in range(G)]
        generator = torch.Generator().manual_seed(self.rollout_seed())
        contexts = np.repeat(batch["context"], G, axis=0)
        sampled = sample_trajectories(
            self.vdm, anchors, contexts, batch["target"].shape[1], self.sde, generator, group_size=G
        )
        rewards = stage2_rewards(self.weights, sampled.clips, batch, self.scorer, G)
        clip_motion, target_motion = motion(sampled.clips), motion(batch["target"])
        stats = {
            "rollout/motion": clip_motion,
            "rollout/motion_ratio": clip_motion / max(target_motion, 1e-8),
        }
        return Rollout(rewards, trajectories=sampled, captions=anchors, videos=sampled.clips, stats=stats)

    def update(
        self, rollout: Rollout, advantages: torch.Tensor, mask: torch.Tensor, iteration: int
    ) -> tuple[float, LossStats]:
        return backward_trajectories(
            self,
            self.vdm,
            rollout.trajectories,
            advantages,
            mask,
            self.grpo,
            self.sde,
            self.settings.micro_batch_size,
        )


def trajectory_losses(
    vdm: VideoDiffusionModel,
    sampled: Trajectories,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    grpo: GRPOConfig,
    sde: SDEConfig,
    micro_batch_size: int | None = None,
) -> Iterator[tuple[torch.Tensor, LossStats]]:
    """The clipped GRPO loss of each trained denoising step of ``sampled`` (from
    :func:`sample_trajectories`), already divided by the number of steps so the losses sum to the mean over
    steps. Back-propagate each before taking the next: one transformer graph is alive at a time, so memory
    does not grow with the number of steps. With ``micro_batch_size`` each step's loss comes in pieces of
    that many clips, normalised by the whole group's count, so the pieces' gradients add up to the whole
    step's while only one piece's graph is alive. The first update after a rollout sampled with
    ``sde.keep_graphs`` uses the graphs the sampler kept instead of running the model again."""
    trajectory, cap = sampled.trajectory, sigma_cap(sampled.trajectory.sigmas)
    steps, total = trajectory.steps, advantages.shape[0]
    size = micro_batch_size or total
    pieces = [slice(start, min(start + size, total)) for start in range(0, total, size)]
    if len(pieces) > 1 and trajectory.graphs:
        raise ValueError("micro-batching needs sde.keep_graphs false: the kept graphs hold the whole group")
    # One normaliser for the whole batch, whichever piece and process a row is in (one element per row
    # and step): see LossScale.
    scale = LossScale.of(mask, mask.float().sum())
    kept, normaliser = scale.rows, scale.normaliser(grpo)
    for k, i in enumerate(steps):
        for rows in pieces:
            step = trajectory.graphs.pop(i, None)  # scored while sampling (``sde.keep_graphs``)
            if step is None:
                step = _score_step(vdm, sde, sampled, i, rows, cap)
            logp = step.log_prob.unsqueeze(1)
            old = trajectory.log_probs[rows, k : k + 1] if grpo.num_iterations > 1 else logp.detach()
            reference = _reference_mean(vdm, sde, sampled, i, rows, cap) if grpo.beta else None
            kl = step_kl(step, reference, sde.kl_form).unsqueeze(1) if reference is not None else None
            # a positive weight on the advantages scales the policy term alone, not the KL
            weighted = advantages[rows] * policy_weight(step, sde.policy_scale)
            loss, stats = clipped_policy_loss(
                logp,
                old.to(logp.device),
                weighted,
                torch.ones_like(logp),
                grpo,
                kl,
                keep=mask[rows],
                rows=kept,
                normaliser=normaliser,
            )
            yield loss / len(steps), stats


def _score_step(
    vdm: VideoDiffusionModel, sde: SDEConfig, sampled: Trajectories, i: int, rows: slice, cap: float
) -> SDEStep:
    """Step ``i`` of the ``rows`` of ``sampled`` re-scored under the model as it is now: its Gaussian,
    scoring the recorded next latents."""
    latents, sigmas = sampled.trajectory.latents, sampled.trajectory.sigmas
    x, sigma = latents[rows, i], sigmas[i]
    velocity = vdm.velocity(x, sigma.to(x.device).expand(x.shape[0]), sampled.text[rows], sampled.cond[rows])
    return sde_step(
        x, velocity, sigma, sigmas[i + 1], sde.noise_level, sigma_cap=cap, next_latents=latents[rows, i + 1]
    )


def _reference_mean(
    vdm: VideoDiffusionModel, sde: SDEConfig, sampled: Trajectories, i: int, rows: slice, cap: float
) -> torch.Tensor:
    """The reference's (adapter off) mean of step ``i`` for ``rows``. The reference does not train, so
    it is computed once per rollout and reused by the rollout's later updates."""
    cached, key = sampled.reference_means, (i, rows.start, rows.stop)
    if key not in cached:
        with torch.no_grad(), adapters_disabled(vdm.transformer):
            cached[key] = _score_step(vdm, sde, sampled, i, rows, cap).mean
    return cached[key]


def merge_loss_stats(stats: Sequence[LossStats]) -> LossStats:
    """The mean of several losses' statistics (the KL over those that have one)."""
    kls = [s.kl_mean for s in stats if s.kl_mean is not None]
    return LossStats(
        ratio_mean=float(np.mean([s.ratio_mean for s in stats])),
        clip_fraction=float(np.mean([s.clip_fraction for s in stats])),
        low_clip_fraction=float(np.mean([s.low_clip_fraction for s in stats])),
        high_clip_fraction=float(np.mean([s.high_clip_fraction for s in stats])),
        kl_mean=float(np.mean(kls)) if kls else None,
    )


def evaluate_stage2(
    vdm: VideoDiffusionModel,
    scorer: VideoTextScorer,
    samples: AnchoredSamples,
    weights: Mapping[str, float],
    *,
    num_steps: int,
    seeds: Sequence[int],
    draws: int = 1,
    batch_size: int = 32,
    limit: int | None = None,
) -> dict[str, Any]:
    """The stage-2 reward of ODE samples (the deployed sampler) from each anchor caption and context,
    ``draws`` noise draws per anchor for each seed (:func:`~vans_pipelines.training.grpo.evaluate_rewards`);
    plus the oracle's event accuracy (analysis only, not in the total)."""

    def score(batch: dict[str, Any], anchors: list[str], wanted: Mapping[str, float], noise_seed: int):
        frames = batch["target"].shape[1]
        clips = vdm.sample(anchors, batch["context"], frames=frames, num_steps=num_steps, seed=noise_seed)
        return stage2_rewards(wanted, clips, batch, scorer, 1), clips

    return evaluate_rewards(
        samples,
        weights,
        lambda batch: list(batch["anchor"]),
        score,
        analysis=("oracle_event",),
        seeds=seeds,
        draws=draws,
        batch_size=batch_size,
        limit=limit,
    )


def anchor_captions(
    vlm: VisionLanguageModel,
    splits: Mapping[str, Dataset],
    *,
    min_rouge_l: float,
    max_new_tokens: int,
    batch_size: int = 32,
    limit: int | None = None,
) -> pd.DataFrame:
    """The VLM's greedy caption of every sample of each split (of the first ``limit``), its ROUGE-L to the
    ground truth and whether it is kept for stage-2 training (ROUGE-L >= ``min_rouge_l``, the paper's
    anchor filter)."""
    rows = []
    vlm.model.eval()
    for split, samples in splits.items():
        for _, batch in ordered_batches(samples, batch_size, limit):
            texts = vlm.generate(
                list(batch["context"]), batch["question"], max_new_tokens=max_new_tokens
            ).texts
            anchors = [parse_answer(t).caption for t in texts]
            scores = rouge_l(anchors, batch["caption"])
            rows.extend(
                {
                    "sample_id": s,
                    "split": split,
                    "anchor": a,
                    "rouge_l": float(r),
                    "kept": bool(r >= min_rouge_l),
                }
                for s, a, r in zip(batch["sample_id"], anchors, scores, strict=True)
            )
    return pd.DataFrame(rows, columns=list(ANCHOR_COLUMNS))


def anchors_of(table: pd.DataFrame, split: str, kept_only: bool) -> dict[str, str]:
    """``{sample_id: anchor}`` of one split of an :func:`anchor_captions` table."""
    rows = table[(table["split"] == split) & (table["kept"] | (not kept_only))]
    return dict(zip(rows["sample_id"], rows["anchor"], strict=True))


def check_enough_anchors(train: AnchoredSamples, params: GRPOVDMParams, processes: int) -> None:
    """A clear error when the anchor filter leaves fewer train samples than one batch."""
    if params.trainer.batch_size * processes > len(train):
        raise ValueError(
            f"grpo_vdm.anchors.min_rouge_l: only {len(train)} train anchors reach ROUGE-L "
            f"{params.anchors.min_rouge_l}, fewer than grpo_vdm.trainer.batch_size = "
            f"{params.trainer.batch_size} x {processes} process(es); lower the threshold or the batch"
        )


def fit_stage2(
    vdm: VideoDiffusionModel,
    scorer: VideoTextScorer,
    params: GRPOVDMParams,
    train: AnchoredSamples,
    run: TrainingRun,
    *,
    fps: float,
) -> FitResult:
    """Start a fresh LoRA adapter on ``vdm``'s transformer and train it with stage-2 Flow-GRPO on the
    anchored ``train`` samples (``params``: the typed ``grpo_vdm`` section); the model is left in eval
    mode. Used by the grpo_vdm stage and by the ablations."""
    vdm.start_adapter(params.lora, seed=params.trainer.seed)
    module = GRPOVDMModule(
        vdm,
        scorer,
        Stage2Settings.of(params, fps=fps, sde=params.sde, micro_batch_size=params.micro_batch_size),
    )
    return fit_grpo(module, train, params.trainer, run)
