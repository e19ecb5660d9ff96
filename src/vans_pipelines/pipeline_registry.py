"""Every pipeline name, in stage order. The default run is ingest → caption → sft → joint_grpo →
evaluate; tune and ablate start from its SFT models and run only when named."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from vans_pipelines.pipelines import ablate, caption, evaluate, grpo_vdm, grpo_vlm, ingest, sft, tune


def register_pipelines() -> dict[str, Pipeline]:
    stages = {
        "ingest": ingest.create_pipeline(),
        "caption": caption.create_pipeline(),
        "sft": sft.create_pipeline(),
        "grpo_vlm": grpo_vlm.create_pipeline(),
        "grpo_vdm": grpo_vdm.create_pipeline(),
        "evaluate": evaluate.create_pipeline(),
        "tune": tune.create_pipeline(),
        "ablate": ablate.create_pipeline(),
    }
    stages["joint_grpo"] = stages["grpo_vlm"] + stages["grpo_vdm"]
    stages["__default__"] = (
        stages["ingest"] + stages["caption"] + stages["sft"] + stages["joint_grpo"] + stages["evaluate"]
    )
    return stages
