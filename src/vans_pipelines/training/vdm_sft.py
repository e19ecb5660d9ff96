"""VDM training: fit the VAE (embedded default only; Wan2.1's VAE comes trained), then supervised
flow matching of the transformer on (caption, context) → target clip."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from vans_pipelines.metrics import oracle_event_scores, pixel_mse
from vans_pipelines.models.vdm import VideoDiffusionModel, to_model_video
from vans_pipelines.training.base import TrainingModule
from vans_pipelines.training.data import ordered_batches
from vans_pipelines.training.trainer import OptimConfig


class VAEFitModule(TrainingModule):
    """Reconstruction (L1 + MSE) with a small KL term, on single frames."""

    def __init__(self, vdm: VideoDiffusionModel, optim: OptimConfig, kl_weight: float = 1e-6):
        super().__init__()
        self.vdm = vdm
        self.vae = vdm.vae
        self.optim = optim
        self.save_hyperparameters({"optim": asdict(optim), "kl_weight": kl_weight})

    def training_step(self, frames: np.ndarray, batch_idx: int) -> torch.Tensor:
        x = to_model_video(torch.as_tensor(frames).unsqueeze(1)).to(self.device)  # [B, 3, 1, H, W]
        posterior = self.vae.encode(x).latent_dist
        recon = self.vae.decode(posterior.sample()).sample
        rec = F.l1_loss(recon, x) + F.mse_loss(recon, x)
        kl = posterior.kl().mean()
        loss = rec + self.hparams.kl_weight * kl
        self.log_dict(
            {"train/vae_reconstruction": rec, "train/vae_kl": kl}, on_step=True, batch_size=len(frames)
        )
        return loss


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
    ):
        super().__init__()
        self.vdm = vdm
        self.transformer = vdm.transformer
        self.text_encoder = vdm.text_encoder
        self.optim = optim
        vdm.vae.requires_grad_(False).eval()
        self.text_encoder.requires_grad_(train_text_encoder)
        self.save_hyperparameters(
            {
                "optim": asdict(optim),
                "train_text_encoder": train_text_encoder,
                "sample_steps": sample_steps,
                "fps": fps,
                "log_samples": log_samples,
            }
        )

    def unregistered_parts(self) -> Sequence[object]:
        return (self.vdm.vae,)

    def on_train_start(self) -> None:
        if not self.hparams.train_text_encoder:
            self.text_encoder.eval()

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self.vdm.flow_matching_loss(batch["target"], batch["context"], batch["caption"])
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
