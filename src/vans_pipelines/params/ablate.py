"""``parameters_ablate.yml``: the ablation recipes, as overrides of the stage sections."""

from __future__ import annotations

from typing import Any

from pydantic import Field, ValidationError, model_validator

from vans_pipelines.params.base import ParameterError, Strict, format_errors, merge
from vans_pipelines.params.grpo_vdm import GRPOVDMParams
from vans_pipelines.params.grpo_vlm import GRPOVLMParams
from vans_pipelines.rl.rewards import check_reward_names


class AblationVariant(Strict):
    """One recipe of the ablation, as overrides of the stage sections (no code forks): ``stage1`` merged
    into ``grpo_vlm`` (``null``: the SFT VLM is kept), ``stage2`` into ``grpo_vdm`` (``null``: the SFT VDM
    is kept; its anchors come from this recipe's VLM), or ``cascade``: one GRPO loop over both models
    (VLM side from ``grpo_vlm``, VDM side from ``grpo_vdm``) with this one reward. A ``rewards`` override
    replaces the stage's rewards whole."""

    # A recipe names only what it changes (its fields are not stage defaults).
    label: str = ""
    stage1: dict[str, Any] | None = None
    stage2: dict[str, Any] | None = None
    cascade: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _valid(self) -> AblationVariant:
        if self.cascade is not None and (self.stage1 is not None or self.stage2 is not None):
            raise ValueError(
                "cascade: a cascade recipe trains both models in one loop; give no stage1/stage2"
            )
        if self.cascade is None and self.stage1 is None and self.stage2 is None:
            raise ValueError("stage1: a recipe trains something (stage1, stage2 or cascade)")
        if self.cascade is not None:
            unknown = set(self.cascade) - {"rewards", "max_steps", "num_iterations"}
            if unknown:
                raise ValueError(
                    f"cascade: unknown keys {sorted(unknown)} (known: max_steps, num_iterations, rewards)"
                )
            errors = check_reward_names(self.cascade.get("rewards", {}), "cascade.rewards")
            if "rewards" not in self.cascade:
                errors.append("cascade.rewards: the cascade's one reward must be given")
            if int(self.cascade.get("max_steps", 1)) < 1:
                errors.append(f"cascade.max_steps: must be >= 1, got {self.cascade['max_steps']}")
            if errors:
                raise ValueError("; ".join(errors))
        return self


class AblationEvalParams(Strict):
    """Each recipe's cascade on the test split, as the evaluate stage measures it (fewer noise seeds: the
    training seeds carry the spread)."""

    seeds: list[int] = Field(min_length=1)
    num_steps: int = Field(ge=1)
    max_new_tokens: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    limit: int | None = Field(ge=2)


class AblateParams(Strict):
    """The ablate stage: every recipe trained from the same SFT models for each training seed, evaluated on
    the test split, compared with ``baseline`` (paired) and checked against the paper's claims."""

    seeds: list[int] = Field(min_length=1)
    baseline: str
    # Stage-2 anchors of the first N train samples (null: all); a stage-2 run draws far fewer prompts
    # (steps x batch / updates per rollout) than the train split holds.
    anchor_pool: int | None = Field(ge=1)
    # Ablation runs log here, not under run.log_dir: the training stages' folder (which evaluate's curves
    # and its DVC dependency read) stays as the default run left it
    log_dir: str
    # torch.compile the VDM's transformer and VAE decoder in every run and evaluation
    # (VideoDiffusionModel.compile): equal to eager up to float rounding, not bitwise
    compile_vdm: bool
    variants: dict[str, AblationVariant] = Field(min_length=1)
    eval: AblationEvalParams

    @model_validator(mode="after")
    def _valid(self) -> AblateParams:
        if self.baseline not in self.variants:
            raise ValueError(
                f"baseline: {self.baseline!r} is not a variant (variants: {sorted(self.variants)})"
            )
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: repeated training seeds {self.seeds}")
        return self


def resolve_variant(
    name: str, variant: AblationVariant, grpo_vlm: GRPOVLMParams, grpo_vdm: GRPOVDMParams, seed: int
) -> tuple[GRPOVLMParams | None, GRPOVDMParams | None]:
    """A recipe's typed stage sections for one training seed (``None`` where the SFT model is kept);
    :class:`ParameterError` naming ``ablate.variants.<name>.<stage>`` when an override is invalid. A cascade
    recipe's sections are both stages' settings with its reward and steps applied to the loop."""

    def resolve(section: str, base: Strict, overrides: dict[str, Any] | None, key: str):
        if overrides is None:
            return None
        # Ablation runs log no TensorBoard samples (GIFs of dozens of runs); their scalars remain.
        raw = merge(base.model_dump(), merge(overrides, {"trainer": {"seed": seed}, "log_samples_every": 0}))
        try:
            return {"grpo_vlm": GRPOVLMParams, "grpo_vdm": GRPOVDMParams}[section].model_validate(raw)
        except ValidationError as err:
            lines = format_errors(err, f"ablate.variants.{name}.{key}")
            raise ParameterError("invalid parameters:\n  " + "\n  ".join(lines)) from None

    if variant.cascade is not None:
        loop: dict[str, Any] = {"rewards": variant.cascade["rewards"]}
        if "max_steps" in variant.cascade:
            loop["trainer"] = {"max_steps": variant.cascade["max_steps"]}
        if "num_iterations" in variant.cascade:
            loop["grpo"] = {"num_iterations": variant.cascade["num_iterations"]}
        return resolve("grpo_vlm", grpo_vlm, loop, "cascade"), resolve("grpo_vdm", grpo_vdm, {}, "cascade")
    return (
        resolve("grpo_vlm", grpo_vlm, variant.stage1, "stage1"),
        resolve("grpo_vdm", grpo_vdm, variant.stage2, "stage2"),
    )
