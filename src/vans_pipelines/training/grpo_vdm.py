"""Joint-GRPO stage 2: a context-faithful VDM.

The stage-1 VLM (frozen) has written an anchor caption for each training sample; anchors too far from the
ground truth were dropped. For each (anchor, context) the VDM samples G clips with Flow-GRPO's SDE sampler,
keeping every stochastic step's log-probability; the reward scores fidelity to the ground-truth clip and
agreement with the anchor; GRPO updates the transformer's LoRA adapter step by step (one backward per
denoising step, so memory does not grow with the number of steps).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from vans_pipelines.models.lora import adapters_disabled
from vans_pipelines.models.scorer import VideoTextScorer
from vans_pipelines.models.vdm import VideoDiffusionModel, eval_noise_seed, to_uint8_video
from vans_pipelines.rl.flow_sde import SDEConfig, SDEStep, sample_sde, sde_step, sigma_cap, step_kl
from vans_pipelines.rl.grpo import GRPOConfig, LossStats, clipped_policy_loss
from vans_pipelines.training.data import ordered_batches
from vans_pipelines.training.grpo import GRPOModule, Rollout, motion, reward_summary, score_samples
from vans_pipelines.training.trainer import OptimConfig


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


class GRPOVDMModule(GRPOModule):
    def __init__(
        self,
        vdm: VideoDiffusionModel,
        scorer: VideoTextScorer,
        grpo: GRPOConfig,
        weights: Mapping[str, float],
        optim: OptimConfig,
        sde: SDEConfig,
        *,
        gradient_clip_val: float | None = 1.0,
        seed: int = 0,
        fps: float = 8.0,
        log_samples_every: int = 10,
    ):
        super().__init__(
            grpo,
            weights,
            optim,
            gradient_clip_val=gradient_clip_val,
            seed=seed,
            fps=fps,
            log_samples_every=log_samples_every,
        )
        self.vdm = vdm
        self.transformer = vdm.transformer  # registered: trained (LoRA), moved, checkpointed
        self.scorer = scorer
        self.sde = sde
        self.save_hyperparameters(
            {"grpo": asdict(grpo), "weights": dict(weights), "optim": asdict(optim), "sde": asdict(sde)}
        )

    def unregistered_parts(self) -> Sequence[object]:
        return (self.vdm, self.scorer)

    def on_fit_start(self) -> None:
        super().on_fit_start()
        for name, module in self.vdm.modules().items():
            if name != "transformer":
                module.eval().requires_grad_(False)

    def rollout(self, batch: dict[str, Any]) -> Rollout:
        G = self.grpo.group_size
        anchors = [a for a in batch["anchor"] for _ in range(G)]
        contexts = np.repeat(batch["context"], G, axis=0)
        frames, height, width = batch["target"].shape[1:4]
        generator = torch.Generator().manual_seed(self.rollout_seed())
        with torch.no_grad():
            noise, text, cond = self.vdm.prepare(anchors, contexts, frames, height, width, generator)
            sigmas = self.vdm.sigmas(self.sde.num_steps)
            trajectory = sample_sde(
                lambda x, s: self.vdm.velocity(x, s, text, cond), noise, sigmas, self.sde, generator=generator
            )
            clips = to_uint8_video(self.vdm.decode(trajectory.final))
        rewards = stage2_rewards(self.weights, clips, batch, self.scorer, G)
        clip_motion, target_motion = motion(clips), motion(batch["target"])
        return Rollout(
            rewards,
            {"trajectory": trajectory, "text": text, "cond": cond},
            captions=anchors,
            videos=clips,
            stats={
                "rollout/motion": clip_motion,
                "rollout/motion_ratio": clip_motion / max(target_motion, 1e-8),
            },
        )

    def _step_log_prob(
        self,
        x: torch.Tensor,
        x_next: torch.Tensor,
        sigma: torch.Tensor,
        sigma_next: torch.Tensor,
        cap: float,
        text: torch.Tensor,
        cond: torch.Tensor,
    ) -> SDEStep:
        """The current model's Gaussian for one recorded step, scoring the recorded next latents."""
        velocity = self.vdm.velocity(x, sigma.to(x.device).expand(x.shape[0]), text, cond)
        return sde_step(
            x, velocity, sigma, sigma_next, self.sde.noise_level, sigma_cap=cap, next_latents=x_next
        )

    def update(
        self, rollout: Rollout, advantages: torch.Tensor, mask: torch.Tensor, iteration: int
    ) -> tuple[float, LossStats]:
        trajectory = rollout.data["trajectory"]
        text, cond = rollout.data["text"], rollout.data["cond"]
        sigmas, cap = trajectory.sigmas, sigma_cap(trajectory.sigmas)
        steps = trajectory.steps
        total, stats = 0.0, []
        for k, i in enumerate(steps):
            x, x_next = trajectory.latents[:, i], trajectory.latents[:, i + 1]
            step = self._step_log_prob(x, x_next, sigmas[i], sigmas[i + 1], cap, text, cond)
            logp = step.log_prob.unsqueeze(1)
            old = trajectory.log_probs[:, k : k + 1] if self.grpo.num_iterations > 1 else logp.detach()
            kl = None
            if self.grpo.beta:
                with torch.no_grad(), adapters_disabled(self.transformer):
                    ref = self._step_log_prob(x, x_next, sigmas[i], sigmas[i + 1], cap, text, cond)
                kl = step_kl(step, ref.mean, self.sde.kl_form).unsqueeze(1)
            loss, step_stats = clipped_policy_loss(
                logp, old.to(logp.device), advantages, torch.ones_like(logp), self.grpo, kl, keep=mask
            )
            # Mean over steps, one backward per step: the graph of one transformer call at a time.
            self.manual_backward(loss / len(steps))
            total += float(loss.detach()) / len(steps)
            stats.append(step_stats)
        kls = [s.kl_mean for s in stats if s.kl_mean is not None]
        merged = LossStats(
            ratio_mean=float(np.mean([s.ratio_mean for s in stats])),
            clip_fraction=float(np.mean([s.clip_fraction for s in stats])),
            low_clip_fraction=float(np.mean([s.low_clip_fraction for s in stats])),
            high_clip_fraction=float(np.mean([s.high_clip_fraction for s in stats])),
            kl_mean=float(np.mean(kls)) if kls else None,
        )
        return total, merged


@torch.no_grad()
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
    ``draws`` noise draws per anchor for each seed; plus motion (generated vs ground truth) and the oracle's
    event accuracy (analysis only, not in the total). Each (seed, draw, batch) has its own noise, the same
    for every model evaluated, so before / after comparisons are paired."""
    per_seed: list[dict[str, list[torch.Tensor]]] = [{} for _ in seeds]
    motions, target_motions = [], []
    names = list(weights) + (["oracle_event"] if "oracle_event" not in weights else [])
    for start, batch in ordered_batches(samples, batch_size, limit):
        has_events = all(e is not None for e in batch["event"])
        wanted = {n: weights.get(n, 0.0) for n in names if n != "oracle_event" or has_events}
        for k, seed in enumerate(seeds):
            for draw in range(draws):
                clips = vdm.sample(
                    batch["anchor"],
                    batch["context"],
                    frames=batch["target"].shape[1],
                    num_steps=num_steps,
                    seed=eval_noise_seed(seed, start, draw),
                )
                for name, values in stage2_rewards(wanted, clips, batch, scorer, 1).items():
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
