"""The synthetic VNEP world: the embedded default data, rendered by the project itself.

Two task families as in the paper (procedural recipes and predictive physics), ground-truth captions
in several phrasings, structured state, and an oracle that reads events back from any clip's pixels.
"""

from vans_pipelines.world.captions import all_captions, event_caption, reasoning_for
from vans_pipelines.world.events import EVENT_KINDS, Event
from vans_pipelines.world.generate import WorldSample, render_sample, render_split
from vans_pipelines.world.oracle import read_event, segment

__all__ = [
    "EVENT_KINDS",
    "Event",
    "WorldSample",
    "all_captions",
    "event_caption",
    "read_event",
    "reasoning_for",
    "render_sample",
    "render_split",
    "segment",
]
