"""Joint-GRPO stage 1: a visualisation-friendly VLM.

For each (context video, question) the VLM samples G answers; the frozen VDM renders a clip from each
answer's caption and the context (one noise draw per prompt, shared by its group, so rewards within a
group differ by the caption alone); the shared reward scores text and rendered video; GRPO updates the
VLM's LoRA adapter, token by token.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import asdict, dataclass, replace
from functools import partial
from typing import Any

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.data import Dataset

from vans_pipelines.metrics import motion
from vans_pipelines.models.answer_format import parse_answer
from vans_pipelines.models.lora import adapters_disabled
from vans_pipelines.models.scorer import VideoTextScorer
from vans_pipelines.models.vdm import VideoDiffusionModel, eval_noise_seed, first_occurrences
from vans_pipelines.models.vlm import Generation, VisionLanguageModel
from vans_pipelines.rl.grpo import GRPOConfig, LossStats, clipped_policy_loss, k3_kl
from vans_pipelines.rl.rewards import VIDEO_REWARDS
from vans_pipelines.training.data import SamplesDataModule, ordered_batches
from vans_pipelines.training.grpo import (
    GRPOModule,
    Rollout,
    manual_trainer_config,
    reward_summary,
    score_samples,
)
from vans_pipelines.training.trainer import FitResult, OptimConfig, RunPaths, fit


@dataclass(frozen=True)
class SamplingConfig:
    """How the VLM samples its group during training."""

    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 48


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


#: Clips already rendered by one frozen VDM, by (rollout seed, render steps, frames, context digest,
#: caption): see :func:`render`.
RenderCache = MutableMapping[tuple[int, int, int, bytes, str], np.ndarray]


def render(
    vdm: VideoDiffusionModel,
    captions: Sequence[str],
    contexts: np.ndarray,
    *,
    frames: int,
    num_steps: int,
    seed: int,
    repeats: int = 1,
    cache: RenderCache | None = None,
) -> np.ndarray:
    """Clips from the frozen VDM for ``captions`` (grouped: ``repeats`` consecutive captions per context,
    sharing one noise draw). A caption repeated within its group has the same inputs and noise, so it is
    rendered once and its clip shared (sampled captions repeat often: about half a group's clips).

    ``cache``, shared by stage-1 runs that render with the same frozen VDM from the same prompts and seeds
    (the ablation's recipes of one training seed), keeps every clip: a later run that samples the same
    caption for the same context at the same step takes it from there (about 90% of them for the
    ablation's second and third stage-1 recipe). Such a clip equals a fresh render up to float rounding
    of the batch it was rendered in."""
    height, width = contexts.shape[2:4]
    shape = vdm.latent_shape(frames, height, width)
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn((len(contexts), *shape), generator=generator).repeat_interleave(repeats, dim=0)
    keys = [(i // repeats, caption) for i, caption in enumerate(captions)]
    rows, index = first_occurrences(keys)  # the first sample of each distinct (context, caption)
    digests = [hashlib.blake2b(np.ascontiguousarray(c).tobytes(), digest_size=16).digest() for c in contexts]
    cached = {} if cache is None else cache
    stored = [(seed, num_steps, frames, digests[keys[i][0]], keys[i][1]) for i in rows]
    missing = [k for k, key in enumerate(stored) if key not in cached]
    if missing:
        with torch.no_grad():
            clips = vdm.sample(
                [captions[rows[k]] for k in missing],
                np.repeat(contexts, repeats, axis=0)[[rows[k] for k in missing]],
                frames=frames,
                num_steps=num_steps,
                noise=noise[[rows[k] for k in missing]],
            )
        cached.update({stored[k]: clip for k, clip in zip(missing, clips, strict=True)})
    rendered = np.stack([cached[key] for key in stored])
    return rendered[index.numpy()]


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


class GRPOVLMModule(GRPOModule):
    def __init__(
        self,
        vlm: VisionLanguageModel,
        vdm: VideoDiffusionModel,
        scorer: VideoTextScorer,
        grpo: GRPOConfig,
        weights: Mapping[str, float],
        optim: OptimConfig,
        sampling: SamplingConfig,
        *,
        render_steps: int,
        gradient_clip_val: float | None = 1.0,
        seed: int = 0,
        fps: float = 8.0,
        log_samples_every: int = 10,
        render_cache: RenderCache | None = None,
    ):
        if grpo.max_completion_length is None:
            # dr_grpo divides by a constant length: the configured maximum, as TRL does, not the longest
            # completion of the batch (which would change the loss scale from batch to batch).
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
        self.vlm = vlm
        self.model = vlm.model  # registered: trained (LoRA), moved, checkpointed
        self.vdm = vdm  # frozen renderer, not registered
        self.scorer = scorer
        self.sampling = sampling
        self.render_steps = render_steps
        self.render_cache = render_cache
        self.save_hyperparameters(
            {
                "grpo": asdict(grpo),
                "weights": dict(weights),
                "optim": asdict(optim),
                "sampling": asdict(sampling),
                "render_steps": render_steps,
            }
        )

    def unregistered_parts(self) -> Sequence[object]:
        return (self.vdm, self.scorer)

    def on_fit_start(self) -> None:
        super().on_fit_start()
        for module in self.vdm.modules().values():
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
        weights, clips = self.weights, None
        if any(self.weights.get(name, 0.0) > 0 for name in VIDEO_REWARDS):
            clips = render(
                self.vdm,
                [parse_answer(t).caption for t in generation.texts],
                batch["context"],
                frames=batch["target"].shape[1],
                num_steps=self.render_steps,
                seed=self.rollout_seed(),
                repeats=G,
                cache=self.render_cache,
            )
        else:  # no weighted reward looks at a render (text-only stage 1): skip the VDM altogether
            weights = {n: w for n, w in self.weights.items() if n not in VIDEO_REWARDS}
        rewards = stage1_rewards(weights, generation.texts, clips, batch, self.scorer, G)
        inputs = policy_inputs(
            self.vlm,
            [v for v in videos for _ in range(G)],
            [q for q in questions for _ in range(G)],
            generation,
        )
        data: dict[str, Any] = {"inputs": inputs, "generation": generation}
        rollout_logprobs(self.vlm, data, self.grpo, self.sampling)
        stats = {"rollout/completion_length": float(generation.completion_mask.sum(1).float().mean())}
        if clips is not None:
            stats["rollout/motion"] = motion(clips)
        return Rollout(rewards, data, captions=generation.texts, videos=clips, stats=stats)

    def update(
        self, rollout: Rollout, advantages: torch.Tensor, mask: torch.Tensor, iteration: int
    ) -> tuple[float, LossStats]:
        loss, stats = token_policy_loss(self.vlm, rollout.data, advantages, mask, self.grpo, self.sampling)
        self.manual_backward(loss)
        return float(loss.detach()), stats


def rollout_logprobs(
    vlm: VisionLanguageModel, data: dict[str, Any], grpo: GRPOConfig, sampling: SamplingConfig
) -> None:
    """Store in ``data`` (``inputs`` and ``generation`` of a rollout) what later updates compare with: the
    rollout policy's log-probs when a batch is reused (``old_logp``) and the reference's when there is a
    KL term (``ref_logp``, the adapter switched off)."""
    with torch.no_grad():
        logp = partial(
            completion_logprobs, vlm, data["inputs"], data["generation"].prompt_length, sampling.temperature
        )
        if grpo.num_iterations > 1:
            data["old_logp"] = logp()
        if grpo.beta:
            with adapters_disabled(vlm.model):
                data["ref_logp"] = logp()


def token_policy_loss(
    vlm: VisionLanguageModel,
    data: dict[str, Any],
    advantages: torch.Tensor,
    mask: torch.Tensor,
    grpo: GRPOConfig,
    sampling: SamplingConfig,
) -> tuple[torch.Tensor, LossStats]:
    """The clipped GRPO loss of a rollout's completions token by token (KL to the reference when stored)."""
    logp = completion_logprobs(vlm, data["inputs"], data["generation"].prompt_length, sampling.temperature)
    old = data["old_logp"] if "old_logp" in data else logp.detach()
    kl = k3_kl(logp, data["ref_logp"]) if "ref_logp" in data else None
    token_mask = data["generation"].completion_mask.to(logp.dtype)
    return clipped_policy_loss(logp, old, advantages, token_mask, grpo, kl, keep=mask)


#: Rewards the stage-1 val report measures on the synthetic world beside the configured ones (not in the
#: total unless weighted): is the caption's event right, and does the oracle read it from the render?
STAGE1_ANALYSIS = ("caption_event", "oracle_event")


@torch.no_grad()
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
    once per seed: per-reward means, the total and its seed-to-seed spread, plus (analysis only, not in
    the total) the share of captions naming the right event and the world oracle's event accuracy of
    the renders."""
    per_seed: list[dict[str, list[torch.Tensor]]] = [{} for _ in seeds]
    motions, examples = [], []
    names = list(weights) + [n for n in STAGE1_ANALYSIS if n not in weights]
    for start, batch in ordered_batches(samples, batch_size, limit):
        texts = vlm.generate(list(batch["context"]), batch["question"], max_new_tokens=max_new_tokens).texts
        has_events = all(e is not None for e in batch["event"])
        for k, seed in enumerate(seeds):
            clips = render(
                vdm,
                [parse_answer(t).caption for t in texts],
                batch["context"],
                frames=batch["target"].shape[1],
                num_steps=render_steps,
                seed=eval_noise_seed(seed, start),
            )
            wanted = {n: weights.get(n, 0.0) for n in names if n not in STAGE1_ANALYSIS or has_events}
            for name, values in stage1_rewards(wanted, texts, clips, batch, scorer, 1).items():
                per_seed[k].setdefault(name, []).append(values)
            if k == 0:
                motions.append(motion(clips))
        if len(examples) < 4:
            examples.extend({"output": t, "truth": c} for t, c in zip(texts, batch["caption"], strict=True))
    merged = [{n: torch.cat(v) for n, v in seed_rewards.items()} for seed_rewards in per_seed]
    return {
        "samples": len(next(iter(merged[0].values()))),
        **reward_summary(merged, weights),
        "motion": float(np.mean(motions)),
        "examples": examples[:4],
    }


def fit_stage1(
    vlm: VisionLanguageModel,
    vdm: VideoDiffusionModel,
    scorer: VideoTextScorer,
    params: Any,
    train: Dataset,
    paths: RunPaths,
    stage: str,
    run_key: str,
    *,
    fps: float,
    callbacks: Sequence[Callback] = (),
    render_cache: RenderCache | None = None,
) -> FitResult:
    """Start a fresh LoRA adapter on ``vlm`` and train it with stage-1 GRPO (``params``: the typed
    ``grpo_vlm`` section); the model is left in eval mode. Used by the grpo_vlm stage, each tune trial and
    the ablations (``render_cache``: see :func:`render`)."""
    vlm.start_adapter(params.lora, seed=params.trainer.seed)
    module = GRPOVLMModule(
        vlm,
        vdm,
        scorer,
        params.grpo,
        params.rewards,
        params.optim,
        params.sampling,
        render_steps=params.render_steps,
        gradient_clip_val=params.trainer.gradient_clip_val,
        seed=params.trainer.seed,
        fps=fps,
        log_samples_every=params.log_samples_every,
        render_cache=render_cache,
    )
    datamodule = SamplesDataModule(train, params.trainer.batch_size, params.trainer.seed)
    result = fit(module, datamodule, manual_trainer_config(params.trainer), paths, stage, run_key, callbacks)
    vlm.model.eval()
    return result
