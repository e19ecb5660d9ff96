"""What machine a figure was measured on: float kernels, and so trained models and their figures, differ
between CPUs, so every saved figure names its CPU."""

from __future__ import annotations

import platform
import re
from pathlib import Path


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's model name from ``cpuinfo`` (Linux), with whether it has AVX-512; else the platform's.

    >>> import tempfile
    >>> with tempfile.NamedTemporaryFile("w", suffix="cpuinfo") as f:
    ...     _ = f.write("model name\\t: AMD EPYC 7B13\\nflags\\t\\t: fpu sse avx2\\n")
    ...     f.flush()
    ...     cpu_model(Path(f.name))
    'AMD EPYC 7B13, no AVX-512'
    """
    if not cpuinfo.exists():
        return platform.processor() or platform.machine()
    text = cpuinfo.read_text()
    match = re.search(r"^model name\s*:\s*(.+)$", text, flags=re.MULTILINE)
    name = match.group(1).strip() if match else platform.machine()
    avx512 = re.search(r"\bavx512f\b", text) is not None
    return f"{name}, {'AVX-512' if avx512 else 'no AVX-512'}"
