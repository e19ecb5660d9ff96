"""``parameters_ingest.yml``: the triplets' source, clip size and splits."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from vans_pipelines.models.wan_vae import latent_frames
from vans_pipelines.params.base import Family, Strict
from vans_pipelines.params.shared import VideoGeometry
from vans_pipelines.triplets import Shard


class ClipSpec(Strict):
    context_frames: int = Field(ge=2)
    target_frames: int = Field(ge=2)
    height: int = Field(ge=1)
    width: int = Field(ge=1)
    fps: float = Field(gt=0)

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


class SyntheticSource(Strict):
    num_train: int = Field(ge=0)
    num_val: int = Field(ge=0)
    num_test: int = Field(ge=0)
    families: list[Family] = Field(min_length=1)
    # Objects must fit side by side in the tray; taller-than-wide frames squeeze them together.
    max_aspect: float = Field(gt=0)


class VideosSource(Strict):
    default_family: Family
    shot_threshold: float = Field(gt=0)
    min_shot_seconds: float = Field(ge=0)
    max_pairs_per_video: int | None = Field(ge=1)
    val_fraction: float = Field(ge=0, lt=1)
    test_fraction: float = Field(ge=0, lt=1)
    # Processes that decode videos (scanning in the node, cutting when the triplets are written).
    workers: int = Field(ge=1)
    # "k/n": this run ingests every n-th video from the k-th (0-based) of the sorted listing, for a
    # cluster's job array; the splits stay those of the whole folder, and loading a split unions the shards.
    shard: str | None

    @field_validator("shard")
    @classmethod
    def _shard(cls, value: str | None) -> str | None:
        if value is not None:
            Shard.parse(value)  # ValueError with the reason
        return value

    @model_validator(mode="after")
    def _fractions(self) -> VideosSource:
        if self.val_fraction + self.test_fraction >= 1:
            raise ValueError(
                f"val_fraction + test_fraction must leave videos for training, got "
                f"{self.val_fraction} + {self.test_fraction}"
            )
        return self


class IngestParams(Strict):
    source: Literal["synthetic", "videos"]
    seed: int
    clip: ClipSpec
    synthetic: SyntheticSource
    videos: VideosSource
