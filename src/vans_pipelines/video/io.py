"""Video decoding and encoding with PyAV.

:func:`decode_resampled` is the ingest workhorse: one pass over a file decodes every frame, scales it
(in FFmpeg's swscale, cover-and-centre-crop to the clip size), feeds it to a per-frame callback (shot
detection) and keeps the frames that fall on the requested fps grid. Nothing is decoded twice.
:func:`decode_span` returns a stretch of those same frames, pixel for pixel, seeking to the keyframe
before it instead of decoding the file from its start (span triplets decode their clips this way).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import IO

import av
import cv2
import numpy as np


class VideoError(Exception):
    """A file that cannot be used as a video; the message says why (it goes to the quarantine report)."""


@dataclass(frozen=True)
class DecodedVideo:
    frames: np.ndarray  # uint8 [N, H, W, 3], sampled at ``fps`` (empty with ``keep_frames=False``)
    fps: float
    native_fps: float
    native_frames: int  # frames decoded at the file's own rate
    duration: float  # seconds
    grid_frames: int  # frames on the ``fps`` grid (``len(frames)`` when they were kept)


def _cover_size(src_w: int, src_h: int, width: int, height: int) -> tuple[int, int]:
    """Smallest (w, h) with the source's aspect that covers ``width`` x ``height``."""
    scale = max(width / src_w, height / src_h)
    return max(width, math.ceil(src_w * scale)), max(height, math.ceil(src_h * scale))


ANALYSIS_WIDTH = 96  # pixels across the small image that shot detection looks at


def analysis_image(frame: av.VideoFrame) -> np.ndarray:
    """A small BGR image of ``frame`` for cheap per-frame analysis (shot detection).

    For the common planar YUV 4:2:0 frames it subsamples the planes in numpy and converts only the
    small result, so no full-size colour conversion is paid for frames that are not kept.
    """
    step = max(2, 2 * round(frame.width / ANALYSIS_WIDTH / 2))
    if frame.format.name in ("yuv420p", "yuvj420p"):
        planes = []
        for i, sub in ((0, step), (1, step // 2), (2, step // 2)):
            plane = frame.planes[i]
            arr = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)[:, : plane.width]
            planes.append(arr[::sub, ::sub])
        h = min(p.shape[0] for p in planes)
        w = min(p.shape[1] for p in planes)
        y, cb, cr = (p[:h, :w] for p in planes)
        return cv2.cvtColor(np.dstack([y, cr, cb]), cv2.COLOR_YCrCb2BGR)
    return frame.to_ndarray(
        format="bgr24",
        width=max(1, frame.width // step),
        height=max(1, frame.height // step),
        interpolation="AREA",
    )


#: Seconds by which a frame may lie before a grid time and still count as at or after it (timestamps are
#: rounded to the stream's time base).
_GRID_TOLERANCE = 1e-6


def _open(source: str | IO[bytes]) -> av.container.InputContainer:
    try:
        return av.open(source)
    except (av.FFmpegError, OSError, ValueError) as err:
        raise VideoError(f"not a readable video ({type(err).__name__}: {err})") from err


def _video_stream(container: av.container.InputContainer) -> tuple[av.video.stream.VideoStream, float]:
    """The first video stream (frame-threaded decoding) and its native frame rate (0 when unknown)."""
    if not container.streams.video:
        raise VideoError("no video stream")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    rate = stream.average_rate or stream.guessed_rate
    return stream, float(rate) if rate else 0.0


class _Scaler:
    """A native frame as the clip's RGB frame: scaled (area-averaged) to cover ``height`` x ``width``
    with the source's aspect, then centre-cropped."""

    def __init__(self, height: int, width: int):
        self.height, self.width = height, width
        self._crop: tuple[int, int, slice, slice] | None = None

    def __call__(self, frame: av.VideoFrame) -> np.ndarray:
        if self._crop is None:  # every frame of a stream has the first one's size
            cover_w, cover_h = _cover_size(frame.width, frame.height, self.width, self.height)
            top, left = (cover_h - self.height) // 2, (cover_w - self.width) // 2
            self._crop = (cover_w, cover_h, slice(top, top + self.height), slice(left, left + self.width))
        cover_w, cover_h, rows, cols = self._crop
        full = frame.to_ndarray(format="rgb24", width=cover_w, height=cover_h, interpolation="AREA")
        return np.ascontiguousarray(full[rows, cols])


def _on_grid(
    decoded: Iterable[av.VideoFrame], fps: float, native_fps: float, first: int = 0
) -> Iterator[tuple[av.VideoFrame, float, range]]:
    """``(frame, time, grid)`` for every decoded frame: ``grid`` is the range of frames on the ``fps``
    grid (counted from ``first``) that take it, as each grid time ``k / fps`` takes the first frame at
    or after it. A frame without a timestamp is placed by its count at ``native_fps``."""
    k = first
    for n, frame in enumerate(decoded):
        t = float(frame.time) if frame.time is not None else (n / native_fps if native_fps else 0.0)
        start = k
        while t + _GRID_TOLERANCE >= k / fps:
            k += 1
        yield frame, t, range(start, k)


def decode_resampled(
    source: str | IO[bytes],
    *,
    fps: float,
    height: int,
    width: int,
    on_frame: Callable[[int, np.ndarray, float], None] | None = None,
    min_frames_ratio: float = 0.9,
    keep_frames: bool = True,
) -> DecodedVideo:
    """Decode ``source`` once; return its frames at ``fps``, centre-cropped and scaled to
    ``height`` x ``width`` (with ``keep_frames=False`` only how many there are: a scan that needs the
    shots and the length, not the pixels, skips every colour conversion). Only frames on the grid pay
    for the full-quality scale.

    ``on_frame(index, bgr_image, native_fps)`` sees every native frame as a small
    :func:`analysis_image`, e.g. for shot detection.
    Raises :class:`VideoError` for files that are not videos, have no video stream, or are truncated
    (decoding fails part-way, or yields fewer than ``min_frames_ratio`` of the frames the header declares).
    """
    kept: list[np.ndarray] = []
    n, last_t, grid_frames = 0, 0.0, 0
    scale = _Scaler(height, width)
    with _open(source) as container:
        stream, native_fps = _video_stream(container)
        declared = stream.frames or 0
        try:
            for frame, t, grid in _on_grid(container.decode(stream), fps, native_fps):
                if on_frame is not None:
                    on_frame(n, analysis_image(frame), native_fps)
                if grid and keep_frames:
                    kept.extend([scale(frame)] * len(grid))
                grid_frames += len(grid)
                n += 1
                last_t = t
        except av.FFmpegError as err:
            raise VideoError(f"truncated or corrupt: decoding failed after {n} frames ({err})") from err
    if n == 0:
        raise VideoError("no decodable frames")
    if declared and n < min_frames_ratio * declared:
        raise VideoError(f"truncated: decoded {n} of the {declared} frames the header declares")
    duration = last_t + (1.0 / native_fps if native_fps else 0.0)
    frames = np.stack(kept) if kept else np.zeros((0, height, width, 3), np.uint8)
    return DecodedVideo(frames, fps, native_fps, n, duration, grid_frames)


@dataclass(frozen=True)
class DecodedSpan:
    frames: np.ndarray  # uint8 [stop - start, H, W, 3]: grid frames start .. stop - 1 at the asked fps
    native_frames: int  # native frames decoded to get them (a seek skips those before the keyframe)


def decode_span(
    source: str | IO[bytes], *, fps: float, height: int, width: int, start: int, stop: int
) -> DecodedSpan:
    """Frames ``start`` to ``stop - 1`` of what :func:`decode_resampled` returns for the same ``source``
    and geometry, pixel for pixel, without decoding the file from its start: it seeks to the last
    keyframe at or before frame ``start``'s time and decodes from there to frame ``stop - 1``.

    Raises :class:`VideoError` when the file cannot be read or ends before frame ``stop - 1``.
    """
    if not 0 <= start < stop:
        raise ValueError(f"span [{start}, {stop}): need 0 <= start < stop")
    scale = _Scaler(height, width)
    with _open(source) as container:
        stream, native_fps = _video_stream(container)
        frames, decoded = None, 0
        if start > 0 and stream.time_base:
            container.seek(int(start / fps / stream.time_base), stream=stream, backward=True)
            frames, decoded = _grid_span(container, stream, fps, native_fps, start, stop, scale, True)
        if frames is None:  # no seek, or it landed after the span's first frame: from the file's start
            if start > 0:
                container.seek(stream.start_time or 0, stream=stream, backward=True)
            frames, more = _grid_span(container, stream, fps, native_fps, start, stop, scale, False)
            decoded += more
    if len(frames) < stop - start:
        raise VideoError(
            f"ends at frame {start + len(frames)} at {fps:g} fps, before the span [{start}, {stop}) "
            "(the file changed since it was scanned?)"
        )
    return DecodedSpan(np.stack(frames), decoded)


def _grid_span(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    fps: float,
    native_fps: float,
    start: int,
    stop: int,
    scale: _Scaler,
    seeked: bool,
) -> tuple[list[np.ndarray] | None, int]:
    """(grid frames ``start .. stop - 1``, native frames decoded), decoding from where the container
    stands. After a seek the grid is counted from ``start``, which holds only if the first frame carries
    a time at or before frame ``start``'s: else ``(None, 1)`` (a frame before it could be the one a grid
    time takes)."""
    picked: list[np.ndarray] = []
    n = 0
    try:
        decoded = container.decode(stream)
        for frame, t, grid in _on_grid(decoded, fps, native_fps, start if seeked else 0):
            if n == 0 and seeked and (frame.time is None or t > start / fps + _GRID_TOLERANCE):
                return None, 1
            n += 1
            wanted = range(max(grid.start, start), min(grid.stop, stop))
            if wanted:
                picked.extend([scale(frame)] * len(wanted))
            if grid.stop >= stop:
                break
    except av.FFmpegError as err:
        raise VideoError(f"truncated or corrupt: decoding failed after {n} frames ({err})") from err
    return picked, n


def decode_all(source: str | IO[bytes]) -> np.ndarray:
    """Every frame of ``source`` at its own size as ``uint8 [N, H, W, 3]`` (tests and small clips)."""
    with av.open(source) as container:
        stream = container.streams.video[0]
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])


def encode_video(
    frames: np.ndarray,
    target: str | IO[bytes],
    *,
    fps: float,
    codec: str = "libx264rgb",
    options: dict[str, str] | None = None,
    container_format: str | None = "mp4",
) -> None:
    """Write ``uint8 [T, H, W, 3]`` RGB frames as a video.

    The default, ``libx264rgb`` with ``qp=0``, is lossless (colours survive exactly, which the world's
    oracle relies on); pass ``codec="libx264"`` for smaller, lossy, widely playable files.
    """
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"expected uint8 frames [T, H, W, 3], got {frames.dtype} {frames.shape}")
    lossless = codec == "libx264rgb"
    if not lossless:
        # yuv420p halves the chroma planes: width and height must be even (an odd last row / column goes).
        frames = np.ascontiguousarray(frames[:, : frames.shape[1] // 2 * 2, : frames.shape[2] // 2 * 2])
    opts = {"qp": "0", "preset": "veryfast"} if lossless else {"crf": "18", "preset": "veryfast"}
    opts.update(options or {})
    with av.open(target, mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "rgb24" if lossless else "yuv420p"
        stream.options = opts
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
