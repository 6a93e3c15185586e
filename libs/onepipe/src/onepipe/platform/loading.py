"""Find a pipeline by its import path, so any face can serve another pipeline by configuration."""

from __future__ import annotations

import importlib
from typing import Any

from onepipe.contract import Pipeline
from onepipe.errors import PipelineDefinitionError


def import_pipeline(path: str) -> Pipeline[Any, Any, Any]:
    """The Pipeline at `package.module:attribute`."""
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise PipelineDefinitionError(f"pipeline path {path!r} must look like 'package.module:attribute'")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        raise PipelineDefinitionError(
            f"cannot import {module_name!r} for pipeline {path!r}: {error}"
        ) from None
    found = getattr(module, attribute, None)
    if not isinstance(found, Pipeline):
        raise PipelineDefinitionError(f"{path!r} is not a Pipeline (found {type(found).__name__})")
    return found
