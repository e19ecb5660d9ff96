"""Contrastive training of the tiny video-text scorer on (target clip, caption) pairs."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from vans_pipelines.models.scorer import TinyScorer, VideoTextScorer
from vans_pipelines.samples import ordered_batches
from vans_pipelines.training.base import TrainingModule
from vans_pipelines.training.trainer import OptimConfig


class ScorerModule(TrainingModule):
    def __init__(self, scorer: TinyScorer, optim: OptimConfig):
        super().__init__()
        self.scorer = scorer
        self.encoder = scorer.encoder
        self.optim = optim
        self.save_hyperparameters({"optim": asdict(optim)})

    def _loss(self, batch: dict[str, Any]) -> torch.Tensor:
        video = self.encoder.encode_frames(self.scorer.frames(list(batch["target"])))
        text = self.encoder.encode_tokens(self.scorer.tokens(batch["caption"]))
        return self.encoder.contrastive_loss(video, text)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> torch.Tensor:
        loss = self._loss(batch)
        self.log("train/loss", loss, on_step=True, batch_size=len(batch["caption"]))
        return loss


def retrieval_accuracy(scorer: VideoTextScorer, samples: Dataset, batch_size: int = 64) -> dict[str, float]:
    """Video → text retrieval over the whole set: is the clip's own caption the best match (top-1) or
    among the best 5? Captions shared word for word by several clips count as hits for each of them."""
    videos, texts = [], []
    for _, batch in ordered_batches(samples, batch_size):
        videos.append(scorer.embed_videos(list(batch["target"])))
        texts.extend(batch["caption"])
    v = torch.cat(videos)
    t = scorer.embed_texts(texts)
    sim = v @ t.T
    same = np.array([[a == b for b in texts] for a in texts])
    ranks = torch.argsort(sim, dim=1, descending=True).cpu().numpy()
    top1 = np.mean([same[i, ranks[i, 0]] for i in range(len(texts))])
    top5 = np.mean([same[i, ranks[i, :5]].any() for i in range(len(texts))])
    chance = 1.0 / len(texts) if texts else float("nan")
    diag = sim.diagonal().mean().item()
    off = (sim.sum() - sim.diagonal().sum()).item() / max(1, sim.numel() - len(texts))
    return {
        "samples": len(texts),
        "video_to_text_top1": float(top1),
        "video_to_text_top5": float(top5),
        "chance_top1": float(chance),
        "matched_similarity": float(diag),
        "unmatched_similarity": float(off),
    }
