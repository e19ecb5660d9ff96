"""``parameters_tune.yml``: the Optuna study over stage 1's reward weights."""

from __future__ import annotations

from pydantic import Field, model_validator

from vans_pipelines.params.base import Strict


class TuneSearchSpace(Strict):
    """Ranges Optuna samples from: each reward weight in ``[0, weight_max]`` and, when given, the learning
    rate (log scale), group size and KL beta."""

    rewards: list[str] = Field(
        default_factory=lambda: ["format", "text_fidelity", "video_fidelity"], min_length=1
    )
    weight_max: float = Field(2.0, gt=0)
    lr: tuple[float, float] | None = (1e-4, 2e-3)
    group_size: list[int] | None = Field(default_factory=lambda: [4, 8])
    beta: tuple[float, float] | None = (0.0, 0.05)

    @model_validator(mode="after")
    def _valid(self) -> TuneSearchSpace:
        errors = []
        if self.lr is not None and not 0 < self.lr[0] < self.lr[1]:
            errors.append(f"lr: need 0 < low < high, got {self.lr}")
        if self.beta is not None and not 0 <= self.beta[0] <= self.beta[1]:
            errors.append(f"beta: need 0 <= low <= high, got {self.beta}")
        if self.group_size is not None and (not self.group_size or min(self.group_size) < 2):
            errors.append(f"group_size: every choice must be >= 2, got {self.group_size}")
        if errors:
            raise ValueError("; ".join(errors))
        return self


class TuneParams(Strict):
    """The tune stage: an Optuna study (TPE, median pruning) of short stage-1 runs scored on val by a fixed
    objective (so trials with different reward weights are comparable)."""

    study_name: str = "grpo_vlm_rewards"
    n_trials: int = Field(8, ge=1)  # the study's target; a resumed study runs only the missing trials
    seed: int = 0
    steps: int = Field(8, ge=1)  # stage-1 steps per trial
    report_every: int = Field(4, ge=1)  # steps between intermediate val scores (pruning)
    pruner_startup_trials: int = Field(2, ge=0)
    pruner_warmup_steps: int = Field(0, ge=0)
    val_limit: int | None = Field(32, ge=1)
    val_seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    # Trials log here, not under run.log_dir: the training stages' folder stays what evaluate's curves
    # (and its DVC dependency) read, whether or not a study ran since
    log_dir: str = "data/07_model_output/tune/tensorboard"
    objective: dict[str, float] = Field(default_factory=lambda: {"text_fidelity": 1.0, "video_fidelity": 1.0})
    search: TuneSearchSpace = TuneSearchSpace()

    @model_validator(mode="after")
    def _valid(self) -> TuneParams:
        from vans_pipelines.rl.rewards import check_reward_names

        errors = check_reward_names(self.objective, "objective")
        errors += check_reward_names({n: 1.0 for n in self.search.rewards}, "search.rewards")
        if errors:
            raise ValueError("; ".join(errors))
        return self
