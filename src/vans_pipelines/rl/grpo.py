"""Group Relative Policy Optimisation, shared by Joint-GRPO's two stages.

Stage 1 applies it to the VLM's completion tokens, stage 2 to the VDM's denoising steps: in both a
"sequence" is a row of per-element log-probabilities (tokens, or SDE steps) with a mask, and everything
here is written over such rows. Semantics follow Hugging Face TRL's ``GRPOTrainer``:

- advantages ``A_i = (r_i - mean_G r) / (std_G r + eps)`` over each group of ``G`` samples of one prompt
  (``scale_rewards``: ``group``, ``batch`` (one std over the whole batch) or ``none``);
- per element ``-min(rho A, clip(rho, 1 - eps_low, 1 + eps_high) A) + beta KL``,
  ``rho = exp(logp - logp_old)``;
- aggregation ``grpo`` (mean per sequence, then over sequences), ``dapo`` (mean over all active elements)
  or ``dr_grpo`` (sum over elements / (rows x max_completion_length));
- several rewards: ``sum_then_normalize`` (weighted sum, then the advantage above) or
  ``normalize_then_sum`` (each reward normalised in its group, weighted sum, then normalised over the batch),
  TRL's ``multi_objective_aggregation``.

One option is ours: ``mask_zero_std_groups`` leaves groups whose rewards are all equal out of the loss
entirely (their KL term too, and they count in no normaliser), as DAPO's dynamic sampling filters them.
Off, the loss is TRL's: such a group has advantage 0, so it adds only its KL term, and it counts in every
normaliser.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch

ScaleRewards = Literal["group", "batch", "none"]
LossType = Literal["grpo", "dapo", "dr_grpo"]
#: TRL's names, then the names ``combine`` had before it took TRL's (still accepted, read as TRL's).
Combine = Literal["sum_then_normalize", "normalize_then_sum", "sum", "normalise"]
COMBINE_ALIASES = {"sum": "sum_then_normalize", "normalise": "normalize_then_sum"}


@dataclass(frozen=True)
class SamplingConfig:
    """How the VLM samples its group during training (TRL keeps these in its ``GRPOConfig``)."""

    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 48


@dataclass(frozen=True)
class GRPOConfig:
    """GRPO settings of one stage (``grpo_vlm.grpo``, ``grpo_vdm.grpo``)."""

    group_size: int = 4  # G samples per prompt
    num_iterations: int = 1  # updates per rollout batch (>1 reuses it with stored old log-probs)
    epsilon_low: float = 0.2
    epsilon_high: float = 0.2
    beta: float = 0.0  # KL weight against the adapter-disabled reference
    scale_rewards: ScaleRewards = "group"
    # TRL's multi_objective_aggregation. sum_then_normalize: weighted sum of rewards, then the advantage
    # (scale_rewards applies); normalize_then_sum: each reward normalised in its group, weighted sum, then
    # normalised over the batch (scale_rewards does not apply, as in TRL).
    combine: Combine = "sum_then_normalize"
    loss_type: LossType = "grpo"
    # dr_grpo's constant. None: stage 1 sets the VLM's sampling.max_new_tokens; a caller that leaves it
    # None divides by the rows' element count (stage 2: one element per denoising step).
    max_completion_length: int | None = None
    # Leave groups whose rewards are all equal (no signal) out of the loss, KL and normalisers included
    # (DAPO's dynamic sampling). False: TRL's loss, where they stay with advantage 0.
    mask_zero_std_groups: bool = False
    std_epsilon: float = 1e-4

    def __post_init__(self) -> None:
        object.__setattr__(self, "combine", COMBINE_ALIASES.get(self.combine, self.combine))
        problems = []
        if self.group_size < 2:
            problems.append(f"group_size: must be >= 2 (a group needs a spread), got {self.group_size}")
        if self.num_iterations < 1:
            problems.append(f"num_iterations: must be >= 1, got {self.num_iterations}")
        for key in ("epsilon_low", "epsilon_high"):
            if not getattr(self, key) > 0:
                problems.append(f"{key}: the clip range must be > 0, got {getattr(self, key)}")
        if self.beta < 0:
            problems.append(f"beta: must be >= 0, got {self.beta}")
        if self.scale_rewards not in ("group", "batch", "none"):
            problems.append(f"scale_rewards: must be group, batch or none, got {self.scale_rewards!r}")
        if self.combine not in ("sum_then_normalize", "normalize_then_sum"):
            problems.append(
                f"combine: must be sum_then_normalize or normalize_then_sum (or the older sum / normalise), "
                f"got {self.combine!r}"
            )
        if self.loss_type not in ("grpo", "dapo", "dr_grpo"):
            problems.append(f"loss_type: must be grpo, dapo or dr_grpo, got {self.loss_type!r}")
        if self.max_completion_length is not None and self.max_completion_length < 1:
            problems.append(f"max_completion_length: must be >= 1, got {self.max_completion_length}")
        if problems:
            raise ValueError("; ".join(problems))


@dataclass(frozen=True)
class Advantages:
    """Per-sample advantages, the combined reward they came from, and which samples sit in a group whose
    rewards were all equal (zero std: no learning signal)."""

    advantages: torch.Tensor  # [N]
    total_reward: torch.Tensor  # [N]
    zero_std: torch.Tensor  # [N] bool

    @property
    def zero_std_group_fraction(self) -> float:
        return float(self.zero_std.float().mean())


def normalise_in_groups(
    values: torch.Tensor, group_size: int, scale: ScaleRewards = "group", eps: float = 1e-4
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(values - group mean) / (std + eps)`` per consecutive group of ``group_size``; also a mask of
    samples whose group has zero std. Std is the unbiased one, as ``torch.std`` (and TRL) computes it.

    >>> a, zero = normalise_in_groups(torch.tensor([1.0, 3.0, 2.0, 2.0]), 2)
    >>> [round(x, 3) for x in a.tolist()], zero.tolist()
    ([-0.707, 0.707, 0.0, 0.0], [False, False, True, True])
    """
    if values.ndim != 1 or values.numel() % group_size:
        raise ValueError(
            f"expected a flat tensor of whole groups of {group_size}, got shape {tuple(values.shape)}"
        )
    grouped = values.view(-1, group_size)
    centred = grouped - grouped.mean(dim=1, keepdim=True)
    group_std = grouped.std(dim=1, keepdim=True)
    if scale == "group":
        out = centred / (group_std + eps)
    elif scale == "batch":
        out = centred / (values.std() + eps)
    else:
        out = centred
    zero = torch.isclose(group_std, torch.zeros_like(group_std)).expand_as(grouped)
    return out.reshape(-1), zero.reshape(-1)


def group_advantages(
    rewards: Mapping[str, torch.Tensor], weights: Mapping[str, float], config: GRPOConfig
) -> Advantages:
    """Advantages from named rewards ``[N]`` (N = prompts x G, each prompt's samples consecutive)."""
    names = [n for n in rewards if weights.get(n, 0.0) != 0.0]
    if not names:
        raise ValueError(f"no reward has a non-zero weight (weights: {dict(weights)})")
    G, scale, eps = config.group_size, config.scale_rewards, config.std_epsilon
    total = sum(weights[n] * rewards[n].float() for n in names)
    if config.combine == "sum_then_normalize":
        advantages, zero = normalise_in_groups(total, G, scale, eps)
    else:
        parts = [normalise_in_groups(rewards[n].float(), G, "group", eps) for n in names]
        summed = sum(weights[n] * a for n, (a, _) in zip(names, parts, strict=True))
        spread = summed.std() if summed.numel() > 1 else torch.zeros(())
        advantages = (summed - summed.mean()) / (spread + eps)
        zero = torch.stack([z for _, z in parts]).all(dim=0)
    return Advantages(advantages, total, zero)


def _communication_device(like: torch.Tensor) -> torch.device:
    """Where a collective can take ``like``: NCCL moves CUDA tensors only."""
    if torch.distributed.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return like.device


def _all_processes(values: torch.Tensor) -> torch.Tensor:
    """``values`` of every process, concatenated in rank order (this process's alone outside
    ``torch.distributed``)."""
    if process_count() == 1:
        return values
    sent = values.contiguous().to(_communication_device(values))
    parts = [torch.empty_like(sent) for _ in range(torch.distributed.get_world_size())]
    torch.distributed.all_gather(parts, sent)
    return torch.cat(parts).to(values.device)


def _process_sum(value: torch.Tensor) -> torch.Tensor:
    if process_count() == 1:
        return value
    total = value.clone().to(_communication_device(value))
    torch.distributed.all_reduce(total)
    return total.to(value.device)


def process_count() -> int:
    """Processes training together (1 outside ``torch.distributed``)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_world_size()
    return 1


def batch_advantages(
    rewards: Mapping[str, torch.Tensor], weights: Mapping[str, float], config: GRPOConfig
) -> tuple[Advantages, Advantages]:
    """:func:`group_advantages` over the whole batch of every process, as TRL gathers it: the rewards of
    all processes (each holds whole groups) are gathered, so ``scale_rewards: batch`` and
    ``normalize_then_sum`` use the whole batch's spread. Returns (this process's rows, every row)."""
    everything = group_advantages({k: _all_processes(v.float()) for k, v in rewards.items()}, weights, config)
    n = len(next(iter(rewards.values())))
    rank = torch.distributed.get_rank() if process_count() > 1 else 0
    rows = slice(rank * n, (rank + 1) * n)
    local = Advantages(everything.advantages[rows], everything.total_reward[rows], everything.zero_std[rows])
    return local, everything


@dataclass(frozen=True)
class LossScale:
    """What a GRPO loss computed in parts divides by: the whole batch's kept rows and active elements
    (every micro-batch, every process), each divided by the number of processes, since DDP averages the
    processes' gradients. With it, the parts' gradients add up to those of one process holding the whole
    batch (TRL divides ``dapo`` by the batch's token count over the processes in the same way)."""

    rows: torch.Tensor
    elements: torch.Tensor

    @classmethod
    def of(cls, keep: torch.Tensor, active_elements: torch.Tensor) -> LossScale:
        """From this process's ``keep`` weights ``[N]`` and active-element count, summed over processes."""
        world = process_count()
        rows = _process_sum(keep.float().sum().reshape(1)).clamp(min=1) / world
        elements = _process_sum(active_elements.float().reshape(1)).clamp(min=1) / world
        return cls(rows.squeeze(0), elements.squeeze(0))

    def normaliser(self, config: GRPOConfig) -> torch.Tensor | None:
        """:func:`clipped_policy_loss`'s ``normaliser``: the element count for ``dapo`` (``dr_grpo``'s
        is its configured length)."""
        return self.elements if config.loss_type == "dapo" else None


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Per-element KL estimate ``exp(ref - logp) - (ref - logp) - 1`` (Schulman's k3, as TRL): >= 0,
    exactly 0 where the policy equals the reference."""
    delta = ref_logp - logp
    return torch.exp(delta) - delta - 1


@dataclass(frozen=True)
class LossStats:
    ratio_mean: float
    clip_fraction: float
    low_clip_fraction: float
    high_clip_fraction: float
    kl_mean: float | None


def clipped_policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    config: GRPOConfig,
    kl: torch.Tensor | None = None,
    *,
    normaliser: float | torch.Tensor | None = None,
    keep: torch.Tensor | None = None,
    rows: float | torch.Tensor | None = None,
) -> tuple[torch.Tensor, LossStats]:
    """The GRPO loss over rows of per-element log-probs ``[N, T]`` with ``mask`` ``[N, T]``.

    ``kl`` (per element, ``[N, T]``) is added with weight ``config.beta``. ``normaliser`` overrides the
    element count of ``dapo`` / the length of ``dr_grpo`` (e.g. when a loss is summed over chunks).
    ``keep`` (``[N]``, 1 / 0; see :func:`sample_mask`) leaves rows out entirely: the loss is that of the
    kept rows alone. ``rows`` overrides the number of (kept) rows the ``grpo`` and ``dr_grpo`` losses
    average over: when these rows are one micro-batch of a larger batch, that batch's count, so the
    micro-batches' losses add up to the whole batch's."""
    mask = mask.to(logp.dtype)
    kept_rows = logp.shape[0]
    if keep is not None:
        keep = keep.to(logp.dtype)
        mask = mask * keep.unsqueeze(1)
        kept_rows = keep.sum().clamp(min=1)
    if rows is not None:
        kept_rows = rows
    ratio = torch.exp(logp - old_logp)
    low, high = 1 - config.epsilon_low, 1 + config.epsilon_high
    clipped = torch.clamp(ratio, low, high)
    a = advantages.to(logp.dtype).unsqueeze(1)
    per_element = -torch.min(ratio * a, clipped * a)
    if kl is not None and config.beta:
        per_element = per_element + config.beta * kl
    masked = per_element * mask
    if config.loss_type == "grpo":
        loss = (masked.sum(-1) / mask.sum(-1).clamp(min=1)).sum() / kept_rows
    elif config.loss_type == "dapo":
        loss = masked.sum() / (normaliser if normaliser is not None else mask.sum().clamp(min=1))
    else:
        length = normaliser or config.max_completion_length or logp.shape[1]
        loss = masked.sum() / (kept_rows * length)
    return loss, _loss_stats(ratio, a, mask, (low, high), kl)


@torch.no_grad()
def _loss_stats(
    ratio: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    bounds: tuple[float, float],
    kl: torch.Tensor | None,
) -> LossStats:
    """The masked mean ratio and KL, and the share of elements clipped below / above ``bounds`` (TRL's
    ``clip_ratio`` metrics: a ratio clipped where its advantage's sign makes the clip bind)."""
    active = mask.sum().clamp(min=1)
    is_low = (ratio < bounds[0]) & (advantages < 0)
    is_high = (ratio > bounds[1]) & (advantages > 0)

    def share(flags: torch.Tensor) -> float:
        return float((flags.to(mask.dtype) * mask).sum() / active)

    return LossStats(
        ratio_mean=float((ratio * mask).sum() / active),
        clip_fraction=share(is_low | is_high),
        low_clip_fraction=share(is_low),
        high_clip_fraction=share(is_high),
        kl_mean=float((kl * mask).sum() / active) if kl is not None else None,
    )


def sample_mask(advantages: Advantages, config: GRPOConfig) -> torch.Tensor:
    """``[N]`` weights 1 / 0 for :func:`clipped_policy_loss`'s ``keep``: samples of zero-std groups are left
    out when ``mask_zero_std_groups`` says so, otherwise every sample is kept (TRL)."""
    if config.mask_zero_std_groups:
        return (~advantages.zero_std).float()
    return torch.ones_like(advantages.advantages)
