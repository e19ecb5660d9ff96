"""VDM training: fit the VAE (embedded default only; Wan2.1's VAE comes trained), then supervised
flow matching of the transformer on (caption, context) → target clip."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import Dataset

from vans_pipelines.metrics import oracle_event_scores, pixel_mse
from vans_pipelines.models.flow_matching import FlowMatchingRecipe
from vans_pipelines.models.vdm import PLAIN_FLOW, VideoDiffusionModel
from vans_pipelines.models.wan_vae import to_model_video, to_uint8_video
from vans_pipelines.samples import collate, ordered_batches
from vans_pipelines.training.base import TrainingModule
from vans_pipelines.training.data import (
    FrameSamples,
    SamplesDataModule,
    TrainValDataModule,
    collate_frames,
    spread_frames,
)
from vans_pipelines.training.trainer import FitResult, OptimConfig, TrainerConfig, TrainingRun, fit
from vans_pipelines.triplets import TripletSet

if TYPE_CHECKING:  # params imports training: only the annotation refers back
    from vans_pipelines.params import VAEFitParams, VDMParams

#: The VAE fit's name (TensorBoard version, checkpoint folder) beside the transformer's run.
VAE_STAGE = "sft_vae"


def foreground_weights(
    x: torch.Tensor, weight: float, threshold: float = 0.1, border: int = 1
) -> torch.Tensor:
    """Per-pixel loss weights ``[B, 1, T, H, W]`` for frames ``x`` ``[B, 3, T, H, W]`` in [-1, 1]: ``weight``
    where a pixel differs from its frame's median colour by more than ``threshold`` in any channel, or
    lies within ``border`` pixels of such a pixel; 1 elsewhere.

    The border matters: weighting the object alone makes painting a background pixel in the object's
    colour cheap, so a tiny VAE filled the corners of 7-pixel circles and the oracle read squares.

    >>> x = torch.full((1, 3, 1, 5, 5), -0.8); x[..., 2, 2] = 0.7
    >>> foreground_weights(x, 10.0, border=0).sum().item()  # 24 background pixels + one object pixel
    34.0
    >>> foreground_weights(x, 10.0).sum().item()  # the object and its 8 neighbours weigh 10
    106.0
    """
    median = x.flatten(3).median(dim=-1).values[..., None, None]
    foreground = ((x - median).abs().amax(dim=1, keepdim=True) > threshold).to(x.dtype)
    if border:
        size = 2 * border + 1
        foreground = torch.nn.functional.max_pool3d(
            foreground, (1, size, size), stride=1, padding=(0, border, border)
        )
    return 1.0 + (weight - 1.0) * foreground


class VAEFitModule(TrainingModule):
    """Reconstruction (L1 + MSE, foreground pixels weighted up) with a small KL term, on single frames."""

    def __init__(
        self,
        vdm: VideoDiffusionModel,
        optim: OptimConfig,
        kl_weight: float = 1e-6,
        foreground_weight: float = 1.0,
    ):
        super().__init__()
        self.vdm = vdm
        self.vae = vdm.vae
        self.optim = optim
        self.save_hyperparameters(
            {"optim": asdict(optim), "kl_weight": kl_weight, "foreground_weight": foreground_weight}
        )

    def training_step(self, frames: np.ndarray, batch_idx: int) -> torch.Tensor:
        x = to_model_video(torch.as_tensor(frames).unsqueeze(1)).to(self.device)  # [B, 3, 1, H, W]
        posterior = self.vae.encode(x).latent_dist
        recon = self.vae.decode(posterior.sample()).sample
        weights = foreground_weights(x, self.hparams.foreground_weight)
        error = recon - x
        rec = (weights * (error.abs() + error**2)).mean()
        kl = posterior.kl().mean()
        loss = rec + self.hparams.kl_weight * kl
        self.log_dict(
            {"train/vae_reconstruction": rec, "train/vae_kl": kl}, on_step=True, batch_size=len(frames)
        )
        return loss


def fit_vae(
    vdm: VideoDiffusionModel,
    train_triplets: TripletSet,
    settings: VAEFitParams,
    trainer: TrainerConfig,
    run: TrainingRun,
) -> FitResult:
    """Fit ``vdm``'s VAE on the train clips' single frames (``settings``: ``sft.vdm.vae_fit``; the rest of
    the trainer settings from ``trainer``), then set its latent statistics from a spread of frames."""
    frames = FrameSamples(train_triplets)
    result = fit(
        VAEFitModule(
            vdm,
            OptimConfig(lr=settings.lr, warmup_steps=10),
            settings.kl_weight,
            settings.foreground_weight,
        ),
        SamplesDataModule(frames, settings.batch_frames, trainer.seed, collate_fn=collate_frames),
        replace(trainer, max_steps=settings.steps, batch_size=settings.batch_frames, val_every_n_steps=None),
        run,
    )
    vdm.vae.eval()
    vdm.normalise_latents(spread_frames(frames, settings.stats_frames))
    return result


class LatentSamples(Dataset):
    """Train items with their VAE latents encoded once: ``{caption, latents, context_latents}``."""

    def __init__(self, captions: list[str], latents: torch.Tensor, context_latents: torch.Tensor):
        self.captions, self.latents, self.context_latents = captions, latents, context_latents

    def __len__(self) -> int:
        return len(self.captions)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {
            "caption": self.captions[i],
            "latents": self.latents[i],
            "context_latents": self.context_latents[i],
        }


def collate_latents(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "caption": [item["caption"] for item in items],
        "latents": torch.stack([item["latents"] for item in items]),
        "context_latents": torch.stack([item["context_latents"] for item in items]),
    }


@torch.no_grad()
def encode_latents(vdm: VideoDiffusionModel, samples: Dataset, batch_size: int = 64) -> LatentSamples:
    """The (frozen) VAE's latents of every sample's target and last context frames, on the CPU."""
    captions, latents, context_latents = [], [], []
    for _, batch in ordered_batches(samples, batch_size):
        captions.extend(batch["caption"])
        latents.append(vdm.encode(to_model_video(batch["target"]).to(vdm.device, vdm.vae.dtype)).cpu())
        context_latents.append(vdm.encode_context_latents(batch["context"]).cpu())
    return LatentSamples(captions, torch.cat(latents), torch.cat(context_latents))


class VDMSFTModule(TrainingModule):
    """Flow matching of the transformer (and, for the tiny default, the text encoder); the VAE is frozen."""

    def __init__(
        self,
        vdm: VideoDiffusionModel,
        optim: OptimConfig,
        train_text_encoder: bool,
        sample_steps: int = 10,
        fps: float = 8.0,
        log_samples: int = 2,
        recipe: FlowMatchingRecipe = PLAIN_FLOW,
    ):
        super().__init__()
        self.vdm = vdm
        self.transformer = vdm.transformer
        self.text_encoder = vdm.text_encoder
        self.optim = optim
        self.recipe = recipe
        vdm.vae.requires_grad_(False).eval()
        self.text_encoder.requires_grad_(train_text_encoder)
        self.save_hyperparameters(
            {
                "optim": asdict(optim),
                "train_text_encoder": train_text_encoder,
                "sample_steps": sample_steps,
                "fps": fps,
                "log_samples": log_samples,
                "flow_matching": asdict(recipe),
            }
        )

    def unregistered_parts(self) -> Sequence[object]:
        return (self.vdm.vae,)

    def on_train_start(self) -> None:
        if not self.hparams.train_text_encoder:
            self.text_encoder.eval()

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        if "latents" in batch:  # encoded once (LatentSamples)
            x0 = batch["latents"].to(self.device)
            cond = self.vdm.context_condition(batch["context_latents"].to(self.device), x0.shape[2])
            loss = self.vdm.latent_flow_matching_loss(x0, cond, batch["caption"], recipe=self.recipe)
        else:
            loss = self.vdm.flow_matching_loss(
                batch["target"], batch["context"], batch["caption"], recipe=self.recipe
            )
        self.log("train/loss", loss, on_step=True, batch_size=len(batch["caption"]))
        return loss

    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        generator = torch.Generator().manual_seed(batch_idx)
        loss = self.vdm.flow_matching_loss(batch["target"], batch["context"], batch["caption"], generator)
        self.log("val/loss", loss, on_epoch=True, sync_dist=True, batch_size=len(batch["caption"]))
        if batch_idx == 0 and self.hparams.log_samples:
            n = self.hparams.log_samples
            clips = self.vdm.sample(
                batch["caption"][:n],
                batch["context"][:n],
                frames=batch["target"].shape[1],
                num_steps=self.hparams.sample_steps,
            )
            pairs = [c for i in range(len(clips)) for c in (batch["target"][i], clips[i])]
            self.log_videos("samples/truth_vs_generated", pairs, self.hparams.fps)


def evaluate_vdm(
    vdm: VideoDiffusionModel,
    samples: Dataset,
    *,
    num_steps: int,
    batch_size: int = 32,
    limit: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Generate from the ground-truth caption and context: pixel MSE to the target and, when the samples
    carry world events, the oracle's event / event-kind accuracy. A still baseline (the last context frame
    held) is reported beside them so the pixel figure has a scale."""
    mse, still, exact, kind = [], [], [], []
    for start, batch in ordered_batches(samples, batch_size, limit):
        frames = batch["target"].shape[1]
        clips = vdm.sample(
            batch["caption"], batch["context"], frames=frames, num_steps=num_steps, seed=seed + start
        )
        mse.extend(pixel_mse(clips, batch["target"]).tolist())
        held = np.repeat(batch["context"][:, -1:], frames, axis=1)
        still.extend(pixel_mse(held, batch["target"]).tolist())
        if all(e is not None for e in batch["event"]):
            scores = oracle_event_scores(list(clips), batch["event"])
            exact.extend(scores["event"].tolist())
            kind.extend(scores["kind"].tolist())
    out: dict[str, Any] = {
        "samples": len(mse),
        "pixel_mse": float(np.mean(mse)),
        "still_baseline_pixel_mse": float(np.mean(still)),
    }
    if exact:
        out["oracle_event_accuracy"] = float(np.mean(exact))
        out["oracle_kind_accuracy"] = float(np.mean(kind))
    return out


@torch.no_grad()
def evaluate_vae(
    vdm: VideoDiffusionModel, samples: Dataset, *, batch_size: int = 32, limit: int | None = None
) -> dict[str, Any]:
    """What the VAE keeps: pixel MSE of encode → decode of each target clip and, when the samples carry
    world events, the oracle's event accuracy on the reconstructions beside its accuracy on the raw
    targets (their ratio is what a VDM working in these latents can reach at best)."""
    mse, raw, reconstructed = [], [], []
    for _, batch in ordered_batches(samples, batch_size, limit):
        video = to_model_video(batch["target"]).to(vdm.device, vdm.vae.dtype)
        clips = to_uint8_video(vdm.decode(vdm.encode(video)))
        mse.extend(pixel_mse(clips, batch["target"]).tolist())
        if all(e is not None for e in batch["event"]):
            raw.extend(oracle_event_scores(list(batch["target"]), batch["event"])["event"].tolist())
            reconstructed.extend(oracle_event_scores(list(clips), batch["event"])["event"].tolist())
    out: dict[str, Any] = {"samples": len(mse), "pixel_mse": float(np.mean(mse))}
    if raw:
        out["oracle_event_accuracy_raw"] = float(np.mean(raw))
        out["oracle_event_accuracy_reconstructed"] = float(np.mean(reconstructed))
        out["reconstructed_to_raw"] = float(np.mean(reconstructed) / max(np.mean(raw), 1e-9))
    return out


@dataclass(frozen=True)
class VDMFit:
    """What :func:`fit_sft_vdm` did: the VAE fit and latent cache times, and the transformer's run."""

    vae_fit_seconds: float
    latent_cache_seconds: float
    transformer: FitResult

    def summary(self) -> dict[str, Any]:
        return {
            "vae_fit_seconds": round(self.vae_fit_seconds, 2),
            "latent_cache_seconds": round(self.latent_cache_seconds, 2),
            **self.transformer.summary(),
        }


def transformer_training(
    vdm: VideoDiffusionModel, params: VDMParams, run: TrainingRun, *, fps: float = 8.0, log_samples: int = 2
) -> tuple[VDMSFTModule, TrainingRun]:
    """The flow-matching module for ``params`` (``sft.vdm``: its recipe, the VDM compiled when
    ``compile`` asks) and ``run`` with the EMA callback ``ema`` asks for."""
    if params.compile:
        vdm.compile()
    module = VDMSFTModule(
        vdm,
        params.optim,
        params.train_text_encoder,
        sample_steps=params.eval.num_steps,
        fps=fps,
        log_samples=log_samples,
        recipe=params.flow_matching,
    )
    return module, replace(run, callbacks=(*run.callbacks, *params.ema.callbacks()))


def fit_sft_vdm(
    vdm: VideoDiffusionModel,
    params: VDMParams,
    train_triplets: TripletSet,
    train: Dataset,
    val: Dataset,
    run: TrainingRun,
    *,
    fps: float,
) -> VDMFit:
    """Fit the tiny VAE (``params.vae_fit.steps`` > 0), add a LoRA adapter when ``params.finetune`` is
    ``lora``, encode the train latents once (``params.cache_latents``), then flow-match the transformer on
    ``train`` (``params``: ``sft.vdm``), validated on ``val``; every part is left in eval mode. The VAE
    fit runs as ``run`` renamed :data:`VAE_STAGE`."""
    vae_seconds = 0.0
    if params.vae_fit.steps:
        vae_run = replace(run, stage=VAE_STAGE)
        vae_seconds = fit_vae(vdm, train_triplets, params.vae_fit, params.trainer, vae_run).seconds
    if params.finetune == "lora":
        vdm.add_lora(params.lora, seed=params.trainer.seed)
    cache_started = time.perf_counter()
    train_items, train_collate = (
        (encode_latents(vdm, train), collate_latents) if params.cache_latents else (train, collate)
    )
    cache_seconds = time.perf_counter() - cache_started
    module, transformer_run = transformer_training(vdm, params, run, fps=fps)
    result = fit(
        module,
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
        transformer_run,
    )
    for module in vdm.modules().values():
        module.eval()
    return VDMFit(vae_seconds, cache_seconds, result)
