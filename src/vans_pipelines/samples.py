"""A triplet set's samples as a torch dataset, with the caption stage's captions, and the ordered batches
evaluation loops read: below both training and evaluation."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from torch.utils.data import DataLoader, Dataset, Subset

from vans_pipelines.triplets import TripletSet


def captions_by_id(captions: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """The caption stage's table as ``{sample_id: (caption, reasoning)}``, what :class:`TripletSamples`
    takes."""
    return {r.sample_id: (r.caption, r.reasoning) for r in captions.itertuples(index=False)}


class TripletSamples(Dataset):
    """Items ``{sample_id, question, caption, reasoning, event, context, target}`` of a triplet set.

    ``captions`` maps sample_id → (caption, reasoning) and overrides the index's caption (the caption
    stage's output). ``read_workers``: how many processes evaluation loops (:func:`ordered_batches`) read
    the samples in, ahead of the model (span triplets decode their clips when read); training loaders
    take their stage's ``trainer.num_workers``. ``cache_mb``: items read are kept in memory up to this many
    MiB of clips (in each process that reads them), so a training loop's later epochs and a stage's
    repeated evaluations read nothing from storage; their clips are read-only."""

    def __init__(
        self,
        triplets: TripletSet,
        captions: Mapping[str, tuple[str, str]] | None = None,
        read_workers: int = 0,
        cache_mb: float = 0,
    ):
        self.triplets = triplets
        self.captions = captions or {}
        self.read_workers = read_workers  # processes :func:`ordered_batches` reads them in (0: this one)
        self.cache_bytes = int(cache_mb * 2**20)
        self._cache: dict[int, dict[str, Any]] = {}
        self._cached_bytes = 0
        missing = [s for s in triplets.index["sample_id"] if captions is not None and s not in self.captions]
        if missing:
            raise ValueError(
                f"{len(missing)} samples have no caption, e.g. {missing[:3]}; run the caption stage"
            )

    def __len__(self) -> int:
        return len(self.triplets)

    def __getitem__(self, i: int) -> dict[str, Any]:
        cached = self._cache.get(i)
        if cached is not None:
            return dict(cached)
        item = self._read(i)
        size = item["context"].nbytes + item["target"].nbytes
        if self._cached_bytes + size <= self.cache_bytes:
            for key in ("context", "target"):  # shared by every later read: nobody may write into them
                item[key].setflags(write=False)
            self._cache[i] = item
            self._cached_bytes += size
            return dict(item)
        return item

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers and pickled copies start with an empty cache of their own
        return {**self.__dict__, "_cache": {}, "_cached_bytes": 0}

    def _read(self, i: int) -> dict[str, Any]:
        row = self.triplets.index.iloc[i]
        sample_id = row["sample_id"]
        context, target = self.triplets.clips(sample_id)
        caption, reasoning = self.captions.get(sample_id, (row["caption"], ""))
        return {
            "sample_id": sample_id,
            "question": row["question"],
            "caption": caption,
            "reasoning": reasoning,
            "event": row.get("event"),
            "context": context,
            "target": target,
        }


def samples(triplets: TripletSet, captions: pd.DataFrame, read_workers: int = 0) -> TripletSamples:
    """A split's samples with the caption stage's captions (its table, as the catalog loads it)."""
    return TripletSamples(triplets, captions_by_id(captions), read_workers)


@dataclass(frozen=True)
class SplitSamples:
    """A run's samples, split by split, with the caption stage's captions; ``fps``: the frame rate their
    clips were cut at (``ingest.clip.fps``). What every stage that trains or evaluates reads."""

    train: TripletSamples
    val: TripletSamples
    test: TripletSamples
    fps: float


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Lists for strings; clips stacked as uint8 numpy arrays ``[B, T, H, W, 3]``."""
    out: dict[str, Any] = {k: [item[k] for item in items] for k in items[0]}
    for key in ("context", "target"):
        out[key] = np.stack(out[key])
    return out


def ordered_batches(
    samples: Dataset, batch_size: int, limit: int | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(offset, collated batch) over the first ``limit`` samples in order, for evaluation loops; read in
    the samples' ``read_workers`` processes when they name some (the same batches, sooner)."""
    n = len(samples) if limit is None else min(limit, len(samples))
    workers = getattr(samples, "read_workers", 0)
    if workers and n:
        loader = DataLoader(
            Subset(samples, range(n)), batch_size, shuffle=False, num_workers=workers, collate_fn=collate
        )
        for k, batch in enumerate(loader):
            yield k * batch_size, batch
        return
    for start in range(0, n, batch_size):
        yield start, collate([samples[i] for i in range(start, min(n, start + batch_size))])
