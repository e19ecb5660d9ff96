"""Stage 2 pipeline: the stage-1 VLM writes anchor captions; Flow-GRPO trains the VDM on the good ones."""

from kedro.pipeline import Pipeline, node

from vans_pipelines.pipelines.grpo_vdm.nodes import train_grpo_vdm, write_anchor_captions


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                write_anchor_captions,
                ["samples", "grpo_vlm", "params:grpo_vdm", "run_context"],
                "anchor_captions",
                name="write_anchor_captions_node",
            ),
            node(
                train_grpo_vdm,
                ["samples", "anchor_captions", "sft_vdm", "scorer", "params:grpo_vdm", "run_context"],
                ["grpo_vdm", "grpo_vdm_report"],
                name="train_grpo_vdm_node",
            ),
        ]
    )
