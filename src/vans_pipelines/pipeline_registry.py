"""Every pipeline name, in stage order. The default run is ingest → caption → sft → joint_grpo →
evaluate; tune and ablate start from its SFT models and run only when named."""

from __future__ import annotations

from kedro.pipeline import Pipeline

from vans_pipelines.pipelines import ablate, caption, evaluate, grpo_vdm, grpo_vlm, ingest, samples, sft, tune


def register_pipelines() -> dict[str, Pipeline]:
    # Every stage that trains or evaluates starts from the split samples (made in memory by its own run).
    split_samples = samples.create_pipeline()
    stages = {
        "ingest": ingest.create_pipeline(),
        "caption": caption.create_pipeline(),
        "sft": split_samples + sft.create_pipeline(),
        "grpo_vlm": split_samples + grpo_vlm.create_pipeline(),
        "grpo_vdm": split_samples + grpo_vdm.create_pipeline(),
        "evaluate": split_samples + evaluate.create_pipeline(),
        "tune": split_samples + tune.create_pipeline(),
        "ablate": split_samples + ablate.create_pipeline(),
    }
    stages["joint_grpo"] = stages["grpo_vlm"] + stages["grpo_vdm"]
    stages["__default__"] = (
        stages["ingest"] + stages["caption"] + stages["sft"] + stages["joint_grpo"] + stages["evaluate"]
    )
    return stages
