"""Stage 2 nodes: anchor captions from the stage-1 VLM, then Flow-GRPO on the SFT VDM (Lightning,
resumable) with the val reward before and after. The catalog loads and saves models and reports; the trainer
writes TensorBoard logs and resumable checkpoints where ``run`` says."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from vans_pipelines.models.scorer import VideoTextScorer
from vans_pipelines.models.vdm import VideoDiffusionModel
from vans_pipelines.models.vlm import VisionLanguageModel
from vans_pipelines.params import RunContext, parse_section
from vans_pipelines.samples import SplitSamples
from vans_pipelines.training.fingerprints import weights_fingerprint
from vans_pipelines.training.grpo_rewards import before_after
from vans_pipelines.training.grpo_vdm import (
    AnchoredSamples,
    anchor_captions,
    anchors_of,
    check_enough_anchors,
    evaluate_stage2,
    fit_stage2,
)
from vans_pipelines.training.trainer import fingerprint, measure_fit, world_size

logger = logging.getLogger(__name__)


def write_anchor_captions(
    samples: SplitSamples, grpo_vlm: VisionLanguageModel, grpo_vdm: dict[str, Any], run_context: RunContext
) -> pd.DataFrame:
    """The stage-1 VLM's greedy caption of every train and val sample, its ROUGE-L to the ground truth and
    whether it is kept for training (ROUGE-L >= ``grpo_vdm.anchors.min_rouge_l``)."""
    params = parse_section("grpo_vdm", grpo_vdm)
    splits = {"train": samples.train, "val": samples.val}
    inference = run_context.inference
    with inference.running(grpo_vlm):
        table = anchor_captions(
            grpo_vlm,
            splits,
            min_rouge_l=params.anchors.min_rouge_l,
            max_new_tokens=params.anchors.max_new_tokens,
            batch_size=inference.batch_size,
        )
    for split, part in table.groupby("split"):
        logger.info(
            "anchors (%s): %d of %d kept (ROUGE-L >= %.2f), mean ROUGE-L %.3f",
            split,
            int(part["kept"].sum()),
            len(part),
            params.anchors.min_rouge_l,
            part["rouge_l"].mean(),
        )
    return table


def train_grpo_vdm(
    samples: SplitSamples,
    anchor_captions: pd.DataFrame,
    sft_vdm: VideoDiffusionModel,
    scorer: VideoTextScorer,
    grpo_vdm: dict[str, Any],
    run_context: RunContext,
) -> tuple[VideoDiffusionModel, dict[str, Any]]:
    """Joint-GRPO stage 2 on the kept train anchors. Val figures use every val sample's anchor (what the
    deployed cascade would see), ODE-sampled by the SFT VDM before and the GRPO VDM after."""
    params = parse_section("grpo_vdm", grpo_vdm)
    train = AnchoredSamples(samples.train, anchors_of(anchor_captions, "train", True))
    val = AnchoredSamples(samples.val, anchors_of(anchor_captions, "val", False))
    check_enough_anchors(train, params, world_size())
    vdm = sft_vdm
    key = fingerprint(params, sorted(train.anchors.items()), weights_fingerprint(vdm.transformer))
    training = run_context.paths.training("grpo_vdm", key)
    inference = run_context.inference
    evaluation = {**params.eval.model_dump(), "batch_size": inference.batch_size}
    run = measure_fit(
        inference.bind(lambda: evaluate_stage2(vdm, scorer, val, params.rewards, **evaluation), vdm, scorer),
        lambda: fit_stage2(vdm, scorer, params, train, training, fps=samples.fps),
    )
    trainable = sum(p.numel() for p in vdm.transformer.parameters() if p.requires_grad)
    report = {
        **run.report(train_anchors=len(train), trainable_parameters=trainable),
        **before_after(run.before, run.after),
    }
    logger.info(
        "grpo_vdm: val total reward %.4f -> %.4f (seed std %.4f); motion %.4f -> %.4f (ground truth %.4f)",
        run.before["total"],
        run.after["total"],
        report["seed_spread"],
        run.before["motion"],
        run.after["motion"],
        run.after["target_motion"],
    )
    return vdm, report
