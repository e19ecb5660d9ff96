"""``parameters_caption.yml``: the captioner, the tokenizer and the video-text scorer."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from vans_pipelines.models.scorer import TinyScorerSpec
from vans_pipelines.params.base import Strict
from vans_pipelines.training.trainer import OptimConfig, TrainerConfig


class TokenizerParams(Strict):
    source: Literal["world", "pretrained"]
    path: str | None


class CaptionerParams(Strict):
    """A Qwen2.5-VL checkpoint that captions real target clips (not needed for the synthetic world)."""

    path: str | None
    prompt: str
    max_new_tokens: int = Field(ge=1)
    batch_size: int = Field(ge=1)


class ScorerParams(Strict):
    kind: Literal["tiny", "clip"]
    path: str | None
    tiny: TinyScorerSpec
    optim: OptimConfig
    trainer: TrainerConfig


class CaptionParams(Strict):
    captioner: CaptionerParams
    tokenizer: TokenizerParams
    scorer: ScorerParams
