"""Tune pipeline: Optuna study of short stage-1 runs → best weights as a parameters file, plots."""

from kedro.pipeline import Pipeline, node

from vans_pipelines.pipelines.tune.nodes import (
    plot_optimisation_history_node,
    plot_parameter_importance_node,
    run_study_node,
    write_tuned_parameters_node,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            node(
                run_study_node,
                [
                    "train_triplets",
                    "val_triplets",
                    "captions",
                    "sft_vlm",
                    "sft_vdm",
                    "scorer",
                    "tune_storage",
                    "params:tune",
                    "params:grpo_vlm",
                    "params:ingest.clip.fps",
                    "run_context",
                ],
                "tune_summary",
                name="run_study_node",
            ),
            node(
                write_tuned_parameters_node,
                ["tune_summary", "params:grpo_vlm"],
                "tuned_parameters",
                name="write_tuned_parameters_node",
            ),
            node(
                plot_optimisation_history_node,
                "tune_summary",
                "tune_history_plot",
                name="plot_optimisation_history_node",
            ),
            node(
                plot_parameter_importance_node,
                "tune_summary",
                "tune_importance_plot",
                name="plot_parameter_importance_node",
            ),
        ]
    )
