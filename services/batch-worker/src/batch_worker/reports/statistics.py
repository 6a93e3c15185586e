"""What the HTML report shows, gathered row by row in bounded memory.

Every output field is summarised by its schema type, never by its name:

- categorical fields (enums, booleans, consts, and strings short and few enough to count):
  counts per flag set; compared, the agreement and a table of what became what;
- numeric fields: count, mean, min, quartiles, max per flag set and a histogram over the
  schema's `minimum` / `maximum` (else the data's range); compared, the median, 95th
  percentile and largest absolute difference, and the rows past the field's tolerance;
- lists, objects and free text: rows with a value, empty, none (and list sizes);
  compared, the rows where the value changed.

A job compared under a second flag set, or with a second version, has two variants of each
row, named by what differs (onepipe.platform.jobs.variants: "tfidf" and "minilm", or the versions:
"champion 1a2b3c4d5e6f"). Which fields changed on a row is the one rule of every comparison
(onepipe.platform.schema.changes.ChangeTally): decisions on any change, numbers past their
tolerance. The roles (`label`,
`confidence`, `review`, `reasons`, `known`) come from the schema's `x-role` marks; every role
is optional and the report shows less without it. The review list is ranked by need: flagged
rows first, then those with more reasons, then the least confident.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from batch_worker.reports.columns import truncate
from onepipe.platform.jobs.types import RowResult
from onepipe.platform.jobs.variants import VariantNames
from onepipe.platform.schema.changes import ChangeTally
from onepipe.platform.schema.outputs import JSON, OTHER, VALUE, CategoryCap, OutputField, Outputs
from onepipe.platform.schema.sample import Reservoir
from onepipe.platform.schema.values import CATEGORICAL, NUMERIC, as_number, show

REVIEW_ROWS: Final = 50
LISTED_ROWS: Final = 200
REASON_CHARS: Final = 1000
SHORT_TEXT: Final = 60  # a free string field whose values are all this short (and few) is categorical
HISTOGRAM_BINS: Final = 20
CHANGE_TEXT: Final = 60  # the characters of a value shown in "what changed"


# what a field is, for the report (how it is counted and compared): categorical, numeric, the
# shape of a JSON field (list, object, value), or free text
TEXT: Final = "text"


@dataclass
class Stats:
    """Count, minimum, mean and maximum of numbers, kept as running values."""

    count: int = 0
    total: float = 0.0
    low: float = math.inf
    high: float = -math.inf

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.low = min(self.low, value)
        self.high = max(self.high, value)

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None


@dataclass
class Numbers(Stats, Reservoir):
    """A numeric field's running values, and the values themselves (a Reservoir: up to SAMPLE_SIZE,
    then a uniform sample) for quantiles and histograms."""

    def add(self, value: float) -> None:
        super().add(value)
        self.keep(value, self.count)

    @property
    def sampled(self) -> bool:
        return self.count > len(self.values)


@dataclass
class Categorical:
    """Counts of one categorical field's values, per flag set.

    Values the schema does not list are told apart up to a cap (onepipe.platform.schema.outputs.CategoryCap);
    later ones are pooled as OTHER, so a free-text field keeps bounded counts.
    """

    name: str
    categories: list[str] | None
    counts: dict[str, Counter[str]] = field(default_factory=dict)
    longest: int = 0

    def __post_init__(self) -> None:
        self.cap = CategoryCap(listed=self.categories or ())

    def key(self, value: Any) -> str:
        """The value's category: its text, or OTHER once the cap is reached."""
        key = show(value)
        self.longest = max(self.longest, len(key))
        return self.cap.key(key)

    def add(self, variant: str, value: Any) -> str:
        key = self.key(value)
        self.counts.setdefault(variant, Counter())[key] += 1
        return key

    @property
    def overflowed(self) -> bool:
        return any(OTHER in counter for counter in self.counts.values())

    def order(self) -> list[str]:
        seen: Counter[str] = Counter()
        for counter in self.counts.values():
            seen.update(counter)
        known = list(self.categories or [])
        rest = sorted((c for c in seen if c not in known and c != OTHER), key=lambda c: (-seen[c], c))
        return known + rest + ([OTHER] if OTHER in seen else [])


@dataclass
class Shapes:
    """Per flag set, how many rows hold a value of a list, object or free-text field, how many are empty."""

    present: Counter[str] = field(default_factory=Counter)
    empty: Counter[str] = field(default_factory=Counter)
    missing: Counter[str] = field(default_factory=Counter)
    items: dict[str, Stats] = field(default_factory=dict)  # the sizes of lists

    def add(self, variant: str, value: Any) -> None:
        if value is None:
            self.missing[variant] += 1
            return
        self.present[variant] += 1
        if isinstance(value, str | list | dict) and not value:
            self.empty[variant] += 1
        if isinstance(value, list):
            self.items.setdefault(variant, Stats()).add(len(value))


@dataclass
class Change:
    """One categorical field under the two variants, over the rows where both gave an output."""

    # (first variant's category, second variant's category) of every compared row
    pairs: Counter[tuple[str, str]] = field(default_factory=Counter)


@dataclass
class Summary:
    """Everything the HTML report shows, gathered row by row in bounded memory."""

    outputs: Outputs
    input_columns: list[str]
    comparing: bool
    named: VariantNames = field(default_factory=lambda: VariantNames("first", "second"))
    rows: int = 0
    failed: int = 0
    failed_rows: list[dict[str, Any]] = field(default_factory=list)
    flagged: int = 0
    review_heap: list[tuple[tuple[int, int, float, int], int, dict[str, Any]]] = field(default_factory=list)
    compared: int = 0
    agreed: int = 0
    compare_failed: int = 0
    changed: list[dict[str, Any]] = field(default_factory=list)
    known: int = 0  # rows with an output whose input the pipeline already knows (the `known` role)
    reasons: Counter[str] = field(default_factory=Counter)  # rows flagged for review, by reason

    def __post_init__(self) -> None:
        self.columns = self.outputs.columns()
        self.label_field = self.outputs.label
        self.confidence_field = self.outputs.confidence
        self.review_field = self.outputs.review
        self.reasons_field = self.outputs.reasons
        self.known_field = self.outputs.known
        self.variants = [self.named.first, self.named.second] if self.comparing else [self.named.first]
        self.categoricals: dict[str, Categorical] = {}
        self.numeric: dict[str, dict[str, Numbers]] = {}
        self.shapes: dict[str, Shapes] = {}
        self.kinds: dict[str, str] = {}
        for described in self.outputs.fields.values():
            self._track(described)
        if self.label_field in self.categoricals:  # the verdict comes first
            self.categoricals = {self.label_field: self.categoricals[self.label_field]} | self.categoricals
        if self.confidence_field in self.numeric:  # and its confidence
            self.numeric = {self.confidence_field: self.numeric[self.confidence_field]} | self.numeric
        self.changes = {name: Change() for name in self.categoricals}
        self.tally = ChangeTally(self.outputs, [name for name, _ in self.columns])

    @property
    def rows_changed(self) -> int:
        """Compared rows where any field changed (decisions on any change, numbers past their tolerance)."""
        return self.tally.rows_changed

    def _track(self, described: OutputField) -> None:
        """Count a field as what it is: categories, numbers, free text, or a JSON shape."""
        name, kind, categories = described.name, described.kind, described.categories
        if categories is not None or name == self.label_field or kind == "string":
            # a free string is counted too; whether it reads as categories is known at the end
            self.categoricals[name] = Categorical(name, categories)
        if described.numeric:
            self.numeric[name] = {variant: Numbers() for variant in self.variants}
            self.kinds[name] = NUMERIC
        elif categories is not None or name == self.label_field:
            self.kinds[name] = CATEGORICAL
        elif kind == "string":
            self.kinds[name] = TEXT  # until finish() finds its values few and short
            self.shapes[name] = Shapes()
        else:  # lists, objects, or values of several shapes
            self.kinds[name] = described.shape if kind == JSON else VALUE
            self.shapes[name] = Shapes()

    def shown_inputs(self, result: RowResult) -> list[str]:
        """A row's input cells as the report's tables show them."""
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
            self._count(self.named.first, output)
            self._add_review(result, output)
            self.known += is_known(self._role_value(output, self.known_field))
        if self.comparing:
            if result.compare_output is not None:
                self._count(self.named.second, result.compare_output)
            self._add_comparison(result)

    def _count(self, variant: str, output: Mapping[str, Any]) -> None:
        for name, categorical in self.categoricals.items():
            categorical.add(variant, output.get(name))
        for name, numbers in self.numeric.items():
            number = as_number(output.get(name))
            if number is not None:
                numbers[variant].add(number)
        for name, shapes in self.shapes.items():
            shapes.add(variant, output.get(name))

    def _add_review(self, result: RowResult, output: Mapping[str, Any]) -> None:
        confidence = as_number(self._role_value(output, self.confidence_field))
        flagged = self._role_value(output, self.review_field) is True
        self.flagged += flagged
        reasons = reason_texts(self._role_value(output, self.reasons_field))
        if flagged or self.review_field is None:
            self.reasons.update(reasons)
        if not flagged and confidence is None and not reasons:
            return
        # ranked by need: flagged rows first, then those with more reasons, then the least
        # confident; the row number breaks ties
        key = (0 if flagged else 1, -len(reasons), math.inf if confidence is None else confidence, result.row)
        inverse = (-key[0], -key[1], -key[2], -key[3])
        if len(self.review_heap) < REVIEW_ROWS or inverse > self.review_heap[0][0]:
            entry = {
                "row": result.row,
                "inputs": self.shown_inputs(result),
                "verdict": show(self._role_value(output, self.label_field)),
                "certainty": confidence,
                "flagged": flagged,
                "reasons": [truncate(reason, REASON_CHARS) for reason in reasons],
            }
            heapq.heappush(self.review_heap, (inverse, self.rows, entry))
            if len(self.review_heap) > REVIEW_ROWS:
                heapq.heappop(self.review_heap)

    def _add_comparison(self, result: RowResult) -> None:
        first, second = result.output, result.compare_output
        if first is None or second is None:
            self.compare_failed += first is not None or second is not None
            return
        self.compared += 1
        if self.label_field is not None:
            same = show(first.get(self.label_field)) == show(second.get(self.label_field))
        else:  # without a verdict field, a row agrees when its whole output is the same
            same = first == second
        self.agreed += same
        for name, categorical in self.categoricals.items():
            pair = categorical.key(first.get(name)), categorical.key(second.get(name))
            self.changes[name].pairs[pair] += 1
        fields = self.tally.add(first, second)
        if fields and len(self.changed) < LISTED_ROWS:
            self.changed.append(
                {
                    "row": result.row,
                    "inputs": self.shown_inputs(result),
                    "changes": [
                        f"{name}: {truncate(show(first.get(name)), CHANGE_TEXT)}"
                        f" \u2192 {truncate(show(second.get(name)), CHANGE_TEXT)}"
                        for name in fields
                    ],
                    "verdict": show(self._role_value(first, self.label_field)),
                    "certainty": as_number(self._role_value(first, self.confidence_field)),
                    "compare_verdict": show(self._role_value(second, self.label_field)),
                    "compare_certainty": as_number(self._role_value(second, self.confidence_field)),
                }
            )

    def finish(self) -> None:
        """Decide what the free strings are: categories when their values were few and short."""
        for name, kind in list(self.kinds.items()):
            categorical = self.categoricals.get(name)
            if kind != TEXT or categorical is None:
                continue
            if not categorical.overflowed and categorical.longest <= SHORT_TEXT:
                self.kinds[name] = CATEGORICAL
                del self.shapes[name]
            else:
                del self.categoricals[name]

    def review_rows(self) -> list[dict[str, Any]]:
        return [entry for _, _, entry in sorted(self.review_heap, reverse=True)]


def is_known(value: Any) -> bool:
    """Whether a `known` field's value says the input is known: set, and not false or empty."""
    return value is not None and value is not False and value != "" and value != [] and value != {}


def reason_texts(value: Any) -> list[str]:
    """A `reasons` field's value as a list of texts (one text, a list of texts, or nothing)."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [show(item) for item in value if item is not None and item != ""]
    return [show(value)]


def histogram_range(
    values: Iterable[float], bounds: tuple[float | None, float | None]
) -> tuple[float, float]:
    """The range to bin a field's values over: its schema's `minimum` / `maximum`, else the data's."""
    low, high = bounds
    if low is None or high is None:
        seen = list(values)
        low = min(seen) if low is None else low
        high = max(seen) if high is None else high
    return (low, high) if high > low else (low, low + 1.0)


def bin_counts(values: Iterable[float], low: float, high: float, count: int = HISTOGRAM_BINS) -> list[int]:
    """How many values fall in each of `count` equal bins from low to high (the end bins take the rest)."""
    bins = [0] * count
    for value in values:
        bins[min(max(int((value - low) / (high - low) * count), 0), count - 1)] += 1
    return bins


@dataclass
class Histogram:
    """One numeric field's values binned, per flag set, over one range for both."""

    low: float
    high: float
    bins: dict[str, list[int]]
    source: str  # where the range came from: "schema", "data", or "schema and data" (one bound each)
    per_value: bool = False  # integers over a short range: a bin per value, centred on it
    constant: float | None = None  # every value the same (and no range in the schema): nothing to bin


def histogram_of(by_variant: Mapping[str, Numbers], described: OutputField) -> Histogram | None:
    """A numeric field's histogram over its schema's range, else the data's; None without values."""
    extremes = [x for numbers in by_variant.values() if numbers.count for x in (numbers.low, numbers.high)]
    if not extremes:
        return None
    declared = [bound is not None for bound in described.bounds]
    source = "schema" if all(declared) else "schema and data" if any(declared) else "data"
    low, high = histogram_range(extremes, described.bounds)
    if not all(declared) and min(extremes) == max(extremes):
        return Histogram(low, high, {}, source, constant=extremes[0])
    count = HISTOGRAM_BINS
    per_value = (
        described.kind == "integer" and low.is_integer() and high.is_integer() and high - low < HISTOGRAM_BINS
    )
    if per_value:
        count, low, high = int(high - low) + 1, low - 0.5, high + 0.5
    bins = {variant: bin_counts(numbers.values, low, high, count) for variant, numbers in by_variant.items()}
    return Histogram(low, high, bins, source, per_value)
