"""Whether ``torch.compile`` can run here: inductor builds C++ kernels for the CPU, so a machine without
a C++ compiler runs eager instead, with one clear warning (not a crash mid-training)."""

from __future__ import annotations

import functools
import logging
import os
import shutil
from collections.abc import Mapping

import torch

log = logging.getLogger(__name__)


@functools.cache
def _cpu_compiler() -> str | None:
    """The C++ compiler inductor would call on the CPU (``$CXX``, else ``g++`` / ``clang++`` / ``c++``)."""
    candidates = [os.environ["CXX"]] if os.environ.get("CXX") else ["g++", "clang++", "c++"]
    return next((path for name in candidates if (path := shutil.which(name))), None)


def compiler_available(device: torch.device) -> bool:
    """True where ``torch.compile`` can build kernels for ``device``; else False and a warning, once."""
    if device.type != "cpu" or _cpu_compiler() is not None:
        return True
    if not getattr(compiler_available, "warned", False):
        log.warning("torch.compile: no C++ compiler on PATH (g++, clang++, c++ or $CXX); running eager")
        compiler_available.warned = True
    return False


class CompiledParts:
    """``torch.compile``'d stand-ins for a model's named parts, once :meth:`use` asked for them."""

    def __init__(self) -> None:
        self._compiled: dict[str, torch.nn.Module] = {}

    def use(self, parts: Mapping[str, torch.nn.Module]) -> None:
        """Compile these parts from now on (an empty mapping: run every part eager again)."""
        self._compiled = {name: torch.compile(part) for name, part in parts.items()}

    def get(self, name: str, part: torch.nn.Module) -> torch.nn.Module:
        """``part`` compiled when :meth:`use` named it, else ``part`` itself."""
        if name not in self._compiled:
            return part
        if self._compiled[name]._orig_mod is not part:  # swapped, or copied without the memo
            self._compiled[name] = torch.compile(part)
        return self._compiled[name]
