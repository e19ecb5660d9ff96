"""Ingest at scale: scan many videos in worker processes, and hand their pairs' clips to a writer one
source video at a time, so memory does not grow with the number of videos.

Two passes over each file, each decoding it once:

1. :func:`scan_videos` (the ingest node): decode, find shots, choose the pairs; a worker returns only
   the pairs' frame spans, never the frames.
2. :class:`StreamedPairClips` (a :class:`~vans_pipelines.triplets.TripletSet`'s clip loader): when the
   set is saved, each source video is decoded again in a worker and its pairs' clips are cut out and
   written before the next video's are fetched (at most ``2 x workers`` videos in flight).

The resampled frames are a function of the file and the settings, so both passes see the same frames and
the clips equal those a one-pass, in-memory ingest cut.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from itertools import groupby
from typing import IO, Any, Protocol

from vans_pipelines.triplets import ClipPair
from vans_pipelines.video.clips import PairSpan, ScanSettings, cut_pairs, scan_pairs
from vans_pipelines.video.io import VideoError


class VideoSource(Protocol):
    """A video a worker can open (e.g. :class:`~vans_pipelines.datasets.video_folder.VideoFile`)."""

    relative_path: str
    size_bytes: int

    def source(self) -> str | IO[bytes]: ...


def _scan(video: VideoSource, settings: ScanSettings) -> list[PairSpan] | VideoError:
    if video.size_bytes == 0:
        return VideoError("empty file (0 bytes)")
    try:
        spans, _ = scan_pairs(video.source(), settings, keep_frames=False)  # no pixels needed here
        return spans
    except VideoError as err:
        return err


def _cut(video: VideoSource, spans: tuple[PairSpan, ...], settings: ScanSettings) -> list[ClipPair]:
    try:
        return [(pair.context, pair.target) for pair in cut_pairs(video.source(), list(spans), settings)]
    except VideoError as err:
        raise VideoError(f"{video.relative_path}: {err}") from None


#: One process pool per worker count, kept for the process's life: an ingest scans, then writes three
#: splits, and starting workers for each would cost more than small videos take to decode.
_POOLS: dict[int, ProcessPoolExecutor] = {}


def _executor(workers: int) -> ProcessPoolExecutor | None:
    # spawn: the workers import only what they use, and never inherit a parent's threads (torch's pools).
    if workers <= 1:
        return None
    if workers not in _POOLS:
        _POOLS[workers] = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    return _POOLS[workers]


def bounded_map(
    executor: Executor, function: Callable[..., Any], jobs: Iterable[tuple[Any, ...]], ahead: int
) -> Iterator[Any]:
    """``function(*job)`` of every job run on ``executor``, yielded in order, with at most ``ahead`` jobs
    submitted beyond the one being consumed (bounded memory); the rest are cancelled if the consumer
    stops early or a job fails."""
    pending: deque[Future] = deque()
    try:
        for job in jobs:
            pending.append(executor.submit(function, *job))
            if len(pending) >= ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


def ordered_map(function: Callable[..., Any], jobs: Iterable[tuple[Any, ...]], workers: int) -> Iterator[Any]:
    """``function(*job)`` of every job, in order; with ``workers`` > 1 in that many processes, at most
    ``2 x workers`` jobs submitted ahead of the one being consumed (bounded memory)."""
    executor = _executor(workers)
    if executor is None:
        for job in jobs:
            yield function(*job)
        return
    try:
        yield from bounded_map(executor, function, jobs, 2 * workers)
    except BrokenProcessPool:
        _POOLS.pop(workers, None)  # a worker died (e.g. out of memory): the next call starts afresh
        raise


def scan_videos(
    videos: Sequence[VideoSource], settings: ScanSettings, workers: int = 1
) -> list[list[PairSpan] | VideoError]:
    """Each video's pair spans, or the :class:`VideoError` that makes it unusable, in order."""
    return list(ordered_map(_scan, ((video, settings) for video in videos), workers))


@dataclass(frozen=True)
class SourcePairs:
    """One source video's pairs: the sample id and span of each."""

    video: VideoSource
    sample_ids: tuple[str, ...]
    spans: tuple[PairSpan, ...]


class StreamedPairClips:
    """A clip loader that decodes the source video of the samples asked for: :meth:`iter_clips` streams
    a whole set (videos decoded in ``workers`` processes), a single call decodes the sample's video and
    keeps only that one video's clips for the next call."""

    def __init__(self, sources: Sequence[SourcePairs], settings: ScanSettings, workers: int = 1):
        self.sources = list(sources)
        self.settings, self.workers = settings, workers
        self._where = {
            sid: (i, k) for i, source in enumerate(self.sources) for k, sid in enumerate(source.sample_ids)
        }
        self._cached: tuple[int, list[ClipPair]] | None = None

    def _source_of(self, sample_id: str) -> tuple[int, int]:
        try:
            return self._where[sample_id]
        except KeyError:
            raise KeyError(f"no ingested pair has sample_id {sample_id!r}") from None

    def __call__(self, sample_id: str) -> ClipPair:
        i, k = self._source_of(sample_id)
        if self._cached is None or self._cached[0] != i:
            source = self.sources[i]
            self._cached = (i, _cut(source.video, source.spans, self.settings))
        return self._cached[1][k]

    def iter_clips(self, sample_ids: Sequence[str]) -> Iterator[tuple[str, ClipPair]]:
        """``(sample_id, clips)`` for ``sample_ids`` in their order, each run of samples from one video
        cut from a single decode of it."""
        places = map(self._source_of, sample_ids)
        runs = [(i, [k for _, k in run]) for i, run in groupby(places, key=lambda place: place[0])]
        jobs = ((self.sources[i].video, self.sources[i].spans, self.settings) for i, _ in runs)
        for (i, picks), clips in zip(runs, ordered_map(_cut, jobs, self.workers), strict=True):
            for k in picks:
                yield self.sources[i].sample_ids[k], clips[k]
