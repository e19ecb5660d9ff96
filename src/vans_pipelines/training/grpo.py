"""The Lightning side of GRPO, shared by stage 1 (VLM) and stage 2 (VDM).

A step is: roll out G samples per prompt and score them (:meth:`GRPOModule.rollout`), turn rewards into
group-relative advantages (:func:`~vans_pipelines.rl.grpo.group_advantages`), then ``num_iterations``
optimiser updates on that batch (:meth:`GRPOModule.update` computes the loss and back-propagates).
Manual optimisation, so one rollout can feed several updates; gradients are clipped here (Lightning's
automatic clipping does not apply to manual optimisation). ``max_steps`` counts optimiser updates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from vans_pipelines.rl.grpo import Advantages, GRPOConfig, LossStats, group_advantages, sample_mask
from vans_pipelines.rl.rewards import compute_rewards, total_reward
from vans_pipelines.training.base import TrainingModule
from vans_pipelines.training.trainer import OptimConfig, TrainerConfig


@dataclass
class Rollout:
    """One scored rollout batch: rewards ``{name: [N]}`` plus whatever the stage's update needs."""

    rewards: dict[str, torch.Tensor]
    data: dict[str, Any] = field(default_factory=dict)
    captions: list[str] = field(default_factory=list)  # for TensorBoard samples
    videos: np.ndarray | None = None  # uint8 [N, T, H, W, 3], for TensorBoard samples
    stats: dict[str, float] = field(default_factory=dict)  # extra per-step scalars (e.g. motion)


def score_samples(
    weights: Mapping[str, float],
    batch: Mapping[str, Any],
    scorer: Any,
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


def manual_trainer_config(config: TrainerConfig) -> TrainerConfig:
    """The Trainer settings for a manual-optimisation module: clipping and accumulation happen in the
    module, so Lightning must not be asked to do them."""
    return TrainerConfig(**{**asdict(config), "gradient_clip_val": None, "accumulate_grad_batches": 1})


class GRPOModule(TrainingModule):
    """Subclasses implement :meth:`rollout` and :meth:`update` and register their trainable model."""

    def __init__(
        self,
        grpo: GRPOConfig,
        weights: Mapping[str, float],
        optim: OptimConfig,
        *,
        gradient_clip_val: float | None,
        seed: int,
        fps: float,
        log_samples_every: int,
    ):
        super().__init__()
        self.automatic_optimization = False
        self.grpo = grpo
        self.weights = dict(weights)
        self.optim = optim
        self.gradient_clip_val = gradient_clip_val
        self.seed = seed
        self.fps = fps
        self.log_samples_every = log_samples_every

    # ------------------------------------------------------------------ stage-specific
    def rollout(self, batch: dict[str, Any]) -> Rollout:
        raise NotImplementedError

    def update(
        self, rollout: Rollout, advantages: torch.Tensor, mask: torch.Tensor, iteration: int
    ) -> tuple[float, LossStats]:
        """Loss of one update; back-propagates (``self.manual_backward``) and returns its value."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the shared loop
    def rollout_seed(self) -> int:
        """A different, reproducible seed per rollout (and per rank under DDP)."""
        return (self.seed * 1_000_003 + self.global_step * 101 + self.global_rank) % (2**31)

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        pass  # the grad norm is logged before clipping, in training_step

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        rollout = self.rollout(batch)
        adv = group_advantages(rollout.rewards, self.weights, self.grpo)
        mask = sample_mask(adv, self.grpo).to(self.device)
        optimizer, scheduler = self.optimizers(), self.lr_schedulers()
        losses, all_stats, norms = [], [], []
        for iteration in range(self.grpo.num_iterations):
            optimizer.zero_grad()
            loss, stats = self.update(rollout, adv.advantages.to(self.device), mask, iteration)
            params = [p for p in self.parameters() if p.grad is not None]
            norm = torch.nn.utils.get_total_norm([p.grad for p in params]) if params else torch.zeros(())
            if self.gradient_clip_val:
                self.clip_gradients(optimizer, self.gradient_clip_val, "norm")
            optimizer.step()
            scheduler.step()
            losses.append(loss)
            all_stats.append(stats)
            norms.append(float(norm))
        self._log_step(rollout, adv, losses, all_stats, norms)

    def _log_step(
        self,
        rollout: Rollout,
        adv: Advantages,
        losses: Sequence[float],
        stats: Sequence[LossStats],
        norms: Sequence[float],
    ) -> None:
        n = len(adv.advantages)
        scalars: dict[str, float] = {}
        for name, values in rollout.rewards.items():
            scalars[f"reward/{name}/mean"] = float(values.mean())
            scalars[f"reward/{name}/std"] = float(values.std()) if len(values) > 1 else 0.0
        scalars["reward/total/mean"] = float(adv.total_reward.mean())
        scalars["reward/total/std"] = float(adv.total_reward.std())
        scalars["advantage/mean"] = float(adv.advantages.mean())
        scalars["advantage/std"] = float(adv.advantages.std())
        scalars["advantage/abs_max"] = float(adv.advantages.abs().max())
        scalars["groups/zero_std_fraction"] = adv.zero_std_group_fraction
        scalars["policy/ratio_mean"] = float(np.mean([s.ratio_mean for s in stats]))
        scalars["policy/clip_fraction"] = float(np.mean([s.clip_fraction for s in stats]))
        scalars["policy/clip_fraction_low"] = float(np.mean([s.low_clip_fraction for s in stats]))
        scalars["policy/clip_fraction_high"] = float(np.mean([s.high_clip_fraction for s in stats]))
        kls = [s.kl_mean for s in stats if s.kl_mean is not None]
        if kls:
            scalars["policy/kl"] = float(np.mean(kls))
        scalars["train/loss"] = float(np.mean(losses))
        scalars["train/grad_norm"] = float(np.mean(norms))
        scalars.update(rollout.stats)
        self.log_dict(scalars, on_step=True, on_epoch=False, batch_size=n)
        if self.log_samples_every and self.global_step % self.log_samples_every < self.grpo.num_iterations:
            G = self.grpo.group_size
            total = adv.total_reward.tolist()
            self.log_texts(
                "samples/captions",
                [f"[{i // G}.{i % G}] r={total[i]:.3f} {c}" for i, c in enumerate(rollout.captions[: 2 * G])],
            )
            if rollout.videos is not None:
                self.log_videos("samples/videos", list(rollout.videos[:G]), self.fps)


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
