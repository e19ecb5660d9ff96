"""(context clip, question, target clip) triplets: the unit every stage after ingest works on.

A :class:`TripletSet` is an index (one row per triplet, a pandas DataFrame) plus a way to fetch the two
clips of a row. Clips are fetched on demand, so a set loaded from disk does not hold every video in
memory; a set built in memory (the ingest output) simply keeps its arrays.

Clips are ``uint8`` arrays shaped ``[frames, height, width, 3]`` (RGB).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

FAMILIES = ("procedural", "predictive")
SPLITS = ("train", "val", "test")

#: The paper's two question families, each asked in several words so the text is not one template.
QUESTIONS: dict[str, tuple[str, ...]] = {
    "procedural": (
        "What should be done next?",
        "What should I do next?",
        "What is the next step?",
        "What do I do now?",
    ),
    "predictive": (
        "What will happen next?",
        "What happens next?",
        "What is going to happen?",
        "What will the scene show next?",
    ),
}

#: Columns every triplet index carries. ``caption`` may be missing (None) until the caption stage runs.
REQUIRED_COLUMNS = ("sample_id", "split", "family", "question", "caption", "source")

ClipPair = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Shard:
    """Part ``index`` of ``count`` of a job split across processes or machines (``"k/n"``, k from 0).

    >>> Shard.parse("1/4").take(list(range(10)))
    [1, 5, 9]
    """

    index: int
    count: int

    def __post_init__(self) -> None:
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index}/{self.count}: need 0 <= k < n")

    @classmethod
    def parse(cls, text: str) -> Shard:
        try:
            k, n = (int(part) for part in str(text).split("/"))
        except ValueError:
            raise ValueError(f"shard {text!r}: write it as k/n, e.g. 0/8") from None
        return cls(k, n)

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    @property
    def name(self) -> str:
        """A file-name form, ``k-of-n``."""
        return f"{self.index}-of-{self.count}"

    @classmethod
    def from_name(cls, name: str) -> Shard | None:
        """The shard a file name of :attr:`name`'s form stands for (``None`` for any other name).

        >>> Shard.from_name("2-of-8"), Shard.from_name("old")
        (Shard(index=2, count=8), None)
        """
        match = re.fullmatch(r"(\d+)-of-(\d+)", name)
        return cls(int(match[1]), int(match[2])) if match else None

    def take(self, items: Sequence[Any]) -> list[Any]:
        """This shard's items: every ``count``-th from position ``index``."""
        return list(items[self.index :: self.count])


@dataclass(frozen=True)
class Triplet:
    """One sample: what the VLM sees (context, question) and what a perfect answer looks like."""

    sample_id: str
    split: str
    family: str
    question: str
    caption: str | None
    source: str
    context: np.ndarray
    target: np.ndarray
    extra: Mapping[str, Any] = field(default_factory=dict)


def check_clip(clip: np.ndarray, name: str) -> None:
    """Raise ``ValueError`` unless ``clip`` is a ``uint8 [T, H, W, 3]`` array."""
    if not isinstance(clip, np.ndarray) or clip.dtype != np.uint8 or clip.ndim != 4 or clip.shape[-1] != 3:
        desc = f"{clip.dtype} {clip.shape}" if isinstance(clip, np.ndarray) else type(clip).__name__
        raise ValueError(f"{name}: expected a uint8 array [frames, height, width, 3], got {desc}")


class TripletSet(Sequence[Triplet]):
    """An ordered collection of triplets: ``index`` rows plus clips fetched through ``clip_loader``."""

    def __init__(
        self, index: pd.DataFrame, clip_loader: Callable[[str], ClipPair], shard: Shard | None = None
    ):
        missing = [c for c in REQUIRED_COLUMNS if c not in index.columns]
        if missing:
            raise ValueError(f"triplet index lacks required column(s) {missing}")
        if index["sample_id"].duplicated().any():
            dupes = index.loc[index["sample_id"].duplicated(), "sample_id"].tolist()[:5]
            raise ValueError(f"triplet index has duplicate sample_id values, e.g. {dupes}")
        self.index = index.reset_index(drop=True)
        self._clip_loader = clip_loader
        self.shard = shard  # a shard of a larger set (saved beside the other shards)

    @classmethod
    def from_arrays(cls, rows: Sequence[Mapping[str, Any]], clips: Sequence[ClipPair]) -> TripletSet:
        """Build an in-memory set from index rows and their (context, target) arrays, in the same order."""
        if len(rows) != len(clips):
            raise ValueError(f"{len(rows)} index rows but {len(clips)} clip pairs")
        index = pd.DataFrame(list(rows), columns=_columns_of(rows))
        by_id: dict[str, ClipPair] = {}
        for sample_id, (context, target) in zip(index["sample_id"], clips, strict=True):
            check_clip(context, f"{sample_id} context")
            check_clip(target, f"{sample_id} target")
            by_id[sample_id] = (context, target)
        return cls(index, by_id.__getitem__)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> Triplet:  # type: ignore[override]
        if isinstance(i, slice):
            raise TypeError("use TripletSet.select(...) for sub-sets")
        row = self.index.iloc[i].to_dict()
        context, target = self.clips(row["sample_id"])
        base = {k: row.pop(k) for k in REQUIRED_COLUMNS}
        caption = base["caption"] if isinstance(base["caption"], str) else None
        return Triplet(**{**base, "caption": caption}, context=context, target=target, extra=row)

    def __iter__(self) -> Iterator[Triplet]:
        for i in range(len(self)):
            yield self[i]

    def clips(self, sample_id: str) -> ClipPair:
        """The (context, target) clips of one sample."""
        return self._clip_loader(sample_id)

    def iter_clips(self) -> Iterator[tuple[str, ClipPair]]:
        """Every sample's clips in index order, as a writer wants them: through the loader's own
        ``iter_clips`` when it has one (e.g. decoding source videos in parallel, one at a time each),
        else one :meth:`clips` call per sample."""
        sample_ids = list(self.index["sample_id"])
        batched = getattr(self._clip_loader, "iter_clips", None)
        if batched is not None:
            yield from batched(sample_ids)
            return
        for sample_id in sample_ids:
            yield sample_id, self.clips(sample_id)


def _columns_of(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    columns = list(REQUIRED_COLUMNS)
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    return columns
