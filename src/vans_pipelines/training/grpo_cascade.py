"""GRPO on the cascade as one unit: the paper's ablation against its two-stage schedule.

The policy is the whole cascade. For each (context video, question) the VLM samples G answers and the VDM
renders each with its own Flow-GRPO SDE trajectory; one reward on the final answer (its caption and its
video) scores the pair, and both LoRA adapters take the same group-relative advantage in one loop: the
sample's log-probability is its caption's tokens plus its video's denoising steps, so the clipped loss of
each part is built as in its stage (:func:`~vans_pipelines.training.grpo_vlm.token_policy_loss`,
:func:`~vans_pipelines.training.grpo_vdm.trajectory_losses`) and the two are summed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import Dataset

from vans_pipelines.metrics import motion
from vans_pipelines.models.scorer import VideoTextScorer
from vans_pipelines.models.vdm import VideoDiffusionModel
from vans_pipelines.models.vlm import VisionLanguageModel
from vans_pipelines.rl.flow_sde import SDEConfig
from vans_pipelines.rl.grpo import GRPOConfig, LossStats
from vans_pipelines.training.grpo import Rollout, fit_grpo
from vans_pipelines.training.grpo_vdm import backward_trajectories, merge_loss_stats, sample_trajectories
from vans_pipelines.training.grpo_vlm import (
    VLMPolicyModule,
    VLMPolicySettings,
    sample_completions,
    stage1_rewards,
    token_policy_loss,
)
from vans_pipelines.training.trainer import FitResult, OptimConfig, TrainingRun, make_optimizer

if TYPE_CHECKING:
    from vans_pipelines.params import GRPOVDMParams, GRPOVLMParams


@dataclass(frozen=True, kw_only=True)
class CascadeSettings(VLMPolicySettings):
    """The cascade's loop is the VLM side's (group, advantages, updates per rollout, learning rate); the VDM
    side brings its clip range and KL weight (``grpo_vdm``: its group and updates are the loop's, since
    both sides re-score the same rollouts), its learning rate (``optim_vdm``) and its SDE sampler."""

    grpo_vdm: GRPOConfig
    optim_vdm: OptimConfig
    sde: SDEConfig

    def __post_init__(self) -> None:
        loop = {"group_size": self.grpo.group_size, "num_iterations": self.grpo.num_iterations}
        object.__setattr__(self, "grpo_vdm", replace(self.grpo_vdm, **loop))


class GRPOCascadeModule(VLMPolicyModule):
    """Both models' adapters trained by one GRPO loop (:class:`CascadeSettings`); each side keeps its
    stage's learning rate."""

    trains_transformer = True

    def __init__(
        self,
        vlm: VisionLanguageModel,
        vdm: VideoDiffusionModel,
        scorer: VideoTextScorer,
        settings: CascadeSettings,
    ):
        super().__init__(vlm, vdm, scorer, settings)
        self.sde, self.grpo_vdm, self.optim_vdm = settings.sde, settings.grpo_vdm, settings.optim_vdm

    def configure_optimizers(self):
        return make_optimizer(
            list(self.model.parameters()),
            self.optim,
            self.trainer.max_steps,
            extra_groups=[(list(self.transformer.parameters()), self.optim_vdm)],
        )

    def rollout(self, batch: dict[str, Any]) -> Rollout:
        G = self.grpo.group_size
        completions = sample_completions(self.vlm, batch, self.grpo, self.sampling, self.rollout_seed())
        generator = torch.Generator().manual_seed(self.rollout_seed())
        contexts = np.repeat(batch["context"], G, axis=0)
        frames = batch["target"].shape[1]
        sampled = sample_trajectories(
            self.vdm, completions.captions, contexts, frames, self.sde, generator, group_size=G
        )
        rewards = stage1_rewards(self.weights, completions.texts, sampled.clips, batch, self.scorer, G)
        stats = {
            "rollout/completion_length": completions.mean_length,
            "rollout/motion": motion(sampled.clips),
        }
        return Rollout(
            rewards, completions, sampled, captions=completions.texts, videos=sampled.clips, stats=stats
        )

    def update(
        self, rollout: Rollout, advantages: torch.Tensor, mask: torch.Tensor, iteration: int
    ) -> tuple[float, LossStats]:
        loss, text_stats = token_policy_loss(
            self.vlm, rollout.completions, advantages, mask, self.grpo, self.sampling
        )
        self.manual_backward(loss)
        video_loss, video_stats = backward_trajectories(
            self, self.vdm, rollout.trajectories, advantages, mask, self.grpo_vdm, self.sde
        )
        return float(loss.detach()) + video_loss, merge_loss_stats([text_stats, video_stats])


def fit_cascade(
    vlm: VisionLanguageModel,
    vdm: VideoDiffusionModel,
    scorer: VideoTextScorer,
    stage1: GRPOVLMParams,
    stage2: GRPOVDMParams,
    weights: Mapping[str, float],
    train: Dataset,
    run: TrainingRun,
    *,
    fps: float,
) -> FitResult:
    """Fresh adapters on both models, trained as one policy: ``stage1`` (the typed ``grpo_vlm`` section)
    gives the VLM side, the loop (group, updates, batch, steps, seed) and the trainer; ``stage2`` (the
    ``grpo_vdm`` section) the VDM side (LoRA, SDE, clip range, KL, learning rate); ``weights`` the one
    reward. Both models are left in eval mode."""
    vlm.start_adapter(stage1.lora, seed=stage1.trainer.seed)
    vdm.start_adapter(stage2.lora, seed=stage1.trainer.seed)
    settings = CascadeSettings.of(
        stage1,
        fps=fps,
        sampling=stage1.sampling,
        grpo_vdm=stage2.grpo,
        optim_vdm=stage2.optim,
        sde=stage2.sde,
    )
    module = GRPOCascadeModule(vlm, vdm, scorer, replace(settings, weights=dict(weights)))
    return fit_grpo(module, train, stage1.trainer, run)
