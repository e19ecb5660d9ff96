"""Stage 1 pipeline: SFT VLM + frozen SFT VDM + scorer → the GRPO VLM and its before / after report."""

from kedro.pipeline import Pipeline, node

from vans_pipelines.pipelines.grpo_vlm.nodes import train_grpo_vlm


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                train_grpo_vlm,
                ["samples", "sft_vlm", "sft_vdm", "scorer", "params:grpo_vlm", "run_context"],
                ["grpo_vlm", "grpo_vlm_report"],
                name="train_grpo_vlm_node",
            )
        ]
    )
