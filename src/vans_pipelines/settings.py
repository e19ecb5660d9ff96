"""Kedro project settings."""

from kedro.config import OmegaConfigLoader

from vans_pipelines.hooks import LibraryLoggingHook, RunContextHook, ValidateParametersHook

HOOKS = (ValidateParametersHook(), RunContextHook(), LibraryLoggingHook())

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    # `local` (git-ignored) overrides `base`; `kedro run --env paper` selects the paper's recipe instead.
    "default_run_env": "local",
}
