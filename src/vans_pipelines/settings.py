"""Kedro project settings."""

from kedro.config import OmegaConfigLoader

from vans_pipelines.hooks import LibraryLoggingHook, RunContextHook, ValidateParametersHook

HOOKS = (ValidateParametersHook(), RunContextHook(), LibraryLoggingHook())

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    # `local` (git-ignored) overrides `base`; `kedro run --env paper` selects the paper's recipe instead.
    "default_run_env": "local",
    # An environment's parameters merge into base's key by key (a file that sets `sft.vdm.optim.lr` keeps
    # the rest of `sft`): conf/base is the one place every default is written.
    "merge_strategy": {"parameters": "soft"},
}
