"""The cost of a challenger: the champion's speed with a second version loaded beside it, and without.

Both model services serve the same champion from an embedded registry; the second also loads a
challenger (the same artifacts with another default for the pipeline's first flag that has one),
which takes no traffic. Measured one after the other in the same run, as ratios.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from onepipe import Pipeline
from onepipe.platform.versions.registry import Registry
from onepipe_harness.processes import free_port, model_service

Measure = Callable[[str], dict[str, Any]]


def other_default(pipeline: Pipeline[Any, Any, Any]) -> dict[str, Any] | None:
    """A flag default other than the code's: the first boolean flag flipped, or an enum's next value."""
    defaults = pipeline.flags_model().model_dump(mode="json")
    properties = pipeline.flags_model.model_json_schema().get("properties", {})
    for name, schema in properties.items():
        if schema.get("type") == "boolean":
            return {name: not defaults[name]}
        choices = [c for c in schema.get("enum", []) if c != defaults[name]]
        if choices:
            return {name: choices[0]}
    return None


def challenger_cost(
    pipeline: Pipeline[Any, Any, Any], artifacts: Path, model_env: dict[str, str], measure: Measure
) -> dict[str, Any] | None:
    """The champion measured alone and with a challenger loaded; None when no flag default can differ."""
    flags = other_default(pipeline)
    if flags is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        alone, both = Path(folder, "alone"), Path(folder, "both")
        Registry(str(alone), Path(folder, "cache")).register(pipeline, artifacts, {})
        registry = Registry(str(both), Path(folder, "cache"))
        registry.register(pipeline, artifacts, {})
        registry.register(pipeline, artifacts, flags, alias="challenger")
        found: dict[str, Any] = {"challenger_flags": flags}
        for name, location in (("champion alone", alone), ("champion with a challenger", both)):
            env = model_env | {
                "MODEL_REGISTRY": str(location),
                "MODEL_VERSIONS_CACHE": str(Path(folder, name)),
            }
            with model_service(free_port(), **env) as service:
                found[name] = measure(service.url)
    return found


def ratios(measured: dict[str, Any], concurrency: int) -> dict[str, float]:
    """The issue's two figures: p50 at c=1 and rows/s at c=`concurrency`, with a challenger over alone."""
    alone, both = measured["champion alone"], measured["champion with a challenger"]
    c = f"c{concurrency}"
    return {
        "challenger loaded: champion c1 p50, with / alone": both["c1_p50_ms"] / alone["c1_p50_ms"],
        f"challenger loaded: champion rows/s at {c}, with / alone": (
            both[c]["rows_per_second"] / alone[c]["rows_per_second"]
        ),
    }
