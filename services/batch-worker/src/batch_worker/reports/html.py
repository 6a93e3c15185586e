"""The HTML report: the template and the sections it shows, from a finished Summary."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import jinja2
from markupsafe import Markup

from batch_worker.reports.charts import bar_chart, histogram
from batch_worker.reports.columns import json_text
from batch_worker.reports.statistics import HISTOGRAM_BINS, Summary, bin_counts, histogram_range
from onepipe import PipelineInfo
from onepipe.jobs import JobMeta, utc_now

MISSING: Final = "\u2013"  # an en dash: nothing to show


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
        f"{key}={value if isinstance(value, str) else json_text(value)}"
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


def _what_ran(summary: Summary, meta: JobMeta, info: PipelineInfo) -> dict[str, Any]:
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


def _review_section(summary: Summary) -> dict[str, Any] | None:
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


def _comparison_section(summary: Summary) -> dict[str, Any] | None:
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


def render_html(summary: Summary, meta: JobMeta, info: PipelineInfo) -> str:
    charts = [
        Markup(bar_chart(categorical, summary.comparing))
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
        bins = bin_counts(summary.confidences, low, high)
        confidence = {
            "field": summary.confidence_field,
            "rows": _count(len(summary.confidences)),
            "width": _decimal((high - low) / HISTOGRAM_BINS),
            "low": _decimal(low),
            "high": _decimal(high),
            "svg": Markup(histogram(bins, low, high, summary.confidence_field)),
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
