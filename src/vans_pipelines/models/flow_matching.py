"""The flow-matching training recipe: how training draws noise levels, weighs the loss per level, and
drops captions so that the sampler can guide by them.

SD3 (Esser et al., 2024, "Scaling Rectified Flow Transformers") found that a rectified-flow model learns
faster when training concentrates its noise levels in the middle of [0, 1], where the velocity is
hardest to predict, instead of drawing them uniformly: ``sigma = sigmoid(n)``, ``n ~ N(mean, std)``
(logit-normal). The draw and the weights come from diffusers' SD3 training utilities, the ones its
training scripts use, so the recipe is the field's, not a copy of it. Caption dropout trains the
unconditional velocity that classifier-free guidance (Ho & Salimans, 2022; Wan2.1 samples with it)
extrapolates away from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from diffusers.training_utils import compute_density_for_timestep_sampling, compute_loss_weighting_for_sd3


@dataclass(frozen=True)
class FlowMatchingRecipe:
    """Where training draws its noise levels (before the model's time shift), how it weighs them, and
    how often a caption is replaced by the empty one (``caption_dropout``).

    ``scheme``: ``uniform`` (plain rectified flow), ``logit_normal`` (SD3's default; ``logit_mean``,
    ``logit_std``), ``mode`` (SD3's mode sampling; ``mode_scale``) or ``stratified`` (uniform, one draw
    per equal slice of [0, 1] across the batch: the low-discrepancy draw of Kingma et al.'s VDM, which
    lowers the loss's variance at no cost). ``loss_weighting``: ``none``
    (SD3's choice with logit-normal sampling), ``sigma_sqrt`` or ``cosmap``.

    >>> FlowMatchingRecipe().draw(3, torch.Generator().manual_seed(0)).tolist() == (
    ...     torch.rand(3, generator=torch.Generator().manual_seed(0)).tolist())
    True
    """

    scheme: Literal["uniform", "logit_normal", "mode", "stratified"] = "uniform"
    logit_mean: float = 0.0
    logit_std: float = 1.0
    mode_scale: float = 1.29
    loss_weighting: Literal["none", "sigma_sqrt", "cosmap"] = "none"
    caption_dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.scheme not in ("uniform", "logit_normal", "mode", "stratified"):
            raise ValueError(
                f"scheme: must be uniform, logit_normal, mode or stratified, got {self.scheme!r}"
            )
        if self.loss_weighting not in ("none", "sigma_sqrt", "cosmap"):
            raise ValueError(
                f"loss_weighting: must be none, sigma_sqrt or cosmap, got {self.loss_weighting!r}"
            )
        if self.logit_std <= 0:
            raise ValueError(f"logit_std: must be > 0, got {self.logit_std}")
        if not 0.0 <= self.caption_dropout < 1.0:
            raise ValueError(f"caption_dropout: must be in [0, 1), got {self.caption_dropout}")

    def draw(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``batch_size`` noise levels in (0, 1) on the CPU (a CPU generator keeps runs reproducible
        across devices); ``uniform`` draws exactly ``torch.rand(batch_size, generator=generator)``."""
        if self.scheme == "stratified":
            offset = torch.rand(1, generator=generator)
            return (torch.arange(batch_size) + offset) / batch_size
        return compute_density_for_timestep_sampling(
            self.scheme,
            batch_size,
            logit_mean=self.logit_mean,
            logit_std=self.logit_std,
            mode_scale=self.mode_scale,
            device="cpu",
            generator=generator,
        )

    def drop_captions(self, captions: list[str], generator: torch.Generator | None = None) -> list[str]:
        """``captions`` with each replaced by ``""`` with probability ``caption_dropout`` (no draw at 0,
        so the generator's stream is untouched)."""
        if not self.caption_dropout:
            return captions
        dropped = torch.rand(len(captions), generator=generator) < self.caption_dropout
        return ["" if drop else caption for caption, drop in zip(captions, dropped.tolist(), strict=True)]

    def weights(self, sigmas: torch.Tensor) -> torch.Tensor:
        """Per-sample loss weights at noise levels ``sigmas`` (ones for ``none``)."""
        return compute_loss_weighting_for_sd3(self.loss_weighting, sigmas)
