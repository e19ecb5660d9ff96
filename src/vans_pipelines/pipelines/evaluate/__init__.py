"""Evaluate every system of a run on the test split and write the report."""

from vans_pipelines.pipelines.evaluate.pipeline import create_pipeline

__all__ = ["create_pipeline"]
