"""Natural-language captions of world events, several phrasings each.

Procedural answers are instructions ("what should I do next?"), predictive answers are descriptions
("what will happen next?"), as in the paper's two question families.
"""

from __future__ import annotations

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


def caption_event(event: Event, rng: np.random.Generator) -> str:
    """One phrasing of ``event``, chosen by ``rng``.

    >>> caption_event(Event("paint", "red square", "blue"), np.random.default_rng(0)).count("blue")
    1
    """
    options = all_captions(event)
    return options[int(rng.integers(len(options)))]
