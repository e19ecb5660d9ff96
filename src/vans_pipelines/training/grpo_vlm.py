"""Joint-GRPO stage 1: a visualisation-friendly VLM.

For each (context video, question) the VLM samples G answers; the frozen VDM renders a clip from each
answer's caption and the context (one noise draw per prompt, shared by its group, so rewards within a
group differ by the caption alone); the shared reward scores text and rendered video; GRPO updates the
VLM's LoRA adapter, token by token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import Dataset

from vans_pipelines.metrics import motion
from vans_pipelines.models.answer_format import parse_answer
from vans_pipelines.models.lora import adapters_disabled
from vans_pipelines.models.render import RenderCache, render
from vans_pipelines.models.scorer import VideoTextScorer
from vans_pipelines.models.vdm import VideoDiffusionModel
from vans_pipelines.models.vlm import Generation, VisionLanguageModel
from vans_pipelines.rl.grpo import (
    GRPOConfig,
    LossScale,
    LossStats,
    SamplingConfig,
    clipped_policy_loss,
    k3_kl,
)
from vans_pipelines.rl.rewards import VIDEO_REWARDS
from vans_pipelines.training.grpo import GRPOModule, GRPOSettings, Rollout, fit_grpo
from vans_pipelines.training.grpo_rewards import evaluate_rewards, score_samples
from vans_pipelines.training.rollouts import Completions
from vans_pipelines.training.trainer import FitResult, TrainingRun

if TYPE_CHECKING:
    from vans_pipelines.params import GRPOVLMParams


def completion_logprobs(
    vlm: VisionLanguageModel, inputs: Mapping[str, torch.Tensor], prompt_length: int, temperature: float
) -> torch.Tensor:
    """Log-probabilities ``[N, T]`` of the completion tokens ``input_ids[:, prompt_length:]`` under the
    model, logits divided by the sampling temperature (as TRL does)."""
    out = vlm.model(**inputs, use_cache=False)
    logits = out.logits[:, prompt_length - 1 : -1].float() / temperature
    targets = inputs["input_ids"][:, prompt_length:]
    return torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def policy_inputs(
    vlm: VisionLanguageModel, videos: Sequence[np.ndarray], questions: Sequence[str], generation: Generation
) -> dict[str, torch.Tensor]:
    """Model inputs re-scoring ``generation`` (prompt + completion, ``videos`` / ``questions`` already
    repeated per sample): the prompt layout of :meth:`VisionLanguageModel.batch`, the completion masked
    after its end token."""
    prompt = vlm.batch(list(videos), list(questions))
    if prompt["input_ids"].shape[1] != generation.prompt_length:
        raise ValueError("the generation's prompts do not match the videos / questions given")
    device = generation.sequences.device
    attention = torch.cat([prompt["attention_mask"].to(device), generation.completion_mask], dim=1)
    return {
        **{k: v.to(device) for k, v in prompt.items() if k not in ("input_ids", "attention_mask")},
        "input_ids": generation.sequences,
        "attention_mask": attention,
    }


def sample_completions(
    vlm: VisionLanguageModel,
    batch: Mapping[str, Any],
    grpo: GRPOConfig,
    sampling: SamplingConfig,
    seed: int,
) -> Completions:
    """``grpo.group_size`` sampled answers per prompt of ``batch``, with the log-probs later updates need."""
    G = grpo.group_size
    videos, questions = list(batch["context"]), list(batch["question"])
    generation = vlm.generate(
        videos,
        questions,
        max_new_tokens=sampling.max_new_tokens,
        do_sample=True,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        num_return_sequences=G,
        generator_seed=seed,
    )
    inputs = policy_inputs(
        vlm, [v for v in videos for _ in range(G)], [q for q in questions for _ in range(G)], generation
    )
    completions = Completions(generation, inputs)
    with torch.no_grad():
        logp = partial(completion_logprobs, vlm, inputs, generation.prompt_length, sampling.temperature)
        if grpo.num_iterations > 1:
            completions.old_logp = logp()
        if grpo.beta:
            with adapters_disabled(vlm.model):
                completions.ref_logp = logp()
    return completions


def token_policy_loss(
    vlm: VisionLanguageModel,
    completions: Completions,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    grpo: GRPOConfig,
    sampling: SamplingConfig,
) -> tuple[torch.Tensor, LossStats]:
    """The clipped GRPO loss of a rollout's completions token by token (KL to the reference when stored)."""
    generation = completions.generation
    logp = completion_logprobs(vlm, completions.inputs, generation.prompt_length, sampling.temperature)
    old = completions.old_logp if completions.old_logp is not None else logp.detach()
    kl = k3_kl(logp, completions.ref_logp) if completions.ref_logp is not None else None
    token_mask = generation.completion_mask.to(logp.dtype)
    # the whole batch's counts (every process's): see LossScale
    scale = LossScale.of(mask, (token_mask * mask.to(token_mask).unsqueeze(1)).sum())
    return clipped_policy_loss(
        logp,
        old,
        advantages,
        token_mask,
        grpo,
        kl,
        keep=mask,
        rows=scale.rows,
        normaliser=scale.normaliser(grpo),
    )


def with_completion_length(grpo: GRPOConfig, sampling: SamplingConfig) -> GRPOConfig:
    """dr_grpo divides by a constant length: the configured maximum, as TRL does, not the longest
    completion of the batch (which would change the loss scale from batch to batch)."""
    if grpo.max_completion_length is None:
        return replace(grpo, max_completion_length=sampling.max_new_tokens)
    return grpo


def stage1_rewards(
    weights: Mapping[str, float],
    completions: Sequence[str],
    videos: np.ndarray | None,
    batch: Mapping[str, Any],
    scorer: VideoTextScorer,
    repeats: int,
) -> dict[str, torch.Tensor]:
    """Every configured reward of stage-1 samples (``repeats`` per prompt of ``batch``); each video was
    rendered from its completion's parsed caption."""
    captions = [parse_answer(c).caption for c in completions]
    clips = list(videos) if videos is not None else []
    return score_samples(
        weights, batch, scorer, repeats, completions=completions, captions=captions, videos=clips
    )


@dataclass(frozen=True, kw_only=True)
class VLMPolicySettings(GRPOSettings):
    """The GRPO loop of a policy that includes the VLM: how it samples its group (``sampling``, whose
    length also normalises dr_grpo's loss)."""

    sampling: SamplingConfig


@dataclass(frozen=True, kw_only=True)
class Stage1Settings(VLMPolicySettings):
    """Stage 1: the frozen VDM renders each answer in ``render_steps`` ODE steps."""

    render_steps: int


class VLMPolicyModule(GRPOModule):
    """A GRPO module whose policy includes the VLM (stage 1, the cascade): completions are sampled with
    ``settings.sampling``, and the VLM's model is registered (trained through its LoRA adapter, moved,
    checkpointed)."""

    def __init__(
        self,
        vlm: VisionLanguageModel,
        vdm: VideoDiffusionModel,
        scorer: VideoTextScorer,
        settings: VLMPolicySettings,
    ):
        grpo = with_completion_length(settings.grpo, settings.sampling)
        super().__init__(replace(settings, grpo=grpo), vdm, scorer)
        self.vlm = vlm
        self.model = vlm.model
        self.sampling = settings.sampling


class GRPOVLMModule(VLMPolicyModule):
    """Stage 1: the VLM's adapter trained by GRPO; ``vdm`` renders each answer (frozen, not registered).
    ``render_cache`` (None: no cache), when set before fitting, keeps the renders of answers seen before
    (:func:`~vans_pipelines.models.render.render`)."""

    settings: Stage1Settings
    render_cache: RenderCache | None = None

    def rollout(self, batch: dict[str, Any]) -> Rollout:
        G = self.grpo.group_size
        completions = sample_completions(self.vlm, batch, self.grpo, self.sampling, self.rollout_seed())
        weights, clips = self.weights, None
        if any(self.weights.get(name, 0.0) > 0 for name in VIDEO_REWARDS):
            clips = render(
                self.vdm,
                completions.captions,
                batch["context"],
                frames=batch["target"].shape[1],
                num_steps=self.settings.render_steps,
                seed=self.rollout_seed(),
                repeats=G,
                cache=self.render_cache,
            )
        else:  # no weighted reward looks at a render (text-only stage 1): skip the VDM altogether
            weights = {n: w for n, w in self.weights.items() if n not in VIDEO_REWARDS}
        rewards = stage1_rewards(weights, completions.texts, clips, batch, self.scorer, G)
        stats = {"rollout/completion_length": completions.mean_length}
        if clips is not None:
            stats["rollout/motion"] = motion(clips)
        return Rollout(rewards, completions, captions=completions.texts, videos=clips, stats=stats)

    def update(
        self, rollout: Rollout, advantages: torch.Tensor, mask: torch.Tensor, iteration: int
    ) -> tuple[float, LossStats]:
        loss, stats = token_policy_loss(
            self.vlm, rollout.completions, advantages, mask, self.grpo, self.sampling
        )
        self.manual_backward(loss)
        return float(loss.detach()), stats


#: Rewards the stage-1 val report measures on the synthetic world beside the configured ones (not in the
#: total unless weighted): is the caption's event right, and does the oracle read it from the render?
STAGE1_ANALYSIS = ("caption_event", "oracle_event")


def evaluate_stage1(
    vlm: VisionLanguageModel,
    vdm: VideoDiffusionModel,
    scorer: VideoTextScorer,
    samples: Dataset,
    weights: Mapping[str, float],
    *,
    render_steps: int,
    seeds: Sequence[int],
    max_new_tokens: int,
    batch_size: int = 32,
    limit: int | None = None,
) -> dict[str, Any]:
    """The stage-1 reward of the VLM's greedy answers on ``samples``, each rendered by the frozen VDM
    once per seed (:func:`~vans_pipelines.training.grpo.evaluate_rewards`), plus (analysis only, not in
    the total) the share of captions naming the right event and the world oracle's event accuracy of the
    renders, and a few answers beside the truth."""
    examples: list[dict[str, str]] = []

    def answer(batch: dict[str, Any]) -> list[str]:
        texts = vlm.generate(list(batch["context"]), batch["question"], max_new_tokens=max_new_tokens).texts
        if len(examples) < 4:
            examples.extend({"output": t, "truth": c} for t, c in zip(texts, batch["caption"], strict=True))
        return texts

    def score(batch: dict[str, Any], texts: list[str], wanted: Mapping[str, float], noise_seed: int):
        captions = [parse_answer(t).caption for t in texts]
        clips = render(
            vdm,
            captions,
            batch["context"],
            frames=batch["target"].shape[1],
            num_steps=render_steps,
            seed=noise_seed,
        )
        return stage1_rewards(wanted, texts, clips, batch, scorer, 1), clips

    figures = evaluate_rewards(
        samples,
        weights,
        answer,
        score,
        analysis=STAGE1_ANALYSIS,
        seeds=seeds,
        batch_size=batch_size,
        limit=limit,
    )
    return {**figures, "examples": examples[:4]}


def fit_stage1(
    vlm: VisionLanguageModel,
    vdm: VideoDiffusionModel,
    scorer: VideoTextScorer,
    params: GRPOVLMParams,
    train: Dataset,
    run: TrainingRun,
    *,
    fps: float,
    render_cache: RenderCache | None = None,
) -> FitResult:
    """Start a fresh LoRA adapter on ``vlm`` and train it with stage-1 GRPO (``params``: the typed
    ``grpo_vlm`` section); the model is left in eval mode. Used by the grpo_vlm stage, each tune trial and
    the ablations (``render_cache``: see :func:`~vans_pipelines.models.render.render`)."""
    vlm.start_adapter(params.lora, seed=params.trainer.seed)
    settings = Stage1Settings.of(params, fps=fps, sampling=params.sampling, render_steps=params.render_steps)
    module = GRPOVLMModule(vlm, vdm, scorer, settings)
    module.render_cache = render_cache
    return fit_grpo(module, train, params.trainer, run)
