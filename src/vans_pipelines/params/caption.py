"""``parameters_caption.yml``: the captioner, the tokenizer and the video-text scorer."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from vans_pipelines.models.scorer import TinyScorerSpec
from vans_pipelines.params.base import Strict
from vans_pipelines.training.trainer import OptimConfig, TrainerConfig


class TokenizerParams(Strict):
    source: Literal["world", "pretrained"] = "world"
    path: str | None = None


class CaptionerParams(Strict):
    """A Qwen2.5-VL checkpoint that captions real target clips (not needed for the synthetic world)."""

    path: str | None = None
    prompt: str = "Describe the main event of this video in one sentence."
    max_new_tokens: int = Field(48, ge=1)
    batch_size: int = Field(4, ge=1)


class ScorerParams(Strict):
    kind: Literal["tiny", "clip"] = "tiny"
    path: str | None = None
    tiny: TinyScorerSpec = TinyScorerSpec()
    optim: OptimConfig = OptimConfig(lr=2e-3, warmup_steps=10)
    trainer: TrainerConfig = TrainerConfig(max_steps=400, batch_size=32, checkpoint_every_n_steps=100)


class CaptionParams(Strict):
    captioner: CaptionerParams = CaptionerParams()
    tokenizer: TokenizerParams = TokenizerParams()
    scorer: ScorerParams = ScorerParams()
