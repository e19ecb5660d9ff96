"""Ablate nodes: train every recipe for every training seed from the SFT models, evaluate them on the test
split, check the paper's claims, write the report. The catalog loads and saves models and reports; the
runs' trainers write TensorBoard logs (``ablate.log_dir``) and resumable checkpoints where ``run`` says."""

from __future__ import annotations

import logging
import time
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from vans_pipelines.evaluation import ablation
from vans_pipelines.evaluation.ablation_report import ablation_markdown, plot_recipes
from vans_pipelines.evaluation.features import build_features
from vans_pipelines.models.scorer import VideoTextScorer
from vans_pipelines.models.vdm import VideoDiffusionModel
from vans_pipelines.models.vlm import VisionLanguageModel
from vans_pipelines.params import (
    AblateParams,
    GRPOVDMParams,
    GRPOVLMParams,
    RunContext,
    parse_section,
    resolve_variant,
)
from vans_pipelines.samples import SplitSamples
from vans_pipelines.training.ablation import AblationTrainer, Recipe

logger = logging.getLogger(__name__)


def run_ablation(
    samples: SplitSamples,
    sft_vlm: VisionLanguageModel,
    sft_vdm: VideoDiffusionModel,
    scorer: VideoTextScorer,
    ablate: dict[str, Any],
    grpo_vlm: dict[str, Any],
    grpo_vdm: dict[str, Any],
    evaluate: dict[str, Any],
    run_context: RunContext,
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Every recipe x training seed, trained and evaluated; returns the figures and the per-sample table."""
    params = parse_section("ablate", ablate)
    stage1, stage2 = parse_section("grpo_vlm", grpo_vlm), parse_section("grpo_vdm", grpo_vdm)
    evaluation = parse_section("evaluate", evaluate)
    if params.compile_vdm:  # every recipe's VDM is a copy of this one, and compiles as it does
        sft_vdm.compile()
    trainer = AblationTrainer(
        sft_vlm,
        sft_vdm,
        scorer,
        samples.train,
        run_context.logging_to(params.log_dir),
        samples.fps,
        anchor_pool=params.anchor_pool,
    )
    started, trained = time.perf_counter(), {}
    per_seed = ablation.train_and_score_recipes(
        trainer,
        recipes_by_seed(params, stage1, stage2),
        {name: variant.label or name for name, variant in params.variants.items()},
        samples.test,
        build_features(evaluation.fvd.kind, scorer, evaluation.fvd.path),
        trained_recipes=trained,
        **params.eval.model_dump(),
    )
    seconds = time.perf_counter() - started
    figures, samples = ablation.summarise_recipes(per_seed, params.baseline, trainer.runs, trained, seconds)
    for claim in figures["claims"] + figures["questions"]:
        logger.info("ablate: %s: %s (%+.4f)", claim["claim"], claim["verdict"], claim["delta"])
    return figures, samples


def recipes_by_seed(
    params: AblateParams, stage1: GRPOVLMParams, stage2: GRPOVDMParams
) -> dict[int, list[Recipe]]:
    """Each training seed's recipes: every variant's overrides resolved into typed stage settings."""
    return {
        seed: [
            Recipe(
                name,
                *resolve_variant(name, variant, stage1, stage2, seed),
                cascade=variant.cascade is not None,
            )
            for name, variant in params.variants.items()
        ]
        for seed in params.seeds
    }


def summarise_ablation(figures: dict[str, Any]) -> dict[str, float]:
    """The flat numeric summary DVC shows as the ablate stage's metric."""
    return ablation.flat_ablation_summary(figures)


def plot_ablation(figures: dict[str, Any]) -> Figure:
    return plot_recipes(figures["systems"])


def write_ablation_report(figures: dict[str, Any]) -> str:
    return ablation_markdown(figures) + "\n![recipes](ablation.png)\n"
