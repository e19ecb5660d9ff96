"""The vision-language model: Qwen2.5-VL through transformers, tiny from config or loaded from a path.

Every caller (SFT, GRPO, evaluation, the answer command) goes through :func:`video_inputs` for the video
and :meth:`VisionLanguageModel.prompt_ids` for the prompt, so a clip is seen the same way everywhere.
Answers follow the paper's ``[Think] reasoning [/Think] [Ans] caption [/Ans]`` format
(:mod:`vans_pipelines.models.answer_format`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import (
    AutoTokenizer,
    PreTrainedTokenizerBase,
    Qwen2_5_VLConfig,
    Qwen2_5_VLForConditionalGeneration,
)

from vans_pipelines.models.lora import (
    AdaptedModel,
    LoraSpec,
    load_lora,
)
from vans_pipelines.models.tokenizer import (
    IM_END,
    IM_START,
    IMAGE_PAD,
    VIDEO_PAD,
    VISION_END,
    VISION_START,
)
from vans_pipelines.models.vision_attention import portable_config, use_packed_vision_attention

META_FILE = "vans_vlm.json"
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


# -------------------------------------------------------------------------------------------- video input
@dataclass(frozen=True)
class VideoProcessing:
    """How a clip becomes Qwen2.5-VL vision patches (the numbers of its video processor)."""

    patch_size: int = 14
    temporal_patch_size: int = 2
    merge_size: int = 2
    image_mean: tuple[float, float, float] = OPENAI_CLIP_MEAN
    image_std: tuple[float, float, float] = OPENAI_CLIP_STD
    max_frames: int = 32
    max_pixels: int = 360 * 420
    fps: float = 2.0

    @property
    def factor(self) -> int:
        return self.patch_size * self.merge_size


def _resized(height: int, width: int, proc: VideoProcessing) -> tuple[int, int]:
    """Nearest sizes divisible by patch x merge with at most ``max_pixels`` (Qwen's smart resize)."""
    f = proc.factor
    h, w = max(f, round(height / f) * f), max(f, round(width / f) * f)
    if h * w > proc.max_pixels:
        scale = math.sqrt(height * width / proc.max_pixels)
        h = max(f, math.floor(height / scale / f) * f)
        w = max(f, math.floor(width / scale / f) * f)
    return h, w


def video_inputs(videos: Sequence[np.ndarray], proc: VideoProcessing) -> dict[str, torch.Tensor]:
    """Clips (uint8 ``[T, H, W, 3]`` each) → ``pixel_values_videos``, ``video_grid_thw``,
    ``second_per_grid_ts`` as Qwen2.5-VL's forward takes them.

    At most ``max_frames`` frames are taken uniformly; the count is padded to a multiple of the temporal
    patch by repeating the last frame; frames are resized to multiples of patch x merge and normalised.

    >>> out = video_inputs([np.zeros((16, 32, 32, 3), np.uint8)], VideoProcessing(patch_size=8))
    >>> out["video_grid_thw"].tolist(), tuple(out["pixel_values_videos"].shape)
    ([[8, 4, 4]], (128, 384))
    """
    ps, tps, ms = proc.patch_size, proc.temporal_patch_size, proc.merge_size
    mean = torch.tensor(proc.image_mean).view(1, 3, 1, 1)
    std = torch.tensor(proc.image_std).view(1, 3, 1, 1)
    patches, grids, seconds = [], [], []
    for clip in videos:
        if clip.ndim != 4 or clip.shape[-1] != 3:
            raise ValueError(f"expected a clip [frames, height, width, 3], got shape {clip.shape}")
        t = clip.shape[0]
        keep = np.linspace(0, t - 1, min(t, proc.max_frames)).round().astype(int)
        frames = torch.from_numpy(np.ascontiguousarray(clip[keep])).permute(0, 3, 1, 2).float() / 255.0
        if frames.shape[0] % tps:
            pad = tps - frames.shape[0] % tps
            frames = torch.cat([frames, frames[-1:].expand(pad, -1, -1, -1)])
        h, w = _resized(frames.shape[2], frames.shape[3], proc)
        if (h, w) != tuple(frames.shape[2:]):
            frames = F.interpolate(frames, size=(h, w), mode="bicubic", antialias=True, align_corners=False)
        frames = (frames.clamp(0, 1) - mean) / std
        gt, gh, gw = frames.shape[0] // tps, h // ps, w // ps
        p = frames.view(gt, tps, 3, gh // ms, ms, ps, gw // ms, ms, ps)
        p = p.permute(0, 3, 6, 4, 7, 2, 1, 5, 8).reshape(gt * gh * gw, 3 * tps * ps * ps)
        patches.append(p)
        grids.append([gt, gh, gw])
        # Frames kept per second of the source clip decide the time spacing of the temporal grid.
        kept_fps = proc.fps * len(keep) / t
        seconds.append(tps / kept_fps)
    return {
        "pixel_values_videos": torch.cat(patches),
        "video_grid_thw": torch.tensor(grids, dtype=torch.long),
        "second_per_grid_ts": torch.tensor(seconds, dtype=torch.float32),
    }


def prompt_text(question: str) -> str:
    """Qwen2.5-VL's chat layout with one video placeholder (expanded later to the video's token count)."""
    return f"{IM_START}user\n{VISION_START}{VIDEO_PAD}{VISION_END}{question}{IM_END}\n{IM_START}assistant\n"


# ------------------------------------------------------------------------------------------------- model
@dataclass
class Generation:
    """Sampled answers: text, plus the token ids GRPO needs (``prompt_length`` shared, left-padded)."""

    texts: list[str]
    sequences: torch.Tensor  # [B * n, prompt_length + new]
    prompt_length: int
    completion_mask: torch.Tensor  # [B * n, new], 1 up to and including the end token


@dataclass
class VisionLanguageModel(AdaptedModel):
    """A Qwen2.5-VL model, its tokenizer and its video processing, saved and loaded as one folder."""

    model: Qwen2_5_VLForConditionalGeneration
    tokenizer: PreTrainedTokenizerBase
    processing: VideoProcessing
    base_path: str | None = None  # where the base weights live when only an adapter is saved
    lora: LoraSpec | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        use_packed_vision_attention(self.model)

    # ------------------------------------------------------------------ prompts and batches
    @property
    def video_token_id(self) -> int:
        return int(self.model.config.video_token_id)

    @property
    def end_token_id(self) -> int:
        return int(self.tokenizer.convert_tokens_to_ids(IM_END))

    @property
    def pad_token_id(self) -> int:
        pad = self.tokenizer.pad_token_id
        return int(pad if pad is not None else self.end_token_id)

    @property
    def vision_token_ids(self) -> list[int]:
        """Tokens that only the prompt may hold: a sampled one would ask the model for a second video."""
        ids = self.tokenizer.convert_tokens_to_ids([VIDEO_PAD, IMAGE_PAD, VISION_START, VISION_END])
        return sorted({int(i) for i in ids if i is not None and i != self.tokenizer.unk_token_id})

    def prompt_ids(self, question: str, grid_thw: Sequence[int]) -> list[int]:
        ids = self.tokenizer(prompt_text(question), add_special_tokens=False)["input_ids"]
        n_video = int(np.prod(grid_thw)) // self.processing.merge_size**2
        if ids.count(self.video_token_id) != 1:
            raise ValueError(f"the tokenizer does not keep {VIDEO_PAD} as one token")
        at = ids.index(self.video_token_id)
        return ids[:at] + [self.video_token_id] * n_video + ids[at + 1 :]

    def answer_ids(self, answer: str) -> list[int]:
        return self.tokenizer(" " + answer, add_special_tokens=False)["input_ids"] + [self.end_token_id]

    def batch(
        self,
        videos: Sequence[np.ndarray],
        questions: Sequence[str],
        answers: Sequence[str] | None = None,
    ) -> dict[str, torch.Tensor]:
        """Model inputs for a batch. With ``answers``: right-padded, ``labels`` on answer tokens only;
        without: left-padded prompts for generation."""
        vision = video_inputs(videos, self.processing)
        prompts = [
            self.prompt_ids(q, g) for q, g in zip(questions, vision["video_grid_thw"].tolist(), strict=True)
        ]
        if answers is None:
            rows, labels = prompts, None
        else:
            targets = [self.answer_ids(a) for a in answers]
            rows = [p + t for p, t in zip(prompts, targets, strict=True)]
            labels = [[-100] * len(p) + t for p, t in zip(prompts, targets, strict=True)]
        width = max(len(r) for r in rows)
        left = answers is None
        input_ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        label_t = torch.full((len(rows), width), -100, dtype=torch.long)
        for i, row in enumerate(rows):
            span = slice(width - len(row), width) if left else slice(0, len(row))
            input_ids[i, span] = torch.tensor(row)
            attention[i, span] = 1
            if labels is not None:
                label_t[i, span] = torch.tensor(labels[i])
        out = {"input_ids": input_ids, "attention_mask": attention, **vision}
        if labels is not None:
            out["labels"] = label_t
        return out

    # ------------------------------------------------------------------ inference
    def to(self, device: torch.device | str) -> VisionLanguageModel:
        self.model.to(device)
        return self

    @torch.no_grad()
    def generate(
        self,
        videos: Sequence[np.ndarray],
        questions: Sequence[str],
        *,
        max_new_tokens: int = 64,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        num_return_sequences: int = 1,
        generator_seed: int | None = None,
    ) -> Generation:
        """Answers for each (video, question); ``num_return_sequences`` per input, grouped per input."""
        device = next(self.model.parameters()).device
        inputs = {k: v.to(device) for k, v in self.batch(videos, questions).items()}
        if generator_seed is not None:
            torch.manual_seed(generator_seed)
        was_training = self.model.training
        self.model.eval()
        try:
            sequences = self.model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=do_sample,
                temperature=temperature if do_sample else None,
                top_p=top_p if do_sample else None,
                top_k=None,
                num_return_sequences=num_return_sequences,
                suppress_tokens=self.vision_token_ids,
                eos_token_id=self.end_token_id,
                pad_token_id=self.pad_token_id,
            )
        finally:
            self.model.train(was_training)
        prompt_length = inputs["input_ids"].shape[1]
        completion = sequences[:, prompt_length:]
        is_end = completion == self.end_token_id
        # Everything after the first end token is padding.
        after_end = (is_end.cumsum(dim=1) - is_end.long()) > 0
        mask = (~after_end).long()
        texts = [
            self.tokenizer.decode(row[m.bool()], skip_special_tokens=True).strip()
            for row, m in zip(completion, mask, strict=True)
        ]
        return Generation(texts, sequences, prompt_length, mask)

    # ------------------------------------------------------------------ adapters and persistence
    def adapted_module(self) -> torch.nn.Module:
        return self.model

    def save_pretrained(self, path: str | Path) -> None:
        """Full weights, or (with LoRA) the adapter plus a reference to the base weights (copied under
        ``base/`` when the base has no folder of its own, e.g. a tiny model built in memory)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        build_base = partial(Qwen2_5_VLForConditionalGeneration, portable_config(self.model.config))
        base_ref = self.save_weights(path, ".", "adapter", "base", build_base)
        self.tokenizer.save_pretrained(path)
        meta = {"processing": asdict(self.processing), "base": base_ref, "extra": self.extra}
        (path / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")

    @classmethod
    def from_pretrained(cls, path: str | Path, *, dtype: str | torch.dtype = "auto") -> VisionLanguageModel:
        """A folder written by :meth:`save_pretrained`, or a plain Qwen2.5-VL checkpoint (folder or cached
        hub id), whose video settings are then read from its preprocessor config."""
        local = Path(path)
        meta_file = local / META_FILE
        if meta_file.is_file():
            meta = json.loads(meta_file.read_text())
            processing = VideoProcessing(
                **{k: tuple(v) if isinstance(v, list) else v for k, v in meta["processing"].items()}
            )
            base = meta.get("base")
            base_dir = (local / base) if base and (local / base).is_dir() else base
            model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(base_dir or local), dtype=dtype)
            vlm = cls(
                model, AutoTokenizer.from_pretrained(str(local)), processing, extra=meta.get("extra", {})
            )
            if base:
                vlm.lora = load_lora(model, local / "adapter")
                vlm.base_path = None if base == "base" else str(base)
            return vlm
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(path), dtype=dtype)
        return cls(
            model,
            AutoTokenizer.from_pretrained(str(path)),
            _processing_of(path, model.config),
            base_path=str(path),
        )


def _processing_of(path: str | Path, config: Qwen2_5_VLConfig) -> VideoProcessing:
    """Video settings of a released checkpoint (its ``preprocessor_config.json``), else its vision config."""
    vision = config.vision_config
    settings: dict[str, Any] = {
        "patch_size": vision.patch_size,
        "temporal_patch_size": vision.temporal_patch_size,
        "merge_size": vision.spatial_merge_size,
    }
    for name in ("video_preprocessor_config.json", "preprocessor_config.json"):
        file = Path(path) / name
        if file.is_file():
            raw = json.loads(file.read_text())
            for key in ("patch_size", "temporal_patch_size", "merge_size", "max_pixels"):
                if key in raw:
                    settings[key] = raw[key]
            for key in ("image_mean", "image_std"):
                if key in raw:
                    settings[key] = tuple(raw[key])
            break
    return VideoProcessing(**settings)
