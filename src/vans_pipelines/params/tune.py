"""``parameters_tune.yml``: the Optuna study over stage 1's reward weights."""

from __future__ import annotations

from pydantic import Field, model_validator

from vans_pipelines.params.base import Strict


class TuneSearchSpace(Strict):
    """Ranges Optuna samples from: each reward weight in ``[0, weight_max]`` and, when given, the learning
    rate (log scale), group size and KL beta."""

    rewards: list[str] = Field(min_length=1)
    weight_max: float = Field(gt=0)
    lr: tuple[float, float] | None
    group_size: list[int] | None
    beta: tuple[float, float] | None

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

    study_name: str
    n_trials: int = Field(ge=1)  # the study's target; a resumed study runs only the missing trials
    seed: int
    steps: int = Field(ge=1)  # stage-1 steps per trial
    report_every: int = Field(ge=1)  # steps between intermediate val scores (pruning)
    pruner_startup_trials: int = Field(ge=0)
    pruner_warmup_steps: int = Field(ge=0)
    val_limit: int | None = Field(ge=1)
    val_seeds: list[int] = Field(min_length=1)
    # Trials log here, not under run.log_dir: the training stages' folder stays what evaluate's curves
    # (and its DVC dependency) read, whether or not a study ran since
    log_dir: str
    objective: dict[str, float]
    search: TuneSearchSpace

    @model_validator(mode="after")
    def _valid(self) -> TuneParams:
        from vans_pipelines.rl.rewards import check_reward_names

        errors = check_reward_names(self.objective, "objective")
        errors += check_reward_names({n: 1.0 for n in self.search.rewards}, "search.rewards")
        if errors:
            raise ValueError("; ".join(errors))
        return self
