"""A second, tiny pipeline defined only in tests: other input fields, other flags, one artifact.

A package of its own, so its code fingerprint is this file alone, not every test module.

It proves the contract (and every face) is not tied to the example.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from onepipe import Pipeline, Recorder, when

# how often each step ran, so tests can see what debug off and "not needed" skip
CALLS: dict[str, int] = {}


class Reading(BaseModel):
    """A few measurements and their unit."""

    values: list[float] = Field(min_length=1, max_length=50, description="The measurements.")
    unit: str = Field(min_length=1, max_length=10, description="Their unit.")


class Summary(BaseModel):
    """What the tiny pipeline says about a reading."""

    value: float
    unit: str
    spread: float | None


class TinyFlags(BaseModel):
    """Variants of the tiny pipeline."""

    model_config = ConfigDict(extra="forbid")

    method: Literal["sum", "mean"] = Field("sum", description="How the values are combined.")
    scale: float = Field(1.0, gt=0, le=100, description="Multiplier applied to the result.")
    with_spread: bool = Field(True, description="Also compute the spread (max - min).")


def _count(name: str) -> None:
    CALLS[name] = CALLS.get(name, 0) + 1


def cleaned(inputs: list[Reading], recorder: Recorder) -> list[list[float]]:
    """The values with negative readings dropped."""
    _count("cleaned")
    if any(item.unit == "fail" for item in inputs):  # a real fault, for the error-path tests
        raise RuntimeError("cleaned cannot handle the unit 'fail'")
    out = [[v for v in item.values if v >= 0] for item in inputs]
    if recorder.enabled:
        _count("cleaned.debug")
        for index, (item, kept) in enumerate(zip(inputs, out, strict=True)):
            recorder.add(index, dropped=len(item.values) - len(kept))
    return out


@when(method="sum")
def combined__sum(cleaned: list[list[float]], offset: float) -> list[float]:
    """The values combined by summing, plus the trained offset."""
    _count("combined__sum")
    return [sum(values) + offset for values in cleaned]


@when(method="mean")
def combined__mean(cleaned: list[list[float]], offset: float) -> list[float]:
    """The values combined by averaging, plus the trained offset."""
    _count("combined__mean")
    return [(sum(values) / len(values) if values else 0.0) + offset for values in cleaned]


def unused(cleaned: list[list[float]]) -> list[int]:
    """A step nothing needs: it must never run."""
    _count("unused")
    return [len(values) for values in cleaned]


@when(with_spread=True)
def spread(cleaned: list[list[float]]) -> list[float]:
    """Max minus min of the values."""
    _count("spread")
    return [max(values) - min(values) if values else 0.0 for values in cleaned]


def summary(
    inputs: list[Reading], combined: list[float], spread: list[float | None], flags: TinyFlags
) -> list[Summary]:
    """The scaled result with its unit."""
    return [
        Summary(value=value * flags.scale, unit=item.unit, spread=s)
        for item, value, s in zip(inputs, combined, spread, strict=True)
    ]


def build_artifacts(out: Path) -> str:
    """Train the offset (a constant here)."""
    (out / "offset.json").write_text(json.dumps({"offset": 0.5}))
    return "# Model card: tiny\n\nOffset 0.5."


def load_resources(artifacts: Path) -> dict[str, Any]:
    """Read the offset."""
    return {"offset": json.loads((artifacts / "offset.json").read_text())["offset"]}


pipeline = Pipeline(
    name="tiny",
    input_model=Reading,
    output_model=Summary,
    flags_model=TinyFlags,
    steps=[cleaned, combined__sum, combined__mean, unused, spread, summary],
    resources=["offset"],
    load_resources=load_resources,
    build_artifacts=build_artifacts,
    examples={"three readings": Reading(values=[1.0, 2.0, 4.0], unit="kg")},
)
