"""One way to build a Lightning ``Trainer`` from typed settings, resume a killed run, and run under torchrun.

Under ``torchrun`` each process already exists, so Lightning must not launch more: with ``WORLD_SIZE`` set,
``devices`` / ``num_nodes`` are taken from the environment and the DDP strategy attaches to the running
processes (Lightning's ``TorchElasticEnvironment``). Only rank 0 writes pipeline outputs; see
:func:`is_rank_zero`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EMAWeightAveraging, LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger

from vans_pipelines.models.checkpointing import enable_activation_checkpointing

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainerConfig:
    """Trainer settings of one training stage (``sft.vlm.trainer`` and friends)."""

    accelerator: str = "auto"
    devices: int | str = "auto"
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    max_steps: int = 100
    batch_size: int = 16
    accumulate_grad_batches: int = 1
    gradient_clip_val: float | None = 1.0
    seed: int = 0
    checkpoint_every_n_steps: int = 50
    val_every_n_steps: int | None = None
    log_every_n_steps: int = 10
    num_workers: int = 0
    # Recompute each transformer block's activations during the backward instead of keeping them: memory
    # of one block instead of all, about a third more compute (``models.checkpointing``).
    activation_checkpointing: bool = False

    def __post_init__(self) -> None:
        for key in (
            "max_steps",
            "batch_size",
            "accumulate_grad_batches",
            "checkpoint_every_n_steps",
            "num_nodes",
        ):
            if getattr(self, key) < 1:
                raise ValueError(f"{key}: must be >= 1, got {getattr(self, key)}")


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with warmup and a schedule: ``cosine`` / ``linear`` decay to 0, or ``constant``."""

    lr: float = 1e-3
    weight_decay: float = 0.0
    warmup_steps: int = 0
    schedule: str = "cosine"
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8  # AdamW's; stage 2's per-weight gradients can be smaller (docs/log/stage2.md)

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ValueError(f"lr: must be > 0, got {self.lr}")
        if self.eps <= 0:
            raise ValueError(f"eps: must be > 0, got {self.eps}")
        if self.schedule not in ("cosine", "linear", "constant"):
            raise ValueError(f"schedule: must be cosine, linear or constant, got {self.schedule!r}")


@dataclass(frozen=True)
class EMAConfig:
    """An exponential moving average of the trained weights (Lightning's ``EMAWeightAveraging``), updated
    after every optimiser step from ``start_step`` on and copied into the model when training ends (and
    swapped in for validation): diffusion models sample from it. ``decay`` None: off."""

    decay: float | None = None
    start_step: int = 0

    def __post_init__(self) -> None:
        if self.decay is not None and not 0.0 < self.decay < 1.0:
            raise ValueError(f"decay: must be in (0, 1) or null, got {self.decay}")
        if self.start_step < 0:
            raise ValueError(f"start_step: must be >= 0, got {self.start_step}")

    def callbacks(self) -> tuple[Callback, ...]:
        """The averaging callback, or none when off. Parameters only: buffers (RoPE tables) stay exact."""
        if self.decay is None:
            return ()
        return (
            EMAWeightAveraging(decay=self.decay, update_starting_at_step=self.start_step, use_buffers=False),
        )


@dataclass(frozen=True)
class RunPaths:
    """Where a run logs (TensorBoard, one folder per Kedro run) and keeps resumable checkpoints."""

    log_dir: str
    checkpoint_dir: str
    run_name: str

    def training(self, stage: str, key: str, callbacks: Sequence[Callback] = ()) -> TrainingRun:
        """A training run named ``stage`` under these paths, resumable under ``key``."""
        return TrainingRun(self, stage, key, tuple(callbacks))


@dataclass(frozen=True)
class TrainingRun:
    """One training run: where it logs and checkpoints (``paths``), its name there (``stage``: the
    TensorBoard version and the checkpoint folder ``<checkpoint_dir>/<stage>/<key>``), the key a resumed
    checkpoint must match (the fingerprint of the run's settings and inputs), and extra Lightning
    callbacks."""

    paths: RunPaths
    stage: str
    key: str
    callbacks: tuple[Callback, ...] = ()

    @property
    def checkpoint_dir(self) -> Path:
        return Path(self.paths.checkpoint_dir) / self.stage / self.key


class Summarised(Protocol):
    def summary(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class MeasuredFit:
    """A training run between two runs of the same evaluation: what a stage node reports."""

    before: dict[str, Any]
    result: Summarised  # a FitResult, or a stage's richer record of its run
    after: dict[str, Any]
    seconds: float  # the evaluations and the training together

    def report(self, **head: Any) -> dict[str, Any]:
        """A stage report: ``head``, the run's summary, the seconds, the evaluations before and after."""
        return {
            **head,
            **self.result.summary(),
            "node_seconds": round(self.seconds, 2),
            "val_before": self.before,
            "val_after": self.after,
        }


def measure_fit(evaluate: Callable[[], dict[str, Any]], train: Callable[[], Summarised]) -> MeasuredFit:
    """``evaluate()``, ``train()``, ``evaluate()`` again, timed together."""
    started = time.perf_counter()
    before = evaluate()
    result = train()
    after = evaluate()
    return MeasuredFit(before, result, after, time.perf_counter() - started)


@dataclass(frozen=True)
class FitResult:
    global_step: int
    resumed_from_step: int | None
    seconds: float
    world_size: int
    log_dir: str | None

    def summary(self) -> dict[str, Any]:
        """The fields a stage report carries about its training run."""
        fresh_steps = max(1, self.global_step - (self.resumed_from_step or 0))
        return {
            "steps": self.global_step,
            "resumed_from_step": self.resumed_from_step,
            "world_size": self.world_size,
            "train_seconds": round(self.seconds, 2),
            "seconds_per_step": round(self.seconds / fresh_steps, 4),
            "tensorboard": self.log_dir,
        }


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def global_rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_rank_zero() -> bool:
    """True in the process that writes outputs (always true outside torchrun)."""
    return global_rank() == 0


def make_optimizer(
    parameters: Sequence[torch.nn.Parameter],
    optim: OptimConfig,
    max_steps: int,
    extra_groups: Sequence[tuple[Sequence[torch.nn.Parameter], OptimConfig]] = (),
) -> dict[str, Any]:
    """AdamW + a per-step LambdaLR schedule, as ``configure_optimizers`` returns them. ``extra_groups``
    (parameters, settings) train with their own learning rate and weight decay under ``optim``'s
    schedule (one module training two models, each at the rate of its own stage)."""
    groups = [
        {
            "params": [p for p in params if p.requires_grad],
            "lr": config.lr,
            "weight_decay": config.weight_decay,
        }
        for params, config in [(parameters, optim), *extra_groups]
    ]
    if not any(group["params"] for group in groups):
        raise ValueError("nothing to train: every parameter is frozen")
    optimizer = torch.optim.AdamW([g for g in groups if g["params"]], betas=optim.betas, eps=optim.eps)
    warmup = max(0, optim.warmup_steps)
    decay_steps = max(1, max_steps - warmup)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / decay_steps)
        if optim.schedule == "cosine":
            return 0.5 * (1 + torch.cos(torch.tensor(progress * torch.pi)).item())
        if optim.schedule == "linear":
            return 1.0 - progress
        return 1.0

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def fingerprint(*parts: Any) -> str:
    """A short stable hash of the settings a checkpoint belongs to (resume only into the same run)."""
    text = json.dumps(
        [asdict(p) if hasattr(p, "__dataclass_fields__") else p for p in parts], sort_keys=True, default=str
    )
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class ProgressLog(Callback):
    """One log line per ``every_n_steps`` optimiser steps (and the first and last): ``stage: step k/N,
    loss, s/step, ETA``, through Python logging (so Kedro's handler prints it and log files keep it); no
    more often than every ``min_interval_s`` seconds, so long runs do not flood the log."""

    def __init__(self, stage: str, every_n_steps: int, min_interval_s: float = 10.0):
        self.stage = stage
        self.every_n_steps = max(1, every_n_steps)
        self.min_interval_s = min_interval_s
        self._start = self._last = 0.0
        self._first_step = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = self._last = time.perf_counter()
        self._first_step = trainer.global_step

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        step, total = trainer.global_step, trainer.max_steps
        now = time.perf_counter()
        due = step % self.every_n_steps == 0 and now - self._last >= self.min_interval_s
        if not trainer.is_global_zero or not (due or step == self._first_step + 1 or step >= total):
            return
        self._last = now
        per_step = (now - self._start) / max(1, step - self._first_step)
        loss = trainer.callback_metrics.get("train/loss")
        loss_text = f"loss {float(loss):.4f}, " if loss is not None else ""
        log.info(
            "%s: step %d/%d, %s%.2f s/step, ETA %s",
            self.stage,
            step,
            total,
            loss_text,
            per_step,
            _duration(per_step * max(0, total - step)),
        )


def process_layout(config: TrainerConfig) -> tuple[Any, int, Any]:
    """(devices, num_nodes, strategy) for the Trainer: the configured ones, or, when launched by torchrun,
    those of its processes (attach to them instead of spawning new ones)."""
    devices, num_nodes, strategy = config.devices, config.num_nodes, config.strategy
    if world_size() > 1:
        local = int(os.environ.get("LOCAL_WORLD_SIZE", world_size()))
        devices = local if devices == "auto" else devices
        num_nodes = world_size() // int(devices)
        strategy = "ddp" if strategy == "auto" else strategy
    return devices, num_nodes, strategy


def build_trainer(
    config: TrainerConfig, run: TrainingRun, *, limit_val_batches: int | float = 1.0
) -> L.Trainer:
    devices, num_nodes, strategy = process_layout(config)
    checkpoint = ModelCheckpoint(
        dirpath=run.checkpoint_dir,
        every_n_train_steps=config.checkpoint_every_n_steps,
        save_last=True,
        save_top_k=0,
        enable_version_counter=False,
    )
    logger = TensorBoardLogger(
        save_dir=run.paths.log_dir, name=run.paths.run_name, version=run.stage, default_hp_metric=False
    )
    return L.Trainer(
        accelerator=config.accelerator,
        devices=devices,
        num_nodes=num_nodes,
        strategy=strategy,
        precision=config.precision,
        max_steps=config.max_steps,
        max_epochs=-1,
        accumulate_grad_batches=config.accumulate_grad_batches,
        gradient_clip_val=config.gradient_clip_val,
        log_every_n_steps=config.log_every_n_steps,
        val_check_interval=config.val_every_n_steps,
        check_val_every_n_epoch=None if config.val_every_n_steps else 1,
        num_sanity_val_steps=0,
        limit_val_batches=limit_val_batches,
        callbacks=[
            checkpoint,
            LearningRateMonitor(logging_interval="step"),
            ProgressLog(run.stage, config.log_every_n_steps),
            *run.callbacks,
        ],
        logger=logger,
        enable_progress_bar=False,
        enable_model_summary=False,
        deterministic=False,
    )


#: Lightning warnings that describe what the project does on purpose, silenced while it trains:
#: frozen parts (renderer, VAE, text encoder) are registered in eval mode; a manual-optimisation
#: checkpoint holds the state after the step, which is what a resumed run continues from; and
#: Lightning's own pytree helper warns about torch's LeafSpec deprecation (not ours to fix).
EXPECTED_LIGHTNING_WARNINGS = (
    r"Found \d+ module\(s\) in eval mode at the start of training",
    r"Using ModelCheckpoint with manual optimization and every_n_train_steps",
    r"`isinstance\(treespec, LeafSpec\)` is deprecated",
)


def fit(
    module: L.LightningModule, datamodule: L.LightningDataModule, config: TrainerConfig, run: TrainingRun
) -> FitResult:
    """Train ``module``; resume from ``run``'s ``last.ckpt`` when a previous run with the same key was
    killed; remove those checkpoints once training completes."""
    L.seed_everything(config.seed, workers=True, verbose=False)
    stage, last = run.stage, run.checkpoint_dir / "last.ckpt"
    resumed = None
    if last.is_file():
        try:
            resumed = int(torch.load(last, map_location="cpu", weights_only=False)["global_step"])
            log.info("%s: resuming from %s (step %d)", stage, last, resumed)
        except Exception as err:  # a process killed while writing it leaves a truncated file
            log.warning("%s: cannot read %s (%s); starting this stage over", stage, last, err)
            last.unlink()
    if config.activation_checkpointing:
        checkpointed = enable_activation_checkpointing(module)
        if not checkpointed:
            raise ValueError(
                f"{stage}: trainer.activation_checkpointing is set, but no model of it supports it"
            )
        log.info("%s: activation checkpointing in %s", stage, ", ".join(checkpointed))
    trainer = build_trainer(config, run)
    start = time.perf_counter()
    with warnings.catch_warnings():
        for message in EXPECTED_LIGHTNING_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        trainer.fit(module, datamodule=datamodule, ckpt_path=str(last) if resumed is not None else None)
    seconds = time.perf_counter() - start
    if trainer.interrupted:
        raise RuntimeError(f"{stage}: training was interrupted at step {trainer.global_step}")
    trainer.strategy.barrier()
    if trainer.is_global_zero:
        shutil.rmtree(run.checkpoint_dir, ignore_errors=True)
    log_dir = trainer.logger.log_dir if trainer.logger is not None else None
    return FitResult(trainer.global_step, resumed, seconds, trainer.world_size, log_dir)
