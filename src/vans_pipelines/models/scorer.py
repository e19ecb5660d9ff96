"""The video-text scorer behind the CLIP-V / CLIP-T rewards and metrics.

Two implementations of one interface (:class:`VideoTextScorer`): a small contrastive video/text encoder
trained on the train split (the embedded default: no pretrained CLIP is reachable here), and a pretrained
``CLIPModel`` from a path whose frame embeddings are averaged over the clip. Both return L2-normalised
embeddings, so a similarity is a dot product in [-1, 1].
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoTokenizer, CLIPModel, PreTrainedTokenizerBase

META_FILE = "vans_scorer.json"
WEIGHTS_FILE = "scorer.safetensors"


@runtime_checkable
class VideoTextScorer(Protocol):
    """Embeds clips (uint8 ``[T, H, W, 3]``) and texts into one space; rows are unit vectors."""

    def embed_videos(self, videos: Sequence[np.ndarray]) -> torch.Tensor: ...

    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor: ...

    def save_pretrained(self, path: str | Path) -> None: ...

    def to(self, device: torch.device | str) -> VideoTextScorer: ...


def video_text_similarity(
    scorer: VideoTextScorer, videos: Sequence[np.ndarray], texts: Sequence[str]
) -> torch.Tensor:
    """Row-wise cosine similarity of each video with its text (CLIP-T)."""
    return (scorer.embed_videos(videos) * scorer.embed_texts(texts)).sum(-1)


def video_video_similarity(
    scorer: VideoTextScorer, videos: Sequence[np.ndarray], references: Sequence[np.ndarray]
) -> torch.Tensor:
    """Row-wise cosine similarity of each video with its reference video (CLIP-V)."""
    return (scorer.embed_videos(videos) * scorer.embed_videos(references)).sum(-1)


# ------------------------------------------------------------------------------------------ tiny encoder
@dataclass(frozen=True)
class TinyScorerSpec:
    embed_dim: int = 32
    width: int = 64
    frames: int = 8  # frames sampled uniformly from each clip
    text_max_length: int = 32


def _frames_tensor(videos: Sequence[np.ndarray], frames: int) -> torch.Tensor:
    """uint8 clips → float ``[B, F, 3, H, W]`` in [0, 1], ``frames`` taken uniformly from each."""
    out = []
    for clip in videos:
        keep = np.linspace(0, len(clip) - 1, frames).round().astype(int)
        out.append(torch.from_numpy(np.ascontiguousarray(np.asarray(clip)[keep])))
    return torch.stack(out).permute(0, 1, 4, 2, 3).float() / 255.0


class TinyVideoTextEncoder(nn.Module):
    """Per-frame CNN + temporal convolution (with the clip's motion, last minus first) / a one-layer text
    transformer; trained with the symmetric InfoNCE loss of CLIP."""

    def __init__(self, vocab_size: int, spec: TinyScorerSpec, pad_token_id: int):
        super().__init__()
        self.spec = spec
        self.pad_token_id = pad_token_id
        w = spec.width
        self.frame_net = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.GELU(),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(32 * 16, w),
        )
        self.temporal = nn.Conv1d(w, w, 3, padding=1)
        self.video_proj = nn.Linear(2 * w, spec.embed_dim)
        self.token_embedding = nn.Embedding(vocab_size, w, padding_idx=pad_token_id)
        self.position_embedding = nn.Embedding(spec.text_max_length, w)
        self.text_layer = nn.TransformerEncoderLayer(w, 2, 2 * w, dropout=0.0, batch_first=True)
        self.text_proj = nn.Linear(w, spec.embed_dim)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def encode_frames(self, frames: torch.Tensor) -> torch.Tensor:
        b, f = frames.shape[:2]
        per_frame = self.frame_net(frames.flatten(0, 1)).view(b, f, -1)
        h = F.gelu(self.temporal(per_frame.transpose(1, 2))).transpose(1, 2)
        motion = per_frame[:, -1] - per_frame[:, 0]
        return F.normalize(self.video_proj(torch.cat([h.mean(1), motion], -1)), dim=-1)

    def encode_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        mask = ids != self.pad_token_id
        pos = torch.arange(ids.shape[1], device=ids.device)
        h = self.token_embedding(ids) + self.position_embedding(pos)
        h = self.text_layer(h, src_key_padding_mask=~mask)
        pooled = (h * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True).clamp(min=1)
        return F.normalize(self.text_proj(pooled), dim=-1)

    def contrastive_loss(self, video: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        logits = self.logit_scale.exp().clamp(max=100) * video @ text.T
        labels = torch.arange(len(video), device=video.device)
        return (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2


class TinyScorer:
    """:class:`VideoTextScorer` over :class:`TinyVideoTextEncoder` and the project tokenizer."""

    def __init__(self, encoder: TinyVideoTextEncoder, tokenizer: PreTrainedTokenizerBase):
        self.encoder = encoder
        self.tokenizer = tokenizer

    @classmethod
    def build(cls, tokenizer: PreTrainedTokenizerBase, spec: TinyScorerSpec, seed: int = 0) -> TinyScorer:
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            encoder = TinyVideoTextEncoder(len(tokenizer), spec, tokenizer.pad_token_id)
        return cls(encoder.eval(), tokenizer)

    def to(self, device: torch.device | str) -> TinyScorer:
        self.encoder.to(device)
        return self

    def tokens(self, texts: Sequence[str]) -> torch.Tensor:
        device = next(self.encoder.parameters()).device
        return self.tokenizer(
            list(texts),
            padding="max_length",
            truncation=True,
            max_length=self.encoder.spec.text_max_length,
            return_tensors="pt",
        )["input_ids"].to(device)

    def frames(self, videos: Sequence[np.ndarray]) -> torch.Tensor:
        device = next(self.encoder.parameters()).device
        return _frames_tensor(videos, self.encoder.spec.frames).to(device)

    @torch.no_grad()
    def embed_videos(self, videos: Sequence[np.ndarray]) -> torch.Tensor:
        return self.encoder.encode_frames(self.frames(videos))

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        return self.encoder.encode_tokens(self.tokens(texts))

    def save_pretrained(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.encoder.state_dict().items()}
        save_file(state, str(path / WEIGHTS_FILE))
        self.tokenizer.save_pretrained(path)
        meta = {
            "kind": "tiny",
            "spec": asdict(self.encoder.spec),
            "vocab_size": self.encoder.token_embedding.num_embeddings,
        }
        (path / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, path: str | Path) -> TinyScorer:
        path = Path(path)
        meta = json.loads((path / META_FILE).read_text())
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        encoder = TinyVideoTextEncoder(
            meta["vocab_size"], TinyScorerSpec(**meta["spec"]), tokenizer.pad_token_id
        )
        encoder.load_state_dict(load_file(str(path / WEIGHTS_FILE)))
        return cls(encoder.eval(), tokenizer)


# ------------------------------------------------------------------------------------------ pretrained CLIP
class ClipScorer:
    """A pretrained ``CLIPModel``: a clip's embedding is the mean of its frames' image embeddings."""

    def __init__(self, model: CLIPModel, tokenizer: PreTrainedTokenizerBase, path: str, frames: int = 8):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.path = path
        self.frames = frames
        size = model.config.vision_config.image_size
        self.image_size = size
        mean, std = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
        pre = Path(path) / "preprocessor_config.json"
        if pre.is_file():
            raw = json.loads(pre.read_text())
            mean, std = raw.get("image_mean", mean), raw.get("image_std", std)
        self.mean = torch.tensor(mean).view(1, 3, 1, 1)
        self.std = torch.tensor(std).view(1, 3, 1, 1)

    def to(self, device: torch.device | str) -> ClipScorer:
        self.model.to(device)
        return self

    @classmethod
    def from_pretrained(cls, path: str | Path, frames: int = 8) -> ClipScorer:
        return cls(
            CLIPModel.from_pretrained(str(path)), AutoTokenizer.from_pretrained(str(path)), str(path), frames
        )

    @torch.no_grad()
    def embed_videos(self, videos: Sequence[np.ndarray]) -> torch.Tensor:
        device = next(self.model.parameters()).device
        x = _frames_tensor(videos, self.frames)
        b, f = x.shape[:2]
        x = F.interpolate(
            x.flatten(0, 1), size=(self.image_size, self.image_size), mode="bicubic", antialias=True
        )
        x = ((x.clamp(0, 1) - self.mean) / self.std).to(device)
        feats = _features(self.model.get_image_features(pixel_values=x))
        feats = F.normalize(feats, dim=-1).view(b, f, -1).mean(1)
        return F.normalize(feats, dim=-1)

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        device = next(self.model.parameters()).device
        max_length = self.model.config.text_config.max_position_embeddings
        tokens = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        feats = _features(self.model.get_text_features(**{k: v.to(device) for k, v in tokens.items()}))
        return F.normalize(feats, dim=-1)

    def save_pretrained(self, path: str | Path) -> None:
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)
        (Path(path) / META_FILE).write_text(
            json.dumps({"kind": "clip", "frames": self.frames}, indent=2) + "\n"
        )


def _features(out: torch.Tensor | object) -> torch.Tensor:
    """transformers 5 may return a model output where 4.x returned the pooled tensor."""
    if isinstance(out, torch.Tensor):
        return out
    pooled = getattr(out, "pooler_output", None)
    return pooled if pooled is not None else out[0]


def load_scorer(path: str | Path) -> VideoTextScorer:
    """A scorer folder written by ``save_pretrained``, or a plain ``CLIPModel`` checkpoint folder."""
    meta_file = Path(path) / META_FILE
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {"kind": "clip"}
    if meta["kind"] == "tiny":
        return TinyScorer.from_pretrained(path)
    return ClipScorer.from_pretrained(path, frames=meta.get("frames", 8))
