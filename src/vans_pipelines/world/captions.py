"""Natural-language captions of world events, several phrasings each.

Procedural answers are instructions ("what should I do next?"), predictive answers are descriptions
("what will happen next?"), as in the paper's two question families.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import numpy as np

from vans_pipelines.world.events import Event

PHRASINGS: dict[str, tuple[str, ...]] = {
    "place": (
        "Place the {subject} on the table.",
        "Move the {subject} from the tray onto the table.",
        "Next, put the {subject} on the table.",
        "Take the {subject} out of the tray and set it on the table.",
    ),
    "paint": (
        "Paint the {subject} {detail}.",
        "Colour the {subject} {detail} with the paint in the corner.",
        "Next, paint the {subject} {detail}.",
        "Use the {detail} paint on the {subject}.",
    ),
    "stack": (
        "Stack the {subject} on top of the {detail}.",
        "Put the {subject} on the {detail}.",
        "Place the {subject} onto the {detail} to build a tower.",
        "Lift the {subject} and set it on the {detail}.",
    ),
    "remove": (
        "Remove the {subject} from the tray.",
        "Clear the {subject} away.",
        "Take the {subject} out of the scene.",
        "Slide the {subject} out of the frame.",
    ),
    "bounce": (
        "The {subject} hits the {detail} wall and bounces back.",
        "The {subject} bounces off the {detail} wall.",
        "The {subject} rebounds from the wall on the {detail}.",
        "After striking the {detail} wall, the {subject} moves back the other way.",
    ),
    "fall": (
        "The {subject} falls and lands on the floor.",
        "The {subject} drops to the ground and stops.",
        "The {subject} keeps falling until it hits the floor.",
        "The {subject} lands on the floor.",
    ),
    "collide": (
        "The {subject} hits the {detail}, which slides away.",
        "The {subject} collides with the {detail} and stops, and the {detail} moves on.",
        "The {subject} knocks the {detail} along.",
        "The {subject} bumps into the {detail}, pushing it away.",
    ),
}


def all_captions(event: Event) -> list[str]:
    """Every phrasing of ``event`` (useful as multiple references for BLEU / ROUGE)."""
    return [p.format(subject=event.subject, detail=event.detail) for p in PHRASINGS[event.kind]]


def event_caption(event: Event, rng: np.random.Generator) -> str:
    """One phrasing of ``event``, chosen by ``rng``.

    >>> event_caption(Event("paint", "red square", "blue"), np.random.default_rng(0)).count("blue")
    1
    """
    options = all_captions(event)
    return options[int(rng.integers(len(options)))]


@cache
def _caption_patterns() -> tuple[tuple[str, re.Pattern[str]], ...]:
    """One regular expression per phrasing; ``{subject}`` / ``{detail}`` match one or two words."""
    patterns = []
    for kind, phrasings in PHRASINGS.items():
        for phrasing in phrasings:
            text = re.escape(phrasing.lower().rstrip("."))
            text = text.replace(r"\{subject\}", r"(?P<subject>[a-z]+(?: [a-z]+)?)")
            # The detail may repeat (collide); later uses must name the same thing.
            text = text.replace(r"\{detail\}", r"(?P<detail>[a-z]+(?: [a-z]+)?)", 1)
            text = text.replace(r"\{detail\}", r"(?P=detail)")
            patterns.append((kind, re.compile(rf"^{text}\.?$")))
    return tuple(patterns)


def parse_caption(caption: str) -> Event | None:
    """The event a caption describes, when it is one of the world's phrasings (any of them), else None.
    Used to score a predicted caption's event against the ground truth (caption event accuracy).

    >>> parse_caption("Next, paint the red square blue.")
    Event(kind='paint', subject='red square', detail='blue')
    >>> parse_caption("The green circle falls and lands on the floor.")
    Event(kind='fall', subject='green circle', detail=None)
    >>> parse_caption("Something else entirely.") is None
    True
    """
    text = " ".join(caption.lower().split())
    for kind, pattern in _caption_patterns():
        match = pattern.match(text)
        if match:
            groups = match.groupdict()
            return Event(kind, groups["subject"], groups.get("detail"))
    return None


def _direction(vx: float, vy: float) -> str:
    if abs(vx) < 1e-6 and abs(vy) < 1e-6:
        return "is still"
    if abs(vx) >= abs(vy):
        return "moves right" if vx > 0 else "moves left"
    return "moves down" if vy > 0 else "moves up"


def reasoning_for(family: str, event: Event, state: dict[str, Any]) -> str:
    """A short ground-truth reasoning for the answer: what the context shows that decides the next event.

    >>> reasoning_for("procedural", Event("paint", "red square", "blue"), {"steps_done": ["place", "place"]})
    'Done so far: place, place. Next comes paint.'
    >>> state = {"objects": [{"colour": "red", "shape": "circle", "vx": -0.02, "vy": 0.0}]}
    >>> reasoning_for("predictive", Event("bounce", "red circle", "left"), state)
    'The red circle moves left.'
    """
    if family == "procedural":
        return f"Done so far: {', '.join(state.get('steps_done', []))}. Next comes {event.kind}."
    colour = event.subject.split()[0]
    mover = next((o for o in state.get("objects", []) if o["colour"] == colour), None)
    motion = _direction(mover["vx"], mover["vy"]) if mover else "is in view"
    return f"The {event.subject} {motion}."
