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
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import torch
from torch.utils.data import Dataset

from vans_pipelines.models.scorer import VideoTextScorer
from vans_pipelines.models.vdm import VideoDiffusionModel
from vans_pipelines.rl.grpo import Advantages, GRPOConfig, LossStats, batch_advantages, sample_mask
from vans_pipelines.training.base import TrainingModule
from vans_pipelines.training.data import SamplesDataModule
from vans_pipelines.training.trainer import FitResult, OptimConfig, TrainerConfig, TrainingRun, fit

if TYPE_CHECKING:
    from vans_pipelines.params.base import GRPOStageParams
    from vans_pipelines.training.rollouts import Completions, Trajectories


@dataclass
class Rollout:
    """One scored rollout batch: rewards ``{name: [N]}``, what the stage's update re-scores (the VLM's
    ``completions``, the VDM's ``trajectories`` or both) and what TensorBoard shows."""

    rewards: dict[str, torch.Tensor]
    completions: Completions | None = None
    trajectories: Trajectories | None = None
    captions: list[str] = field(default_factory=list)  # for TensorBoard samples
    videos: np.ndarray | None = None  # uint8 [N, T, H, W, 3], for TensorBoard samples
    stats: dict[str, float] = field(default_factory=dict)  # extra per-step scalars (e.g. motion)


@dataclass(frozen=True)
class GRPOSettings:
    """What the shared GRPO loop of every stage is built from: the algorithm, the reward weights, the
    optimiser and the loop's own settings (:meth:`of` reads them from a typed stage section). Each stage's
    module takes a subclass that adds its own (keyword-only) settings; all of them are the module's saved
    hyperparameters."""

    grpo: GRPOConfig
    weights: Mapping[str, float]
    optim: OptimConfig
    gradient_clip_val: float | None = 1.0
    seed: int = 0
    fps: float = 8.0
    log_samples_every: int = 10

    @classmethod
    def of(cls, params: GRPOStageParams, *, fps: float, **stage: Any) -> Self:
        """From a typed ``grpo_vlm`` or ``grpo_vdm`` section; ``stage``: the subclass's own settings."""
        return cls(
            params.grpo,
            dict(params.rewards),
            params.optim,
            params.trainer.gradient_clip_val,
            params.trainer.seed,
            fps,
            params.log_samples_every,
            **stage,
        )


def manual_trainer_config(config: TrainerConfig) -> TrainerConfig:
    """The Trainer settings for a manual-optimisation module: clipping and accumulation happen in the
    module, so Lightning must not be asked to do them."""
    return TrainerConfig(**{**asdict(config), "gradient_clip_val": None, "accumulate_grad_batches": 1})


def freeze(vdm: VideoDiffusionModel, *, train_transformer: bool) -> None:
    """Eval mode and no gradients for the parts of ``vdm`` a GRPO stage does not train (all of them when
    it is a frozen renderer)."""
    for name, module in vdm.modules().items():
        if name != "transformer" or not train_transformer:
            module.eval().requires_grad_(False)


def fit_grpo(module: GRPOModule, train: Dataset, trainer: TrainerConfig, run: TrainingRun) -> FitResult:
    """Train a GRPO module on ``train`` (batches of prompts, shuffled by the trainer's seed) and leave its
    models in eval mode."""
    datamodule = SamplesDataModule(train, trainer.batch_size, trainer.seed)
    result = fit(module, datamodule, manual_trainer_config(trainer), run)
    module.eval()
    return result


class GRPOModule(TrainingModule):
    """Subclasses implement :meth:`rollout` and :meth:`update` and register their trainable model. Every
    stage renders or samples with ``vdm`` and scores with ``scorer`` (neither registered: they follow the
    module's device); the VDM's parts are frozen but for the transformer in a stage that trains it."""

    #: Whether the stage trains the VDM transformer's adapter (registered: trained, moved, checkpointed).
    trains_transformer: ClassVar[bool] = False

    def __init__(self, settings: GRPOSettings, vdm: VideoDiffusionModel, scorer: VideoTextScorer):
        super().__init__()
        self.automatic_optimization = False
        self.settings = settings
        self.grpo = settings.grpo
        self.weights = dict(settings.weights)
        self.optim = settings.optim
        self.gradient_clip_val = settings.gradient_clip_val
        self.seed = settings.seed
        self.fps = settings.fps
        self.log_samples_every = settings.log_samples_every
        self.vdm, self.scorer = vdm, scorer
        if self.trains_transformer:
            self.transformer = vdm.transformer
        self.save_hyperparameters(asdict(settings))

    def unregistered_parts(self) -> Sequence[object]:
        return (self.vdm, self.scorer)

    def on_fit_start(self) -> None:
        super().on_fit_start()
        freeze(self.vdm, train_transformer=self.trains_transformer)

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
        # advantages over every process's rollouts (TRL's gather); this process trains on its own rows
        adv, everyone = batch_advantages(rollout.rewards, self.weights, self.grpo)
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
        self._log_step(rollout, everyone, losses, all_stats, norms)

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
