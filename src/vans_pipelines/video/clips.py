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


def consecutive_pairs(
    frames: np.ndarray,
    fps: float,
    cut_frames: list[int],
    context_frames: int,
    target_frames: int,
    max_pairs: int | None = None,
) -> list[ClipPair]:
    """(context, target) pairs from adjacent segments of a video sampled at ``fps``.

    A segment is ``max(context_frames, target_frames)`` long; the context is the end of one segment,
    the target the start of the next, and the two segments must touch (at most one segment apart,
    the remainder a shot split left over). ``max_pairs`` keeps that many, evenly spread over the video.
    """
    seg_len = max(context_frames, target_frames)
    segments = segment_shots(len(frames), cut_frames, seg_len)
    pairs = []
    for first, second in pairwise(segments):
        if second.start - first.stop >= seg_len:
            continue
        ctx_start = first.stop - context_frames
        pairs.append(
            ClipPair(
                context=frames[ctx_start : first.stop],
                target=frames[second.start : second.start + target_frames],
                context_start=ctx_start / fps,
                target_start=second.start / fps,
                target_stop=(second.start + target_frames) / fps,
                crosses_cut=second.shot != first.shot,
            )
        )
    if max_pairs is not None and len(pairs) > max_pairs:
        keep = np.unique(np.linspace(0, len(pairs) - 1, max_pairs).round().astype(int))
        pairs = [pairs[i] for i in keep]
    return pairs


def video_pairs(
    source: str | IO[bytes],
    *,
    fps: float,
    height: int,
    width: int,
    context_frames: int,
    target_frames: int,
    shot_threshold: float = 27.0,
    min_shot_seconds: float = 0.5,
    max_pairs: int | None = None,
) -> list[ClipPair]:
    """Decode ``source`` once (PyAV), find its hard cuts (PySceneDetect) and cut it into pairs.

    Raises :class:`~vans_pipelines.video.io.VideoError` for unreadable, truncated or too-short videos.
    """
    detector = ShotDetector(threshold=shot_threshold, min_shot_seconds=min_shot_seconds)
    video = decode_resampled(source, fps=fps, height=height, width=width, on_frame=detector)
    need = context_frames + target_frames
    if len(video.frames) < need:
        raise VideoError(
            f"too short: {len(video.frames)} frames at {fps:g} fps ({video.duration:.2f} s); "
            f"a pair needs context + target = {need}"
        )
    cuts = [round(t * fps) for t in detector.cut_times()]
    pairs = consecutive_pairs(video.frames, fps, cuts, context_frames, target_frames, max_pairs)
    if not pairs:
        raise VideoError(
            f"no two consecutive shot segments of {max(context_frames, target_frames)} frames at {fps:g} fps "
            f"(shots too short; cuts at {[round(t, 2) for t in detector.cut_times()]} s)"
        )
    return pairs
