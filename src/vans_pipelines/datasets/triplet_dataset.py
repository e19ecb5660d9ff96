"""Kedro dataset for triplet collections: a parquet index plus one clip file per sample, or the index
alone with each triplet's frame spans in its source video.

Layout of a saved set (a directory)::

    <path>/index.parquet          one row per triplet (sample_id, split, family, question, caption, ...)
    <path>/clips/<sample_id>.npz  context + target arrays (npz, lossless, compressed), or
    <path>/clips/<sample_id>.context.mp4 / .target.mp4   with clip_format: mp4 (lossless RGB H.264), or
    nothing more with clip_format: span (real videos only: the index names each triplet's source file,
                                  its fingerprint and the two frame spans; clips are decoded when used)

    <path>/shards/<k>-of-<n>/     the same layout per shard, when ingest ran as n shards (a job array);
                                  loading <path> then gives the union of all n, in sample_id order

Loading reads only the index; clips are read when a sample is accessed.
"""

from __future__ import annotations

import io
import posixpath
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import numpy as np
import pandas as pd
from kedro.io import DatasetError

from vans_pipelines.datasets._fs import FsspecDataset, atomic_directory
from vans_pipelines.triplets import ClipPair, Shard, TripletSet, check_clip
from vans_pipelines.video.io import decode_all, encode_video
from vans_pipelines.video.spans import SPAN_COLUMNS, SpanClips, check_sources, is_local
from vans_pipelines.video.streaming import bounded_map

_SAFE_ID = re.compile(r"^[A-Za-z0-9._-]+$")


class TripletDataset(FsspecDataset):
    """Saves and loads a :class:`~vans_pipelines.triplets.TripletSet` on any fsspec filesystem.

    Saves are atomic: the set is written to a temporary sibling directory and renamed into place, so
    an interrupted save leaves the previous set intact. Clips are encoded in ``write_threads`` threads.

    ``clip_format: span`` (triplets cut from real videos) writes no pixels: the index keeps where each
    pair lies in its source (:mod:`vans_pipelines.video.spans`), local sources as paths relative to
    ``path`` (the project can move), and clips are decoded from the source when a sample is read. A
    load first checks every source (``verify_sources``): one that vanished or changed since ingest is
    named, with its triplets, before any stage uses the set.

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
        clip_format: Literal["npz", "mp4", "span"] = "npz",
        fps: float = 8.0,
        write_threads: int = 2,
        verify_sources: bool = True,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        if clip_format not in ("npz", "mp4", "span"):
            raise DatasetError(
                f"TripletDataset({path}): clip_format must be 'npz', 'mp4' or 'span', got {clip_format!r}"
            )
        super().__init__(path=path, credentials=credentials, fs_args=fs_args, metadata=metadata)
        self._clip_format = clip_format
        self._fps = fps
        if write_threads < 1:
            raise DatasetError(f"TripletDataset({path}): write_threads must be >= 1, got {write_threads}")
        self._write_threads = write_threads
        self._verify_sources = verify_sources

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
        if self._fs.exists(index_path):
            index = self._read_index(self._path)
            if self._clip_format == "span":
                return self._span_set(index)
            return TripletSet(self._resolved(index), lambda sid: self._read_clips(self._path, sid))
        if self._fs.isdir(self._shards_root()):
            return self._load_shards()
        raise DatasetError(f"no triplet set at {self._path} ({index_path} is missing); run ingest first")

    def _span_set(self, index: pd.DataFrame) -> TripletSet:
        """A span set whose sources are where and what ingest saw (else an error naming them)."""
        missing = [column for column in SPAN_COLUMNS if column not in index.columns]
        if missing:
            raise DatasetError(
                f"{self._path}: clip_format is span, but the saved index has no {missing}; was it written "
                "with another clip_format?"
            )
        index = self._resolved(index)
        if self._verify_sources:
            problems = check_sources(index)
            if problems:
                lines = "\n  ".join(problem.describe() for problem in problems)
                raise DatasetError(
                    f"span triplets at {self._path}: {len(problems)} source video(s) vanished or changed "
                    f"since ingest; put them back or re-run ingest:\n  {lines}"
                )
        return TripletSet(index, SpanClips(index))

    def _stored(self, index: pd.DataFrame) -> pd.DataFrame:
        """The index as saved: a local source file (``source_uri``, real videos) relative to this set's
        folder when the set is local too, so neither the machine's paths nor the project's place are
        written (the project moves as a whole); a URL as it is."""
        return self._map_source_paths(index, posixpath.isabs, lambda uri, root: posixpath.relpath(uri, root))

    def _resolved(self, index: pd.DataFrame) -> pd.DataFrame:
        """The saved index with each relative ``source_uri`` made a path again (:meth:`_stored`)."""
        return self._map_source_paths(
            index,
            lambda uri: "://" not in uri and not posixpath.isabs(uri),
            lambda uri, root: posixpath.normpath(posixpath.join(root, uri)),
        )

    def _map_source_paths(
        self, index: pd.DataFrame, applies: Callable[[str], bool], convert: Callable[[str, str], str]
    ) -> pd.DataFrame:
        """``index`` with ``convert(uri, set folder)`` applied to each ``source_uri`` that ``applies`` to,
        when the set is on the local filesystem (elsewhere sources are kept as they are)."""
        if "source_uri" not in index.columns or not is_local(self._fs):
            return index
        root = self._path.rstrip("/")
        return index.assign(
            source_uri=[
                convert(uri, root) if isinstance(uri, str) and applies(uri) else uri
                for uri in index["source_uri"]
            ]
        )

    def _read_index(self, root: str) -> pd.DataFrame:
        with self._fs.open(self._index_path(root), "rb") as f:
            return pd.read_parquet(f)

    def _shards_root(self) -> str:
        return f"{self._path}/shards"

    def _shard_folders(self) -> dict[Shard, str]:
        found = {}
        for folder in self._fs.ls(self._shards_root(), detail=False):
            shard = Shard.from_name(folder.rstrip("/").rsplit("/", 1)[-1])
            if shard is not None and self._fs.exists(self._index_path(folder)):
                found[shard] = folder
        return found

    def _load_shards(self) -> TripletSet:
        """The union of a complete set of shards (a sharded ingest), in ``sample_id`` order."""
        folders = self._shard_folders()
        counts = sorted({shard.count for shard in folders})
        if len(counts) != 1:
            raise DatasetError(f"{self._shards_root()} mixes shards of {counts or 'no'} runs; re-run ingest")
        missing = sorted(set(range(counts[0])) - {shard.index for shard in folders})
        if missing:
            raise DatasetError(
                f"{self._path}: shard(s) {', '.join(f'{k}/{counts[0]}' for k in missing)} not written yet "
                f"(ingest.videos.shard); the set is the union of all {counts[0]}"
            )
        parts, home = [], {}
        for _, folder in sorted(folders.items(), key=lambda item: item[0].index):
            index = self._read_index(folder)
            parts.append(index)
            home.update(dict.fromkeys(index["sample_id"], folder))
        # An empty shard's columns carry no dtypes: leaving it out keeps the union's those of a whole set.
        parts = [part for part in parts if len(part)] or parts[:1]
        index = pd.concat(parts, ignore_index=True).sort_values("sample_id", kind="stable")
        if index["sample_id"].duplicated().any():
            raise DatasetError(f"{self._path}: the shards share sample ids; re-run ingest")
        index = index.reset_index(drop=True)
        if self._clip_format == "span":
            return self._span_set(index)
        return TripletSet(self._resolved(index), lambda sid: self._read_clips(home[sid], sid))

    def _read_clips(self, root: str, sample_id: str) -> ClipPair:
        paths = self._clip_paths(root, sample_id)
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
        """Writes every sample's clips as the set hands them over (:meth:`TripletSet.iter_clips`: a set
        cut from source videos decodes them one at a time), then the index. A set that is one shard of
        a larger one goes to ``shards/<k>-of-<n>`` beside the other shards, replacing a whole set."""
        if not isinstance(data, TripletSet):
            raise DatasetError(f"TripletDataset({self._path}) saves a TripletSet, got {type(data).__name__}")
        bad = [s for s in data.index["sample_id"] if not _SAFE_ID.match(str(s))]
        if bad:
            raise DatasetError(f"sample ids must match {_SAFE_ID.pattern} to name files, e.g. {bad[:3]}")
        missing = [column for column in SPAN_COLUMNS if column not in data.index.columns]
        if self._clip_format == "span" and (missing or data.index[list(SPAN_COLUMNS)].isna().any(axis=None)):
            raise DatasetError(
                f"TripletDataset({self._path}): clip_format span keeps triplets as spans of their source "
                "videos, and these have none (the synthetic world renders its clips: use npz or mp4)"
            )
        target = self._path if data.shard is None else f"{self._shards_root()}/{data.shard.name}"
        with atomic_directory(self._fs, target) as tmp:
            self._write_set(tmp, data)
        if data.shard is not None:
            self._drop_all_but_shards_of(data.shard.count)

    def _write_set(self, root: str, data: TripletSet) -> None:
        if self._clip_format == "span":  # the index is the whole set
            self._write_index(root, data.index)
            return
        # Clips are encoded (zlib / H.264, which release the GIL) in a few threads, a bounded number
        # queued, so writing keeps up with clips decoded in worker processes.
        self._fs.makedirs(f"{root}/clips", exist_ok=True)

        def jobs():
            for sample_id, (context, target) in data.iter_clips():
                check_clip(context, f"{sample_id} context")
                check_clip(target, f"{sample_id} target")
                yield root, sample_id, context, target

        with ThreadPoolExecutor(self._write_threads) as writers:
            for _ in bounded_map(writers, self._write_clips, jobs(), 2 * self._write_threads):
                pass
        self._write_index(root, data.index)

    def _write_index(self, root: str, index: pd.DataFrame) -> None:
        buf = io.BytesIO()
        self._stored(index).to_parquet(buf, index=False)
        with self._fs.open(self._index_path(root), "wb") as f:
            f.write(buf.getvalue())

    def _drop_all_but_shards_of(self, count: int) -> None:
        """After a shard is written: a whole set or shards of another split of the work are stale."""
        for stale in (self._index_path(self._path), f"{self._path}/clips"):
            if self._fs.exists(stale):
                self._fs.rm(stale, recursive=True)
        for shard, folder in self._shard_folders().items():
            if shard.count != count:
                self._fs.rm(folder, recursive=True)

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
        return self._fs.exists(self._index_path(self._path)) or self._fs.isdir(self._shards_root())

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path, "protocol": self._protocol, "clip_format": self._clip_format}
