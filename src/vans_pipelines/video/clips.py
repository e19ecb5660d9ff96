"""Cut a resampled video into (context, target) pairs of consecutive segments, as the paper builds
VANS-Data: shots are split by hard cuts, long shots further into fixed-length segments, and each
segment followed by the next one forms a pair (the next one is often the next shot: the next event)."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import IO

import numpy as np

from vans_pipelines.video.io import VideoError, decode_resampled
from vans_pipelines.video.shots import ShotDetector


@dataclass(frozen=True)
class Segment:
    start: int  # frame index at the sampled fps, inclusive
    stop: int  # exclusive
    shot: int


@dataclass(frozen=True)
class ClipPair:
    context: np.ndarray
    target: np.ndarray
    context_start: float  # seconds
    target_start: float
    target_stop: float
    crosses_cut: bool


def segment_shots(num_frames: int, cut_frames: list[int], segment_frames: int) -> list[Segment]:
    """Split ``[0, num_frames)`` at ``cut_frames`` into shots, then each shot into whole segments of
    ``segment_frames`` frames (a remainder shorter than one segment is dropped)."""
    bounds = [0, *sorted(c for c in set(cut_frames) if 0 < c < num_frames), num_frames]
    segments = []
    for shot, (a, b) in enumerate(pairwise(bounds)):
        for start in range(a, b - segment_frames + 1, segment_frames):
            segments.append(Segment(start, start + segment_frames, shot))
    return segments


@dataclass(frozen=True)
class PairSpan:
    """Where one (context, target) pair lies in a video resampled at ``fps``: frame ranges (stop
    exclusive) and whether the target starts after a hard cut."""

    context_start: int
    context_stop: int
    target_start: int
    target_stop: int
    crosses_cut: bool

    def seconds(self, fps: float) -> dict[str, float]:
        """``context_start``, ``target_start`` and ``target_stop`` in seconds."""
        return {
            "context_start": self.context_start / fps,
            "target_start": self.target_start / fps,
            "target_stop": self.target_stop / fps,
        }

    def cut(self, frames: np.ndarray, fps: float) -> ClipPair:
        """The pair's clips out of the resampled ``frames``, with its times in seconds."""
        return ClipPair(
            context=frames[self.context_start : self.context_stop],
            target=frames[self.target_start : self.target_stop],
            crosses_cut=self.crosses_cut,
            **self.seconds(fps),
        )


def pair_spans(
    num_frames: int,
    cut_frames: list[int],
    context_frames: int,
    target_frames: int,
    max_pairs: int | None = None,
) -> list[PairSpan]:
    """(context, target) pairs from adjacent segments of ``num_frames`` resampled frames.

    A segment is ``max(context_frames, target_frames)`` long; the context is the end of one segment,
    the target the start of the next, and the two segments must touch (at most one segment apart,
    the remainder a shot split left over). ``max_pairs`` keeps that many, evenly spread over the video.
    """
    seg_len = max(context_frames, target_frames)
    segments = segment_shots(num_frames, cut_frames, seg_len)
    spans = [
        PairSpan(
            first.stop - context_frames,
            first.stop,
            second.start,
            second.start + target_frames,
            crosses_cut=second.shot != first.shot,
        )
        for first, second in pairwise(segments)
        if second.start - first.stop < seg_len
    ]
    if max_pairs is not None and len(spans) > max_pairs:
        keep = np.unique(np.linspace(0, len(spans) - 1, max_pairs).round().astype(int))
        spans = [spans[i] for i in keep]
    return spans


def consecutive_pairs(
    frames: np.ndarray,
    fps: float,
    cut_frames: list[int],
    context_frames: int,
    target_frames: int,
    max_pairs: int | None = None,
) -> list[ClipPair]:
    """The clips of :func:`pair_spans` out of ``frames`` sampled at ``fps``."""
    spans = pair_spans(len(frames), cut_frames, context_frames, target_frames, max_pairs)
    return [span.cut(frames, fps) for span in spans]


@dataclass(frozen=True)
class ScanSettings:
    """How every video of an ingest is resampled, cut into shots and paired."""

    fps: float
    height: int
    width: int
    context_frames: int
    target_frames: int
    shot_threshold: float = 27.0
    min_shot_seconds: float = 0.5
    max_pairs: int | None = None


def scan_pairs(
    source: str | IO[bytes], settings: ScanSettings, *, keep_frames: bool = True
) -> tuple[list[PairSpan], np.ndarray]:
    """Decode ``source`` once (PyAV), find its hard cuts (PySceneDetect) and its pairs: the spans and the
    resampled frames they index (empty with ``keep_frames=False``: a scan for spans alone converts no
    frame to RGB).

    Raises :class:`~vans_pipelines.video.io.VideoError` for unreadable, truncated or too-short videos.
    """
    detector = ShotDetector(threshold=settings.shot_threshold, min_shot_seconds=settings.min_shot_seconds)
    video = decode_resampled(
        source,
        fps=settings.fps,
        height=settings.height,
        width=settings.width,
        on_frame=detector,
        keep_frames=keep_frames,
    )
    need = settings.context_frames + settings.target_frames
    if video.grid_frames < need:
        raise VideoError(
            f"too short: {video.grid_frames} frames at {settings.fps:g} fps ({video.duration:.2f} s); "
            f"a pair needs context + target = {need}"
        )
    cuts = [round(t * settings.fps) for t in detector.cut_times()]
    spans = pair_spans(
        video.grid_frames, cuts, settings.context_frames, settings.target_frames, settings.max_pairs
    )
    if not spans:
        raise VideoError(
            f"no two consecutive shot segments of {max(settings.context_frames, settings.target_frames)} "
            f"frames at {settings.fps:g} fps (shots too short; cuts at "
            f"{[round(t, 2) for t in detector.cut_times()]} s)"
        )
    return spans, video.frames


def cut_pairs(source: str | IO[bytes], spans: list[PairSpan], settings: ScanSettings) -> list[ClipPair]:
    """The clips of ``spans`` (from :func:`scan_pairs` on the same source and settings), decoded again:
    the resampled frames are a function of the file and the settings, so the clips are the same."""
    frames = decode_resampled(source, fps=settings.fps, height=settings.height, width=settings.width).frames
    if spans and spans[-1].target_stop > len(frames):
        raise VideoError(f"has {len(frames)} frames now, fewer than when it was scanned")
    return [span.cut(frames, settings.fps) for span in spans]


def video_pairs(source: str | IO[bytes], settings: ScanSettings) -> list[ClipPair]:
    """Decode ``source`` once (PyAV), find its hard cuts (PySceneDetect) and cut it into pairs, in memory.

    Raises :class:`~vans_pipelines.video.io.VideoError` for unreadable, truncated or too-short videos.
    """
    spans, frames = scan_pairs(source, settings)
    return [span.cut(frames, settings.fps) for span in spans]
