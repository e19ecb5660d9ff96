"""Train the ablation recipes of one training seed from the same SFT models.

A recipe is typed stage settings (see ``params.resolve_variant``): a stage-1 section or none (the SFT VLM
is kept), a stage-2 section or none (the SFT VDM is kept; its anchors come from the recipe's VLM), or a
cascade (both sections, one loop). Recipes that resolve to the same settings share one run: two_stage,
vlm_only and no_semantic_reward train their stage 1 once. Every run starts from a copy of the SFT weights,
so no recipe sees another's training.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from peft.tuners.tuners_utils import BaseTunerLayer
from torch.utils.data import Dataset

from vans_pipelines.models.render import RenderCache
from vans_pipelines.models.scorer import VideoTextScorer
from vans_pipelines.models.vdm import VideoDiffusionModel
from vans_pipelines.models.vlm import VisionLanguageModel
from vans_pipelines.training.fingerprints import weights_fingerprint
from vans_pipelines.training.grpo_cascade import fit_cascade
from vans_pipelines.training.grpo_vdm import (
    AnchoredSamples,
    anchor_captions,
    anchors_of,
    check_enough_anchors,
    fit_stage2,
)
from vans_pipelines.training.grpo_vlm import fit_stage1
from vans_pipelines.training.trainer import RunPaths, fingerprint, world_size

if TYPE_CHECKING:
    from vans_pipelines.params import GRPOVDMParams, GRPOVLMParams

log = logging.getLogger(__name__)

SFT = "sft"  # the key of the untouched SFT models


@dataclass(frozen=True)
class Recipe:
    """One variant's typed stage settings for one training seed (``None``: that SFT model is kept)."""

    name: str
    stage1: GRPOVLMParams | None
    stage2: GRPOVDMParams | None
    cascade: bool = False


@dataclass(frozen=True)
class TrainedRecipe:
    """Which trained models answer for a recipe (keys of :class:`AblationTrainer`'s ``vlms`` / ``vdms``),
    which training runs made them, and what training changed (see :func:`parameter_changes`)."""

    name: str
    vlm: str
    vdm: str
    runs: tuple[str, ...]
    changes: dict[str, Any] = field(default_factory=dict)


@torch.no_grad()
def adapter_change(module: torch.nn.Module) -> float:
    """How far the LoRA adapters moved ``module``: the Frobenius norm of every adapted weight's delta
    (B·A·scale) together; 0 without adapters or with untrained ones (B starts at 0)."""
    deltas = [
        layer.get_delta_weight(name).float().norm() ** 2
        for layer in module.modules()
        if isinstance(layer, BaseTunerLayer)
        for name in layer.active_adapters
    ]
    return float(torch.stack(deltas).sum().sqrt()) if deltas else 0.0


@torch.no_grad()
def base_unchanged(module: torch.nn.Module, reference: torch.nn.Module) -> bool:
    """Whether every weight of ``module`` other than its adapters equals ``reference``'s (PEFT's wrapping
    renames ``x.weight`` to ``x.base_layer.weight``)."""
    ours = {k.replace(".base_layer", ""): v for k, v in module.state_dict().items() if "lora_" not in k}
    theirs = reference.state_dict()
    return ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in theirs)


def parameter_changes(
    vlm: VisionLanguageModel,
    vdm: VideoDiffusionModel,
    sft_vlm: VisionLanguageModel,
    sft_vdm: VideoDiffusionModel,
) -> dict[str, Any]:
    """What a recipe's training did to each model: the adapters' change, and whether everything else (the
    base weights, the VDM's VAE and text encoder) is still the SFT model's."""
    return {
        "vlm_adapter_change": adapter_change(vlm.model),
        "vdm_adapter_change": adapter_change(vdm.transformer),
        "vlm_base_unchanged": base_unchanged(vlm.model, sft_vlm.model),
        "vdm_base_unchanged": all(
            base_unchanged(part, sft_vdm.modules()[name]) for name, part in vdm.modules().items()
        ),
    }


@dataclass
class AblationTrainer:
    """Trains recipes on ``train`` from the SFT models, caching runs by their settings. ``runs`` holds
    each run's summary (steps, seconds, TensorBoard folder, what it trained)."""

    sft_vlm: VisionLanguageModel
    sft_vdm: VideoDiffusionModel
    scorer: VideoTextScorer
    train: Dataset
    paths: RunPaths
    fps: float
    anchor_pool: int | None = None  # stage-2 anchors are written for the first N train samples only
    vlms: dict[str, VisionLanguageModel] = field(default_factory=dict)
    vdms: dict[str, VideoDiffusionModel] = field(default_factory=dict)
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.vlms.setdefault(SFT, self.sft_vlm)
        self.vdms.setdefault(SFT, self.sft_vdm)
        self._inputs = weights_fingerprint(self.sft_vlm.model, self.sft_vdm.transformer)
        self._anchors: dict[str, Mapping[str, str]] = {}
        self._renders: RenderCache = {}  # the SFT VDM's stage-1 renders, shared by one seed's recipes

    def train_recipe(self, recipe: Recipe) -> TrainedRecipe:
        if recipe.cascade:
            vlm = vdm = self._cascade(recipe)
        else:
            vlm = self._stage1(recipe) if recipe.stage1 is not None else SFT
            vdm = self._stage2(recipe, vlm) if recipe.stage2 is not None else SFT
        changes = parameter_changes(self.vlms[vlm], self.vdms[vdm], self.sft_vlm, self.sft_vdm)
        return TrainedRecipe(
            recipe.name, vlm, vdm, tuple(dict.fromkeys(k for k in (vlm, vdm) if k != SFT)), changes
        )

    def release(self) -> None:
        """Drop every trained model (the next seed's recipes start over from the SFT models) and its
        anchors; the SFT VLM's anchors (greedy captions, the same for every seed) are kept."""
        self.vlms = {SFT: self.sft_vlm}
        self.vdms = {SFT: self.sft_vdm}
        self._anchors = {k: v for k, v in self._anchors.items() if k.startswith(f"{SFT}/")}
        self._renders = {}

    # ------------------------------------------------------------------ runs
    def _record(self, key: str, recipe: Recipe, stage: str, result: Any, **extra: Any) -> None:
        self.runs[key] = {"first_recipe": recipe.name, "stage": stage, **result.summary(), **extra}
        log.info("ablate: %s (%s) trained in %.0f s", key, recipe.name, result.seconds)

    def _stage1(self, recipe: Recipe) -> str:
        params = recipe.stage1
        key = f"stage1-{fingerprint(params, len(self.train), self._inputs)}"
        if key not in self.vlms:
            vlm = copy.deepcopy(self.sft_vlm)
            stage = f"ablate/seed_{params.trainer.seed}/{recipe.name}/stage1"
            run = self.paths.training(stage, key)
            result = fit_stage1(
                vlm,
                self.sft_vdm,
                self.scorer,
                params,
                self.train,
                run,
                fps=self.fps,
                render_cache=self._renders,
            )
            self.vlms[key] = vlm
            self._record(key, recipe, "stage1", result, seed=params.trainer.seed, trained="vlm")
        return key

    def _anchors_of(self, vlm_key: str, params: GRPOVDMParams) -> Mapping[str, str]:
        cache = f"{vlm_key}/{params.anchors.min_rouge_l}/{params.anchors.max_new_tokens}"
        if cache not in self._anchors:
            table = anchor_captions(
                self.vlms[vlm_key],
                {"train": self.train},
                min_rouge_l=params.anchors.min_rouge_l,
                max_new_tokens=params.anchors.max_new_tokens,
                limit=self.anchor_pool,
            )
            self._anchors[cache] = anchors_of(table, "train", kept_only=True)
        return self._anchors[cache]

    def _stage2(self, recipe: Recipe, vlm_key: str) -> str:
        params = recipe.stage2
        anchors = self._anchors_of(vlm_key, params)
        train = AnchoredSamples(self.train, anchors)
        check_enough_anchors(train, params, world_size())
        key = f"stage2-{fingerprint(params, sorted(anchors.items()), self._inputs)}"
        if key not in self.vdms:
            vdm = copy.deepcopy(self.sft_vdm)
            stage = f"ablate/seed_{params.trainer.seed}/{recipe.name}/stage2"
            result = fit_stage2(
                vdm, self.scorer, params, train, self.paths.training(stage, key), fps=self.fps
            )
            self.vdms[key] = vdm
            self._record(
                key,
                recipe,
                "stage2",
                result,
                seed=params.trainer.seed,
                trained="vdm",
                train_anchors=len(train),
            )
        return key

    def _cascade(self, recipe: Recipe) -> str:
        stage1, stage2 = recipe.stage1, recipe.stage2
        key = f"cascade-{fingerprint(stage1, stage2, len(self.train), self._inputs)}"
        if key not in self.vlms:
            vlm, vdm = copy.deepcopy(self.sft_vlm), copy.deepcopy(self.sft_vdm)
            stage = f"ablate/seed_{stage1.trainer.seed}/{recipe.name}/cascade"
            run = self.paths.training(stage, key)
            result = fit_cascade(
                vlm, vdm, self.scorer, stage1, stage2, stage1.rewards, self.train, run, fps=self.fps
            )
            self.vlms[key], self.vdms[key] = vlm, vdm
            self._record(key, recipe, "cascade", result, seed=stage1.trainer.seed, trained="vlm+vdm")
        return key
