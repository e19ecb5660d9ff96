"""Peak memory of a training step, estimated without allocating it, and measured where it fits.

:func:`estimate_peak` runs a step on *fake* tensors (``torch._subclasses.FakeTensorMode``: shapes, dtypes and
devices, no storage) under torch's ``MemTracker``, which records every tensor the step creates by the role it
plays (parameter, gradient, optimiser state, activation, backward temporary) and the peak of their sum. A
paper-size model (Qwen2.5-VL-3B, Wan2.1-1.3B, UMT5-XXL) is built on the meta device and its weights swapped
for fake ones (:func:`fake_weights`), so the step runs on this CPU in seconds per layer and nothing is
allocated.

Real models do data-dependent bookkeeping on small integer tensors (Qwen2.5-VL's rope index and vision
windows from ``video_grid_thw``, attention masks from token ids). :class:`ShapeOnlyMode` lets those run for
real: an op whose inputs are all real tensors runs for real, and so does a factory op (``arange``,
``linspace``...) with an integer, boolean or small initialised floating-point result (a noise
schedule); everything computed from a fake weight, every large new floating-point tensor (noise) and
every uninitialised one (autocast's weight casts copy into them) is fake. A number read from a fake
tensor has no value: a statistic (``float(loss)`` for a log) reads 0, a condition (a library's check that
two counts agree) reads True, and the mode counts such reads.

Under activation checkpointing the fake run over-counts (1.7-1.9x the real peak on a small
configuration, where a real-tensor run under the same tracker agrees with the allocator): checkpointed
estimates are upper bounds.

Attention is counted as the kernels hold it: the CPU picks its fused flash-attention kernel for fake
tensors as for real ones, and that kernel keeps ``[batch, heads, length]`` log-sum-exp values, not the
``length²`` score matrix, as the GPU's fused SDPA kernels do (a test checks that attention's memory grows
linearly with the sequence length).

:func:`measure_peak` runs a step for real on the CPU and reads the allocator's own record of every
allocation and free (the profiler's memory events), which is how the estimate is checked on a small
configuration.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from typing import Any

import torch
from torch._subclasses.fake_tensor import FakeTensor, FakeTensorMode
from torch.distributed._tools.mem_tracker import _TOTAL_KEY as _TOTAL
from torch.distributed._tools.mem_tracker import MemTracker, _MemRefType
from torch.profiler import ProfilerActivity, profile
from torch.utils._pytree import tree_leaves
from torch.utils.flop_counter import FlopCounterMode

GB = 1e9
#: A new floating-point tensor smaller than this is made for real (a noise schedule, a scale): code reads
#: such values; larger ones (noise, weight casts, buffers) are fake.
SMALL = 1 << 16
_EMPTY = (torch.ops.aten.empty.memory_format, torch.ops.aten.empty_strided.default)


class ShapeOnlyMode(FakeTensorMode):
    """Fake tensors for everything derived from the weights and for new floating-point tensors; ops on real
    tensors alone, and integer / boolean factory ops, run for real (the model's data-dependent bookkeeping
    on token ids and grid sizes needs their values)."""

    def __init__(self) -> None:
        super().__init__(allow_non_fake_inputs=True)
        self.scalar_reads = 0  # numbers read from fake tensors (each read as 0)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        tensors = [a for a in tree_leaves((args, kwargs)) if isinstance(a, torch.Tensor)]
        if any(isinstance(t, FakeTensor) for t in tensors):
            if func is torch.ops.aten._local_scalar_dense.default:
                # A number read from a computed value has none: a logged statistic reads 0, a condition
                # (a library's shape check) reads True.
                self.scalar_reads += 1
                dtype = tensors[0].dtype
                return True if dtype == torch.bool else (0.0 if dtype.is_floating_point else 0)
            return super().__torch_dispatch__(func, types, args, kwargs)
        if tensors:
            return func(*args, **kwargs)
        out = super().__torch_dispatch__(func, types, args, kwargs)
        made = [t for t in tree_leaves(out) if isinstance(t, torch.Tensor)]
        # an uninitialised float tensor is a destination (autocast's weight casts copy into one): fake
        if any(t.is_floating_point() and (t.numel() >= SMALL or func in _EMPTY) for t in made):
            return out
        return func(*args, **kwargs)


def fake_weights(module: torch.nn.Module, mode: FakeTensorMode, device: str | torch.device = "cpu") -> None:
    """Swap the parameters and buffers of ``module`` (built on the meta device) for fake tensors of the same
    shape, dtype and ``requires_grad`` on ``device``."""
    device = torch.device(device)
    for part in module.modules():
        for name, param in list(part._parameters.items()):
            if param is not None:
                fake = FakeTensor(mode, param.data.to("meta"), device)
                part._parameters[name] = torch.nn.Parameter(fake, requires_grad=param.requires_grad)
        for name, buffer in list(part._buffers.items()):
            if buffer is not None:
                part._buffers[name] = FakeTensor(mode, buffer.to("meta"), device)


class _StepTracker(MemTracker):
    """torch's MemTracker for a whole training step: it hooks every parameter's gradient, but a frozen
    parameter (LoRA's base, a frozen encoder) cannot take a hook, so only trainable ones get one; and a
    top-level module may run several times in one step."""

    def _track_module_params_and_buffers(
        self, module: torch.nn.Module, install_grad_hooks: bool = True
    ) -> tuple[int, int]:
        memory = super()._track_module_params_and_buffers(module, install_grad_hooks=False)
        if install_grad_hooks:
            for param in module.parameters():
                if param.requires_grad and self._param_to_grad_hook_handles.get(param) is None:
                    self._param_to_grad_hook_handles[param] = (
                        param.register_hook(self._record_grad),
                        param.register_post_accumulate_grad_hook(lambda p: self._record_grad(p.grad)),
                    )
        return memory

    def _pre_fw_hook(self, module: torch.nn.Module, inputs: Any) -> None:
        try:
            super()._pre_fw_hook(module, inputs)
        except NotImplementedError:
            # A top-level module called again in the same step (a denoiser, once per sampling step):
            # MemTracker keeps per-module statistics of one call only. The step's global peak is what is
            # read here, so the module's statistics simply start over.
            del self.memory_tracking[module]
            super()._pre_fw_hook(module, inputs)

    def _update_peak_stats(self, peak_state: Any) -> None:
        # Only the step's global peak is read: MemTracker's per-module peaks cost a pass over every module
        # at every op, which made a paper-size step take hours.
        for device, snapshot in self._curr_mem_snap.items():
            if self._peak_mem.get(device, 0) < snapshot[_TOTAL]:
                self._peak_mem[device] = snapshot[_TOTAL]
                self._peak_mem_snap[device] = dict(snapshot)

    def _record_grad(self, grad: torch.Tensor) -> None:
        self._update_and_maybe_create_winfos(grad, _MemRefType.GRAD)


@dataclass(frozen=True)
class MemoryBreakdown:
    """Bytes alive at a step's peak, by what they are."""

    parameters: int = 0
    buffers: int = 0
    gradients: int = 0
    optimizer: int = 0
    activations: int = 0
    temporaries: int = 0
    other: int = 0

    @property
    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))

    def gigabytes(self) -> dict[str, float]:
        """Each part and the total in GB (10⁹ bytes)."""
        out = {f.name: round(getattr(self, f.name) / GB, 2) for f in fields(self)}
        out["total"] = round(self.total / GB, 2)
        return out

    @classmethod
    def of_snapshot(cls, snapshot: dict[torch.device, dict[Any, int]]) -> MemoryBreakdown:
        """The sum over devices of a MemTracker snapshot."""
        names = {
            _MemRefType.PARAM: "parameters",
            _MemRefType.BUFFER: "buffers",
            _MemRefType.GRAD: "gradients",
            _MemRefType.OPT: "optimizer",
            _MemRefType.ACT: "activations",
            _MemRefType.TEMP: "temporaries",
            _MemRefType.OTH: "other",
        }
        totals = dict.fromkeys(names.values(), 0)
        for per_device in snapshot.values():
            for ref, nbytes in per_device.items():
                if ref in names:
                    totals[names[ref]] += nbytes
        return cls(**totals)


def estimate_peak(
    step: Callable[[], Any],
    tracked: Iterable[torch.nn.Module | torch.optim.Optimizer | torch.Tensor],
    mode: FakeTensorMode | contextlib.AbstractContextManager,
    flops: FlopCounterMode | None = None,
) -> MemoryBreakdown:
    """The peak of ``step`` (run inside ``mode``), counting ``tracked`` (models, optimisers and tensors made
    before it) and everything the step creates; ``flops``, when given, counts the step's FLOPs too."""
    tracker = _StepTracker()
    tracker.track_external(*tracked)
    with mode, tracker, flops if flops is not None else contextlib.nullcontext():
        step()
    return MemoryBreakdown.of_snapshot(tracker.get_tracker_snapshot("peak"))


def tensor_bytes(tracked: Iterable[torch.nn.Module | torch.optim.Optimizer | torch.Tensor]) -> int:
    """Bytes held by the distinct storages of modules' parameters, buffers and gradients, optimisers'
    states and tensors."""
    seen: dict[int, int] = {}

    def add(t: torch.Tensor | None) -> None:
        if isinstance(t, torch.Tensor):
            storage = t.untyped_storage()
            seen[storage.data_ptr()] = storage.nbytes()

    for item in tracked:
        if isinstance(item, torch.nn.Module):
            for param in item.parameters():
                add(param)
                add(param.grad)
            for buffer in item.buffers():
                add(buffer)
        elif isinstance(item, torch.optim.Optimizer):
            for state in item.state.values():
                for value in state.values():
                    add(value)
        else:
            add(item)
    return sum(seen.values())


def measure_peak(
    step: Callable[[], Any], tracked: Iterable[torch.nn.Module | torch.optim.Optimizer | torch.Tensor]
) -> int:
    """The real peak of ``step`` on the CPU in bytes: what ``tracked`` holds before it, plus the highest
    running sum of the allocator's allocations and frees during it (the profiler's memory events)."""
    tracked = list(tracked)
    before = tensor_bytes(tracked)
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        step()
    events = sorted(
        (e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
        key=lambda e: e.start_ns(),
    )
    running = peak = 0
    for event in events:
        running += event.nbytes()
        peak = max(peak, running)
    return before + peak
