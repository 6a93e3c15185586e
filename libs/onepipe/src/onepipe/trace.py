"""The trace of one input through the pipeline: plain JSON that every face can show.

A step's output and debug detail are previews (onepipe.preview): plain JSON, with `$kind`-tagged
summaries where a value was cut or summarised.
"""

from __future__ import annotations

import html
import json
from typing import Any, Literal

from pydantic import BaseModel, Field

from onepipe.preview import kind_of

StepStatus = Literal["ran", "off", "not_needed"]


class StepTrace(BaseModel):
    """What one step did for one input."""

    name: str
    doc: str
    status: StepStatus = Field(
        description="ran; off (switched off by a flag); not_needed (no later step used it)"
    )
    variant: str | None = Field(None, description="the variant that ran, when the step has several")
    time_ms: float = Field(0.0, description="wall time of the step over the whole batch")
    batch_size: int = 1
    output: Any = Field(None, description="the step's output for this input, or a preview of it")
    debug: dict[str, Any] = Field(default_factory=dict, description="the step's own debug detail")


class Trace(BaseModel):
    """Every step of the pipeline, in order, for one input."""

    pipeline: str
    version: str
    steps: list[StepTrace]

    @property
    def total_ms(self) -> float:
        """Time of the steps that ran."""
        return sum(step.time_ms for step in self.steps if step.status == "ran")

    def step(self, name: str) -> StepTrace:
        """The trace of the step called `name`."""
        for step in self.steps:
            if step.name == name:
                return step
        raise KeyError(f"no step {name!r} in this trace; steps: {[s.name for s in self.steps]}")

    def _repr_html_(self) -> str:
        """A table per step for Jupyter."""
        rows = []
        for step in self.steps:
            variant = f" <small>({html.escape(step.variant)})</small>" if step.variant else ""
            timing = f"{step.time_ms:.2f} ms" if step.status == "ran" else step.status
            rows.append(
                "<tr>"
                f"<td><b>{html.escape(step.name)}</b>{variant}<br><small>{html.escape(step.doc)}</small></td>"
                f"<td style='text-align:right'>{timing}</td>"
                f"<td><pre>{html.escape(_pretty(step.output))}</pre></td>"
                f"<td><pre>{html.escape(_pretty(step.debug) if step.debug else '')}</pre></td>"
                "</tr>"
            )
        return (
            f"<div><b>{html.escape(self.pipeline)}</b> version {html.escape(self.version)}, "
            f"{self.total_ms:.2f} ms</div>"
            "<table><thead><tr><th>step</th><th>time</th><th>output</th><th>debug</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )


def _pretty(value: Any, depth: int = 0) -> str:
    """Indented JSON, each preview summary (`$kind`) on one line of its own."""
    if kind_of(value) is not None or not isinstance(value, dict | list) or not value:
        return json.dumps(value, ensure_ascii=False, default=str)
    inner = " " * (depth + 1)
    if isinstance(value, dict):
        items = [
            f"{inner}{json.dumps(str(k), ensure_ascii=False)}: {_pretty(v, depth + 1)}"
            for k, v in value.items()
        ]
        return "{\n" + ",\n".join(items) + "\n" + " " * depth + "}"
    items = [f"{inner}{_pretty(v, depth + 1)}" for v in value]
    return "[\n" + ",\n".join(items) + "\n" + " " * depth + "]"
