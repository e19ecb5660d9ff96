"""Episodes of the synthetic world: a context (what the user shows) and the next event (the answer).

Procedural family — a workbench recipe in a fixed order. Three objects wait in a tray (left to right:
A, B, C) and a paint pot sits in the corner. The recipe is: place A on the table, place B, paint A with
the pot's colour, stack A on B, remove C. The context shows the first ``k`` steps (1 ≤ k ≤ 4), the target
shows step ``k + 1``, so the next step is always readable from the context.

Predictive family — simple physics on a floor between two walls: an object sliding into a wall bounces
back; an object falling lands on the floor; a sliding object hits a resting one, stops, and pushes it on.
The context shows the motion up to just before the event, the target shows the event.

Speeds and event times scale with the clip lengths and the frame's aspect, so every episode fits the
frame at any configured size.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from vans_pipelines.world import scene
from vans_pipelines.world.scene import Layout, WorldObject

EVENT_KINDS: dict[str, tuple[str, ...]] = {
    "procedural": ("place", "paint", "stack", "remove"),
    "predictive": ("bounce", "fall", "collide"),
}
RECIPE = ("place", "place", "paint", "stack", "remove")


@dataclass(frozen=True)
class Event:
    """What happens in a target clip. ``subject`` names the acting object ("red square"); ``detail`` is
    the new colour (paint), the object underneath (stack), the object hit (collide), the wall side
    (bounce), or None."""

    kind: str
    subject: str
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Event:
        return cls(kind=d["kind"], subject=d["subject"], detail=d.get("detail"))

    @classmethod
    def parse(cls, value: Event | dict[str, Any] | str | float | None) -> Event | None:
        """An event as triplet indexes and tables hold it (an Event, its dict, or its JSON); None when
        absent (None, or NaN from a table column of a split without events).

        >>> Event.parse('{"kind": "fall", "subject": "red square"}')
        Event(kind='fall', subject='red square', detail=None)
        >>> Event.parse(float("nan")) is None
        True
        """
        if value is None or (isinstance(value, float) and value != value):
            return None
        if isinstance(value, str):
            value = json.loads(value)
        return cls.from_dict(value) if isinstance(value, dict) else value


@dataclass(frozen=True)
class Episode:
    layout: Layout
    context: list[list[WorldObject]]  # one scene state per context frame
    target: list[list[WorldObject]]  # one scene state per target frame
    event: Event
    state: dict[str, Any]  # structured ground truth at the end of the context


def _smoothstep(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(p, 0.0, 1.0)
    return p * p * (3 - 2 * p)


def _progress(frames: int) -> np.ndarray:
    """Eased 0→1 progress of a step animation: still at both ends, moving in between."""
    t = np.arange(frames) / max(frames - 1, 1)
    return _smoothstep((t - 0.12) / 0.76)


def _half_width(size: float, aspect: float) -> float:
    """Half an object's width in normalised x units (``aspect`` = height / width)."""
    return size * aspect / 2


def _scene_state(layout: Layout, before: list[WorldObject], last: list[WorldObject]) -> dict[str, Any]:
    """Structured ground truth: objects, colours, positions and per-frame velocities."""
    prev = {o.colour: o for o in before}
    objects = []
    for o in last:
        p = prev.get(o.colour, o)
        objects.append(
            {
                "colour": o.colour,
                "shape": o.shape,
                "x": round(o.x, 4),
                "y": round(o.y, 4),
                "vx": round(o.x - p.x, 4),
                "vy": round(o.y - p.y, 4),
            }
        )
    return {"layout": layout.kind, "pot_colour": layout.pot_colour, "objects": objects}


# ----------------------------------------------------------------------------------------------- procedural
def _move(
    objs: list[WorldObject], who: str, path: list[tuple[float, float]], frames: int
) -> list[list[WorldObject]]:
    """Animate object ``who`` along a polyline ``path`` (eased), others still."""
    pts = np.asarray(path, dtype=np.float64)
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)]) / max(seg.sum(), 1e-9)
    states = []
    for p in _progress(frames):
        x = float(np.interp(p, cum, pts[:, 0]))
        y = float(np.interp(p, cum, pts[:, 1]))
        states.append([o.moved(x, y) if o.colour == who else o for o in objs])
    return states


def _paint(objs: list[WorldObject], who: str, colour: str, frames: int) -> list[list[WorldObject]]:
    states = []
    for p in _progress(frames):
        row = []
        for o in objs:
            if o.colour == who:
                o = WorldObject(
                    o.colour, o.shape, o.x, o.y, o.size, paint_colour=colour, paint_level=float(p)
                )
            row.append(o)
        states.append(row)
    # The last frame is fully painted: the object now *is* that colour.
    states[-1] = [WorldObject(colour, o.shape, o.x, o.y, o.size) if o.colour == who else o for o in objs]
    return states


@dataclass(frozen=True)
class _Bench:
    """A workbench recipe's places: the tray and work slots (x), the table and stacked heights (y)."""

    tray_x: list[float]
    work_x: list[float]
    table_y: float
    stacked_y: float
    size: float


def _recipe_step(
    step: int,
    objs: list[WorldObject],
    bench: _Bench,
    colours: tuple[str, str, str],
    pot: str,
    name: dict[str, str],
    target_frames: int,
) -> tuple[list[list[WorldObject]], Event]:
    """One recipe step's frames and event: place A, place B, paint A, stack A on B, remove C."""
    a, b, c = colours
    tray_x, work_x, table_y = bench.tray_x, bench.work_x, bench.table_y
    if step == 0:
        path = [(tray_x[0], scene.TRAY_Y), (work_x[0], table_y)]
        return _move(objs, a, path, target_frames), Event("place", name[a])
    if step == 1:
        path = [(tray_x[1], scene.TRAY_Y), (work_x[1], table_y)]
        return _move(objs, b, path, target_frames), Event("place", name[b])
    if step == 2:
        return _paint(objs, a, pot, target_frames), Event("paint", name[a], pot)
    if step == 3:
        path = [(work_x[0], table_y), (work_x[0], bench.stacked_y), (work_x[1], bench.stacked_y)]
        return _move(objs, a, path, target_frames), Event("stack", name[a], name[b])
    path = [(tray_x[2], scene.TRAY_Y), (1.0 + bench.size, scene.TRAY_Y)]
    return _move(objs, c, path, target_frames), Event("remove", name[c])


def procedural_episode(
    rng: np.random.Generator,
    context_frames: int,
    target_frames: int,
    aspect: float,
    steps_shown: int | None = None,
) -> Episode:
    """A workbench recipe; ``steps_shown`` (1-4) is how many steps the context shows (random if None)."""
    k = int(rng.integers(1, len(RECIPE))) if steps_shown is None else steps_shown
    if not 1 <= k < len(RECIPE):
        raise ValueError(f"steps_shown must be in [1, {len(RECIPE) - 1}], got {k}")
    colours = rng.choice(list(scene.PALETTE), size=4, replace=False).tolist()
    shapes = rng.choice(scene.SHAPES, size=3).tolist()
    size = scene.OBJECT_SIZE
    half = size / 2
    tray_x = [s + rng.uniform(-0.03, 0.03) for s in scene.TRAY_SLOTS]
    work_x = [s + rng.uniform(-0.03, 0.03) for s in scene.WORK_SLOTS]
    a, b, c = colours[:3]
    pot = colours[3]
    layout = Layout("workbench", pot_colour=pot)
    table_y = scene.TABLE_Y - half
    stacked_y = table_y - size
    objs = [
        WorldObject(col, shp, x, scene.TRAY_Y, size)
        for col, shp, x in zip(colours[:3], shapes, tray_x, strict=True)
    ]
    name = {o.colour: o.name for o in objs}

    bench = _Bench(tray_x, work_x, table_y, stacked_y, size)
    frames: list[list[list[WorldObject]]] = []  # per recipe step
    events: list[Event] = []
    for step in range(k + 1):
        states, event = _recipe_step(step, objs, bench, (a, b, c), pot, name, target_frames)
        frames.append(states)
        events.append(event)
        objs = states[-1]
        if step == 2:  # A changed colour: its name and identity follow
            name[pot] = f"{pot} {shapes[0]}"
            a = pot

    shown = [s for step_states in frames[:k] for s in step_states]
    pick = np.round(np.linspace(0, len(shown) - 1, context_frames)).astype(int)
    context = [shown[i] for i in pick]
    state = _scene_state(layout, shown[-2], shown[-1])
    state["steps_done"] = list(RECIPE[:k])
    return Episode(layout, context, frames[k], events[k], state)


# ----------------------------------------------------------------------------------------------- predictive
def _event_frame(rng: np.random.Generator, target_frames: int) -> int:
    """Target frame at which the event happens: early enough to show the aftermath."""
    lo = max(1, int(np.ceil(target_frames * 0.25)))
    hi = max(lo, int(target_frames * 0.5))
    return int(rng.integers(lo, hi + 1))


def _physics_objects(rng: np.random.Generator, n: int) -> list[tuple[str, str]]:
    colours = rng.choice(list(scene.PALETTE), size=n, replace=False).tolist()
    shapes = rng.choice(scene.SHAPES, size=n).tolist()
    return list(zip(colours, shapes, strict=True))


def _physics_episode(
    at: Callable[[int], list[WorldObject]], context_frames: int, target_frames: int, event: Event
) -> Episode:
    """An episode of the physics layout from ``at(tau)``, the scene at frame ``tau`` relative to the
    target's first frame (negative: context)."""
    layout = Layout("physics")
    context = [at(t) for t in range(-context_frames, 0)]
    target = [at(t) for t in range(target_frames)]
    return Episode(layout, context, target, event, _scene_state(layout, context[-2], context[-1]))


def bounce_episode(
    rng: np.random.Generator, context_frames: int, target_frames: int, aspect: float
) -> Episode:
    ((colour, shape),) = _physics_objects(rng, 1)
    size = scene.OBJECT_SIZE
    hw = _half_width(size, aspect)
    y = scene.FLOOR_Y - size / 2
    side = str(rng.choice(["left", "right"]))
    toward = -1.0 if side == "left" else 1.0
    x_contact = scene.WALL_WIDTH + hw if side == "left" else 1.0 - scene.WALL_WIDTH - hw
    h = _event_frame(rng, target_frames)
    room = 1.0 - 2 * scene.WALL_WIDTH - 2 * hw - 0.02
    steps_back = max(context_frames + h, target_frames - 1 - h)
    v = room / steps_back * rng.uniform(0.55, 0.95)

    def at(tau: int) -> list[WorldObject]:
        return [WorldObject(colour, shape, x_contact - toward * v * abs(h - tau), y, size)]

    return _physics_episode(at, context_frames, target_frames, Event("bounce", f"{colour} {shape}", side))


def fall_episode(rng: np.random.Generator, context_frames: int, target_frames: int, aspect: float) -> Episode:
    ((colour, shape),) = _physics_objects(rng, 1)
    size = scene.OBJECT_SIZE
    x = rng.uniform(0.25, 0.6)
    y0 = size / 2 + 0.04
    y_floor = scene.FLOOR_Y - size / 2
    h = _event_frame(rng, target_frames)
    g = 2 * (y_floor - y0) / (context_frames + h) ** 2

    def at(tau: int) -> list[WorldObject]:
        t = min(tau, h) + context_frames
        return [WorldObject(colour, shape, x, y0 + 0.5 * g * t * t, size)]

    return _physics_episode(at, context_frames, target_frames, Event("fall", f"{colour} {shape}"))


def collide_episode(
    rng: np.random.Generator, context_frames: int, target_frames: int, aspect: float
) -> Episode:
    (c_mover, s_mover), (c_hit, s_hit) = _physics_objects(rng, 2)
    size = scene.OBJECT_SIZE
    hw = _half_width(size, aspect)
    y = scene.FLOOR_Y - size / 2
    toward = float(rng.choice([-1.0, 1.0]))
    h = _event_frame(rng, target_frames)
    lo, hi = scene.WALL_WIDTH + hw + 0.01, 1.0 - scene.WALL_WIDTH - hw - 0.01
    # The mover covers (context + h) steps before contact, the struck object (target - 1 - h) after.
    v = (hi - lo - 2 * hw) / (context_frames + target_frames - 1) * rng.uniform(0.6, 0.95)
    before, after = v * (context_frames + h), v * (target_frames - 1 - h)
    # Struck object's rest position, chosen so both paths stay between the walls.
    if toward > 0:
        x_hit = rng.uniform(lo + before + 2 * hw, hi - after)
    else:
        x_hit = rng.uniform(lo + after, hi - before - 2 * hw)
    x_contact = x_hit - toward * 2 * hw

    def at(tau: int) -> list[WorldObject]:
        mover_x = x_contact - toward * v * (h - tau) if tau < h else x_contact
        hit_x = x_hit + toward * v * (tau - h) if tau > h else x_hit
        return [WorldObject(c_mover, s_mover, mover_x, y, size), WorldObject(c_hit, s_hit, hit_x, y, size)]

    return _physics_episode(
        at, context_frames, target_frames, Event("collide", f"{c_mover} {s_mover}", f"{c_hit} {s_hit}")
    )


PREDICTIVE_EPISODES = {"bounce": bounce_episode, "fall": fall_episode, "collide": collide_episode}
