"""Objects, layouts and the rasteriser of the synthetic world.

Coordinates are normalised: ``x`` in [0, 1] left→right, ``y`` in [0, 1] top→bottom, so one scene
renders at any resolution. An object's ``size`` is a fraction of the frame height, and it keeps its
aspect in pixels (a square stays square on a wide frame).

Every colour of the palette is far from the background and from the grey of the structures, and a
scene never shows one colour twice, so the oracle can segment objects by colour alone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (50, 80, 235),
    "yellow": (235, 215, 40),
    "magenta": (215, 50, 215),
    "cyan": (40, 215, 220),
}
SHAPES = ("square", "circle", "triangle")
BACKGROUND = (24, 24, 32)
STRUCTURE = (120, 120, 120)

OBJECT_SIZE = 0.22  # fraction of frame height

# Procedural (workbench) layout: a table line, a tray below it, a paint pot in the top-right corner.
TABLE_Y = 0.72
TRAY_Y = 0.87
TRAY_SLOTS = (0.18, 0.5, 0.82)
WORK_SLOTS = (0.3, 0.62)
POT_BOX = (0.84, 0.04, 0.96, 0.16)  # x0, y0, x1, y1
# The oracle ignores this corner: only the pot lives there.
IGNORED_BOX = (0.8, 0.0, 1.0, 0.2)

# Predictive (physics) layout: a floor and two walls.
FLOOR_Y = 0.9
WALL_WIDTH = 0.06


@dataclass(frozen=True)
class WorldObject:
    """One object of a scene at one instant. ``paint_level`` in [0, 1] is how much of it (from the top)
    already wears ``paint_colour``; 0 means none."""

    colour: str
    shape: str
    x: float
    y: float
    size: float = OBJECT_SIZE
    paint_colour: str | None = None
    paint_level: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"

    def moved(self, x: float, y: float) -> WorldObject:
        return replace(self, x=x, y=y)

    def half_height(self) -> float:
        return self.size / 2


@dataclass(frozen=True)
class Layout:
    """The static part of a scene: which structures are drawn and the pot's colour, if any."""

    kind: str  # "workbench" | "physics"
    pot_colour: str | None = None


def pixel_grid(height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Normalised coordinates of pixel centres, as (ys [H, 1], xs [1, W])."""
    ys = (np.arange(height, dtype=np.float64)[:, None] + 0.5) / height
    xs = (np.arange(width, dtype=np.float64)[None, :] + 0.5) / width
    return ys, xs


def shape_mask(shape: str, dx: np.ndarray, dy: np.ndarray, r: np.ndarray | float) -> np.ndarray:
    """Inside-test of a world shape of half-size ``r`` for pixel offsets ``dx, dy`` from its centre (all
    in pixels, broadcast together)."""
    if shape == "square":
        return (np.abs(dx) <= r) & (np.abs(dy) <= r)
    if shape == "circle":
        return dx**2 + dy**2 <= r**2
    if shape == "triangle":  # apex up, base down
        return (np.abs(dy) <= r) & (np.abs(dx) <= (dy + r) / 2)
    raise ValueError(f"unknown shape {shape!r}; known: {SHAPES}")


def object_mask(obj: WorldObject, height: int, width: int) -> np.ndarray:
    """Boolean [H, W] mask of the pixels whose centres fall inside ``obj``."""
    ys, xs = pixel_grid(height, width)
    return shape_mask(obj.shape, (xs - obj.x) * width, (ys - obj.y) * height, obj.size * height / 2)


def _fill_box(
    frame: np.ndarray, box: tuple[float, float, float, float], colour: tuple[int, int, int]
) -> None:
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = box
    r0, c0 = round(y0 * h), round(x0 * w)
    frame[r0 : max(round(y1 * h), r0 + 1), c0 : max(round(x1 * w), c0 + 1)] = colour


def render_frame(layout: Layout, objects: list[WorldObject], height: int, width: int) -> np.ndarray:
    """Rasterise one frame: background, structures, then objects in list order (later on top)."""
    frame = np.empty((height, width, 3), dtype=np.uint8)
    frame[:] = BACKGROUND
    if layout.kind == "workbench":
        row = min(int(TABLE_Y * height), height - 1)
        frame[row, :] = STRUCTURE
        if layout.pot_colour is not None:
            _fill_box(frame, POT_BOX, PALETTE[layout.pot_colour])
    elif layout.kind == "physics":
        _fill_box(frame, (0.0, FLOOR_Y, 1.0, 1.0), STRUCTURE)
        _fill_box(frame, (0.0, 0.0, WALL_WIDTH, FLOOR_Y), STRUCTURE)
        _fill_box(frame, (1.0 - WALL_WIDTH, 0.0, 1.0, FLOOR_Y), STRUCTURE)
    else:
        raise ValueError(f"unknown layout kind {layout.kind!r}")
    ys, _ = pixel_grid(height, width)
    for obj in objects:
        mask = object_mask(obj, height, width)
        frame[mask] = PALETTE[obj.colour]
        if obj.paint_colour is not None and obj.paint_level > 0:
            top = obj.y - obj.half_height()
            painted = mask & (ys <= top + obj.paint_level * obj.size)
            frame[painted] = PALETTE[obj.paint_colour]
    return frame


def render_clip(layout: Layout, states: list[list[WorldObject]], height: int, width: int) -> np.ndarray:
    """Render a list of scene states to a ``uint8 [T, H, W, 3]`` clip."""
    return np.stack([render_frame(layout, objs, height, width) for objs in states])
