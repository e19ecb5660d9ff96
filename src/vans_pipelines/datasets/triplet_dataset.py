"""Kedro dataset for triplet collections: a parquet index plus one clip file per sample.

Layout of a saved set (a directory)::

    <path>/index.parquet          one row per triplet (sample_id, split, family, question, caption, ...)
    <path>/clips/<sample_id>.npz  context + target arrays (npz, lossless, compressed), or
    <path>/clips/<sample_id>.context.mp4 / .target.mp4   with clip_format: mp4 (lossless RGB H.264)

Loading reads only the index; clips are read when a sample is accessed.
"""

from __future__ import annotations

import io
import re
from typing import Any, Literal

import numpy as np
import pandas as pd
from kedro.io import DatasetError

from vans_pipelines.datasets._fs import FsspecDataset, atomic_directory
from vans_pipelines.triplets import ClipPair, TripletSet, check_clip
from vans_pipelines.video.io import decode_all, encode_video

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]+$")


class TripletDataset(FsspecDataset):
    """Saves and loads a :class:`~vans_pipelines.triplets.TripletSet` on any fsspec filesystem.

    Saves are atomic: the set is written to a temporary sibling directory and renamed into place, so
    an interrupted save leaves the previous set intact.

    Example catalog entry::

        train_triplets:
          type: vans_pipelines.datasets.TripletDataset
          path: data/02_intermediate/triplets/train
          clip_format: npz
          metadata:
            kedro-viz:
              layer: intermediate
    """

    def __init__(
        self,
        *,
        path: str,
        clip_format: Literal["npz", "mp4"] = "npz",
        fps: float = 8.0,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        if clip_format not in ("npz", "mp4"):
            raise DatasetError(
                f"TripletDataset({path}): clip_format must be 'npz' or 'mp4', got {clip_format!r}"
            )
        super().__init__(path=path, credentials=credentials, fs_args=fs_args, metadata=metadata)
        self._clip_format = clip_format
        self._fps = fps

    # --------------------------------------------------------------------------------------------- paths
    def _index_path(self, root: str) -> str:
        return f"{root}/index.parquet"

    def _clip_paths(self, root: str, sample_id: str) -> list[str]:
        if self._clip_format == "npz":
            return [f"{root}/clips/{sample_id}.npz"]
        return [f"{root}/clips/{sample_id}.context.mp4", f"{root}/clips/{sample_id}.target.mp4"]

    # ---------------------------------------------------------------------------------------------- load
    def load(self) -> TripletSet:
        index_path = self._index_path(self._path)
        if not self._fs.exists(index_path):
            raise DatasetError(f"no triplet set at {self._path} ({index_path} is missing); run ingest first")
        with self._fs.open(index_path, "rb") as f:
            index = pd.read_parquet(f)
        return TripletSet(index, self._read_clips)

    def _read_clips(self, sample_id: str) -> ClipPair:
        paths = self._clip_paths(self._path, sample_id)
        try:
            if self._clip_format == "npz":
                with self._fs.open(paths[0], "rb") as f, np.load(io.BytesIO(f.read())) as z:
                    return z["context"], z["target"]
            clips = []
            for p in paths:
                with self._fs.open(p, "rb") as f:
                    clips.append(decode_all(io.BytesIO(f.read())))
            return clips[0], clips[1]
        except FileNotFoundError as err:
            raise DatasetError(
                f"clip of sample {sample_id!r} is missing: {err.filename or paths[0]}"
            ) from err

    # ---------------------------------------------------------------------------------------------- save
    def save(self, data: TripletSet) -> None:
        if not isinstance(data, TripletSet):
            raise DatasetError(f"TripletDataset({self._path}) saves a TripletSet, got {type(data).__name__}")
        bad = [s for s in data.index["sample_id"] if not _SAFE_ID.match(str(s))]
        if bad:
            raise DatasetError(f"sample ids must match {_SAFE_ID.pattern} to name files, e.g. {bad[:3]}")
        with atomic_directory(self._fs, self._path) as tmp:
            self._fs.makedirs(f"{tmp}/clips", exist_ok=True)
            for sample_id in data.index["sample_id"]:
                context, target = data.clips(sample_id)
                check_clip(context, f"{sample_id} context")
                check_clip(target, f"{sample_id} target")
                self._write_clips(tmp, sample_id, context, target)
            buf = io.BytesIO()
            data.index.to_parquet(buf, index=False)
            with self._fs.open(self._index_path(tmp), "wb") as f:
                f.write(buf.getvalue())

    def _write_clips(self, root: str, sample_id: str, context: np.ndarray, target: np.ndarray) -> None:
        paths = self._clip_paths(root, sample_id)
        if self._clip_format == "npz":
            buf = io.BytesIO()
            np.savez_compressed(buf, context=context, target=target)
            with self._fs.open(paths[0], "wb") as f:
                f.write(buf.getvalue())
            return
        for p, clip in zip(paths, (context, target), strict=True):
            buf = io.BytesIO()
            encode_video(clip, buf, fps=self._fps)
            with self._fs.open(p, "wb") as f:
                f.write(buf.getvalue())

    # --------------------------------------------------------------------------------------------- other
    def _exists(self) -> bool:
        return self._fs.exists(self._index_path(self._path))

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path, "protocol": self._protocol, "clip_format": self._clip_format}
