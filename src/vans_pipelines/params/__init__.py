"""Typed parameters: every ``conf/<env>/parameters_*.yml`` section the code reads has a model, in the module
of its file (``ingest``, ``caption``, ``sft``, ``grpo_vlm``, ``grpo_vdm``, ``evaluate``, ``tune``, ``ablate``;
``shared`` for ``parameters.yml``); this module checks them all and the rules between them.

:func:`validate_parameters` runs from a Kedro hook before any node, so a bad value fails the run at once
with the offending key spelled out (e.g. ``ingest.clip.height``) instead of deep inside a node.
Unknown keys are errors too: a typo must not silently fall back to a default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

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
from vans_pipelines.params.shared import RunContext, RunParams, VideoGeometry
from vans_pipelines.params.tune import TuneParams, TuneSearchSpace

__all__ = [
    "SECTIONS",
    "AblateParams",
    "AblationEvalParams",
    "AblationVariant",
    "AnchorParams",
    "CaptionParams",
    "CaptionerParams",
    "ClipSpec",
    "EvaluateParams",
    "FVDParams",
    "Family",
    "GRPOVDMEvalParams",
    "GRPOVDMParams",
    "GRPOVLMEvalParams",
    "GRPOVLMParams",
    "GridParams",
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


def parse_section(name: str, raw: Any) -> Any:
    """One section as its typed model; :class:`ParameterError` naming the key(s) when invalid."""
    try:
        return SECTIONS[name].model_validate(raw if raw is not None else {})
    except ValidationError as err:
        raise ParameterError("invalid parameters:\n  " + "\n  ".join(format_errors(err, name))) from None


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
