"""Joint-GRPO stage 1: GRPO on the VLM, rewarded through videos the frozen SFT VDM renders."""

from vans_pipelines.pipelines.grpo_vlm.pipeline import create_pipeline

__all__ = ["create_pipeline"]
