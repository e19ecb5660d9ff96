"""Lightning data modules (and the SFT VDM's frame dataset) over the samples of a triplet set
(:mod:`vans_pipelines.samples`)."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from vans_pipelines.samples import collate
from vans_pipelines.training.trainer import world_size
from vans_pipelines.triplets import TripletSet


def check_batch_fits(key: str, batch_size: int, train: Dataset, processes: int | None = None) -> None:
    """``ValueError`` naming ``key`` when one step's batches on every process (``processes``: this run's
    world size by default) exceed the train split: real-video splits are only known after ingest, so
    stages check this before any training."""
    processes = world_size() if processes is None else processes
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
        # in order, so workers (which decode span triplets' clips) change nothing but the speed
        return DataLoader(
            self.val,
            batch_size=self.batch_size,
            shuffle=False,
            num_workers=self.num_workers,
            collate_fn=self.val_collate_fn,
            persistent_workers=self.num_workers > 0,
        )
