"""What a GRPO rollout carries into its updates, per side of the cascade: the VLM's sampled answers
(:class:`Completions`) and the VDM's SDE trajectories (:class:`Trajectories`). The shared loop
(:mod:`~vans_pipelines.training.grpo`) holds them in a :class:`~vans_pipelines.training.grpo.Rollout`;
each stage's module builds and re-scores its own."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from vans_pipelines.models.answer_format import parse_answer
from vans_pipelines.models.vlm import Generation
from vans_pipelines.rl.flow_sde import Trajectory


@dataclass
class Completions:
    """A rollout's VLM side: the group's sampled answers, the inputs that re-score them, and what later
    updates compare with: the rollout policy's log-probs when a batch is reused (``old_logp``), the
    reference's when there is a KL term (``ref_logp``, the adapter switched off)."""

    generation: Generation
    inputs: dict[str, torch.Tensor]
    old_logp: torch.Tensor | None = None
    ref_logp: torch.Tensor | None = None

    @property
    def texts(self) -> list[str]:
        return self.generation.texts

    @property
    def captions(self) -> list[str]:
        """Each answer's caption, as the VDM renders it."""
        return [parse_answer(t).caption for t in self.generation.texts]

    @property
    def mean_length(self) -> float:
        return float(self.generation.completion_mask.sum(1).float().mean())


@dataclass
class Trajectories:
    """A rollout's VDM side: one Flow-GRPO SDE trajectory per clip (latents, log-probs, kept graphs), the
    conditioning it was made with, the decoded clips, and the reference's step means once computed."""

    trajectory: Trajectory
    text: torch.Tensor
    cond: torch.Tensor
    clips: np.ndarray
    # the reference's step means, by (step, first row, end row) of each micro-batch
    reference_means: dict[tuple[int, int, int], torch.Tensor] = field(default_factory=dict)
