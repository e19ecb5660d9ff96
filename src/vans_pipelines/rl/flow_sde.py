"""Flow-GRPO's SDE sampler for rectified-flow models: the same marginals as the flow ODE, but each step is
a Gaussian, so every step has a log-probability and GRPO can score the denoising chain as a policy.

Convention (rectified flow): ``x_t = (1 - t) x_0 + t noise``, the model predicts ``v = noise - x_0``, time
runs from ``t = 1`` (noise) to ``t = 0`` and ``dt = t_next - t < 0``. One step:

    sigma_t = a * sqrt(t / (1 - t))
    mean    = x + v dt + (sigma_t^2 / (2 t)) (x + (1 - t) v) dt
    x_next  = mean + sigma_t sqrt(|dt|) eps

``a`` is the noise level; ``a = 0`` is exactly the Euler step of the ODE sampler. At ``t = 1`` (the first
step) the denominator ``1 - t`` is capped at ``1 - t_1`` (the schedule's second value) while the numerator
keeps ``t = 1``, as Flow-GRPO's ``sde_step_with_logprob`` does. Log-probabilities are computed in float32
and averaged over a sample's elements (as Flow-GRPO does), so their scale does not grow with the video
size.

The KL between the policy's and the reference's step Gaussians (same std, different means) comes in two
forms (``SDEConfig.kl_form``):

- ``flow_grpo``: ``|mean - ref|^2 / (2 sigma_t^2)``, what Flow-GRPO's ``train_sd3.py`` computes (its SD3
  step returns ``sigma_t`` alone);
- ``exact``: ``|mean - ref|^2 / (2 (sigma_t sqrt|dt|)^2)``, the exact KL of the two step Gaussians, which is
  the ``flow_grpo`` form divided by ``|dt|``, and what Flow-GRPO's ``train_wan2_1.py`` computes (its Wan
  step returns ``sigma_t`` and ``sqrt|dt|`` and the KL divides by their product squared).

Flow-GRPO's Wan2.1 script also weighs each step's policy loss (not its KL) by ``sigma_t / sqrt|dt|``
(``SDEConfig.policy_scale: sigma_over_sqrt_dt``): a step's log-probability gradient carries a factor
``sqrt|dt| / sigma_t`` (the mean moves by ``O(|dt|)``, the std is ``sigma_t sqrt|dt|``), which the weight
takes out, so every trained step pulls with the same strength whatever its noise level and size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch

KLForm = Literal["flow_grpo", "exact"]
PolicyScale = Literal["none", "sigma_over_sqrt_dt"]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


@dataclass(frozen=True)
class SDEStep:
    sample: torch.Tensor  # x_next
    mean: torch.Tensor  # the Gaussian's mean
    std: torch.Tensor  # its per-sample std, sigma_t sqrt(|dt|), shaped to broadcast ([N, 1, ...])
    log_prob: torch.Tensor | None  # [N]; None for a deterministic step (noise level 0)
    sigma_t: torch.Tensor  # the per-sample noise scale a sqrt(t / (1 - t)), shaped as ``std``


def _per_sample(value: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=torch.float32, device=like.device)
    if t.ndim == 0:
        t = t.expand(like.shape[0])
    return t.reshape(-1, *([1] * (like.ndim - 1)))


def sde_step(
    latents: torch.Tensor,
    velocity: torch.Tensor,
    sigma: torch.Tensor | float,
    sigma_next: torch.Tensor | float,
    noise_level: float,
    *,
    sigma_cap: float | None = None,
    generator: torch.Generator | None = None,
    next_latents: torch.Tensor | None = None,
) -> SDEStep:
    """One step from noise level ``sigma`` to ``sigma_next``; with ``next_latents`` given, its
    log-probability under this step's Gaussian instead of a fresh sample.

    ``sigma_cap`` stands in for ``t`` in the denominator of ``sqrt(t / (1 - t))`` where ``t = 1`` (the first
    step), which would be infinite; the sampler passes the schedule's second noise level, as Flow-GRPO does.
    The log-probability is that of the returned sample in the latents' dtype (bf16 latents are rounded
    before they are scored), so recomputing it from the stored chain gives the same value."""
    x = latents.float()
    v = velocity.float()
    t = _per_sample(sigma, x)
    dt = _per_sample(sigma_next, x) - t
    mean = x + v * dt
    if noise_level == 0:
        sample = mean if next_latents is None else next_latents.float()
        zero = torch.zeros_like(t)
        return SDEStep(sample.to(latents.dtype), mean, zero, None, zero)
    capped = torch.where(t >= 1, torch.full_like(t, sigma_cap if sigma_cap is not None else 1.0), t)
    if bool((capped >= 1).any()):
        raise ValueError("sigma = 1 needs sigma_cap < 1 (the schedule's next noise level)")
    sigma_t = noise_level * torch.sqrt(t / (1 - capped))
    mean = mean + (sigma_t**2 / (2 * t)) * (x + (1 - t) * v) * dt
    std = sigma_t * torch.sqrt(-dt)
    if next_latents is None:
        eps = torch.randn(x.shape, generator=generator, device="cpu", dtype=torch.float32).to(x.device)
        sample = (mean + std * eps).to(latents.dtype)
    else:
        sample = next_latents.to(latents.dtype)
    log_prob = gaussian_log_prob(sample, mean, std)
    return SDEStep(sample, mean, std, log_prob, sigma_t)


def gaussian_log_prob(sample: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """log N(sample; mean, std^2 I), averaged over each sample's elements → ``[N]`` (float32)."""
    sample, mean, std = sample.float(), mean.float(), std.float()
    per_element = -((sample - mean) ** 2) / (2 * std**2) - torch.log(std) - _LOG_SQRT_2PI
    return per_element.flatten(1).mean(dim=1)


def gaussian_kl(mean: torch.Tensor, ref_mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """KL between two Gaussians of the same std, averaged over elements → ``[N]``, exactly 0 when the
    means agree."""
    return ((mean.float() - ref_mean.float()) ** 2 / (2 * std.float() ** 2)).flatten(1).mean(dim=1)


def policy_weight(step: SDEStep, scale: PolicyScale = "none") -> float:
    """The weight of one trained step's policy loss: 1, or ``sigma_t / sqrt|dt|`` (Flow-GRPO's Wan2.1
    script; module docstring)."""
    if scale == "none":
        return 1.0
    if scale == "sigma_over_sqrt_dt":
        sigma_t = step.sigma_t.float().mean()
        return float(sigma_t / (step.std.float().mean() / sigma_t))
    raise ValueError(f"policy_scale: must be none or sigma_over_sqrt_dt, got {scale!r}")


def step_kl(policy: SDEStep, ref_mean: torch.Tensor, form: KLForm = "flow_grpo") -> torch.Tensor:
    """The stage-2 KL to the reference policy for one SDE step → ``[N]``: ``exact`` scales by the step's
    std ``sigma_t sqrt|dt|``, ``flow_grpo`` by ``sigma_t`` alone (see the module docstring)."""
    if form == "exact":
        return gaussian_kl(policy.mean, ref_mean, policy.std)
    if form == "flow_grpo":
        return gaussian_kl(policy.mean, ref_mean, policy.sigma_t)
    raise ValueError(f"kl_form: must be flow_grpo or exact, got {form!r}")


@dataclass(frozen=True)
class SDEConfig:
    """Stage-2 sampling: ``num_steps`` denoising steps; steps with index in ``[window_start, window_end)``
    are stochastic (and trained on), the others deterministic ODE steps."""

    num_steps: int = 10
    noise_level: float = 0.7
    window_start: int = 0
    window_end: int | None = None  # None: to the last step
    kl_form: KLForm = "flow_grpo"  # how the KL to the reference is scaled (module docstring)
    policy_scale: PolicyScale = "none"  # each trained step's policy loss weight (module docstring)
    # Keep the stochastic steps' autograd graphs from sampling (Trajectory.graphs), so a training update
    # right after the rollout need not run the model on those steps again. Memory: one graph per
    # stochastic step at once (off for large models).
    keep_graphs: bool = False
    # The clips of a GRPO group start from one initial noise draw (DanceGRPO) instead of one each, so the
    # rewards within a group differ by the stochastic steps' noise alone: the steps that are trained on
    # are then the only source of the variance their advantages credit.
    share_initial_noise: bool = False

    def __post_init__(self) -> None:
        end = self.num_steps if self.window_end is None else self.window_end
        if self.num_steps < 1:
            raise ValueError(f"num_steps: must be >= 1, got {self.num_steps}")
        if self.noise_level < 0:
            raise ValueError(f"noise_level: must be >= 0, got {self.noise_level}")
        if self.kl_form not in ("flow_grpo", "exact"):
            raise ValueError(f"kl_form: must be flow_grpo or exact, got {self.kl_form!r}")
        if self.policy_scale not in ("none", "sigma_over_sqrt_dt"):
            raise ValueError(f"policy_scale: must be none or sigma_over_sqrt_dt, got {self.policy_scale!r}")
        if not 0 <= self.window_start < end <= self.num_steps:
            raise ValueError(
                f"window_start: needs 0 <= window_start < window_end <= num_steps = {self.num_steps}, "
                f"got {self.window_start} / {end}"
            )

    @property
    def sde_steps(self) -> range:
        return range(self.window_start, self.num_steps if self.window_end is None else self.window_end)


@dataclass(frozen=True)
class Trajectory:
    """A sampled denoising chain: ``latents[:, i]`` is x before step ``i`` (``num_steps + 1`` states),
    ``log_probs[:, k]`` the log-prob of the ``k``-th stochastic step (``steps[k]``)."""

    latents: torch.Tensor  # [N, S + 1, C, T, H, W]
    log_probs: torch.Tensor  # [N, K]
    steps: tuple[int, ...]
    sigmas: torch.Tensor  # [S + 1]
    # With ``SDEConfig.keep_graphs``: step index -> that step re-scored with its graph to the model's
    # parameters (the log-prob of the recorded next latents, as a training update computes it). Taken
    # out (``pop``) by the update that uses it, which frees the graph.
    graphs: dict[int, SDEStep] = field(default_factory=dict)

    @property
    def final(self) -> torch.Tensor:
        return self.latents[:, -1]


def sigma_cap(sigmas: torch.Tensor) -> float:
    """The noise level that replaces t = 1 in sigma_t (the schedule's second value)."""
    return float(sigmas[1]) if len(sigmas) > 1 and float(sigmas[1]) < 1 else 0.999


def sample_sde(
    velocity_fn,
    noise: torch.Tensor,
    sigmas: torch.Tensor,
    config: SDEConfig,
    *,
    generator: torch.Generator | None = None,
) -> Trajectory:
    """Run the chain from ``noise`` over ``sigmas`` (1 → 0); ``velocity_fn(latents, sigma [N])`` is the
    model. Stochastic inside the config's window, Euler outside. Without gradients, except the
    stochastic steps' model calls when ``config.keep_graphs`` (their graphs go to ``Trajectory.graphs``;
    the chain itself is the same, since a model call computes the same values with or without a graph)."""
    x = noise
    states, log_probs, graphs = [x], [], {}
    sde = set(config.sde_steps)
    cap = sigma_cap(sigmas)
    for i in range(len(sigmas) - 1):
        sigma = sigmas[i].to(x.device).expand(x.shape[0])
        keep = config.keep_graphs and i in sde and config.noise_level > 0
        with torch.set_grad_enabled(keep):
            v = velocity_fn(x, sigma)
        level = config.noise_level if i in sde else 0.0
        bounds = (sigmas[i], sigmas[i + 1], level)
        with torch.no_grad():
            step = sde_step(x, v.detach(), *bounds, sigma_cap=cap, generator=generator)
        if keep:
            # The sample is data, not a function of the parameters: score it as the update does.
            with torch.enable_grad():
                graphs[i] = sde_step(x, v, *bounds, sigma_cap=cap, next_latents=step.sample)
        x = step.sample
        states.append(x)
        if i in sde:
            log_probs.append(
                step.log_prob if step.log_prob is not None else torch.zeros(x.shape[0], device=x.device)
            )
    empty = torch.zeros(x.shape[0], 0, device=x.device)
    return Trajectory(
        torch.stack(states, dim=1),
        torch.stack(log_probs, dim=1) if log_probs else empty,
        tuple(sorted(sde)),
        sigmas,
        graphs,
    )
