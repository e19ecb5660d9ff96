"""Read the event of a clip back from its pixels: which object did what, with no learned model.

Pixels are assigned to the nearest palette colour (within a tolerance, so mildly blurred or noisy
generated frames still segment); as a scene never shows one colour twice, each colour is one object.
Tracking its centroid over the clip tells which object moved, where and which way; shapes come from
the object's silhouette. The rules mirror the events of :mod:`vans_pipelines.world.events`.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass

import numpy as np

from vans_pipelines.world import scene
from vans_pipelines.world.events import Event

_PALETTE_NAMES = list(scene.PALETTE)
_PALETTE_RGB = np.asarray([scene.PALETTE[c] for c in _PALETTE_NAMES], dtype=np.int32)


@dataclass(frozen=True)
class Blob:
    """One segmented object in one frame; coordinates normalised like the world's."""

    colour: str
    pixels: int
    x: float
    y: float
    top: float
    bottom: float
    shape: str


@dataclass(frozen=True)
class OracleConfig:
    colour_tolerance: float = 70.0  # max RGB distance from a palette colour
    min_area: float = 0.15  # of a triangle's area at OBJECT_SIZE, below which a blob is noise
    move_tolerance: float = 0.025  # normalised displacement that counts as motion
    contact_tolerance: float = 0.07  # normalised gap between stacked objects


def classify_shape(mask: np.ndarray) -> str:
    """Square, circle or triangle: the world shape that, drawn to fill the blob's bounding box (or a
    pixel more, shifted by up to half a pixel), overlaps the blob best (IoU).

    Matching whole templates rather than testing corners keeps the reading stable on soft edges: a
    7-pixel square blurred by half a pixel loses its corner pixels to the colour tolerance, yet it is
    still closer to a square than to any circle."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if len(rows) < 2 or len(cols) < 2:
        return "circle"
    # A window one pixel larger than the bounding box holds every candidate template.
    r0, r1 = max(rows[0] - 1, 0), min(rows[-1] + 2, mask.shape[0])
    c0, c1 = max(cols[0] - 1, 0), min(cols[-1] + 2, mask.shape[1])
    crop = np.ascontiguousarray(mask[r0:r1, c0:c1])
    return _classify_window(crop.tobytes(), crop.shape)


@functools.lru_cache(maxsize=1 << 14)
def _classify_window(window: bytes, size: tuple[int, int]) -> str:
    """:func:`classify_shape` of a blob's window, in window coordinates (every offset is a multiple of
    half a pixel, exact either way). Cached: an object keeps its silhouette over most frames of a clip."""
    crop = np.frombuffer(window, dtype=bool).reshape(size)
    rows = np.flatnonzero(crop.any(axis=1))
    cols = np.flatnonzero(crop.any(axis=0))
    centre_y, centre_x = (rows[0] + rows[-1] + 1) / 2, (cols[0] + cols[-1] + 1) / 2
    ys = np.arange(size[0], dtype=np.float64)[:, None] + 0.5 - centre_y
    xs = np.arange(size[1], dtype=np.float64)[None, :] + 0.5 - centre_x
    extent = (len(rows) + len(cols)) / 2  # the three shapes all have square bounding boxes
    half = np.asarray([extent / 2, (extent + 1) / 2])[:, None, None, None, None]
    shift = np.asarray([-0.5, 0.0, 0.5])
    dy, dx = ys - shift[:, None, None], xs - shift[:, None, None]  # [3, h, 1], [3, 1, w]
    area = crop.sum()
    best, best_iou = "circle", -1.0
    for shape in scene.SHAPES:  # a tie goes to the earlier shape
        templates = scene.shape_mask(shape, dx[None, None], dy[None, :, None], half)  # [2, 3, 3, h, w]
        overlap = (templates & crop).sum(axis=(-2, -1))
        iou = (overlap / (area + templates.sum(axis=(-2, -1)) - overlap)).max()
        if iou > best_iou:
            best, best_iou = shape, iou
    return best


def segment(frame: np.ndarray, config: OracleConfig = OracleConfig()) -> dict[str, Blob]:
    """The objects of one ``uint8 [H, W, 3]`` frame, keyed by colour."""
    return segment_clip(frame[None], config)[0]


def segment_clip(clip: np.ndarray, config: OracleConfig = OracleConfig()) -> list[dict[str, Blob]]:
    """The objects of each frame of a ``uint8 [T, H, W, 3]`` clip, keyed by colour: :func:`segment` of
    every frame, computed for the whole clip at once."""
    t, h, w = clip.shape[:3]
    # Squared RGB distances are exact integers: the nearest colour and the tolerance test are those of
    # the Euclidean distance, without its square roots.
    offset = clip[..., None, :].astype(np.int32) - _PALETTE_RGB
    squared = np.einsum("thwpc,thwpc->thwp", offset, offset)
    label = squared.argmin(axis=-1)
    valid = squared.min(axis=-1) <= config.colour_tolerance**2
    x0, y0, x1, y1 = scene.IGNORED_BOX
    valid[:, int(y0 * h) : int(np.ceil(y1 * h)), int(x0 * w) : int(np.ceil(x1 * w))] = False
    min_pixels = max(2.0, config.min_area * 0.5 * (scene.OBJECT_SIZE * h) ** 2)
    frames: list[dict[str, Blob]] = [{} for _ in range(t)]
    rows, cols = np.arange(h), np.arange(w)
    for k, colour in enumerate(_PALETTE_NAMES):
        masks = valid & (label == k)
        per_row, per_col = masks.sum(axis=2), masks.sum(axis=1)  # [T, H], [T, W] pixel counts
        counts = per_row.sum(axis=1)
        for f in np.flatnonzero(counts >= min_pixels):
            n = int(counts[f])
            occupied = np.flatnonzero(per_row[f])
            frames[f][colour] = Blob(
                colour=colour,
                pixels=n,
                x=(float(per_col[f] @ cols) / n + 0.5) / w,
                y=(float(per_row[f] @ rows) / n + 0.5) / h,
                top=occupied[0] / h,
                bottom=(occupied[-1] + 1) / h,
                shape=classify_shape(masks[f]),
            )
    return frames


def _track_shape(track: list[Blob | None]) -> str:
    """Shape by vote over the frames where the object is (nearly) fully visible."""
    seen = [b for b in track if b is not None]
    biggest = max(b.pixels for b in seen)
    votes = Counter(b.shape for b in seen if b.pixels >= 0.8 * biggest)
    return votes.most_common(1)[0][0]


def _trajectory(track: list[Blob | None]) -> np.ndarray:
    """[T, 2] centroids, gaps filled from the nearest seen frame."""
    t_seen = [t for t, b in enumerate(track) if b is not None]
    pts = np.asarray([[track[t].x, track[t].y] for t in t_seen])
    ts = np.arange(len(track))
    return np.stack([np.interp(ts, t_seen, pts[:, 0]), np.interp(ts, t_seen, pts[:, 1])], axis=1)


def read_event(clip: np.ndarray, config: OracleConfig = OracleConfig()) -> Event | None:
    """The event a ``uint8 [T, H, W, 3]`` clip shows, or None when it shows none of the world's events."""
    frames = segment_clip(clip, config)
    colours = sorted(set().union(*frames))
    tracks = {c: [f.get(c) for f in frames] for c in colours}
    if not tracks:
        return None
    names = {c: f"{c} {_track_shape(tracks[c])}" for c in colours}
    first, last = frames[0], frames[-1]
    tol = config.move_tolerance

    vanished = _vanished_event(colours, first, last, names)
    if vanished is not None:
        return vanished
    paths = {c: _trajectory(tracks[c]) for c in colours if c in first and c in last}
    displacement = {c: np.abs(p - p[0]).max(axis=1) for c, p in paths.items()}
    movers = [c for c, d in displacement.items() if d.max() > tol]
    if len(movers) >= 2:
        # The first to move hit the other.
        start_time = {c: int(np.argmax(displacement[c] > tol)) for c in movers}
        subject, struck = sorted(movers, key=lambda c: start_time[c])[:2]
        return Event("collide", names[subject], names[struck])
    if len(movers) != 1:
        return None
    (m,) = movers
    align = 0.5 * scene.OBJECT_SIZE * clip.shape[1] / clip.shape[2]  # an object's half width, in x units
    return _stack_event(m, last, names, config, align) or _path_event(names[m], paths[m], tol)


def _vanished_event(
    colours: list[str], first: dict[str, Blob], last: dict[str, Blob], names: dict[str, str]
) -> Event | None:
    """An object gone at the end was painted over (a new colour took its place) or removed."""
    vanished = [c for c in colours if c in first and c not in last]
    appeared = [c for c in colours if c not in first and c in last]
    for c in vanished:
        start = first[c]
        for new in appeared:
            end = last[new]
            if abs(end.x - start.x) + abs(end.y - start.y) < scene.OBJECT_SIZE:
                return Event("paint", names[c], new)
    return Event("remove", names[vanished[0]]) if vanished else None


def _stack_event(
    mover: str, last: dict[str, Blob], names: dict[str, str], config: OracleConfig, align: float
) -> Event | None:
    """The lone mover ended resting on top of another object."""
    end = last[mover]
    for other, blob in last.items():
        if other == mover:
            continue
        on_top = abs(end.bottom - blob.top) < config.contact_tolerance
        aligned = abs(end.x - blob.x) < align
        if on_top and aligned and end.y < blob.y:
            return Event("stack", names[mover], names[other])
    return None


def _path_event(name: str, path: np.ndarray, tol: float) -> Event | None:
    """The lone mover's event from its path: a bounce (out and back), placed (up) or fallen (down)."""
    x = path[:, 0]
    if x.max() - x[0] > tol and x.max() - x[-1] > tol:
        return Event("bounce", name, "right")
    if x[0] - x.min() > tol and x[-1] - x.min() > tol:
        return Event("bounce", name, "left")
    dy = path[-1, 1] - path[0, 1]
    if dy < -tol:
        return Event("place", name)
    if dy > tol:
        return Event("fall", name)
    return None
