"""GRPO on the cascade as one unit: the paper's ablation against its two-stage schedule.

The policy is the whole cascade. For each (context video, question) the VLM samples G answers and the VDM
renders each with its own Flow-GRPO SDE trajectory; one reward on the final answer (its caption and its
video) scores the pair, and both LoRA adapters take the same group-relative advantage in one loop: the
sample's log-probability is its caption's tokens plus its video's denoising steps, so the clipped loss of
each part is built as in its stage (:func:`~vans_pipelines.training.grpo_vlm.token_policy_loss`,
:func:`~vans_pipelines.training.grpo_vdm.trajectory_losses`) and the two are summed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from typing import Any

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import Dataset

from vans_pipelines.metrics import motion
from vans_pipelines.models.answer_format import parse_answer
from vans_pipelines.models.scorer import VideoTextScorer
from vans_pipelines.models.vdm import VideoDiffusionModel
from vans_pipelines.models.vlm import VisionLanguageModel
from vans_pipelines.rl.flow_sde import SDEConfig
from vans_pipelines.rl.grpo import GRPOConfig, LossStats
from vans_pipelines.training.data import SamplesDataModule
from vans_pipelines.training.grpo import GRPOModule, Rollout, manual_trainer_config
from vans_pipelines.training.grpo_vdm import merge_loss_stats, sample_trajectories, trajectory_losses
from vans_pipelines.training.grpo_vlm import (
    SamplingConfig,
    policy_inputs,
    rollout_logprobs,
    stage1_rewards,
    token_policy_loss,
)
from vans_pipelines.training.trainer import FitResult, OptimConfig, RunPaths, fit, make_optimizer


class GRPOCascadeModule(GRPOModule):
    """Both models' adapters trained by one GRPO loop. ``grpo`` (the VLM side's settings) sets the group,
    the advantages and the number of updates per rollout; ``grpo_vdm`` contributes the VDM side's clip
    range and KL weight. Each side keeps its stage's learning rate (``optim`` / ``optim_vdm``)."""

    def __init__(
        self,
        vlm: VisionLanguageModel,
        vdm: VideoDiffusionModel,
        scorer: VideoTextScorer,
        grpo: GRPOConfig,
        grpo_vdm: GRPOConfig,
        weights: Mapping[str, float],
        optim: OptimConfig,
        optim_vdm: OptimConfig,
        sampling: SamplingConfig,
        sde: SDEConfig,
        *,
        gradient_clip_val: float | None = 1.0,
        seed: int = 0,
        fps: float = 8.0,
        log_samples_every: int = 10,
    ):
        if grpo.max_completion_length is None:
            grpo = replace(grpo, max_completion_length=sampling.max_new_tokens)
        super().__init__(
            grpo,
            weights,
            optim,
            gradient_clip_val=gradient_clip_val,
            seed=seed,
            fps=fps,
            log_samples_every=log_samples_every,
        )
        self.vlm, self.vdm, self.scorer = vlm, vdm, scorer
        self.model = vlm.model  # registered: trained (LoRA), moved, checkpointed
        self.transformer = vdm.transformer  # registered too
        # One loop: the VDM side re-scores the same rollouts as often as the VLM side.
        self.grpo_vdm = replace(grpo_vdm, group_size=grpo.group_size, num_iterations=grpo.num_iterations)
        self.optim_vdm = optim_vdm
        self.sampling, self.sde = sampling, sde
        self.save_hyperparameters(
            {
                "grpo": asdict(grpo),
                "grpo_vdm": asdict(self.grpo_vdm),
                "weights": dict(weights),
                "optim": asdict(optim),
                "optim_vdm": asdict(optim_vdm),
                "sampling": asdict(sampling),
                "sde": asdict(sde),
            }
        )

    def unregistered_parts(self) -> Sequence[object]:
        return (self.vdm, self.scorer)

    def configure_optimizers(self):
        return make_optimizer(
            list(self.model.parameters()),
            self.optim,
            self.trainer.max_steps,
            extra_groups=[(list(self.transformer.parameters()), self.optim_vdm)],
        )

    def on_fit_start(self) -> None:
        super().on_fit_start()
        for name, module in self.vdm.modules().items():
            if name != "transformer":
                module.eval().requires_grad_(False)

    def rollout(self, batch: dict[str, Any]) -> Rollout:
        G = self.grpo.group_size
        videos, questions = list(batch["context"]), list(batch["question"])
        generation = self.vlm.generate(
            videos,
            questions,
            max_new_tokens=self.sampling.max_new_tokens,
            do_sample=True,
            temperature=self.sampling.temperature,
            top_p=self.sampling.top_p,
            num_return_sequences=G,
            generator_seed=self.rollout_seed(),
        )
        captions = [parse_answer(t).caption for t in generation.texts]
        generator = torch.Generator().manual_seed(self.rollout_seed())
        sampled = sample_trajectories(
            self.vdm,
            captions,
            np.repeat(batch["context"], G, axis=0),
            batch["target"].shape[1],
            self.sde,
            generator,
        )
        rewards = stage1_rewards(self.weights, generation.texts, sampled["clips"], batch, self.scorer, G)
        inputs = policy_inputs(
            self.vlm,
            [v for v in videos for _ in range(G)],
            [q for q in questions for _ in range(G)],
            generation,
        )
        data: dict[str, Any] = {"inputs": inputs, "generation": generation, **sampled}
        rollout_logprobs(self.vlm, data, self.grpo, self.sampling)
        return Rollout(
            rewards,
            data,
            captions=generation.texts,
            videos=sampled["clips"],
            stats={
                "rollout/completion_length": float(generation.completion_mask.sum(1).float().mean()),
                "rollout/motion": motion(sampled["clips"]),
            },
        )

    def update(
        self, rollout: Rollout, advantages: torch.Tensor, mask: torch.Tensor, iteration: int
    ) -> tuple[float, LossStats]:
        loss, text_stats = token_policy_loss(
            self.vlm, rollout.data, advantages, mask, self.grpo, self.sampling
        )
        self.manual_backward(loss)
        total, video_stats = float(loss.detach()), []
        for step_loss, stats in trajectory_losses(
            self.vdm, rollout.data, advantages, mask, self.grpo_vdm, self.sde
        ):
            self.manual_backward(step_loss)
            total += float(step_loss.detach())
            video_stats.append(stats)
        return total, merge_loss_stats([text_stats, merge_loss_stats(video_stats)])


def fit_cascade(
    vlm: VisionLanguageModel,
    vdm: VideoDiffusionModel,
    scorer: VideoTextScorer,
    stage1: Any,
    stage2: Any,
    weights: Mapping[str, float],
    train: Dataset,
    paths: RunPaths,
    stage: str,
    run_key: str,
    *,
    fps: float,
    callbacks: Sequence[Callback] = (),
) -> FitResult:
    """Fresh adapters on both models, trained as one policy: ``stage1`` (the typed ``grpo_vlm`` section)
    gives the VLM side, the loop (group, updates, batch, steps, seed) and the trainer; ``stage2`` (the
    ``grpo_vdm`` section) the VDM side (LoRA, SDE, clip range, KL, learning rate); ``weights`` the one
    reward."""
    vlm.start_adapter(stage1.lora, seed=stage1.trainer.seed)
    vdm.start_adapter(stage2.lora, seed=stage1.trainer.seed)
    module = GRPOCascadeModule(
        vlm,
        vdm,
        scorer,
        stage1.grpo,
        stage2.grpo,
        weights,
        stage1.optim,
        stage2.optim,
        stage1.sampling,
        stage2.sde,
        gradient_clip_val=stage1.trainer.gradient_clip_val,
        seed=stage1.trainer.seed,
        fps=fps,
        log_samples_every=stage1.log_samples_every,
    )
    datamodule = SamplesDataModule(train, stage1.trainer.batch_size, stage1.trainer.seed)
    result = fit(module, datamodule, manual_trainer_config(stage1.trainer), paths, stage, run_key, callbacks)
    vlm.model.eval()
    for part in vdm.modules().values():
        part.eval()
    return result
