"""SFT nodes: build (tiny) or load (pretrained) each model, measure it on val, fine-tune it with Lightning,
measure again. Reports carry the before / after figures. The catalog loads and saves models and reports; the
trainer writes TensorBoard logs and resumable checkpoints where ``run`` says."""

from __future__ import annotations

import logging
from typing import Any

from transformers import PreTrainedTokenizerBase

from vans_pipelines.models.tiny import build_tiny_vdm, build_tiny_vlm
from vans_pipelines.models.vdm import VideoDiffusionModel
from vans_pipelines.models.vlm import VisionLanguageModel
from vans_pipelines.params import RunContext, SFTParams, VDMParams, VLMParams, parse_section
from vans_pipelines.samples import SplitSamples
from vans_pipelines.training.data import check_batch_fits
from vans_pipelines.training.trainer import fingerprint, measure_fit
from vans_pipelines.training.vdm_sft import evaluate_vae, evaluate_vdm, fit_sft_vdm
from vans_pipelines.training.vlm_sft import evaluate_vlm, fit_sft_vlm

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
    samples: SplitSamples, tokenizer: PreTrainedTokenizerBase, sft: dict[str, Any], run_context: RunContext
) -> tuple[VisionLanguageModel, dict[str, Any]]:
    """VLM SFT: (context video, question) → reasoning + caption; val caption ROUGE-L before and after."""
    params = parse_section("sft", sft).vlm
    train, val = samples.train, samples.val
    check_batch_fits("sft.vlm.trainer.batch_size", params.trainer.batch_size, train)
    vlm = load_vlm(params, tokenizer, samples.fps)
    key = sft_run_key(params, len(train), len(tokenizer))
    inference = run_context.inference
    evaluation = {"max_new_tokens": params.eval.max_new_tokens, "limit": params.eval.limit}
    run = measure_fit(
        inference.bind(lambda: evaluate_vlm(vlm, val, batch_size=inference.batch_size, **evaluation), vlm),
        lambda: fit_sft_vlm(vlm, params, train, val, run_context.paths.training("sft_vlm", key)),
    )
    # run_key: the settings' fingerprint (also what a resumed checkpoint must match)
    report = run.report(run_key=key, parameters=sum(p.numel() for p in vlm.model.parameters()))
    logger.info("sft_vlm: val ROUGE-L %.3f -> %.3f", run.before["rouge_l"], run.after["rouge_l"])
    return vlm, report


def train_vdm(
    samples: SplitSamples, tokenizer: PreTrainedTokenizerBase, sft: dict[str, Any], run_context: RunContext
) -> tuple[VideoDiffusionModel, dict[str, Any]]:
    """VDM SFT: fit the tiny VAE on frames (skipped for a pretrained VAE), then flow-match the transformer
    on (caption, context) → target; val pixel error and oracle event accuracy before and after, and what
    the VAE keeps of the val and test targets (no model is chosen on the test figure)."""
    params = parse_section("sft", sft).vdm
    train, val = samples.train, samples.val
    check_batch_fits("sft.vdm.trainer.batch_size", params.trainer.batch_size, train)
    vdm = load_vdm(params, tokenizer)
    key = sft_run_key(params, len(train), len(tokenizer))
    inference = run_context.inference
    evaluation = {"num_steps": params.eval.num_steps, "limit": params.eval.limit, "seed": params.trainer.seed}
    training = run_context.paths.training("sft_vdm", key)
    run = measure_fit(
        inference.bind(lambda: evaluate_vdm(vdm, val, batch_size=inference.batch_size, **evaluation), vdm),
        lambda: fit_sft_vdm(vdm, params, train.triplets, train, val, training, fps=samples.fps),
    )
    report = run.report(
        run_key=key,
        parameters={name: sum(p.numel() for p in m.parameters()) for name, m in vdm.modules().items()},
        vae_fit_steps=params.vae_fit.steps,
    )
    with inference.running(vdm):
        report["vae_reconstruction"] = {
            split: evaluate_vae(vdm, data, batch_size=inference.batch_size, limit=params.eval.limit)
            for split, data in (("val", val), ("test", samples.test))
        }
    logger.info("sft_vdm: val pixel MSE %.4f -> %.4f", run.before["pixel_mse"], run.after["pixel_mse"])
    return vdm, report


__all__ = ["SFTParams", "load_vdm", "load_vlm", "sft_run_key", "train_vdm", "train_vlm"]
