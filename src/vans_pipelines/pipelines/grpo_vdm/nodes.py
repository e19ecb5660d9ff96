"""Stage 2 nodes: anchor captions from the stage-1 VLM, then Flow-GRPO on the SFT VDM (Lightning,
resumable) with the val reward before and after. No file I/O here: the catalog loads and saves."""

from __future__ import annotations

import logging
import time
from typing import Any

import pandas as pd

from vans_pipelines.metrics import rouge_l
from vans_pipelines.models.scorer import VideoTextScorer
from vans_pipelines.models.vdm import VideoDiffusionModel
from vans_pipelines.models.vlm import VisionLanguageModel, parse_answer
from vans_pipelines.params import GRPOVDMParams, RunParams, parse_section
from vans_pipelines.pipelines.caption.nodes import captions_by_id
from vans_pipelines.training.data import SamplesDataModule, TripletSamples, ordered_batches
from vans_pipelines.training.fingerprints import weights_fingerprint
from vans_pipelines.training.grpo import before_after, manual_trainer_config
from vans_pipelines.training.grpo_vdm import AnchoredSamples, GRPOVDMModule, evaluate_stage2
from vans_pipelines.training.trainer import fingerprint, fit, world_size
from vans_pipelines.triplets import TripletSet

logger = logging.getLogger(__name__)

ANCHOR_COLUMNS = ("sample_id", "split", "anchor", "rouge_l", "kept")


def write_anchor_captions(
    train_triplets: TripletSet,
    val_triplets: TripletSet,
    captions: pd.DataFrame,
    grpo_vlm: VisionLanguageModel,
    grpo_vdm: dict[str, Any],
) -> pd.DataFrame:
    """The stage-1 VLM's greedy caption of every train and val sample, its ROUGE-L to the ground truth and
    whether it is kept for training (ROUGE-L >= ``grpo_vdm.anchors.min_rouge_l``)."""
    params: GRPOVDMParams = parse_section("grpo_vdm", grpo_vdm)
    by_id = captions_by_id(captions)
    rows = []
    grpo_vlm.model.eval()
    for split, triplets in (("train", train_triplets), ("val", val_triplets)):
        samples = TripletSamples(triplets, by_id)
        for _, batch in ordered_batches(samples, 32):
            texts = grpo_vlm.generate(
                list(batch["context"]), batch["question"], max_new_tokens=params.anchors.max_new_tokens
            ).texts
            anchors = [parse_answer(t).caption for t in texts]
            scores = rouge_l(anchors, batch["caption"])
            rows.extend(
                {
                    "sample_id": s,
                    "split": split,
                    "anchor": a,
                    "rouge_l": float(r),
                    "kept": bool(r >= params.anchors.min_rouge_l),
                }
                for s, a, r in zip(batch["sample_id"], anchors, scores, strict=True)
            )
    table = pd.DataFrame(rows, columns=list(ANCHOR_COLUMNS))
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


def _anchors(table: pd.DataFrame, split: str, kept_only: bool) -> dict[str, str]:
    rows = table[(table["split"] == split) & (table["kept"] | (not kept_only))]
    return dict(zip(rows["sample_id"], rows["anchor"], strict=True))


def train_grpo_vdm(
    train_triplets: TripletSet,
    val_triplets: TripletSet,
    captions: pd.DataFrame,
    anchor_captions: pd.DataFrame,
    sft_vdm: VideoDiffusionModel,
    scorer: VideoTextScorer,
    grpo_vdm: dict[str, Any],
    run: dict[str, Any],
    fps: float,
    kedro_run: dict[str, str],
) -> tuple[VideoDiffusionModel, dict[str, Any]]:
    """Joint-GRPO stage 2 on the kept train anchors. Val figures use every val sample's anchor (what the
    deployed cascade would see), ODE-sampled by the SFT VDM before and the GRPO VDM after."""
    params: GRPOVDMParams = parse_section("grpo_vdm", grpo_vdm)
    run_params: RunParams = parse_section("run", run)
    by_id = captions_by_id(captions)
    train = AnchoredSamples(TripletSamples(train_triplets, by_id), _anchors(anchor_captions, "train", True))
    val = AnchoredSamples(TripletSamples(val_triplets, by_id), _anchors(anchor_captions, "val", False))
    if params.trainer.batch_size * world_size() > len(train):
        raise ValueError(
            f"grpo_vdm.anchors.min_rouge_l: only {len(train)} train anchors reach ROUGE-L "
            f"{params.anchors.min_rouge_l}, fewer than grpo_vdm.trainer.batch_size = "
            f"{params.trainer.batch_size} x {world_size()} process(es); lower the threshold or the batch"
        )
    vdm = sft_vdm
    run_key = fingerprint(params, sorted(train.anchors.items()), weights_fingerprint(vdm.transformer))
    evaluation = params.eval.model_dump()
    started = time.perf_counter()
    before = evaluate_stage2(vdm, scorer, val, params.rewards, **evaluation)
    vdm.start_adapter(params.lora, seed=params.trainer.seed)
    module = GRPOVDMModule(
        vdm,
        scorer,
        params.grpo,
        params.rewards,
        params.optim,
        params.sde,
        gradient_clip_val=params.trainer.gradient_clip_val,
        seed=params.trainer.seed,
        fps=fps,
        log_samples_every=params.log_samples_every,
    )
    result = fit(
        module,
        SamplesDataModule(train, params.trainer.batch_size, params.trainer.seed),
        manual_trainer_config(params.trainer),
        run_params.paths(kedro_run),
        "grpo_vdm",
        run_key,
    )
    for part in vdm.modules().values():
        part.eval()
    after = evaluate_stage2(vdm, scorer, val, params.rewards, **evaluation)
    report = {
        "train_anchors": len(train),
        "trainable_parameters": sum(p.numel() for p in vdm.transformer.parameters() if p.requires_grad),
        **result.summary(),
        "node_seconds": round(time.perf_counter() - started, 2),
        **before_after(before, after),
    }
    logger.info(
        "grpo_vdm: val total reward %.4f -> %.4f (seed std %.4f); motion %.4f -> %.4f (ground truth %.4f)",
        before["total"],
        after["total"],
        report["seed_spread"],
        before["motion"],
        after["motion"],
        after["target_motion"],
    )
    return vdm, report
