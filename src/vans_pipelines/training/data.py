"""Torch datasets and Lightning data modules over :class:`~vans_pipelines.triplets.TripletSet`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

from vans_pipelines.triplets import TripletSet


def captions_by_id(captions: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """The caption stage's table as ``{sample_id: (caption, reasoning)}``, what :class:`TripletSamples`
    takes."""
    return {r.sample_id: (r.caption, r.reasoning) for r in captions.itertuples(index=False)}


class TripletSamples(Dataset):
    """Items ``{sample_id, question, caption, reasoning, event, context, target}`` of a triplet set.

    ``captions`` maps sample_id → (caption, reasoning) and overrides the index's caption (the caption
    stage's output)."""

    def __init__(self, triplets: TripletSet, captions: Mapping[str, tuple[str, str]] | None = None):
        self.triplets = triplets
        self.captions = captions or {}
        missing = [s for s in triplets.index["sample_id"] if captions is not None and s not in self.captions]
        if missing:
            raise ValueError(
                f"{len(missing)} samples have no caption, e.g. {missing[:3]}; run the caption stage"
            )

    def __len__(self) -> int:
        return len(self.triplets)

    def __getitem__(self, i: int) -> dict[str, Any]:
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


def samples(triplets: TripletSet, captions: pd.DataFrame) -> TripletSamples:
    """A split's samples with the caption stage's captions (its table, as the catalog loads it)."""
    return TripletSamples(triplets, captions_by_id(captions))


def collate(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Lists for strings; clips stacked as uint8 numpy arrays ``[B, T, H, W, 3]``."""
    out: dict[str, Any] = {k: [item[k] for item in items] for k in items[0]}
    for key in ("context", "target"):
        out[key] = np.stack(out[key])
    return out


def ordered_batches(
    samples: Dataset, batch_size: int, limit: int | None = None
) -> Iterator[tuple[int, dict[str, Any]]]:
    """(offset, collated batch) over the first ``limit`` samples in order, for evaluation loops."""
    n = len(samples) if limit is None else min(limit, len(samples))
    for start in range(0, n, batch_size):
        yield start, collate([samples[i] for i in range(start, min(n, start + batch_size))])


def check_batch_fits(key: str, batch_size: int, train: Dataset, processes: int = 1) -> None:
    """``ValueError`` naming ``key`` when one step's batches across processes exceed the train split."""
    if batch_size * processes > len(train):
        raise ValueError(
            f"{key}: {batch_size} x {processes} process(es) is larger than the train split "
            f"({len(train)} samples)"
        )


class FrameSamples(Dataset):
    """Single frames (uint8 ``[H, W, 3]``) of every context and target clip: the VAE's training data."""

    def __init__(self, triplets: TripletSet):
        self.triplets = triplets
        first_context, first_target = triplets.clips(triplets.index["sample_id"].iloc[0])
        self.per_sample = len(first_context) + len(first_target)

    def __len__(self) -> int:
        return len(self.triplets) * self.per_sample

    def __getitem__(self, i: int) -> np.ndarray:
        sample, frame = divmod(i, self.per_sample)
        context, target = self.triplets.clips(self.triplets.index["sample_id"].iloc[sample])
        clip = np.concatenate([context, target])
        return clip[min(frame, len(clip) - 1)]


def collate_frames(items: list[np.ndarray]) -> np.ndarray:
    return np.stack(items)


def spread_frames(frames: Dataset, count: int) -> np.ndarray:
    """``count`` frames spread evenly over a frame dataset (all of them when it has fewer)."""
    picks = np.unique(np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int))
    return np.stack([frames[int(i)] for i in picks])


class SamplesDataModule(L.LightningDataModule):
    """Shuffled train batches (seeded; DDP gives each rank its shard). No val loader: Lightning then runs
    no val loop (a stage evaluates before and after training itself); :class:`TrainValDataModule` adds
    one."""

    def __init__(self, train: Dataset, batch_size: int, seed: int, num_workers: int = 0, collate_fn=collate):
        super().__init__()
        self.train = train
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers
        self.collate_fn = collate_fn

    def train_dataloader(self) -> DataLoader:
        return DataLoader(
            self.train,
            batch_size=self.batch_size,
            shuffle=True,
            drop_last=len(self.train) >= self.batch_size,
            generator=torch.Generator().manual_seed(self.seed),
            num_workers=self.num_workers,
            collate_fn=self.collate_fn,
            persistent_workers=self.num_workers > 0,
        )


class TrainValDataModule(SamplesDataModule):
    """:class:`SamplesDataModule` plus ordered val batches, for modules with a ``validation_step``."""

    def __init__(
        self,
        train: Dataset,
        val: Dataset,
        batch_size: int,
        seed: int,
        num_workers: int = 0,
        collate_fn=collate,
        val_collate_fn=None,
    ):
        super().__init__(train, batch_size, seed, num_workers, collate_fn)
        self.val = val
        self.val_collate_fn = val_collate_fn or collate_fn

    def val_dataloader(self) -> DataLoader:
        return DataLoader(
            self.val, batch_size=self.batch_size, shuffle=False, num_workers=0, collate_fn=self.val_collate_fn
        )
