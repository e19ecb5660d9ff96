"""SFT stage: supervised fine-tuning of the VLM and the VDM."""

from vans_pipelines.pipelines.sft.pipeline import create_pipeline

__all__ = ["create_pipeline"]
