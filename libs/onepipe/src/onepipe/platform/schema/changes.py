"""Two answers to the same inputs, compared: decisions apart from drift, counted row by row.

Every comparison of two answers (two jobs, a job's two flag sets or versions, the shadow record)
feeds its pairs of outputs to a `ChangeTally`, which applies the one rule of what changed
(`onepipe.platform.schema.outputs.differing_fields`): decisions (categories, booleans, the `label`,
`review` and `known` roles) change with their value; numbers change only past their tolerance, and
the distribution of their differences (median, 95th percentile, largest) is kept apart as drift.
`ChangeTally.headline` says it in one sentence that leads with the decisions, from the schema alone.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from onepipe.platform.schema.outputs import (
    DECISION,
    NUMBER,
    OTHER_KIND,
    ComparedAs,
    Outputs,
    differing_fields,
)
from onepipe.platform.schema.sample import Reservoir
from onepipe.platform.schema.values import as_number


@dataclass
class Drift(Reservoir):
    """How far one numeric field moved, |after - before| over the rows where both are numbers.

    The count, the rows past the tolerance and the largest difference are exact; the median and the
    95th percentile come from up to SAMPLE_SIZE differences (beyond that a uniform sample, fixed seed).
    """

    count: int = 0
    past: int = 0  # rows whose difference is past the field's tolerance
    largest: float = 0.0

    def add(self, difference: float, past: bool) -> None:
        """Count one row's difference, and whether it is past the tolerance."""
        self.count += 1
        self.past += past
        self.largest = max(self.largest, difference)
        self.keep(difference, self.count)

    @property
    def median(self) -> float | None:
        """The median difference."""
        return self.quantile(0.5)

    @property
    def p95(self) -> float | None:
        """The 95th percentile of the differences."""
        return self.quantile(0.95)


def figure(value: float) -> str:
    """A difference or a tolerance as people read it: three significant digits, no exponent below 1000."""
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    text = f"{value:.3g}"
    return f"{value:.6f}".rstrip("0").rstrip(".") if "e" in text else text


@dataclass
class ChangeTally:
    """A comparison's counts, fed one pair of outputs at a time: the fields that changed, the drift."""

    outputs: Outputs
    fields: list[str] = field(default_factory=list)  # the label first, then the schema's; others as seen
    rows: int = 0  # pairs compared
    rows_changed: int = 0  # rows where any field changed (by the rule)
    decisions_changed: int = 0  # rows where any decision changed
    changed: Counter[str] = field(default_factory=Counter)  # rows changed, per field
    drift: dict[str, Drift] = field(default_factory=dict)  # the numeric fields' differences

    def __post_init__(self) -> None:
        self.fields = self.fields or self.outputs.compared()
        self.drift = {name: Drift() for name in self.fields if self.compared_as(name) == NUMBER} | self.drift

    def compared_as(self, name: str) -> ComparedAs:
        """DECISION, NUMBER or OTHER_KIND; a field the schema does not name is compared as a whole value."""
        described = self.outputs.fields.get(name)
        return described.compared_as if described is not None else OTHER_KIND

    def decisions(self) -> list[str]:
        """The decision fields, the label first."""
        return [name for name in self.fields if self.compared_as(name) == DECISION]

    def add(self, first: Mapping[str, Any], second: Mapping[str, Any]) -> list[str]:
        """Count one row answered twice; returns the fields that changed on it."""
        self.rows += 1
        differing = differing_fields(self.fields, first, second, self.outputs)
        self.changed.update(differing)
        self.rows_changed += bool(differing)
        self.decisions_changed += any(self.compared_as(name) == DECISION for name in differing)
        for name, drift in self.drift.items():
            before, after = as_number(first.get(name)), as_number(second.get(name))
            if before is not None and after is not None:
                drift.add(abs(after - before), name in differing)
        return differing

    def tolerance_text(self, name: str) -> str:
        """A numeric field's tolerance in words."""
        return self.outputs.fields[name].tolerance_text()

    def headline(self, title: Callable[[str], str] = str) -> str:
        """The comparison in one sentence, decisions first: "label changed on 2 of 20 rows; confidence moved
        by median 0.03, 95th percentile 0.08, largest 0.12 (3 rows past its tolerance 0.05)."."""
        if not self.rows:
            return "No row was answered twice, so nothing was compared."
        parts = [self._decisions_text(title)] if self.decisions() else []
        moved = [name for name, drift in self.drift.items() if drift.count]
        parts += [self._drift_text(name, title(name)) for name in moved]
        others = [
            (title(name), self.changed[name])
            for name in self.fields
            if self.compared_as(name) == OTHER_KIND and self.changed[name]
        ]
        if others:
            (shown, count), rest = others[0], others[1:]
            parts.append(
                f"{shown} changed on {count:,} {_rows(count)}" + "".join(f", {t} on {n:,}" for t, n in rest)
            )
        text = "; ".join(parts)
        return text[:1].upper() + text[1:] + "."

    def _decisions_text(self, title: Callable[[str], str]) -> str:
        changed = [(name, self.changed[name]) for name in self.decisions() if self.changed[name]]
        if not changed:
            return f"no decision changed on the {self.rows:,} {_rows(self.rows)} compared"
        (name, count), rest = changed[0], changed[1:]
        text = f"{title(name)} changed on {count:,} of {self.rows:,} {_rows(self.rows)}"
        label = self.outputs.label
        if label is not None and label != name and label in self.decisions():
            text = f"{title(label)} the same on all {self.rows:,}, {text}"
        return text + "".join(f", {title(other)} on {n:,}" for other, n in rest)

    def _drift_text(self, name: str, shown: str) -> str:
        drift = self.drift[name]
        if not drift.largest:
            return f"{shown} did not move"
        median, p95 = drift.median or 0.0, drift.p95 or 0.0
        spread = f"median {figure(median)}, 95th percentile {figure(p95)}, largest {figure(drift.largest)}"
        if self.outputs.fields[name].tolerance == 0:
            return f"{shown} moved by {spread} (changed on {drift.past:,} {_rows(drift.past)})"
        past = f"{drift.past:,} {_rows(drift.past)} past its tolerance of {self.tolerance_text(name)}"
        return f"{shown} moved by {spread} ({past})"


def _rows(count: int) -> str:
    return "row" if count == 1 else "rows"
