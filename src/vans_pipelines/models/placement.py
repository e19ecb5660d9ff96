"""Where inference runs: the device and precision every evaluating step uses (stage reports before and
after training, anchor captions, the evaluate stage, ``vans answer``), and its batch size.

Training places models through Lightning; everything that only runs the models goes through one
:class:`Inference`. Models are moved to its device when an evaluation starts and left there: a later
evaluation, Lightning (which moves them to its own device and back to the CPU after fitting) and
``save_pretrained`` (which writes from any device) all take them where they are, so nothing is copied
back and forth between a stage's before / after evaluations.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

import torch

T = TypeVar("T")
Precision = Literal["32-true", "bf16-mixed"]
PRECISIONS: tuple[str, ...] = ("32-true", "bf16-mixed")


class Movable(Protocol):
    def to(self, device: torch.device | str) -> object: ...


def resolve_device(device: str) -> str:
    """``auto``: this process's GPU when there is one (``cuda:LOCAL_RANK`` under torchrun), else the CPU.
    An explicit device is checked: ``ValueError`` when torch cannot use it here.

    >>> resolve_device("cpu")
    'cpu'
    """
    if device == "auto":
        if torch.cuda.is_available():
            return f"cuda:{int(os.environ.get('LOCAL_RANK', 0)) % torch.cuda.device_count()}"
        return "cpu"
    try:
        parsed = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"{device!r} is not a torch device ({error})") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{device!r}: this machine has no CUDA device torch can use")
    if parsed.type == "cuda" and parsed.index is not None and parsed.index >= torch.cuda.device_count():
        raise ValueError(f"{device!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{device!r}: MPS is not available here")
    return str(parsed)


@dataclass(frozen=True)
class Inference:
    """A resolved inference placement: ``device`` (a torch device string), ``precision`` (``32-true``, or
    ``bf16-mixed`` for bfloat16 autocast) and the ``batch_size`` of evaluation batches."""

    device: str = "cpu"
    precision: Precision = "32-true"
    batch_size: int = 32

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision {self.precision!r}: use one of {list(PRECISIONS)}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")

    @classmethod
    def resolve(
        cls, device: str = "auto", precision: Precision = "32-true", batch_size: int = 32
    ) -> Inference:
        return cls(resolve_device(device), precision, batch_size)

    @property
    def device_type(self) -> str:
        return torch.device(self.device).type

    def place(self, *models: Movable | None) -> None:
        """Move each model (anything with ``.to(device)``; ``None`` is skipped) to the device."""
        for model in models:
            if model is not None:
                model.to(self.device)

    @contextmanager
    def running(self, *models: Movable | None) -> Iterator[Inference]:
        """Evaluate ``models`` here: moved to the device (and left there), under bfloat16 autocast when
        the precision says so."""
        self.place(*models)
        bf16 = self.precision == "bf16-mixed"
        with torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=bf16):
            yield self

    def bind(self, evaluate: Callable[[], T], *models: Movable | None) -> Callable[[], T]:
        """``evaluate`` as a call that runs under :meth:`running` (a stage's before / after evaluation)."""

        def run() -> T:
            with self.running(*models):
                return evaluate()

        return run


#: Where inference ran before this setting existed, and where tests run it.
CPU = Inference()
