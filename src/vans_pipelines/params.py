"""Typed parameters: every ``conf/<env>/parameters_*.yml`` section the code reads has a model here.

:func:`validate_parameters` runs from a Kedro hook before any node, so a bad value fails the run at once
with the offending key spelled out (e.g. ``ingest.clip.height``) instead of deep inside a node.
Unknown keys are errors too: a typo must not silently fall back to a default.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from vans_pipelines.models.lora import LoraSpec
from vans_pipelines.models.scorer import TinyScorerSpec
from vans_pipelines.models.vdm import Conditioning, TinyVDMSpec, latent_frames
from vans_pipelines.models.vlm import TinyVLMSpec
from vans_pipelines.rl.flow_sde import SDEConfig
from vans_pipelines.rl.grpo import GRPOConfig
from vans_pipelines.rl.rewards import check_reward_names
from vans_pipelines.training.grpo_vlm import SamplingConfig
from vans_pipelines.training.trainer import OptimConfig, RunPaths, TrainerConfig

Family = Literal["procedural", "predictive"]


class ParameterError(ValueError):
    """A parameter value is missing or wrong; the message names the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VideoGeometry(_Strict):
    """What the video diffusion model can divide: every clip size is checked against it.

    The embedded tiny VAE keeps time (temporal factor 1); Wan2.1's VAE compresses time by 4, so its
    clips have 4k + 1 frames."""

    vae_spatial_factor: int = Field(8, ge=1)
    vae_temporal_factor: int = Field(1, ge=1)
    patch_size: tuple[int, int, int] = (1, 2, 2)

    @model_validator(mode="after")
    def _positive_patch(self) -> VideoGeometry:
        if min(self.patch_size) < 1:
            raise ValueError(f"patch_size entries must be >= 1, got {list(self.patch_size)}")
        return self


class ClipSpec(_Strict):
    context_frames: int = Field(16, ge=2)
    target_frames: int = Field(16, ge=2)
    height: int = Field(32, ge=1)
    width: int = Field(32, ge=1)
    fps: float = Field(8.0, gt=0)

    def geometry_errors(self, geometry: VideoGeometry, prefix: str) -> list[str]:
        """Why the VDM could not take clips of this size (empty when it can)."""
        errors = []
        spatial = geometry.vae_spatial_factor
        for key, value, patch in (
            ("height", self.height, geometry.patch_size[1]),
            ("width", self.width, geometry.patch_size[2]),
        ):
            if value % (spatial * patch):
                errors.append(
                    f"{prefix}.{key}: {value} is not divisible by vae_spatial_factor x patch = "
                    f"{spatial} x {patch} = {spatial * patch}"
                )
        for key in ("context_frames", "target_frames"):
            frames = getattr(self, key)
            tf = geometry.vae_temporal_factor
            if tf > 1 and (frames - 1) % tf:
                errors.append(f"{prefix}.{key}: {frames} frames; the VAE needs {tf}k + 1 frames")
            latent = latent_frames(frames, tf)
            if latent % geometry.patch_size[0]:
                errors.append(
                    f"{prefix}.{key}: {latent} latent frames are not divisible by the temporal patch "
                    f"{geometry.patch_size[0]}"
                )
        return errors


class SyntheticSource(_Strict):
    num_train: int = Field(192, ge=0)
    num_val: int = Field(48, ge=0)
    num_test: int = Field(48, ge=0)
    families: list[Family] = Field(default_factory=lambda: ["procedural", "predictive"], min_length=1)
    # Objects must fit side by side in the tray; taller-than-wide frames squeeze them together.
    max_aspect: float = Field(1.2, gt=0)


class VideosSource(_Strict):
    default_family: Family = "predictive"
    shot_threshold: float = Field(27.0, gt=0)
    min_shot_seconds: float = Field(0.5, ge=0)
    max_pairs_per_video: int | None = Field(None, ge=1)
    val_fraction: float = Field(0.1, ge=0, lt=1)
    test_fraction: float = Field(0.1, ge=0, lt=1)

    @model_validator(mode="after")
    def _fractions(self) -> VideosSource:
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(
                f"val_fraction + test_fraction must leave videos for training, got "
                f"{self.val_fraction} + {self.test_fraction}"
            )
        return self


class IngestParams(_Strict):
    source: Literal["synthetic", "videos"] = "synthetic"
    seed: int = 0
    clip: ClipSpec = ClipSpec()
    synthetic: SyntheticSource = SyntheticSource()
    videos: VideosSource = VideosSource()


def _check_grpo_lora(lora: LoraSpec) -> None:
    """GRPO's ratio compares the update's log-probs with the rollout's: with LoRA dropout the two passes
    drop different units, so on the first iteration the ratio is no longer exactly 1."""
    if lora.dropout > 0:
        raise ValueError(
            f"lora.dropout: must be 0 in a GRPO stage (dropout makes the on-policy ratio differ from 1), "
            f"got {lora.dropout}"
        )


def _check_training(trainer: TrainerConfig, optim: OptimConfig | None = None) -> None:
    """Range checks the library dataclasses leave to their callers."""
    for key in (
        "max_steps",
        "batch_size",
        "accumulate_grad_batches",
        "checkpoint_every_n_steps",
        "num_nodes",
    ):
        if getattr(trainer, key) < 1:
            raise ValueError(f"trainer.{key}: must be >= 1, got {getattr(trainer, key)}")
    if optim is not None:
        if optim.lr <= 0:
            raise ValueError(f"optim.lr: must be > 0, got {optim.lr}")
        if optim.schedule not in ("cosine", "linear", "constant"):
            raise ValueError(f"optim.schedule: must be cosine, linear or constant, got {optim.schedule!r}")


class RunParams(_Strict):
    """Where Lightning writes TensorBoard runs (one folder per Kedro run) and resumable checkpoints."""

    log_dir: str = "data/07_model_output/tensorboard"
    checkpoint_dir: str = "data/06_models/resume"

    def context(self, run_id: str, project_path: str) -> RunContext:
        """This run's context (a hook builds it for the nodes); relative folders are under the project."""
        root = Path(project_path)
        paths = RunPaths(str(root / self.log_dir), str(root / self.checkpoint_dir), run_id)
        return RunContext(run_id, str(root), paths)


@dataclass(frozen=True)
class RunContext:
    """What a Kedro run tells its nodes: its id, the project folder, and where training writes
    TensorBoard runs and resumable checkpoints (``paths``)."""

    run_id: str
    project_path: str
    paths: RunPaths

    def logging_to(self, log_dir: str) -> RunPaths:
        """``paths`` with TensorBoard runs under ``log_dir`` instead (relative: under the project), for
        stages that keep their runs apart from the training stages' (tune, ablate)."""
        return replace(self.paths, log_dir=str(Path(self.project_path) / log_dir))


class ModelSource(_Strict):
    """``tiny``: random-init from the real config class (embedded default); ``pretrained``: a checkpoint
    folder or a hub id already in the local Hugging Face cache."""

    source: Literal["tiny", "pretrained"] = "tiny"
    path: str | None = None

    @model_validator(mode="after")
    def _path_given(self) -> ModelSource:
        if self.source == "pretrained" and not self.path:
            raise ValueError("source 'pretrained' needs a path")
        return self


class TokenizerParams(_Strict):
    source: Literal["world", "pretrained"] = "world"
    path: str | None = None


class CaptionerParams(_Strict):
    """A Qwen2.5-VL checkpoint that captions real target clips (not needed for the synthetic world)."""

    path: str | None = None
    prompt: str = "Describe the main event of this video in one sentence."
    max_new_tokens: int = Field(48, ge=1)
    batch_size: int = Field(4, ge=1)


class ScorerParams(_Strict):
    kind: Literal["tiny", "clip"] = "tiny"
    path: str | None = None
    tiny: TinyScorerSpec = TinyScorerSpec()
    optim: OptimConfig = OptimConfig(lr=2e-3, warmup_steps=10)
    trainer: TrainerConfig = TrainerConfig(max_steps=300, batch_size=32)

    @model_validator(mode="after")
    def _valid(self) -> ScorerParams:
        if self.kind == "clip" and not self.path:
            raise ValueError("kind 'clip' needs a path to a CLIPModel checkpoint")
        _check_training(self.trainer, self.optim)
        return self


class CaptionParams(_Strict):
    captioner: CaptionerParams = CaptionerParams()
    tokenizer: TokenizerParams = TokenizerParams()
    scorer: ScorerParams = ScorerParams()


class VLMEvalParams(_Strict):
    max_new_tokens: int = Field(48, ge=1)
    limit: int | None = Field(None, ge=1)


class VLMParams(_Strict):
    model: ModelSource = ModelSource()
    tiny: TinyVLMSpec = TinyVLMSpec()
    finetune: Literal["full", "lora"] = "full"
    lora: LoraSpec = LoraSpec()
    optim: OptimConfig = OptimConfig(lr=2e-3, warmup_steps=20)
    trainer: TrainerConfig = TrainerConfig(max_steps=600, batch_size=16)
    eval: VLMEvalParams = VLMEvalParams()

    @model_validator(mode="after")
    def _valid(self) -> VLMParams:
        _check_training(self.trainer, self.optim)
        return self


class VAEFitParams(_Strict):
    """Fitting the tiny VAE on single frames; 0 steps keeps a pretrained VAE as it is."""

    steps: int = Field(1200, ge=0)
    batch_frames: int = Field(8, ge=1)
    lr: float = Field(3e-3, gt=0)
    kl_weight: float = Field(1e-6, ge=0)
    # Pixels away from their frame's dominant colour (the world's objects on its background) weigh
    # this much more in the reconstruction loss, so that small objects are not averaged away.
    foreground_weight: float = Field(10.0, ge=1)
    # Frames whose latents set the VAE's latents_mean / latents_std after the fit.
    stats_frames: int = Field(1024, ge=2)


class VDMEvalParams(_Strict):
    num_steps: int = Field(10, ge=1)
    limit: int | None = Field(None, ge=1)


class VDMParams(_Strict):
    model: ModelSource = ModelSource()
    tiny: TinyVDMSpec = TinyVDMSpec()
    conditioning: Conditioning = Conditioning()
    finetune: Literal["full", "lora"] = "full"
    lora: LoraSpec = LoraSpec(target_modules=("to_q", "to_k", "to_v", "to_out.0"))
    train_text_encoder: bool = True
    # Encode every train clip's latents once before training instead of every step (memory:
    # train clips x latent size; off for paper-size data).
    cache_latents: bool = True
    vae_fit: VAEFitParams = VAEFitParams()
    optim: OptimConfig = OptimConfig(lr=1e-3, warmup_steps=20)
    trainer: TrainerConfig = TrainerConfig(max_steps=400, batch_size=16)
    eval: VDMEvalParams = VDMEvalParams()

    @model_validator(mode="after")
    def _valid(self) -> VDMParams:
        _check_training(self.trainer, self.optim)
        if self.conditioning.context_frames < 1:
            raise ValueError(
                f"conditioning.context_frames: must be >= 1, got {self.conditioning.context_frames}"
            )
        return self


class SFTParams(_Strict):
    vlm: VLMParams = VLMParams()
    vdm: VDMParams = VDMParams()


class RewardWeights(_Strict):
    """Mixin: ``rewards`` is ``{registered reward name: weight >= 0}``, at least one weight > 0."""

    @model_validator(mode="after")
    def _known_rewards(self):
        errors = check_reward_names(self.rewards, "rewards")
        if errors:
            raise ValueError("; ".join(errors))
        return self


class GRPOVLMEvalParams(_Strict):
    """Val figures before / after stage 1: greedy answers, each rendered once per seed."""

    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    limit: int | None = Field(None, ge=1)
    max_new_tokens: int = Field(48, ge=1)


class GRPOVLMParams(RewardWeights):
    """Joint-GRPO stage 1: the SFT VLM gets a LoRA adapter trained by GRPO against the frozen SFT VDM."""

    lora: LoraSpec = LoraSpec()
    grpo: GRPOConfig = GRPOConfig()
    rewards: dict[str, float] = Field(
        default_factory=lambda: {"format": 0.2, "text_fidelity": 1.0, "video_fidelity": 1.0}
    )
    sampling: SamplingConfig = SamplingConfig()
    render_steps: int = Field(4, ge=1)  # the frozen VDM's steps per reward render
    optim: OptimConfig = OptimConfig(lr=5e-4, warmup_steps=0, schedule="constant")
    trainer: TrainerConfig = TrainerConfig(max_steps=40, batch_size=4, checkpoint_every_n_steps=10)
    log_samples_every: int = Field(10, ge=0)
    eval: GRPOVLMEvalParams = GRPOVLMEvalParams()

    @model_validator(mode="after")
    def _valid(self) -> GRPOVLMParams:
        _check_training(self.trainer, self.optim)
        _check_grpo_lora(self.lora)
        return self


class AnchorParams(_Strict):
    """Stage 2's anchor captions, written by the stage-1 VLM (greedy); the paper keeps an anchor only when
    its ROUGE-L to the ground-truth caption is at least 0.6."""

    min_rouge_l: float = Field(0.6, ge=0, le=1)
    max_new_tokens: int = Field(48, ge=1)


class GRPOVDMEvalParams(_Strict):
    """Val figures before / after stage 2: ODE samples from every val anchor, ``draws`` noise draws per
    anchor for each seed (a seed's figure is the mean over anchors and draws)."""

    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    draws: int = Field(1, ge=1)
    limit: int | None = Field(None, ge=1)
    num_steps: int = Field(10, ge=1)  # ODE (deployed) sampler steps


class GRPOVDMParams(RewardWeights):
    """Joint-GRPO stage 2: the SFT VDM gets a LoRA adapter trained by Flow-GRPO on the anchors."""

    lora: LoraSpec = LoraSpec(target_modules=("to_q", "to_k", "to_v", "to_out.0"))
    grpo: GRPOConfig = GRPOConfig()
    rewards: dict[str, float] = Field(
        default_factory=lambda: {"video_fidelity": 1.0, "semantic_alignment": 1.0, "context_consistency": 0.0}
    )
    sde: SDEConfig = SDEConfig()
    anchors: AnchorParams = AnchorParams()
    optim: OptimConfig = OptimConfig(lr=5e-4, warmup_steps=0, schedule="constant")
    trainer: TrainerConfig = TrainerConfig(max_steps=40, batch_size=4, checkpoint_every_n_steps=10)
    log_samples_every: int = Field(10, ge=0)
    eval: GRPOVDMEvalParams = GRPOVDMEvalParams()

    @model_validator(mode="after")
    def _valid(self) -> GRPOVDMParams:
        _check_training(self.trainer, self.optim)
        _check_grpo_lora(self.lora)
        if self.sde.noise_level <= 0:
            # 0 is the deterministic ODE sampler: its steps have no log-probability to train on.
            raise ValueError(
                f"sde.noise_level: must be > 0 for stage-2 training (a stochastic step's log-prob is "
                f"what GRPO trains on; 0 is the ODE sampler), got {self.sde.noise_level}"
            )
        return self


class FVDParams(_Strict):
    """The FVD feature extractor: the run's scorer (default) or a transformers video model folder
    (``pretrained``, e.g. VideoMAE on Kinetics); the report names whichever is used."""

    kind: Literal["scorer", "pretrained"] = "scorer"
    path: str | None = None

    @model_validator(mode="after")
    def _valid(self) -> FVDParams:
        if self.kind == "pretrained" and not self.path:
            raise ValueError("path: a pretrained FVD feature extractor needs a model folder")
        return self


class GridParams(_Strict):
    samples: int = Field(4, ge=1)  # test samples (rows) in the video grid
    scale: int = Field(4, ge=1)  # nearest-neighbour upscaling of each cell


class EvaluateParams(_Strict):
    """The evaluate stage: which systems, how many seeds (diffusion noise), sampler steps, FVD features."""

    systems: list[str] = Field(
        default_factory=lambda: ["vlm_only", "sft_cascade", "stage1_only", "stage2_only", "joint_grpo"],
        min_length=1,
    )
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    num_steps: int = Field(10, ge=1)
    max_new_tokens: int = Field(48, ge=1)
    batch_size: int = Field(32, ge=1)
    limit: int | None = Field(None, ge=2)
    fvd: FVDParams = FVDParams()
    grid: GridParams = GridParams()
    curve_tags: list[str] = Field(default_factory=lambda: ["reward/total/mean"], min_length=1)

    @model_validator(mode="after")
    def _valid(self) -> EvaluateParams:
        from vans_pipelines.evaluation.systems import system_by_name

        system_by_name(self.systems, key="systems")
        return self


class TuneSearchSpace(_Strict):
    """Ranges Optuna samples from: each reward weight in ``[0, weight_max]`` and, when given, the learning
    rate (log scale), group size and KL beta."""

    rewards: list[str] = Field(
        default_factory=lambda: ["format", "text_fidelity", "video_fidelity"], min_length=1
    )
    weight_max: float = Field(2.0, gt=0)
    lr: tuple[float, float] | None = (1e-4, 2e-3)
    group_size: list[int] | None = Field(default_factory=lambda: [4, 8])
    beta: tuple[float, float] | None = (0.0, 0.05)

    @model_validator(mode="after")
    def _valid(self) -> TuneSearchSpace:
        errors = []
        if self.lr is not None and not 0 < self.lr[0] < self.lr[1]:
            errors.append(f"lr: need 0 < low < high, got {self.lr}")
        if self.beta is not None and not 0 <= self.beta[0] <= self.beta[1]:
            errors.append(f"beta: need 0 <= low <= high, got {self.beta}")
        if self.group_size is not None and (not self.group_size or min(self.group_size) < 2):
            errors.append(f"group_size: every choice must be >= 2, got {self.group_size}")
        if errors:
            raise ValueError("; ".join(errors))
        return self


class TuneParams(_Strict):
    """The tune stage: an Optuna study (TPE, median pruning) of short stage-1 runs scored on val by a fixed
    objective (so trials with different reward weights are comparable)."""

    study_name: str = "grpo_vlm_rewards"
    n_trials: int = Field(8, ge=1)  # the study's target; a resumed study runs only the missing trials
    seed: int = 0
    steps: int = Field(8, ge=1)  # stage-1 steps per trial
    report_every: int = Field(4, ge=1)  # steps between intermediate val scores (pruning)
    pruner_startup_trials: int = Field(2, ge=0)
    pruner_warmup_steps: int = Field(0, ge=0)
    val_limit: int | None = Field(32, ge=1)
    val_seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    # Trials log here, not under run.log_dir: the training stages' folder stays what evaluate's curves
    # (and its DVC dependency) read, whether or not a study ran since
    log_dir: str = "data/07_model_output/tune/tensorboard"
    objective: dict[str, float] = Field(default_factory=lambda: {"text_fidelity": 1.0, "video_fidelity": 1.0})
    search: TuneSearchSpace = TuneSearchSpace()

    @model_validator(mode="after")
    def _valid(self) -> TuneParams:
        from vans_pipelines.rl.rewards import check_reward_names

        errors = check_reward_names(self.objective, "objective")
        errors += check_reward_names({n: 1.0 for n in self.search.rewards}, "search.rewards")
        if errors:
            raise ValueError("; ".join(errors))
        return self


class AblationVariant(_Strict):
    """One recipe of the ablation, as overrides of the stage sections (no code forks): ``stage1`` merged
    into ``grpo_vlm`` (``null``: the SFT VLM is kept), ``stage2`` into ``grpo_vdm`` (``null``: the SFT VDM
    is kept; its anchors come from this recipe's VLM), or ``cascade``: one GRPO loop over both models
    (VLM side from ``grpo_vlm``, VDM side from ``grpo_vdm``) with this one reward. A ``rewards`` override
    replaces the stage's rewards whole."""

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


class AblationEvalParams(_Strict):
    """Each recipe's cascade on the test split, as the evaluate stage measures it (fewer noise seeds: the
    training seeds carry the spread)."""

    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    num_steps: int = Field(6, ge=1)
    max_new_tokens: int = Field(48, ge=1)
    batch_size: int = Field(32, ge=1)
    limit: int | None = Field(None, ge=2)


class AblateParams(_Strict):
    """The ablate stage: every recipe trained from the same SFT models for each training seed, evaluated on
    the test split, compared with ``baseline`` (paired) and checked against the paper's claims."""

    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    baseline: str = "two_stage"
    # Stage-2 anchors of the first N train samples (null: all); a stage-2 run draws far fewer prompts
    # (steps x batch / updates per rollout) than the train split holds.
    anchor_pool: int | None = Field(1024, ge=1)
    # Ablation runs log here, not under run.log_dir: the training stages' folder (which evaluate's curves
    # and its DVC dependency read) stays as the default run left it
    log_dir: str = "data/07_model_output/ablate/tensorboard"
    variants: dict[str, AblationVariant] = Field(min_length=1)
    eval: AblationEvalParams = AblationEvalParams()

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
    from vans_pipelines.training.tune import merge

    def resolve(section: str, base: _Strict, overrides: dict[str, Any] | None, key: str):
        if overrides is None:
            return None
        # Ablation runs log no TensorBoard samples (GIFs of dozens of runs); their scalars remain.
        raw = merge(base.model_dump(), merge(overrides, {"trainer": {"seed": seed}, "log_samples_every": 0}))
        try:
            return SECTIONS[section].model_validate(raw)
        except ValidationError as err:
            lines = _format(err, f"ablate.variants.{name}.{key}")
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


#: Top-level parameter keys and their models. A stage adds its own here when it lands.
SECTIONS: dict[str, type[_Strict]] = {
    "video_geometry": VideoGeometry,
    "ingest": IngestParams,
    "run": RunParams,
    "caption": CaptionParams,
    "sft": SFTParams,
    "grpo_vlm": GRPOVLMParams,
    "grpo_vdm": GRPOVDMParams,
    "evaluate": EvaluateParams,
    "tune": TuneParams,
    "ablate": AblateParams,
}


def model_path_error(key: str, path: str | None) -> str | None:
    """Why ``path`` (a folder, or a hub id in the local Hugging Face cache) cannot be loaded, if it cannot."""
    if path is None or Path(path).is_dir():
        return None
    if path.count("/") == 1 and not path.startswith((".", "/")):
        from huggingface_hub import try_to_load_from_cache

        if isinstance(try_to_load_from_cache(path, "config.json"), str):
            return None
    return f"{key}: {path!r} is neither a folder nor a model in the local Hugging Face cache (no hub access)"


def model_paths(parsed: dict[str, Any]) -> dict[str, str | None]:
    """Every checkpoint path the parameters name, by dotted key."""
    paths: dict[str, str | None] = {}
    if "caption" in parsed:
        caption: CaptionParams = parsed["caption"]
        paths["caption.captioner.path"] = caption.captioner.path
        paths["caption.tokenizer.path"] = (
            caption.tokenizer.path if caption.tokenizer.source == "pretrained" else None
        )
        paths["caption.scorer.path"] = caption.scorer.path if caption.scorer.kind == "clip" else None
    if "sft" in parsed:
        sft: SFTParams = parsed["sft"]
        for name in ("vlm", "vdm"):
            model = getattr(sft, name).model
            paths[f"sft.{name}.model.path"] = model.path if model.source == "pretrained" else None
    return paths


def check_run(parsed: dict[str, Any], sections: set[str]) -> None:
    """Checks for the ``sections`` a run's nodes read: checkpoint paths exist, training batches fit the
    (synthetic) train split. :class:`ParameterError` naming the keys."""
    errors = [
        e
        for key, path in model_paths(parsed).items()
        if key.split(".")[0] in sections and (e := model_path_error(key, path))
    ]
    ingest: IngestParams | None = parsed.get("ingest")
    batches = {}
    if "caption" in parsed and "caption" in sections:
        batches["caption.scorer.trainer.batch_size"] = parsed["caption"].scorer.trainer.batch_size
    if "sft" in parsed and "sft" in sections:
        batches["sft.vlm.trainer.batch_size"] = parsed["sft"].vlm.trainer.batch_size
        batches["sft.vdm.trainer.batch_size"] = parsed["sft"].vdm.trainer.batch_size
    for stage in ("grpo_vlm", "grpo_vdm"):
        if stage in parsed and stage in sections:
            batches[f"{stage}.trainer.batch_size"] = parsed[stage].trainer.batch_size
    if ingest is not None and ingest.source == "synthetic":
        for key, size in batches.items():
            if size > ingest.synthetic.num_train:
                errors.append(
                    f"{key}: {size} is larger than the train split "
                    f"(ingest.synthetic.num_train = {ingest.synthetic.num_train})"
                )
    if errors:
        raise ParameterError("invalid parameters:\n  " + "\n  ".join(errors))


def _format(err: ValidationError, section: str) -> list[str]:
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


def parse_section(name: str, raw: Any) -> Any:
    """One section as its typed model; :class:`ParameterError` naming the key(s) when invalid."""
    try:
        return SECTIONS[name].model_validate(raw if raw is not None else {})
    except ValidationError as err:
        raise ParameterError("invalid parameters:\n  " + "\n  ".join(_format(err, name))) from None


def validate_parameters(params: dict[str, Any]) -> dict[str, Any]:
    """Check every known section of ``params`` and the rules that span sections; return the models."""
    parsed, errors = {}, []
    for name in SECTIONS:
        if name not in params:
            continue
        try:
            parsed[name] = parse_section(name, params[name])
        except ParameterError as err:
            errors.extend(str(err).splitlines()[1:])
    if not errors and "ingest" in parsed:
        ingest: IngestParams = parsed["ingest"]
        geometry = parsed.get("video_geometry", VideoGeometry())
        errors.extend(ingest.clip.geometry_errors(geometry, "ingest.clip"))
        if (
            ingest.source == "synthetic"
            and ingest.clip.height / ingest.clip.width > ingest.synthetic.max_aspect
        ):
            errors.append(
                f"ingest.clip.height: {ingest.clip.height}x{ingest.clip.width} (height x width) is taller "
                f"than ingest.synthetic.max_aspect={ingest.synthetic.max_aspect}; the world's objects "
                "would overlap"
            )
    if not errors:
        errors.extend(_cross_stage_errors(parsed))
    if errors:
        raise ParameterError("invalid parameters:\n  " + "\n  ".join(e.strip() for e in errors))
    return parsed


def _cross_stage_errors(parsed: dict[str, Any]) -> list[str]:
    """Rules between sections: context frames the clips have and the answer's latents can hold; every
    ablation recipe gives valid stage sections."""
    errors = []
    if "ablate" in parsed:
        ablate: AblateParams = parsed["ablate"]
        stage1, stage2 = parsed.get("grpo_vlm", GRPOVLMParams()), parsed.get("grpo_vdm", GRPOVDMParams())
        for name, variant in ablate.variants.items():
            try:
                resolve_variant(name, variant, stage1, stage2, ablate.seeds[0])
            except ParameterError as err:
                errors.extend(str(err).splitlines()[1:])
    ingest: IngestParams | None = parsed.get("ingest")
    if ingest is not None and "sft" in parsed:
        n = parsed["sft"].vdm.conditioning.context_frames
        geometry = parsed.get("video_geometry", VideoGeometry())
        tf = geometry.vae_temporal_factor
        target = ingest.clip.target_frames
        latent = latent_frames(target, tf)
        if n > ingest.clip.context_frames:
            errors.append(
                f"sft.vdm.conditioning.context_frames: {n} is more than the context clip's "
                f"{ingest.clip.context_frames} frames (ingest.clip.context_frames)"
            )
        elif n > latent:
            errors.append(
                f"sft.vdm.conditioning.context_frames: {n} latent slots do not fit the answer's "
                f"{latent} latent frames (ingest.clip.target_frames = {target}, vae_temporal_factor = {tf})"
            )
    return errors
