"""Joint-GRPO stage 2: Flow-GRPO on the VDM from the stage-1 VLM's anchor captions."""

from vans_pipelines.pipelines.grpo_vdm.pipeline import create_pipeline

__all__ = ["create_pipeline"]
