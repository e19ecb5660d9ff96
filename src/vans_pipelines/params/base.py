"""What every parameter section shares: strict frozen models, the error that names a key, range checks
the library configs leave to their callers."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vans_pipelines.models.lora import LoraSpec
from vans_pipelines.rl.grpo import GRPOConfig
from vans_pipelines.rl.rewards import check_reward_names
from vans_pipelines.training.trainer import OptimConfig, TrainerConfig

Family = Literal["procedural", "predictive"]


class ParameterError(ValueError):
    """A parameter value is missing or wrong; the message names the key."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_grpo_lora(lora: LoraSpec) -> None:
    """GRPO's ratio compares the update's log-probs with the rollout's: with LoRA dropout the two passes
    drop different units, so on the first iteration the ratio is no longer exactly 1."""
    if lora.dropout > 0:
        raise ValueError(
            f"lora.dropout: must be 0 in a GRPO stage (dropout makes the on-policy ratio differ from 1), "
            f"got {lora.dropout}"
        )


class RewardWeights(Strict):
    """Mixin: ``rewards`` is ``{registered reward name: weight >= 0}``, at least one weight > 0."""

    @model_validator(mode="after")
    def _known_rewards(self):
        errors = check_reward_names(self.rewards, "rewards")
        if errors:
            raise ValueError("; ".join(errors))
        return self


class GRPOStageParams(RewardWeights):
    """What both Joint-GRPO stage sections hold (each stage sets its own defaults): the LoRA adapter it
    trains (no dropout, see :func:`check_grpo_lora`), the algorithm, the reward weights, the optimiser and
    trainer, and every how many steps TensorBoard gets sample captions and videos (0: never)."""

    lora: LoraSpec
    grpo: GRPOConfig
    rewards: dict[str, float]
    optim: OptimConfig
    trainer: TrainerConfig
    log_samples_every: int = Field(ge=0)

    @model_validator(mode="after")
    def _grpo_lora(self):
        check_grpo_lora(self.lora)
        return self


def format_errors(err: ValidationError, section: str) -> list[str]:
    lines = []
    for e in err.errors():
        key = ".".join([section, *(str(p) for p in e["loc"])])
        if e["type"] == "value_error":
            # Validators here and in the library configs write "<field>: <problem>; ..."
            for part in str(e["msg"]).removeprefix("Value error, ").split("; "):
                named = re.match(r"^([\w.]+): (.*)$", part, re.S)
                lines.append(f"{key}.{named[1]}: {named[2]}" if named else f"{key}: {part}")
            continue
        lines.append(
            f"{key}: {e['msg']} (got {e.get('input')!r})" if e["type"] != "missing" else f"{key}: missing"
        )
    return lines


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``overrides`` merged in, nested dicts key by key (a tuned params section)."""
    out = copy.deepcopy(dict(base))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) and key != "rewards":
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out
