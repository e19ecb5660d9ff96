"""Optuna over the Joint-GRPO stage-1 reward weights (short stage-1 runs scored on val)."""

from vans_pipelines.pipelines.tune.pipeline import create_pipeline

__all__ = ["create_pipeline"]
