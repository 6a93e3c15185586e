"""A finished job's reports: HTML for people; CSV, JSONL and Parquet for machines.

Nothing here names a pipeline's fields. The columns come from the output JSON Schema,
and the fields the HTML report summarises come from the schema's `x-role` marks
(`label`, `confidence`, `review`); every role is optional and the report shows less
without it. Rows are streamed once: machine formats are written as they arrive and
the HTML report keeps only bounded aggregates.
"""

from __future__ import annotations

import csv
import heapq
import io
import json
import math
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO, Any, Final

import altair as alt
import jinja2
import pyarrow as pa
import pyarrow.parquet as pq
import vl_convert
from markupsafe import Markup

from onepipe import PipelineInfo
from onepipe.jobs import REPORT_FORMATS, JobMeta, RowResult, utc_now
from onepipe.schemas import ROLE_CONFIDENCE, ROLE_LABEL, ROLE_REVIEW, output_roles, resolve

# The contract's role names (docs/pipeline-contract.md, "Output roles"), not field names.

BATCH_ROWS: Final = 1000
REVIEW_ROWS: Final = 50
LISTED_ROWS: Final = 200
TRUNCATE_AT: Final = 200
REASON_CHARS: Final = 1000
MAX_CATEGORIES: Final = 50
HISTOGRAM_BINS: Final = 20

SCALAR_KINDS: Final = ("string", "number", "integer", "boolean")
ARROW_TYPES: Final[Mapping[str, pa.DataType]] = {
    "string": pa.string(),
    "number": pa.float64(),
    "integer": pa.int64(),
    "boolean": pa.bool_(),
    "json": pa.string(),
}
OTHER: Final = "(other)"
NONE: Final = "(none)"
MISSING: Final = "\u2013"  # an en dash: nothing to show

# -- the output schema -----------------------------------------------------------------


def _alternatives(schema: Mapping[str, Any], root: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The non-null shapes a value of this schema can take."""
    schema = resolve(schema, root)
    for key in ("anyOf", "oneOf"):
        if isinstance(schema.get(key), list):
            return [option for member in schema[key] for option in _alternatives(member, root)]
    kind = schema.get("type")
    if isinstance(kind, list):
        return [{**schema, "type": item} for item in kind if item != "null"]
    if kind == "null" or ("const" in schema and schema["const"] is None):
        return []
    if isinstance(schema.get("enum"), list):
        values = [v for v in schema["enum"] if v is not None]
        return [{**schema, "enum": values}] if values else []
    return [schema]


def _value_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    return "string" if isinstance(value, str) else "json"


def _alternative_kind(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if kind in SCALAR_KINDS:
        return str(kind)
    if kind is None:  # an untyped enum or const: its values say what it is
        values = schema.get("enum", [schema["const"]] if "const" in schema else [])
        kinds = {_value_kind(v) for v in values}
        if len(kinds) == 1:
            return kinds.pop()
    return "json"


def _field_kind(schema: Mapping[str, Any], root: Mapping[str, Any]) -> str:
    kinds = {_alternative_kind(option) for option in _alternatives(schema, root)}
    if kinds == {"integer", "number"}:
        return "number"
    if len(kinds) == 1 and "json" not in kinds:
        return kinds.pop()
    return "json"


def _categories(schema: Mapping[str, Any], root: Mapping[str, Any]) -> list[Any] | None:
    """The values a categorical field can take (enums and booleans), else None."""
    alternatives = _alternatives(schema, root)
    if not alternatives:
        return None
    values: list[Any] = []
    for alt_schema in alternatives:
        if alt_schema.get("type") == "boolean" and "enum" not in alt_schema:
            values.extend([True, False])
        elif isinstance(alt_schema.get("enum"), list):
            values.extend(alt_schema["enum"])
        elif "const" in alt_schema:
            values.append(alt_schema["const"])
        else:
            return None
    return list(dict.fromkeys(_show(v) for v in values))


def output_columns(output_schema: dict[str, Any]) -> list[tuple[str, str]]:
    """The output fields in schema order, each with its kind: string, number, integer, boolean or json."""
    properties = output_schema.get("properties", {})
    return [(name, _field_kind(prop, output_schema)) for name, prop in properties.items()]


# -- flat records ----------------------------------------------------------------------


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _input_key(column: str) -> str:
    """The record key of an input column; prefixed only when it would clash with the report's own."""
    if column in ("row", "error") or column.startswith(("output.", "compare.", "input.")):
        return f"input.{column}"
    return column


def _output_values(
    output: Mapping[str, Any] | None, columns: list[tuple[str, str]], prefix: str
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, kind in columns:
        value = None if output is None else output.get(name)
        values[f"{prefix}.{name}"] = _json_text(value) if kind == "json" and value is not None else value
    return values


def flatten(
    result: RowResult, columns: list[tuple[str, str]], input_columns: list[str], comparing: bool
) -> dict[str, Any]:
    """One flat record: row, input columns, `output.<field>`, `compare.<field>` (when comparing), error."""
    record: dict[str, Any] = {"row": result.row}
    for column in input_columns:
        value = result.input.get(column)
        scalar = value is None or isinstance(value, str | int | float | bool)
        record[_input_key(column)] = value if scalar else _json_text(value)
    record.update(_output_values(result.output, columns, "output"))
    if comparing:
        record.update(_output_values(result.compare_output, columns, "compare"))
    record["error"] = result.error
    return record


def _arrow_schema(columns: list[tuple[str, str]], input_columns: list[str], comparing: bool) -> pa.Schema:
    fields = [pa.field("row", pa.int64(), nullable=False)]
    fields += [pa.field(_input_key(column), pa.string()) for column in input_columns]
    prefixes = ("output", "compare") if comparing else ("output",)
    fields += [pa.field(f"{p}.{name}", ARROW_TYPES[kind]) for p in prefixes for name, kind in columns]
    fields.append(pa.field("error", pa.string()))
    return pa.schema(fields)


# A cell starting with one of these runs as a formula when the CSV is opened in a spreadsheet.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value  # shown as text (OWASP's advice); JSONL and Parquet keep the original
    return value


def _as_text(value: Any) -> str | None:
    """An input value as Parquet stores it: strings as they are, anything else as JSON text."""
    if value is None or isinstance(value, str):
        return value
    return _json_text(value)


# -- bounded aggregates for the HTML report --------------------------------------------


def _show(value: Any) -> str:
    """A value as the report shows it in a table cell or a chart's category."""
    if value is None:
        return NONE
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return _json_text(value)


def _truncate(text: str, limit: int = TRUNCATE_AT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


@dataclass
class _Stats:
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
class _Categorical:
    """Counts of one categorical field's values, per variant; unseen values beyond a cap are pooled."""

    name: str
    categories: list[str] | None
    counts: dict[str, Counter[str]] = field(default_factory=dict)

    def add(self, variant: str, value: Any) -> None:
        counter = self.counts.setdefault(variant, Counter())
        key = _show(value)
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
class _Summary:
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
        self.categoricals: dict[str, _Categorical] = {}
        for name, _kind in self.columns:
            categories = _categories(properties[name], self.schema)
            if categories is not None or name == self.label_field:
                self.categoricals[name] = _Categorical(name, categories)
        if self.label_field in self.categoricals:  # the verdict's chart comes first
            self.categoricals = {self.label_field: self.categoricals[self.label_field]} | self.categoricals
        self.numeric = {name: _Stats() for name, kind in self.columns if kind in ("number", "integer")}
        self.numeric_compare = {name: _Stats() for name in self.numeric}
        self.numeric_difference = {name: _Stats() for name in self.numeric}  # of |flags - compare|

    def _inputs(self, result: RowResult) -> list[str]:
        return [_truncate(_show(result.input.get(column))) for column in self.input_columns]

    def _role_value(self, output: Mapping[str, Any] | None, role_field: str | None) -> Any:
        return None if output is None or role_field is None else output.get(role_field)

    def add(self, result: RowResult) -> None:
        self.rows += 1
        output = result.output
        if result.error is not None or output is None:
            self.failed += 1
            if len(self.failed_rows) < LISTED_ROWS:
                reason = result.error if result.error is not None else "no output"
                self.failed_rows.append({"row": result.row, "reason": _truncate(reason, REASON_CHARS)})
        if output is not None:
            self._add_output(result, output)
        if self.comparing:
            self._add_comparison(result)

    def _add_output(self, result: RowResult, output: Mapping[str, Any]) -> None:
        for name, categorical in self.categoricals.items():
            categorical.add("flags", output.get(name))
        for name, stats in self.numeric.items():
            number = _number(output.get(name))
            if number is not None:
                stats.add(number)
        confidence = _number(self._role_value(output, self.confidence_field))
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
                "verdict": _show(self._role_value(output, self.label_field)),
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
                number = _number(second.get(name))
                if number is not None:
                    stats.add(number)
        if first is None or second is None:
            self.compare_failed += first is not None or second is not None
            return
        self.compared += 1
        if self.label_field is not None:
            a, b = _show(first.get(self.label_field)), _show(second.get(self.label_field))
            self.confusion[(a, b)] += 1
            same = a == b
        else:  # without a verdict field, a row agrees when its whole output is the same
            same = first == second
        self.agreed += same
        for name, stats in self.numeric_difference.items():
            a_number, b_number = _number(first.get(name)), _number(second.get(name))
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
                    "verdict": _show(self._role_value(first, self.label_field)),
                    "certainty": _number(self._role_value(first, self.confidence_field)),
                    "compare_verdict": _show(self._role_value(second, self.label_field)),
                    "compare_certainty": _number(self._role_value(second, self.confidence_field)),
                }
            )

    def review_rows(self) -> list[dict[str, Any]]:
        return [entry for _, _, entry in sorted(self.review_heap, reverse=True)]


# -- charts ----------------------------------------------------------------------------


def _svg(chart: Any) -> str:
    """A chart as inline SVG: no script, no network."""
    return str(vl_convert.vegalite_to_svg(chart.to_dict()))


def _bar_chart(categorical: _Categorical, comparing: bool) -> str:
    order = categorical.order()
    variants = ["flags", "compare flags"] if comparing else ["flags"]
    values = [
        {"category": value, "rows": categorical.counts.get(variant, Counter())[value], "variant": variant}
        for variant in variants
        for value in order
    ]
    base = alt.Chart({"values": values}).encode(
        y=alt.Y("category:N", sort=order, title=None, axis=alt.Axis(labelLimit=220)),
        x=alt.X("rows:Q", title="rows"),
    )
    bars = base.mark_bar(color="#4c78a8")
    labels = base.mark_text(align="left", dx=3, fontSize=10).encode(text="rows:Q")
    if comparing:
        bars = bars.encode(
            color=alt.Color("variant:N", sort=variants, title=None, legend=alt.Legend(orient="bottom")),
            yOffset=alt.YOffset("variant:N", sort=variants),
        )
        labels = labels.encode(yOffset=alt.YOffset("variant:N", sort=variants))
    height = max(60, 22 * len(order) * len(variants))
    chart = alt.layer(bars, labels).properties(title=categorical.name, width=360, height=height)
    return _svg(chart)


def histogram_range(
    values: array[float], schema: Mapping[str, Any], root: Mapping[str, Any]
) -> tuple[float, float]:
    """The range to bin a field's values over: its schema's `minimum` / `maximum`, else the data's."""
    low = high = None
    for alternative in [resolve(schema, root), *_alternatives(schema, root)]:
        low = low if low is not None else _number(alternative.get("minimum"))
        high = high if high is not None else _number(alternative.get("maximum"))
    low = min(values) if low is None else low
    high = max(values) if high is None else high
    return (low, high) if high > low else (low, low + 1.0)


def _bins(values: array[float], low: float, high: float) -> list[int]:
    bins = [0] * HISTOGRAM_BINS
    for value in values:
        bins[min(max(int((value - low) / (high - low) * HISTOGRAM_BINS), 0), HISTOGRAM_BINS - 1)] += 1
    return bins


def _histogram(bins: list[int], low: float, high: float, title: str) -> str:
    width = (high - low) / len(bins)
    values = [
        {"start": round(low + i * width, 6), "end": round(low + (i + 1) * width, 6), "rows": n}
        for i, n in enumerate(bins)
    ]
    chart = (
        alt.Chart({"values": values})
        .mark_bar(color="#4c78a8", stroke="white")
        .encode(
            x=alt.X("start:Q", title=title, scale=alt.Scale(domain=[low, high])),
            x2="end:Q",
            # with x2 set, a bar needs its baseline spelled out or it is drawn as a thin tick
            y=alt.Y("rows:Q", title="rows", scale=alt.Scale(zero=True)),
            y2=alt.datum(0),
        )
        .properties(width=480, height=200)
    )
    return _svg(chart)


# -- formatting ------------------------------------------------------------------------


def _count(value: int | None) -> str:
    return MISSING if value is None else f"{value:,}"


def _percent(part: int, whole: int) -> str:
    return MISSING if whole == 0 else f"{100 * part / whole:.1f}%"


def _decimal(value: float | None) -> str:
    if value is None:
        return MISSING
    if value != 0 and (abs(value) >= 1e6 or abs(value) < 1e-3):
        return f"{value:.3g}"
    return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) >= 1 else f"{value:.3f}"


def _time(value: datetime | None) -> str:
    return MISSING if value is None else value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return MISSING
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min {secs} s" if hours else f"{minutes} min {secs} s"


def _flags(flags: Mapping[str, Any] | None) -> str:
    if not flags:
        return "defaults"
    return ", ".join(
        f"{key}={value if isinstance(value, str) else _json_text(value)}"
        for key, value in sorted(flags.items())
    )


# -- the HTML report -------------------------------------------------------------------

_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Report: {{ ran.file }}</title>
<style>
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; margin: 0 auto;
       max-width: 1100px; padding: 1.5rem; }
h1 { font-size: 1.5rem; margin-bottom: 0.2rem; }
h2 { font-size: 1.2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; margin-top: 2rem; }
h3 { font-size: 1rem; margin-bottom: 0.3rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f4f6f8; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.wrap { max-width: 28rem; overflow-wrap: anywhere; }
table.facts th { width: 12rem; }
.muted { color: #666; }
.flag { color: #b35900; font-weight: 600; }
.charts { display: flex; flex-wrap: wrap; gap: 1.5rem; align-items: flex-start; }
.charts svg { max-width: 100%; height: auto; }
.big { font-size: 1.4rem; font-weight: 600; }
</style>
</head>
<body>
<h1>Report: {{ ran.file }}</h1>
<p class="muted">Pipeline {{ ran.pipeline }} {{ ran.version }} &middot; job {{ ran.job }}</p>

<section id="ran">
<h2>What ran</h2>
<table class="facts">
<tr><th>File</th><td>{{ ran.file }} ({{ ran.format }})</td></tr>
<tr><th>State</th><td>{{ ran.state }}</td></tr>
<tr><th>Submitted by</th><td>{{ ran.owner }}</td></tr>
<tr><th>Rows in file</th><td class="num">{{ ran.rows_total }}</td></tr>
<tr><th>Rows in report</th><td class="num">{{ ran.rows }}</td></tr>
<tr><th>Rows failed</th><td class="num">{{ ran.failed }} ({{ ran.failed_share }})</td></tr>
<tr><th>Pipeline</th><td>{{ ran.pipeline }} {{ ran.version }}</td></tr>
<tr><th>Flags</th><td>{{ ran.flags }}</td></tr>
{% if ran.compare_flags is not none %}
<tr><th>Compare flags</th><td>{{ ran.compare_flags }}</td></tr>
{% endif %}
<tr><th>Started</th><td>{{ ran.started }}</td></tr>
<tr><th>{{ ran.finished_label }}</th><td>{{ ran.finished }}</td></tr>
<tr><th>Duration</th><td>{{ ran.duration }}</td></tr>
<tr><th>Throughput</th><td>{{ ran.throughput }}</td></tr>
</table>
</section>

<section id="distribution">
<h2>Distribution of outputs</h2>
{% if charts %}
<div class="charts">{% for svg in charts %}<figure>{{ svg }}</figure>{% endfor %}</div>
{% else %}
<p class="muted">The output has no categorical fields (enums or booleans) to count.</p>
{% endif %}
{% if numeric %}
<h3>Numeric outputs</h3>
<table>
<tr><th>field</th>{% if comparison %}<th>variant</th>{% endif %}<th class="num">rows</th>
<th class="num">min</th><th class="num">mean</th><th class="num">max</th></tr>
{% for item in numeric %}<tr><td>{{ item.name }}</td>{% if comparison %}<td>{{ item.variant }}</td>{% endif %}
<td class="num">{{ item.count }}</td>
<td class="num">{{ item.low }}</td><td class="num">{{ item.mean }}</td>
<td class="num">{{ item.high }}</td></tr>
{% endfor %}
</table>
{% endif %}
</section>

{% if confidence %}
<section id="histogram">
<h2>Confidence</h2>
<p>{{ confidence.field }} of {{ confidence.rows }} rows, from {{ confidence.low }} to {{ confidence.high }}
in bins of {{ confidence.width }}.</p>
<figure>{{ confidence.svg }}</figure>
</section>
{% endif %}

<section id="review">
<h2>Rows most in need of review</h2>
{% if review is none %}
<p class="muted">The output marks no review or confidence field, so no rows are singled out.</p>
{% else %}
<p>{% if review.field %}<span class="big">{{ review.flagged }}</span> rows flagged for review
({{ review.flagged_share }}).{% endif %}
{% if review.rows %}Below: {{ review.shown }} rows{% if review.field %}, flagged ones first{% endif %}{%
 if review.certainty_field %}, by lowest {{ review.certainty_field }}{% else %}, in row order{% endif %}.{%
 else %}No rows to show.{% endif %}</p>
{% if review.rows %}
<table>
<tr><th class="num">row</th>{% for column in input_columns %}<th>{{ column }}</th>{% endfor %}
{% if review.verdict_field %}<th>{{ review.verdict_field }}</th>{% endif %}
{% if review.certainty_field %}<th class="num">{{ review.certainty_field }}</th>{% endif %}
{% if review.field %}<th>{{ review.field }}</th>{% endif %}</tr>
{% for item in review.rows %}<tr><td class="num">{{ item.row }}</td>
{% for value in item.inputs %}<td class="wrap">{{ value }}</td>{% endfor %}
{% if review.verdict_field %}<td>{{ item.verdict }}</td>{% endif %}
{% if review.certainty_field %}<td class="num">{{ item.certainty }}</td>{% endif %}
{% if review.field %}
<td>{% if item.flagged %}<span class="flag">yes</span>{% else %}no{% endif %}</td>
{% endif %}
</tr>
{% endfor %}
</table>
{% endif %}
{% endif %}
</section>

<section id="failed">
<h2>Failed rows</h2>
{% if failed.rows %}
<p><span class="big">{{ failed.total }}</span> rows failed{% if failed.more %}; the first {{ failed.shown }}
are listed{% endif %}.</p>
<table>
<tr><th class="num">row</th><th>reason</th></tr>
{% for item in failed.rows %}
<tr><td class="num">{{ item.row }}</td><td class="wrap">{{ item.reason }}</td></tr>
{% endfor %}
</table>
{% else %}
<p>No rows failed.</p>
{% endif %}
</section>

{% if comparison %}
<section id="comparison">
<h2>Comparison</h2>
<p>Flags: {{ ran.flags }}<br>Compare flags: {{ ran.compare_flags }}</p>
<p>Agreement{% if comparison.verdict_field %} on {{ comparison.verdict_field }}{%
 else %} on the whole output{% endif %}:
<span class="big">{{ comparison.rate }}</span> ({{ comparison.agreed }} of {{ comparison.compared }} rows
with both outputs{% if comparison.one_failed %}; {{ comparison.one_failed }} rows failed in one variant
only{% endif %}).</p>
<h3>What changed, field by field</h3>
<table>
<tr><th>field</th><th class="num">rows changed</th><th class="num">share</th>
<th class="num">mean |difference|</th><th class="num">max |difference|</th></tr>
{% for item in comparison.fields %}<tr><td>{{ item.name }}</td><td class="num">{{ item.changed }}</td>
<td class="num">{{ item.share }}</td><td class="num">{{ item.mean_difference }}</td>
<td class="num">{{ item.max_difference }}</td></tr>
{% endfor %}
</table>
{% if comparison.confusion %}
<h3>{{ comparison.verdict_field }}: flags (rows) against compare flags (columns)</h3>
<table>
<tr><th></th>{% for column in comparison.confusion.columns %}<th class="num">{{ column }}</th>{% endfor %}
<th class="num">total</th></tr>
{% for line in comparison.confusion.rows %}<tr><th>{{ line.verdict }}</th>
{% for cell in line.cells %}<td class="num">{{ cell }}</td>{% endfor %}
<td class="num">{{ line.total }}</td></tr>
{% endfor %}
</table>
{% endif %}
<h3>Changed rows</h3>
{% if comparison.changed %}
<p>{{ comparison.changed_total }} rows changed in any output field{% if comparison.more %}; the first
{{ comparison.shown }} are listed{% endif %}.</p>
<table>
<tr><th class="num">row</th>{% for column in input_columns %}<th>{{ column }}</th>{% endfor %}
{% if comparison.verdict_field %}<th>{{ comparison.verdict_field }} (flags)</th>{% endif %}
{% if comparison.certainty_field %}<th class="num">{{ comparison.certainty_field }} (flags)</th>{% endif %}
{% if comparison.verdict_field %}<th>{{ comparison.verdict_field }} (compare)</th>{% endif %}
{% if comparison.certainty_field %}<th class="num">{{ comparison.certainty_field }} (compare)</th>{% endif %}
<th>fields changed</th></tr>
{% for item in comparison.changed %}<tr><td class="num">{{ item.row }}</td>
{% for value in item.inputs %}<td class="wrap">{{ value }}</td>{% endfor %}
{% if comparison.verdict_field %}<td>{{ item.verdict }}</td>{% endif %}
{% if comparison.certainty_field %}<td class="num">{{ item.certainty }}</td>{% endif %}
{% if comparison.verdict_field %}<td>{{ item.compare_verdict }}</td>{% endif %}
{% if comparison.certainty_field %}<td class="num">{{ item.compare_certainty }}</td>{% endif %}
<td class="wrap">{{ item.fields }}</td></tr>
{% endfor %}
</table>
{% else %}
<p>No rows changed.</p>
{% endif %}
</section>
{% endif %}
</body>
</html>
"""

_HTML = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(_TEMPLATE)


def _what_ran(summary: _Summary, meta: JobMeta, info: PipelineInfo) -> dict[str, Any]:
    finished = meta.finished_at
    finished_label = "Finished"
    if finished is None and meta.started_at is not None:
        # the worker writes the reports just before it marks the job finished
        finished, finished_label = utc_now(), "Report written"
    seconds = (finished - meta.started_at).total_seconds() if finished and meta.started_at else None
    done = meta.rows_done or summary.rows
    throughput = f"{done / seconds:,.1f} rows/s" if seconds else MISSING
    compare = meta.spec.compare_flags
    return {
        "file": meta.spec.file_name,
        "format": meta.spec.file_format,
        "job": meta.id,
        "state": meta.state,
        "owner": meta.owner_name,
        "rows_total": _count(meta.rows_total if meta.rows_total is not None else summary.rows),
        "rows": _count(summary.rows),
        "failed": _count(summary.failed),
        "failed_share": _percent(summary.failed, summary.rows),
        "pipeline": info.name,
        "version": meta.pipeline_version or info.version,
        "flags": _flags(meta.spec.flags),
        "compare_flags": None if compare is None else _flags(compare),
        "started": _time(meta.started_at),
        "finished": _time(finished),
        "finished_label": finished_label,
        "duration": _duration(seconds),
        "throughput": throughput,
    }


def _review_section(summary: _Summary) -> dict[str, Any] | None:
    if summary.review_field is None and summary.confidence_field is None:
        return None
    rows = [{**entry, "certainty": _decimal(entry["certainty"])} for entry in summary.review_rows()]
    return {
        "field": summary.review_field,
        "verdict_field": summary.label_field,
        "certainty_field": summary.confidence_field,
        "flagged": _count(summary.flagged),
        "flagged_share": _percent(summary.flagged, summary.rows - summary.failed),
        "rows": rows,
        "shown": len(rows),
    }


def _comparison_section(summary: _Summary) -> dict[str, Any] | None:
    if not summary.comparing:
        return None
    confusion = None
    if summary.label_field is not None:
        categorical = summary.categoricals[summary.label_field]
        seen = {a for a, _ in summary.confusion} | {b for _, b in summary.confusion}
        labels = [value for value in categorical.order() if value in seen]
        labels += sorted(seen - set(labels))
        lines = [
            {
                "verdict": a,
                "cells": [_count(summary.confusion[(a, b)]) for b in labels],
                "total": _count(sum(summary.confusion[(a, b)] for b in labels)),
            }
            for a in labels
        ]
        confusion = {"columns": labels, "rows": lines}
    changed = [
        {
            **item,
            "certainty": _decimal(item["certainty"]),
            "compare_certainty": _decimal(item["compare_certainty"]),
        }
        for item in summary.changed
    ]
    changed_total = summary.rows_changed
    differences = {name: stats for name, stats in summary.numeric_difference.items() if stats.count}
    fields = [
        {
            "name": name,
            "changed": _count(summary.field_changes[name]),
            "share": _percent(summary.field_changes[name], summary.compared),
            "mean_difference": _decimal(differences[name].total / differences[name].count)
            if name in differences
            else "",
            "max_difference": _decimal(differences[name].high) if name in differences else "",
        }
        for name, _ in summary.columns
    ]
    return {
        "fields": fields,
        "verdict_field": summary.label_field,
        "certainty_field": summary.confidence_field,
        "rate": _percent(summary.agreed, summary.compared),
        "agreed": _count(summary.agreed),
        "compared": _count(summary.compared),
        "one_failed": _count(summary.compare_failed) if summary.compare_failed else None,
        "confusion": confusion,
        "changed": changed,
        "changed_total": _count(changed_total),
        "shown": len(changed),
        "more": changed_total > len(changed),
    }


def _render_html(summary: _Summary, meta: JobMeta, info: PipelineInfo) -> str:
    charts = [
        Markup(_bar_chart(categorical, summary.comparing))
        for categorical in summary.categoricals.values()
        if categorical.counts
    ]
    variants = [("flags", summary.numeric)]
    if summary.comparing:
        variants.append(("compare flags", summary.numeric_compare))
    numeric = [
        {
            "name": name,
            "variant": variant,
            "count": _count(stats[name].count),
            "low": _decimal(stats[name].low if stats[name].count else None),
            "mean": _decimal(stats[name].total / stats[name].count if stats[name].count else None),
            "high": _decimal(stats[name].high if stats[name].count else None),
        }
        for name in summary.numeric
        for variant, stats in variants
    ]
    confidence = None
    if summary.confidence_field is not None and summary.confidences:
        prop = summary.schema.get("properties", {}).get(summary.confidence_field, {})
        low, high = histogram_range(summary.confidences, prop, summary.schema)
        bins = _bins(summary.confidences, low, high)
        confidence = {
            "field": summary.confidence_field,
            "rows": _count(len(summary.confidences)),
            "width": _decimal((high - low) / HISTOGRAM_BINS),
            "low": _decimal(low),
            "high": _decimal(high),
            "svg": Markup(_histogram(bins, low, high, summary.confidence_field)),
        }
    failed = {
        "rows": summary.failed_rows,
        "total": _count(summary.failed),
        "shown": len(summary.failed_rows),
        "more": summary.failed > len(summary.failed_rows),
    }
    return _HTML.render(
        ran=_what_ran(summary, meta, info),
        input_columns=summary.input_columns,
        charts=charts,
        numeric=numeric,
        confidence=confidence,
        review=_review_section(summary),
        failed=failed,
        comparison=_comparison_section(summary),
    )


# -- writing ---------------------------------------------------------------------------


class _MachineWriters:
    """CSV, JSONL and Parquet written side by side, a batch of rows at a time."""

    def __init__(self, handles: Mapping[str, IO[bytes]], schema: pa.Schema, input_keys: set[str]) -> None:
        self.handles = handles
        self.names: list[str] = schema.names
        self.schema = schema
        self.input_keys = input_keys
        self.parquet = pq.ParquetWriter(handles["parquet"], schema)
        self.batch: list[dict[str, Any]] = []
        header = io.StringIO()
        csv.writer(header).writerow(self.names)
        handles["csv"].write(header.getvalue().encode())

    def add(self, record: dict[str, Any]) -> None:
        self.batch.append(record)
        if len(self.batch) >= BATCH_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.batch:
            return
        text = io.StringIO()
        # RFC 4180 line ends: a cell holding \r or \n is then quoted, so it cannot split a record
        writer = csv.writer(text)
        for record in self.batch:
            writer.writerow([_csv_cell(record[name]) for name in self.names])
        self.handles["csv"].write(text.getvalue().encode())
        lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in self.batch)
        self.handles["jsonl"].write(lines.encode())
        data = {
            name: [_as_text(r[name]) if name in self.input_keys else r[name] for r in self.batch]
            for name in self.names
        }
        self.parquet.write_table(pa.Table.from_pydict(data, schema=self.schema))
        self.batch = []

    def close(self) -> None:
        self.flush()
        self.parquet.close()


def write_reports(
    rows: Callable[[], Iterator[RowResult]],
    meta: JobMeta,
    info: PipelineInfo,
    input_columns: list[str],
    open_file: Callable[[str], AbstractContextManager[IO[bytes]]],
) -> list[str]:
    """Write report.csv, report.jsonl, report.parquet and report.html; returns the formats written.

    `rows()` streams the job's results in row order. One pass feeds all four reports: the
    machine formats are written a batch at a time and the HTML report keeps bounded
    aggregates, so memory stays flat in the number of rows.
    """
    columns = output_columns(info.output_schema)
    comparing = meta.spec.compare_flags is not None
    schema = _arrow_schema(columns, input_columns, comparing)
    summary = _Summary(columns, info.output_schema, list(input_columns), comparing)
    with ExitStack() as stack:
        handles = {
            fmt: stack.enter_context(open_file(f"report.{fmt}")) for fmt in ("csv", "jsonl", "parquet")
        }
        writers = _MachineWriters(handles, schema, {_input_key(column) for column in input_columns})
        for result in rows():
            writers.add(flatten(result, columns, input_columns, comparing))
            summary.add(result)
        writers.close()
    html = _render_html(summary, meta, info)
    with open_file("report.html") as handle:
        handle.write(html.encode())
    return list(REPORT_FORMATS)
