"""Video decoding and encoding with PyAV.

:func:`decode_resampled` is the ingest workhorse: one pass over a file decodes every frame, scales it
(in FFmpeg's swscale, cover-and-centre-crop to the clip size), feeds it to a per-frame callback (shot
detection) and keeps the frames that fall on the requested fps grid. Nothing is decoded twice.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
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
    frames: np.ndarray  # uint8 [N, H, W, 3], sampled at ``fps``
    fps: float
    native_fps: float
    native_frames: int  # frames decoded at the file's own rate
    duration: float  # seconds


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


def decode_resampled(
    source: str | IO[bytes],
    *,
    fps: float,
    height: int,
    width: int,
    on_frame: Callable[[int, np.ndarray, float], None] | None = None,
    min_frames_ratio: float = 0.9,
) -> DecodedVideo:
    """Decode ``source`` once; return its frames at ``fps``, centre-cropped and scaled to
    ``height`` x ``width``.

    ``on_frame(index, bgr_image, native_fps)`` sees every native frame as a small
    :func:`analysis_image`, e.g. for shot detection.
    Raises :class:`VideoError` for files that are not videos, have no video stream, or are truncated
    (decoding fails part-way, or yields fewer than ``min_frames_ratio`` of the frames the header declares).
    """
    try:
        container = av.open(source)
    except (av.FFmpegError, OSError, ValueError) as err:
        raise VideoError(f"not a readable video ({type(err).__name__}: {err})") from err
    with container:
        if not container.streams.video:
            raise VideoError("no video stream")
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = stream.average_rate or stream.guessed_rate
        native_fps = float(rate) if rate else 0.0
        declared = stream.frames or 0
        kept, n, last_t = _resampled(container.decode(stream), fps, height, width, native_fps, on_frame)
    if n == 0:
        raise VideoError("no decodable frames")
    if declared and n < min_frames_ratio * declared:
        raise VideoError(f"truncated: decoded {n} of the {declared} frames the header declares")
    duration = last_t + (1.0 / native_fps if native_fps else 0.0)
    frames = np.stack(kept) if kept else np.zeros((0, height, width, 3), np.uint8)
    return DecodedVideo(frames=frames, fps=fps, native_fps=native_fps, native_frames=n, duration=duration)


def _resampled(
    decoded: Iterable[av.VideoFrame],
    fps: float,
    height: int,
    width: int,
    native_fps: float,
    on_frame: Callable[[int, np.ndarray, float], None] | None,
) -> tuple[list[np.ndarray], int, float]:
    """The frames on the ``fps`` grid, centre-cropped and scaled; how many native frames were decoded and
    the last one's time. Each grid time takes the first frame at or after it; only those frames pay for
    the full-quality (area-averaged) scale to the clip size."""
    kept: list[np.ndarray] = []
    next_t, step, n, crop, last_t = 0.0, 1.0 / fps, 0, None, 0.0
    try:
        for frame in decoded:
            if crop is None:
                cover_w, cover_h = _cover_size(frame.width, frame.height, width, height)
                top, left = (cover_h - height) // 2, (cover_w - width) // 2
                crop = (cover_w, cover_h, slice(top, top + height), slice(left, left + width))
            t = float(frame.time) if frame.time is not None else (n / native_fps if native_fps else 0.0)
            if on_frame is not None:
                on_frame(n, analysis_image(frame), native_fps)
            if t + 1e-6 >= next_t:
                cover_w, cover_h, rows, cols = crop
                full = frame.to_ndarray(format="rgb24", width=cover_w, height=cover_h, interpolation="AREA")
                rgb = np.ascontiguousarray(full[rows, cols])
                while t + 1e-6 >= next_t:
                    kept.append(rgb)
                    next_t += step
            n += 1
            last_t = t
    except av.FFmpegError as err:
        raise VideoError(f"truncated or corrupt: decoding failed after {n} frames ({err})") from err
    return kept, n, last_t


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
