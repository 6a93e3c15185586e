"""What the HTML report shows, gathered row by row in bounded memory.

The fields summarised come from the output schema, and the roles (`label`, `confidence`,
`review`) from its `x-role` marks; every role is optional and the report shows less
without it.
"""

from __future__ import annotations

import heapq
import math
from array import array
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from batch_worker.reports.columns import schema_alternatives, schema_categories, show, truncate
from onepipe.jobs import RowResult
from onepipe.schemas import ROLE_CONFIDENCE, ROLE_LABEL, ROLE_REVIEW, output_roles, resolve

REVIEW_ROWS: Final = 50
LISTED_ROWS: Final = 200
REASON_CHARS: Final = 1000
MAX_CATEGORIES: Final = 50
HISTOGRAM_BINS: Final = 20
OTHER: Final = "(other)"


def as_number(value: Any) -> float | None:
    """A finite number as a float; anything else (booleans, text, NaN) as None."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


@dataclass
class Stats:
    """Count, minimum, mean and maximum of a numeric output field, kept as running values."""

    count: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)


@dataclass
class Categorical:
    """Counts of one categorical field's values, per variant; unseen values beyond a cap are pooled."""

    name: str
    categories: list[str] | None
    counts: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, variant: str, value: Any) -> None:
        counter = self.counts.setdefault(variant, Counter())
        key = show(value)
        # a free-text label could have a value per row: keep the counts bounded
        if self.categories is None and key not in counter and len(counter) >= MAX_CATEGORIES:
            key = OTHER
        counter[key] += 1

    def order(self) -> list[str]:
        seen: Counter[str] = Counter()
        for counter in self.counts.values():
            seen.update(counter)
        known = list(self.categories or [])
        rest = sorted((c for c in seen if c not in known and c != OTHER), key=lambda c: (-seen[c], c))
        return known + rest + ([OTHER] if OTHER in seen else [])


@dataclass
class Summary:
    """Everything the HTML report shows, gathered row by row in bounded memory."""

    columns: list[tuple[str, str]]
    schema: dict[str, Any]
    input_columns: list[str]
    comparing: bool
    rows: int = 0
    failed: int = 0
    failed_rows: list[dict[str, Any]] = field(default_factory=list)
    # every confidence seen (8 bytes a row): the histogram's range may come from the data
    confidences: array[float] = field(default_factory=lambda: array("d"))
    flagged: int = 0
    review_heap: list[tuple[tuple[int, float, int], int, dict[str, Any]]] = field(default_factory=list)
    compared: int = 0
    agreed: int = 0
    compare_failed: int = 0
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)
    rows_changed: int = 0
    field_changes: Counter[str] = field(default_factory=Counter)
    changed: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.roles = output_roles(self.schema)
        properties = self.schema.get("properties", {})
        self.label_field = self.roles.get(ROLE_LABEL)
        self.confidence_field = self.roles.get(ROLE_CONFIDENCE)
        self.review_field = self.roles.get(ROLE_REVIEW)
        self.categoricals: dict[str, Categorical] = {}
        for name, _kind in self.columns:
            categories = schema_categories(properties[name], self.schema)
            if categories is not None or name == self.label_field:
                self.categoricals[name] = Categorical(name, categories)
        if self.label_field in self.categoricals:  # the verdict's chart comes first
            self.categoricals = {self.label_field: self.categoricals[self.label_field]} | self.categoricals
        self.numeric = {name: Stats() for name, kind in self.columns if kind in ("number", "integer")}
        self.numeric_compare = {name: Stats() for name in self.numeric}
        self.numeric_difference = {name: Stats() for name in self.numeric}  # of |flags - compare|

    def _inputs(self, result: RowResult) -> list[str]:
        return [truncate(show(result.input.get(column))) for column in self.input_columns]

    def _role_value(self, output: Mapping[str, Any] | None, role_field: str | None) -> Any:
        return None if output is None or role_field is None else output.get(role_field)

    def add(self, result: RowResult) -> None:
        self.rows += 1
        output = result.output
        if result.error is not None or output is None:
            self.failed += 1
            if len(self.failed_rows) < LISTED_ROWS:
                reason = result.error if result.error is not None else "no output"
                self.failed_rows.append({"row": result.row, "reason": truncate(reason, REASON_CHARS)})
        if output is not None:
            self._add_output(result, output)
        if self.comparing:
            self._add_comparison(result)

    def _add_output(self, result: RowResult, output: Mapping[str, Any]) -> None:
        for name, categorical in self.categoricals.items():
            categorical.add("flags", output.get(name))
        for name, stats in self.numeric.items():
            number = as_number(output.get(name))
            if number is not None:
                stats.add(number)
        confidence = as_number(self._role_value(output, self.confidence_field))
        if confidence is not None:
            self.confidences.append(confidence)
        flagged = self._role_value(output, self.review_field) is True
        self.flagged += flagged
        if not flagged and confidence is None:
            return
        # flagged rows first, then the least confident; the row number breaks ties
        key = (0 if flagged else 1, math.inf if confidence is None else confidence, result.row)
        inverse = (-key[0], -key[1], -key[2])
        if len(self.review_heap) < REVIEW_ROWS or inverse > self.review_heap[0][0]:
            entry = {
                "row": result.row,
                "inputs": self._inputs(result),
                "verdict": show(self._role_value(output, self.label_field)),
                "certainty": confidence,
                "flagged": flagged,
            }
            heapq.heappush(self.review_heap, (inverse, self.rows, entry))
            if len(self.review_heap) > REVIEW_ROWS:
                heapq.heappop(self.review_heap)

    def _add_comparison(self, result: RowResult) -> None:
        first, second = result.output, result.compare_output
        if second is not None:
            for name, categorical in self.categoricals.items():
                categorical.add("compare flags", second.get(name))
            for name, stats in self.numeric_compare.items():
                number = as_number(second.get(name))
                if number is not None:
                    stats.add(number)
        if first is None or second is None:
            self.compare_failed += first is not None or second is not None
            return
        self.compared += 1
        if self.label_field is not None:
            a, b = show(first.get(self.label_field)), show(second.get(self.label_field))
            self.confusion[(a, b)] += 1
            same = a == b
        else:  # without a verdict field, a row agrees when its whole output is the same
            same = first == second
        self.agreed += same
        for name, stats in self.numeric_difference.items():
            a_number, b_number = as_number(first.get(name)), as_number(second.get(name))
            if a_number is not None and b_number is not None:
                stats.add(abs(a_number - b_number))
        # a row changed when any output field changed, whatever its type
        fields = [name for name, _ in self.columns if first.get(name) != second.get(name)]
        self.field_changes.update(fields)
        self.rows_changed += bool(fields)
        if fields and len(self.changed) < LISTED_ROWS:
            self.changed.append(
                {
                    "row": result.row,
                    "inputs": self._inputs(result),
                    "fields": ", ".join(fields),
                    "verdict": show(self._role_value(first, self.label_field)),
                    "certainty": as_number(self._role_value(first, self.confidence_field)),
                    "compare_verdict": show(self._role_value(second, self.label_field)),
                    "compare_certainty": as_number(self._role_value(second, self.confidence_field)),
                }
            )

    def review_rows(self) -> list[dict[str, Any]]:
        return [entry for _, _, entry in sorted(self.review_heap, reverse=True)]


def histogram_range(
    values: array[float], schema: Mapping[str, Any], root: Mapping[str, Any]
) -> tuple[float, float]:
    """The range to bin a field's values over: its schema's `minimum` / `maximum`, else the data's."""
    low = high = None
    for alternative in [resolve(schema, root), *schema_alternatives(schema, root)]:
        low = low if low is not None else as_number(alternative.get("minimum"))
        high = high if high is not None else as_number(alternative.get("maximum"))
    low = min(values) if low is None else low
    high = max(values) if high is None else high
    return (low, high) if high > low else (low, low + 1.0)


def bin_counts(values: array[float], low: float, high: float) -> list[int]:
    bins = [0] * HISTOGRAM_BINS
    for value in values:
        bins[min(max(int((value - low) / (high - low) * HISTOGRAM_BINS), 0), HISTOGRAM_BINS - 1)] += 1
    return bins
