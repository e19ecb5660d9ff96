"""The Lightning side of GRPO, shared by stage 1 (VLM) and stage 2 (VDM).

A step is: roll out G samples per prompt and score them (:meth:`GRPOModule.rollout`), turn rewards into
group-relative advantages (:func:`~vans_pipelines.rl.grpo.group_advantages`), then ``num_iterations``
optimiser updates on that batch (:meth:`GRPOModule.update` computes the loss and back-propagates).
Manual optimisation, so one rollout can feed several updates; gradients are clipped here (Lightning's
automatic clipping does not apply to manual optimisation). ``max_steps`` counts optimiser updates.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import Dataset

from vans_pipelines.metrics import motion
from vans_pipelines.models.render import eval_noise_seed
from vans_pipelines.models.scorer import VideoTextScorer
from vans_pipelines.models.vdm import VideoDiffusionModel
from vans_pipelines.rl.grpo import Advantages, GRPOConfig, LossStats, group_advantages, sample_mask
from vans_pipelines.rl.rewards import compute_rewards, total_reward
from vans_pipelines.samples import ordered_batches
from vans_pipelines.training.base import TrainingModule
from vans_pipelines.training.data import SamplesDataModule
from vans_pipelines.training.trainer import FitResult, OptimConfig, TrainerConfig, TrainingRun, fit

if TYPE_CHECKING:
    from vans_pipelines.params import GRPOVDMParams, GRPOVLMParams
    from vans_pipelines.training.grpo_vdm import Trajectories
    from vans_pipelines.training.grpo_vlm import Completions


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
    optimiser and the loop's own settings (:meth:`of` reads them from a typed stage section)."""

    grpo: GRPOConfig
    weights: Mapping[str, float]
    optim: OptimConfig
    gradient_clip_val: float | None = 1.0
    seed: int = 0
    fps: float = 8.0
    log_samples_every: int = 10

    @classmethod
    def of(cls, params: GRPOVLMParams | GRPOVDMParams, *, fps: float) -> GRPOSettings:
        """From a typed ``grpo_vlm`` or ``grpo_vdm`` section."""
        return cls(
            params.grpo,
            dict(params.rewards),
            params.optim,
            params.trainer.gradient_clip_val,
            params.trainer.seed,
            fps,
            params.log_samples_every,
        )


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
    module's device); the VDM's parts are frozen but for the transformer when ``train_transformer``.
    ``hparams`` are the subclass's own settings, saved beside the shared ones."""

    def __init__(
        self,
        settings: GRPOSettings,
        vdm: VideoDiffusionModel,
        scorer: VideoTextScorer,
        *,
        train_transformer: bool,
        **hparams: Any,
    ):
        super().__init__()
        self.automatic_optimization = False
        self.grpo = settings.grpo
        self.weights = dict(settings.weights)
        self.optim = settings.optim
        self.gradient_clip_val = settings.gradient_clip_val
        self.seed = settings.seed
        self.fps = settings.fps
        self.log_samples_every = settings.log_samples_every
        self.vdm, self.scorer = vdm, scorer
        self.train_transformer = train_transformer
        if train_transformer:
            self.transformer = vdm.transformer  # registered: trained (LoRA), moved, checkpointed
        self.save_hyperparameters(
            {
                "grpo": asdict(self.grpo),
                "weights": self.weights,
                "optim": asdict(self.optim),
                **{k: asdict(v) if is_dataclass(v) else v for k, v in hparams.items()},
            }
        )

    def unregistered_parts(self) -> Sequence[object]:
        return (self.vdm, self.scorer)

    def on_fit_start(self) -> None:
        super().on_fit_start()
        freeze(self.vdm, train_transformer=self.train_transformer)

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
