"""Typed parameters: every ``conf/<env>/parameters_*.yml`` section the code reads has a model here.

:func:`validate_parameters` runs from a Kedro hook before any node, so a bad value fails the run at once
with the offending key spelled out (e.g. ``ingest.clip.height``) instead of deep inside a node.
Unknown keys are errors too: a typo must not silently fall back to a default.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

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
            latent = (frames - 1) // tf + 1 if tf > 1 else frames
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


#: Top-level parameter keys and their models. A stage adds its own here when it lands.
SECTIONS: dict[str, type[_Strict]] = {
    "video_geometry": VideoGeometry,
    "ingest": IngestParams,
}


def _format(err: ValidationError, section: str) -> list[str]:
    lines = []
    for e in err.errors():
        key = ".".join([section, *(str(p) for p in e["loc"])])
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
    if errors:
        raise ParameterError("invalid parameters:\n  " + "\n  ".join(e.strip() for e in errors))
    return parsed
