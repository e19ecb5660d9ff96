"""Project hooks."""

from __future__ import annotations

from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl

from vans_pipelines.params import validate_parameters


class ValidateParametersHook:
    """Checks every typed parameter section as soon as the context exists, before any node runs."""

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        validate_parameters(context.params)
