"""SFT nodes: build (tiny) or load (pretrained) each model, measure it on val, fine-tune it with Lightning,
measure again. Reports carry the before / after figures. The catalog loads and saves models and reports; the
trainer writes TensorBoard logs and resumable checkpoints where ``run`` says."""

from __future__ import annotations

import logging
import time
from typing import Any

import pandas as pd
from transformers import PreTrainedTokenizerBase

from vans_pipelines.models.vdm import VideoDiffusionModel, build_tiny_vdm
from vans_pipelines.models.vlm import VisionLanguageModel, build_tiny_vlm
from vans_pipelines.params import RunContext, SFTParams, VDMParams, VLMParams, parse_section
from vans_pipelines.training.data import (
    TrainValDataModule,
    TripletSamples,
    captions_by_id,
    check_batch_fits,
    collate,
)
from vans_pipelines.training.trainer import fingerprint, fit, world_size
from vans_pipelines.training.vdm_sft import (
    VDMSFTModule,
    collate_latents,
    encode_latents,
    evaluate_vae,
    evaluate_vdm,
    fit_vae,
)
from vans_pipelines.training.vlm_sft import VLMSFTModule, evaluate_vlm
from vans_pipelines.triplets import TripletSet

logger = logging.getLogger(__name__)


def load_vlm(params: VLMParams, tokenizer: PreTrainedTokenizerBase, fps: float) -> VisionLanguageModel:
    if params.model.source == "pretrained":
        vlm = VisionLanguageModel.from_pretrained(params.model.path)
    else:
        vlm = build_tiny_vlm(tokenizer, params.tiny, fps=fps, seed=params.trainer.seed)
    if params.finetune == "lora":
        vlm.add_lora(params.lora, seed=params.trainer.seed)
    return vlm


def load_vdm(params: VDMParams, tokenizer: PreTrainedTokenizerBase) -> VideoDiffusionModel:
    if params.model.source == "pretrained":
        vdm = VideoDiffusionModel.from_pretrained(params.model.path, conditioning=params.conditioning)
    else:
        vdm = build_tiny_vdm(tokenizer, params.tiny, params.conditioning, seed=params.trainer.seed)
    return vdm


def sft_run_key(params: VLMParams | VDMParams, train_samples: int, vocabulary: int) -> str:
    """The identity of an SFT run's settings and data sizes: the key its resumable checkpoints must match
    and the ``run_key`` its report carries."""
    return fingerprint(params, train_samples, vocabulary)


def train_vlm(
    train_triplets: TripletSet,
    val_triplets: TripletSet,
    captions: pd.DataFrame,
    tokenizer: PreTrainedTokenizerBase,
    sft: dict[str, Any],
    fps: float,
    run_context: RunContext,
) -> tuple[VisionLanguageModel, dict[str, Any]]:
    """VLM SFT: (context video, question) → reasoning + caption; val caption ROUGE-L before and after."""
    params: VLMParams = parse_section("sft", sft).vlm
    by_id = captions_by_id(captions)
    train, val = TripletSamples(train_triplets, by_id), TripletSamples(val_triplets, by_id)
    # Real-video splits are only known after ingest, so this is checked here, before any training.
    check_batch_fits("sft.vlm.trainer.batch_size", params.trainer.batch_size, train, world_size())
    vlm = load_vlm(params, tokenizer, fps)
    evaluation = {"max_new_tokens": params.eval.max_new_tokens, "limit": params.eval.limit}
    started = time.perf_counter()
    before = evaluate_vlm(vlm, val, **evaluation)
    key = sft_run_key(params, len(train), len(tokenizer))
    result = fit(
        VLMSFTModule(vlm, params.optim, max_new_tokens=params.eval.max_new_tokens),
        TrainValDataModule(
            train, val, params.trainer.batch_size, params.trainer.seed, params.trainer.num_workers
        ),
        params.trainer,
        run_context.paths,
        "sft_vlm",
        key,
    )
    vlm.model.eval()
    after = evaluate_vlm(vlm, val, **evaluation)
    report = {
        "run_key": key,  # the settings' fingerprint (also what a resumed checkpoint must match)
        "parameters": sum(p.numel() for p in vlm.model.parameters()),
        **result.summary(),
        "node_seconds": round(time.perf_counter() - started, 2),
        "val_before": before,
        "val_after": after,
    }
    logger.info("sft_vlm: val ROUGE-L %.3f -> %.3f", before["rouge_l"], after["rouge_l"])
    return vlm, report


def train_vdm(
    train_triplets: TripletSet,
    val_triplets: TripletSet,
    captions: pd.DataFrame,
    tokenizer: PreTrainedTokenizerBase,
    sft: dict[str, Any],
    fps: float,
    run_context: RunContext,
    test_triplets: TripletSet,
) -> tuple[VideoDiffusionModel, dict[str, Any]]:
    """VDM SFT: fit the tiny VAE on frames (skipped for a pretrained VAE), then flow-match the transformer
    on (caption, context) → target; val pixel error and oracle event accuracy before and after, and what
    the VAE keeps of the val and test targets (no model is chosen on the test figure)."""
    params: VDMParams = parse_section("sft", sft).vdm
    paths = run_context.paths
    by_id = captions_by_id(captions)
    train, val = TripletSamples(train_triplets, by_id), TripletSamples(val_triplets, by_id)
    check_batch_fits("sft.vdm.trainer.batch_size", params.trainer.batch_size, train, world_size())
    vdm = load_vdm(params, tokenizer)
    evaluation = {"num_steps": params.eval.num_steps, "limit": params.eval.limit, "seed": params.trainer.seed}
    started = time.perf_counter()
    before = evaluate_vdm(vdm, val, **evaluation)
    key = sft_run_key(params, len(train), len(tokenizer))
    vae_seconds = 0.0
    if params.vae_fit.steps:
        vae_result = fit_vae(vdm, train_triplets, params.vae_fit, params.trainer, paths, key)
        vae_seconds = vae_result.seconds
    if params.finetune == "lora":
        vdm.add_lora(params.lora, seed=params.trainer.seed)
    cache_started = time.perf_counter()
    train_items, train_collate = (
        (encode_latents(vdm, train), collate_latents) if params.cache_latents else (train, collate)
    )
    cache_seconds = time.perf_counter() - cache_started
    result = fit(
        VDMSFTModule(
            vdm, params.optim, params.train_text_encoder, sample_steps=params.eval.num_steps, fps=fps
        ),
        TrainValDataModule(
            train_items,
            val,
            params.trainer.batch_size,
            params.trainer.seed,
            params.trainer.num_workers,
            collate_fn=train_collate,
            val_collate_fn=collate,
        ),
        params.trainer,
        paths,
        "sft_vdm",
        key,
    )
    for module in vdm.modules().values():
        module.eval()
    after = evaluate_vdm(vdm, val, **evaluation)
    vae_check = {"limit": params.eval.limit}
    reconstruction = {
        "val": evaluate_vae(vdm, val, **vae_check),
        "test": evaluate_vae(vdm, TripletSamples(test_triplets, by_id), **vae_check),
    }
    report = {
        "run_key": key,
        "parameters": {name: sum(p.numel() for p in m.parameters()) for name, m in vdm.modules().items()},
        "vae_fit_steps": params.vae_fit.steps,
        "vae_fit_seconds": round(vae_seconds, 2),
        "latent_cache_seconds": round(cache_seconds, 2),
        **result.summary(),
        "node_seconds": round(time.perf_counter() - started, 2),
        "val_before": before,
        "val_after": after,
        "vae_reconstruction": reconstruction,
    }
    logger.info("sft_vdm: val pixel MSE %.4f -> %.4f", before["pixel_mse"], after["pixel_mse"])
    return vdm, report


__all__ = ["SFTParams", "load_vdm", "load_vlm", "sft_run_key", "train_vdm", "train_vlm"]
