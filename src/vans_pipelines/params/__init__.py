"""Typed parameters: every ``conf/<env>/parameters_*.yml`` section the code reads has a model, in the module
of its file (``ingest``, ``caption``, ``sft``, ``grpo_vlm``, ``grpo_vdm``, ``evaluate``, ``tune``, ``ablate``;
``shared`` for ``parameters.yml``); this module checks them all and the rules between them.

:func:`validate_parameters` runs from a Kedro hook before any node, so a bad value fails the run at once
with the offending key spelled out (e.g. ``ingest.clip.height``) instead of deep inside a node.
Unknown keys are errors too: a typo must not silently fall back to a default.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, overload

import yaml
from omegaconf import OmegaConf
from pydantic import ValidationError

from vans_pipelines.models import layouts
from vans_pipelines.models.wan_vae import latent_frames
from vans_pipelines.params.ablate import AblateParams, AblationEvalParams, AblationVariant, resolve_variant
from vans_pipelines.params.base import Family, ParameterError, RewardWeights, Strict, format_errors
from vans_pipelines.params.caption import CaptionerParams, CaptionParams, ScorerParams, TokenizerParams
from vans_pipelines.params.evaluate import EvaluateParams, FVDParams, GridParams
from vans_pipelines.params.grpo_vdm import AnchorParams, GRPOVDMEvalParams, GRPOVDMParams
from vans_pipelines.params.grpo_vlm import GRPOVLMEvalParams, GRPOVLMParams
from vans_pipelines.params.ingest import ClipSpec, IngestParams, SyntheticSource, VideosSource
from vans_pipelines.params.sft import (
    ModelSource,
    SFTParams,
    VAEFitParams,
    VDMEvalParams,
    VDMParams,
    VLMEvalParams,
    VLMParams,
)
from vans_pipelines.params.shared import (
    CHECKPOINT_LAYOUTS,
    CheckpointParams,
    InferenceParams,
    RunContext,
    RunParams,
    VideoGeometry,
)
from vans_pipelines.params.tune import TuneParams, TuneSearchSpace

__all__ = [
    "SECTIONS",
    "AblateParams",
    "AblationEvalParams",
    "AblationVariant",
    "AnchorParams",
    "CaptionParams",
    "CaptionerParams",
    "CheckpointParams",
    "ClipSpec",
    "EvaluateParams",
    "FVDParams",
    "Family",
    "GRPOVDMEvalParams",
    "GRPOVDMParams",
    "GRPOVLMEvalParams",
    "GRPOVLMParams",
    "GridParams",
    "InferenceParams",
    "IngestParams",
    "ModelSource",
    "ParameterError",
    "RewardWeights",
    "RunContext",
    "RunParams",
    "SFTParams",
    "ScorerParams",
    "Strict",
    "SyntheticSource",
    "TokenizerParams",
    "TuneParams",
    "TuneSearchSpace",
    "VAEFitParams",
    "VDMEvalParams",
    "VDMParams",
    "VLMEvalParams",
    "VLMParams",
    "VideoGeometry",
    "VideosSource",
    "check_run",
    "conf_section",
    "model_path_error",
    "model_paths",
    "parse_section",
    "resolve_variant",
    "validate_parameters",
]


#: Top-level parameter keys and their models. A stage adds its own here when it lands.
SECTIONS: dict[str, type[Strict]] = {
    "video_geometry": VideoGeometry,
    "ingest": IngestParams,
    "run": RunParams,
    "checkpoints": CheckpointParams,
    "caption": CaptionParams,
    "sft": SFTParams,
    "grpo_vlm": GRPOVLMParams,
    "grpo_vdm": GRPOVDMParams,
    "evaluate": EvaluateParams,
    "tune": TuneParams,
    "ablate": AblateParams,
}


#: What each checkpoint path a section may name must point at.
PATH_LAYOUTS: dict[str, layouts.CheckpointLayout] = {
    "caption.captioner.path": layouts.QWEN2_5_VL,
    "caption.tokenizer.path": layouts.TOKENIZER,
    "caption.scorer.path": layouts.CLIP,
    "sft.vlm.model.path": layouts.QWEN2_5_VL,
    "sft.vdm.model.path": layouts.WAN2_1,
    "evaluate.fvd.path": layouts.VIDEO_MODEL,
}


def model_path_error(key: str, path: str | None) -> str | None:
    """Why ``path`` (a folder, or a hub id in the local Hugging Face cache) cannot be loaded as what ``key``
    needs (:data:`PATH_LAYOUTS`), if it cannot; ``None`` is a path not set."""
    layout = PATH_LAYOUTS.get(key)
    expected = f"; expected {layout.describe()}" if layout else ""
    if path is None:
        return f"{key}: not set{expected}"
    if not Path(path).is_dir():
        if path.count("/") == 1 and not path.startswith((".", "/")):
            from huggingface_hub import try_to_load_from_cache

            if isinstance(try_to_load_from_cache(path, "config.json"), str):
                return None
        return (
            f"{key}: {path!r} is neither a folder nor a model in the local Hugging Face cache "
            f"(no hub access){expected}"
        )
    problem = layout.problem(path) if layout else None
    return f"{key}: {problem}{expected}" if layout and problem else None


def model_paths(parsed: dict[str, Any]) -> dict[str, str | None]:
    """Every checkpoint path the parameters need, by dotted key (``None``: needed but not set): a model
    whose source is ``pretrained`` (or a CLIP scorer) needs one; the captioner's is optional (only real
    videos need it, which the caption stage says when it meets them)."""
    paths: dict[str, str | None] = {}
    if "caption" in parsed:
        caption: CaptionParams = parsed["caption"]
        if caption.captioner.path is not None:
            paths["caption.captioner.path"] = caption.captioner.path
        if caption.tokenizer.source == "pretrained":
            paths["caption.tokenizer.path"] = caption.tokenizer.path
        if caption.scorer.kind == "clip":
            paths["caption.scorer.path"] = caption.scorer.path
    if "sft" in parsed:
        sft: SFTParams = parsed["sft"]
        for name in ("vlm", "vdm"):
            model = getattr(sft, name).model
            if model.source == "pretrained":
                paths[f"sft.{name}.model.path"] = model.path
    if "evaluate" in parsed and parsed["evaluate"].fvd.kind == "pretrained":
        paths["evaluate.fvd.path"] = parsed["evaluate"].fvd.path
    return paths


#: The ``checkpoints`` entry a recipe sets each path from (conf/paper).
PATH_CHECKPOINTS = {
    "caption.captioner.path": "qwen2_5_vl",
    "caption.tokenizer.path": "qwen2_5_vl",
    "caption.scorer.path": "clip",
    "sft.vlm.model.path": "qwen2_5_vl",
    "sft.vdm.model.path": "wan2_1",
    "evaluate.fvd.path": "fvd_extractor",
}


def _checkpoint_of(parsed: dict[str, Any], key: str, path: str | None) -> str | None:
    """``checkpoints.<name>`` when ``key``'s ``path`` came from it (where the user should fix it)."""
    checkpoints: CheckpointParams | None = parsed.get("checkpoints")
    name = PATH_CHECKPOINTS.get(key)
    if checkpoints is None or name is None or path is None or getattr(checkpoints, name) != path:
        return None
    return f"checkpoints.{name}"


def check_run(parsed: dict[str, Any], sections: set[str]) -> None:
    """Checks for the ``sections`` a run's nodes read (so ``--pipelines ingest`` needs no checkpoint):
    checkpoint paths are set and hold what they should, training batches fit the (synthetic) train split.
    :class:`ParameterError` naming the keys, and for a path not set the ``checkpoints`` entry a recipe
    (conf/paper) takes it from, where the user sets it."""
    errors, unset = [], []
    checkpoints: CheckpointParams | None = parsed.get("checkpoints")
    for key, path in model_paths(parsed).items():
        if key.split(".")[0] not in sections or not (error := model_path_error(key, path)):
            continue
        source = _checkpoint_of(parsed, key, path)
        errors.append(f"{error} (set by {source})" if source else error)
        # a recipe that names its checkpoints once (conf/paper) takes the path from there
        name = PATH_CHECKPOINTS.get(key)
        entry_unset = checkpoints is not None and name is not None and getattr(checkpoints, name) is None
        if path is None and entry_unset and name not in unset:
            unset.append(name)
    errors.extend(
        f"checkpoints.{name}: not set; expected {CHECKPOINT_LAYOUTS[name].describe()}" for name in unset
    )
    if unset:
        errors.append("(give them with --params checkpoints.<name>=PATH,... or in conf/<env>/globals.yml)")
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


@overload
def parse_section(name: Literal["video_geometry"], raw: Any) -> VideoGeometry: ...
@overload
def parse_section(name: Literal["ingest"], raw: Any) -> IngestParams: ...
@overload
def parse_section(name: Literal["run"], raw: Any) -> RunParams: ...
@overload
def parse_section(name: Literal["checkpoints"], raw: Any) -> CheckpointParams: ...
@overload
def parse_section(name: Literal["caption"], raw: Any) -> CaptionParams: ...
@overload
def parse_section(name: Literal["sft"], raw: Any) -> SFTParams: ...
@overload
def parse_section(name: Literal["grpo_vlm"], raw: Any) -> GRPOVLMParams: ...
@overload
def parse_section(name: Literal["grpo_vdm"], raw: Any) -> GRPOVDMParams: ...
@overload
def parse_section(name: Literal["evaluate"], raw: Any) -> EvaluateParams: ...
@overload
def parse_section(name: Literal["tune"], raw: Any) -> TuneParams: ...
@overload
def parse_section(name: Literal["ablate"], raw: Any) -> AblateParams: ...
@overload
def parse_section(name: str, raw: Any) -> Strict: ...
def parse_section(name: str, raw: Any) -> Strict:
    """One section as its typed model (the overloads give each name its class, so call sites need no
    annotation); :class:`ParameterError` naming the key(s) when invalid."""
    try:
        return SECTIONS[name].model_validate(raw if raw is not None else {})
    except ValidationError as err:
        raise ParameterError("invalid parameters:\n  " + "\n  ".join(format_errors(err, name))) from None


def conf_parameters(conf: Path) -> dict[str, Any]:
    """Every section the ``parameters*.yml`` files of ``conf`` (one environment's folder, e.g.
    ``conf/smoke``) write, as written: for another environment, the overrides it merges into conf/base."""
    sections: dict[str, Any] = {}
    for path in sorted(Path(conf).glob("parameters*.yml")):
        sections.update(yaml.safe_load(path.read_text()) or {})
    return sections


def conf_section(conf: Path, name: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Section ``name`` as ``conf`` (a folder of ``parameters*.yml`` files, e.g. ``conf/base``, where every
    default is written) sets it, with ``overrides`` merged in key by key as another environment's are:
    the whole section a node receives from a run with those settings, for code that runs one without
    Kedro (tests, benchmarks)."""
    sections = conf_parameters(conf)
    if name not in sections:
        raise KeyError(f"{conf}: no parameters file has a section {name!r}")
    return OmegaConf.to_container(OmegaConf.merge(sections[name], dict(overrides or {})))


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
    if not errors and "ingest" in parsed and "video_geometry" in parsed:
        ingest: IngestParams = parsed["ingest"]
        geometry = parsed["video_geometry"]
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
    if {"ablate", "grpo_vlm", "grpo_vdm"} <= parsed.keys():
        ablate: AblateParams = parsed["ablate"]
        stage1, stage2 = parsed["grpo_vlm"], parsed["grpo_vdm"]
        for name, variant in ablate.variants.items():
            try:
                resolve_variant(name, variant, stage1, stage2, ablate.seeds[0])
            except ParameterError as err:
                errors.extend(str(err).splitlines()[1:])
    ingest: IngestParams | None = parsed.get("ingest")
    if ingest is not None and {"sft", "video_geometry"} <= parsed.keys():
        n = parsed["sft"].vdm.conditioning.context_frames
        geometry = parsed["video_geometry"]
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
