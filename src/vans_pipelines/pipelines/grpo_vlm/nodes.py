"""Stage 1 node: measure the SFT VLM's stage-1 reward on val, train a LoRA adapter with GRPO (Lightning,
resumable), measure again. The catalog loads and saves models and reports; the trainer writes TensorBoard
logs and resumable checkpoints where ``run`` says."""

from __future__ import annotations

import logging
from typing import Any

from vans_pipelines.models.scorer import VideoTextScorer
from vans_pipelines.models.vdm import VideoDiffusionModel
from vans_pipelines.models.vlm import VisionLanguageModel
from vans_pipelines.params import RunContext, parse_section
from vans_pipelines.samples import SplitSamples
from vans_pipelines.training.data import check_batch_fits
from vans_pipelines.training.fingerprints import weights_fingerprint
from vans_pipelines.training.grpo_rewards import before_after
from vans_pipelines.training.grpo_vlm import evaluate_stage1, fit_stage1
from vans_pipelines.training.trainer import fingerprint, measure_fit

logger = logging.getLogger(__name__)


def train_grpo_vlm(
    samples: SplitSamples,
    sft_vlm: VisionLanguageModel,
    sft_vdm: VideoDiffusionModel,
    scorer: VideoTextScorer,
    grpo_vlm: dict[str, Any],
    run_context: RunContext,
) -> tuple[VisionLanguageModel, dict[str, Any]]:
    """Joint-GRPO stage 1. The report holds the val reward (per reward, total, seed spread) before and
    after, and what training did (steps, time, TensorBoard folder)."""
    params = parse_section("grpo_vlm", grpo_vlm)
    train, val = samples.train, samples.val
    check_batch_fits("grpo_vlm.trainer.batch_size", params.trainer.batch_size, train)
    vlm, vdm = sft_vlm, sft_vdm
    # The key of resumable checkpoints: these settings on these input weights.
    key = fingerprint(params, len(train), weights_fingerprint(vlm.model, vdm.transformer))
    training = run_context.paths.training("grpo_vlm", key)
    inference = run_context.inference
    evaluation = {
        **params.eval.model_dump(),
        "render_steps": params.render_steps,
        "batch_size": inference.batch_size,
    }
    run = measure_fit(
        inference.bind(
            lambda: evaluate_stage1(vlm, vdm, scorer, val, params.rewards, **evaluation), vlm, vdm, scorer
        ),
        lambda: fit_stage1(vlm, vdm, scorer, params, train, training, fps=samples.fps),
    )
    trainable = sum(p.numel() for p in vlm.model.parameters() if p.requires_grad)
    report = {**run.report(trainable_parameters=trainable), **before_after(run.before, run.after)}
    logger.info(
        "grpo_vlm: val total reward %.4f -> %.4f (seed std %.4f)",
        run.before["total"],
        run.after["total"],
        report["seed_spread"],
    )
    return vlm, report
