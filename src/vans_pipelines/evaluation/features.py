"""Video feature extractors for the Fréchet distance (FVD). Each names itself, so a report never passes
a distance under the embedded scorer off as the paper's I3D FVD."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoConfig, AutoModel

from vans_pipelines.models.scorer import VideoTextScorer

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class VideoFeatures(Protocol):
    name: str

    def __call__(self, videos: Sequence[np.ndarray]) -> np.ndarray: ...

    def to(self, device: torch.device | str) -> VideoFeatures: ...


class ScorerFeatures:
    """The configured video/text scorer's video embeddings (the embedded default's trained tiny encoder,
    or CLIP frame features averaged over time)."""

    def __init__(self, scorer: VideoTextScorer):
        self.scorer = scorer
        self.name = f"{type(scorer).__name__} video embeddings (the run's CLIP-V / CLIP-T scorer)"

    @torch.no_grad()
    def __call__(self, videos: Sequence[np.ndarray]) -> np.ndarray:
        return self.scorer.embed_videos(list(videos)).float().cpu().numpy()

    def to(self, device: torch.device | str) -> ScorerFeatures:
        self.scorer.to(device)
        return self


class PretrainedVideoFeatures:
    """Mean-pooled last hidden states of a transformers video backbone saved with ``save_pretrained``
    (e.g. VideoMAE fine-tuned on Kinetics, the usual stand-in for I3D, which transformers does not ship).
    Clips are sampled to the model's ``num_frames``, resized to its ``image_size`` and normalised with the
    folder's ``preprocessor_config.json`` mean / std (ImageNet's when absent)."""

    def __init__(self, path: str | Path, batch_size: int = 8):
        path = Path(path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"no transformers model folder at {path} (config.json missing)")
        self.config = AutoConfig.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()
        self.batch_size = batch_size
        processor = path / "preprocessor_config.json"
        settings = json.loads(processor.read_text()) if processor.is_file() else {}
        self.mean = torch.tensor(settings.get("image_mean", IMAGENET_MEAN)).view(1, 1, 3, 1, 1)
        self.std = torch.tensor(settings.get("image_std", IMAGENET_STD)).view(1, 1, 3, 1, 1)
        self.name = f"{self.config.model_type} features ({path.name})"

    def _pixels(self, videos: Sequence[np.ndarray]) -> torch.Tensor:
        frames = int(getattr(self.config, "num_frames", 16))
        size = int(getattr(self.config, "image_size", 224))
        clips = []
        for video in videos:
            x = torch.from_numpy(np.asarray(video)).float().div(255.0)  # [T, H, W, 3]
            index = torch.linspace(0, len(x) - 1, frames).round().long()
            x = x[index].permute(0, 3, 1, 2)  # [F, 3, H, W]
            clips.append(F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False))
        return (torch.stack(clips) - self.mean) / self.std

    @torch.no_grad()
    def __call__(self, videos: Sequence[np.ndarray]) -> np.ndarray:
        out = []
        for start in range(0, len(videos), self.batch_size):
            pixels = self._pixels(videos[start : start + self.batch_size])
            hidden = self.model(pixel_values=pixels.to(self.model.device)).last_hidden_state
            out.append(hidden.mean(dim=1).float().cpu().numpy())
        return np.concatenate(out)

    def to(self, device: torch.device | str) -> PretrainedVideoFeatures:
        self.model.to(device)
        return self


def build_features(kind: str, scorer: VideoTextScorer, path: str | None = None) -> VideoFeatures:
    """``scorer`` (default) or ``pretrained`` (``path`` to a transformers video model folder)."""
    if kind == "scorer":
        return ScorerFeatures(scorer)
    if kind == "pretrained":
        if not path:
            raise ValueError("evaluate.fvd.path: a pretrained feature extractor needs a model folder")
        return PretrainedVideoFeatures(path)
    raise ValueError(f"evaluate.fvd.kind: unknown feature extractor {kind!r}; use 'scorer' or 'pretrained'")
