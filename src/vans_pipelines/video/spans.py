"""Span triplets: a pair's clips kept as frame spans of their source video and decoded where they are used.

Large video-training pipelines do not re-encode what is already on disk: an index row names the source
file, the pair's two frame spans on the resampled grid and the resampling geometry, and a data loader
worker decodes the clips when a batch asks for them (:func:`~vans_pipelines.video.io.decode_span`: a seek
to the keyframe before the context, one decode through the target). The frames equal those the clip
formats store, pixel for pixel, because both come from the same grid of the same file.

A source must not change after ingest: each row carries the source's :func:`file_fingerprint`, and
:func:`check_sources` names every source that vanished or changed (with its triplets) before a split is
used.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Any

import fsspec
import pandas as pd

from vans_pipelines.video.io import decode_span

#: Index columns of a span triplet (beside :data:`~vans_pipelines.triplets.REQUIRED_COLUMNS`). Frame
#: numbers count frames of the source resampled to ``clip_fps`` and ``clip_height`` x ``clip_width``;
#: stops are exclusive.
SPAN_COLUMNS = (
    "source_uri",
    "source_fingerprint",
    "clip_fps",
    "clip_height",
    "clip_width",
    "context_frame_start",
    "context_frame_stop",
    "target_frame_start",
    "target_frame_stop",
)

#: Bytes hashed at each of the start, middle and end of a file by :func:`file_fingerprint`.
FINGERPRINT_BLOCK = 1 << 16


def file_fingerprint(fs: fsspec.AbstractFileSystem, path: str, size: int | None = None) -> str:
    """``"<size>:<blake2b>"`` of a file: its size and a BLAKE2b hash of 64 KiB at its start, middle and
    end (imohash's sampling). Reading three blocks costs the same for a 10 MB or a 10 GB video, so every
    split load can check every source; an edited or re-encoded video changes its size or its container
    header (MP4 keeps its index at one end), which a full-file hash would only add reading every byte to.
    """
    size = int(fs.size(path)) if size is None else int(size)
    digest = hashlib.blake2b(str(size).encode(), digest_size=16)
    offsets = {0, max(0, size // 2 - FINGERPRINT_BLOCK // 2), max(0, size - FINGERPRINT_BLOCK)}
    with fs.open(path, "rb") as f:
        for offset in sorted(offsets):
            f.seek(offset)
            digest.update(f.read(FINGERPRINT_BLOCK))
    return f"{size}:{digest.hexdigest()}"


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    """Whether ``fs`` is this machine's own filesystem (its paths are what PyAV and ``os`` open)."""
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocols


def open_source(uri: str) -> str | IO[bytes]:
    """What PyAV should open for ``uri``: a local path as is (PyAV reads and seeks it fastest), anything
    else (``s3://``, ``memory://``, ...) as a seekable file object of its fsspec filesystem."""
    fs, path = fsspec.core.url_to_fs(uri)
    return path if is_local(fs) else fs.open(path, "rb")


@dataclass(frozen=True)
class PairSpanRef:
    """Where one triplet's clips lie in its source: the frame spans on the resampled grid."""

    uri: str
    fps: float
    height: int
    width: int
    context: tuple[int, int]
    target: tuple[int, int]

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> PairSpanRef:
        return cls(
            uri=str(row["source_uri"]),
            fps=float(row["clip_fps"]),
            height=int(row["clip_height"]),
            width=int(row["clip_width"]),
            context=(int(row["context_frame_start"]), int(row["context_frame_stop"])),
            target=(int(row["target_frame_start"]), int(row["target_frame_stop"])),
        )

    def decode(self) -> tuple[Any, Any]:
        """(context, target) clips, ``uint8 [T, H, W, 3]``: one seek and one decode through both spans
        (the target starts where the context ends, or one segment later)."""
        first, last = min(self.context[0], self.target[0]), max(self.context[1], self.target[1])
        source = open_source(self.uri)
        try:
            frames = decode_span(
                source, fps=self.fps, height=self.height, width=self.width, start=first, stop=last
            ).frames
        finally:
            if not isinstance(source, str):
                source.close()
        context = frames[self.context[0] - first : self.context[1] - first]
        target = frames[self.target[0] - first : self.target[1] - first]
        return context, target


class SpanClips:
    """A clip loader for :class:`~vans_pipelines.triplets.TripletSet` over an index with
    :data:`SPAN_COLUMNS` (``source_uri`` resolved to where the file is now): each call decodes one
    triplet's clips from its source. Plain data only, so DataLoader worker processes receive it as is
    and decode there."""

    def __init__(self, index: pd.DataFrame):
        missing = [column for column in SPAN_COLUMNS if column not in index.columns]
        if missing:
            raise ValueError(f"span triplets need the index column(s) {missing}")
        self._refs = {row["sample_id"]: PairSpanRef.from_row(row) for row in index.to_dict("records")}

    def __call__(self, sample_id: str) -> tuple[Any, Any]:
        try:
            ref = self._refs[sample_id]
        except KeyError:
            raise KeyError(f"no span triplet has sample_id {sample_id!r}") from None
        return ref.decode()


@dataclass(frozen=True)
class SourceProblem:
    """A source video that no longer is what ingest saw."""

    uri: str
    reason: str  # "missing" or "changed"
    sample_ids: tuple[str, ...]
    detail: str = ""

    def describe(self) -> str:
        more = len(self.sample_ids) - 5
        ids = ", ".join(self.sample_ids[:5]) + (f" and {more} more" if more > 0 else "")
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.reason}: {self.uri}{detail}; its triplets: {ids}"


def check_sources(index: pd.DataFrame, threads: int = 8) -> list[SourceProblem]:
    """Every source of an index with :data:`SPAN_COLUMNS` (``source_uri`` resolved) that is missing or
    whose :func:`file_fingerprint` differs from the one ingest recorded, with the triplets cut from it.
    Sources are checked in ``threads`` threads (each check reads three blocks: I/O, not CPU)."""
    groups = index.groupby("source_uri", sort=True)
    jobs = [(uri, str(rows["source_fingerprint"].iloc[0]), tuple(rows["sample_id"])) for uri, rows in groups]

    def check(job: tuple[str, str, tuple[str, ...]]) -> SourceProblem | None:
        uri, recorded, sample_ids = job
        fs, path = fsspec.core.url_to_fs(uri)
        if not fs.isfile(path):
            return SourceProblem(uri, "missing", sample_ids)
        now = file_fingerprint(fs, path)
        if now != recorded:
            return SourceProblem(uri, "changed", sample_ids, f"fingerprint {now}, ingest saw {recorded}")
        return None

    if not jobs:
        return []
    with ThreadPoolExecutor(max(1, min(threads, len(jobs)))) as pool:
        return [problem for problem in pool.map(check, jobs) if problem is not None]


def span_columns(
    uri: str,
    fingerprint_: str,
    fps: float,
    height: int,
    width: int,
    context: Sequence[int],
    target: Sequence[int],
) -> dict[str, Any]:
    """One triplet's :data:`SPAN_COLUMNS` values."""
    return {
        "source_uri": uri,
        "source_fingerprint": fingerprint_,
        "clip_fps": float(fps),
        "clip_height": int(height),
        "clip_width": int(width),
        "context_frame_start": int(context[0]),
        "context_frame_stop": int(context[1]),
        "target_frame_start": int(target[0]),
        "target_frame_stop": int(target[1]),
    }
