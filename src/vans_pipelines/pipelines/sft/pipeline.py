"""SFT pipeline: split samples → fine-tuned VLM and VDM (save_pretrained folders) and their reports."""

from kedro.pipeline import Pipeline, node

from vans_pipelines.pipelines.sft.nodes import train_vdm, train_vlm

_INPUTS = ["samples", "tokenizer", "params:sft", "run_context"]


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(train_vlm, _INPUTS, ["sft_vlm", "sft_vlm_report"], name="train_vlm_node"),
            node(train_vdm, _INPUTS, ["sft_vdm", "sft_vdm_report"], name="train_vdm_node"),
        ]
    )
