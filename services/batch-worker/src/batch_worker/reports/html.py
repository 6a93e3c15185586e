"""The HTML report: the template and the sections it shows, from a finished Summary."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import jinja2
from markupsafe import Markup

from batch_worker.reports.charts import bar_chart, histogram, reliability
from batch_worker.reports.columns import truncate
from batch_worker.reports.scoring import (
    CALIBRATION_BINS,
    CategoricalScore,
    FieldScores,
    NumericScore,
    Scoring,
)
from batch_worker.reports.statistics import (
    COMPARE,
    FLAGS,
    SAMPLE_SIZE,
    Summary,
    histogram_of,
)
from onepipe import PipelineInfo
from onepipe.html_policy import content_policy
from onepipe.jobs import JobMeta, utc_now
from onepipe.values import CATEGORICAL, json_text

MISSING: Final = "\u2013"  # an en dash: nothing to show
MATRIX_VALUES: Final = 12  # a categorical field with more values seen gets a list of changes, not a matrix
LISTED_CHANGES: Final = 20
LISTED_REASONS: Final = 20
REASON_OPTIONS: Final = 20  # tick boxes in the review list's filter; its text box finds the rest
OPTION_CHARS: Final = 120
KNOWN_WARNING: Final = 0.5  # above this share of known inputs the report warns that scores say little
RANGE_SOURCES: Final = {
    "schema": "the schema's range",
    "data": "the data's range",
    "schema and data": "the schema's bound and the data's",
}


# -- formatting ------------------------------------------------------------------------


def _count(value: int | None) -> str:
    return MISSING if value is None else f"{value:,}"


def _percent(part: int, whole: int) -> str:
    return MISSING if whole == 0 else f"{100 * part / whole:.1f}%"


def _decimal(value: float | None) -> str:
    if value is None:
        return MISSING
    if value == 0:
        return "0"
    if abs(value) >= 1e6 or abs(value) < 1e-3:
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

_STYLE = """
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
td.same { background: #eef4fa; }
figcaption { font-size: 0.85rem; color: #444; max-width: 30rem; }
.charts figure { margin: 0; }
td.changes { min-width: 20rem; overflow-wrap: anywhere; }
form.filter { margin: 0.5rem 0; }
form.filter fieldset { border: 1px solid #ddd; margin: 0.4rem 0; }
form.filter fieldset label { display: block; }
code { background: #f4f6f8; padding: 0 0.2rem; }
"""

_SCRIPT = """
// The review list's filter: a row stays when it holds the text (any case) and, with reasons
// ticked, at least one of them. No network, nothing stored; without it every row is shown.
(function () {
  var form = document.getElementById("review-filter");
  var text = document.getElementById("review-text");
  var count = document.getElementById("review-count");
  var rows = document.querySelectorAll("#review-rows tr[data-reasons]");
  var boxes = form.querySelectorAll("input[name=reason]");
  function apply() {
    var needle = text.value.trim().toLowerCase();
    var ticked = Array.prototype.filter.call(boxes, function (b) { return b.checked; })
      .map(function (b) { return b.value; });
    var shown = 0;
    rows.forEach(function (row) {
      var reasons = row.getAttribute("data-reasons").split(" ");
      var keep = (!needle || row.textContent.toLowerCase().indexOf(needle) >= 0) &&
        (!ticked.length || ticked.some(function (r) { return reasons.indexOf(r) >= 0; }));
      row.hidden = !keep;
      shown += keep ? 1 : 0;
    });
    count.textContent = shown + " of " + rows.length + " rows shown";
  }
  form.addEventListener("input", apply);
  form.addEventListener("change", apply);
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  form.hidden = false;
  apply();
})();
"""

# The page runs its own style and script only, wherever it is opened (served, or a saved file):
# whatever a cell might smuggle in is inert, and nothing is fetched from anywhere.
POLICY = content_policy(_STYLE, _SCRIPT)

_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{{ policy }}">
<title>Report: {{ ran.file }}</title>
<style>{{ style }}</style>
</head>
<body>
{% macro subsets_table(item) %}
<table>
<tr><th>variant</th><th class="num">known rows scored</th><th class="num">{{ item.measure }} on known</th>
<th class="num">unseen rows scored</th><th class="num">{{ item.measure }} on unseen</th></tr>
{% for line in item.subsets %}<tr><td>{{ line.variant }}</td><td class="num">{{ line.known_rows }}</td>
<td class="num">{{ line.known }}</td><td class="num">{{ line.unseen_rows }}</td>
<td class="num"><b>{{ line.unseen }}</b></td></tr>
{% endfor %}
</table>
{% endmacro %}
<h1>Report: {{ ran.file }}</h1>
<p class="muted">Pipeline {{ ran.pipeline }} {{ ran.version }} &middot; job {{ ran.job }}</p>

{% if known and known.most %}
<p class="flag">{{ known.share }} of this file's rows are inputs the pipeline already knows ({{ known.field }}
is set): scores on them say little about inputs it has not seen. Judge it by the unseen rows' scores.</p>
{% endif %}
<section id="ran">
<h2>What ran</h2>
<table class="facts">
<tr><th>File</th><td>{{ ran.file }} ({{ ran.format }})</td></tr>
<tr><th>State</th><td>{{ ran.state }}</td></tr>
<tr><th>Submitted by</th><td>{{ ran.owner }}</td></tr>
<tr><th>Rows in file</th><td class="num">{{ ran.rows_total }}</td></tr>
<tr><th>Rows in report</th><td class="num">{{ ran.rows }}</td></tr>
<tr><th>Rows failed</th><td class="num">{{ ran.failed }} ({{ ran.failed_share }})</td></tr>
{% if known %}
<tr><th>Known inputs</th><td class="num">{{ known.rows }} ({{ known.share }})</td></tr>
{% endif %}
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

{% if scores %}
<section id="scores">
<h2>Scores against the truth</h2>
{% for item in scores %}
<h3>{{ item.field }} against the column {{ item.column }}</h3>
<p class="muted">{{ item.scored_note }}</p>
{% if item.categorical %}
<table>
<tr><th>variant</th><th class="num">rows scored</th><th class="num">accuracy</th>
<th class="num">macro F1</th><th class="num">weighted F1</th></tr>
{% for v in item.variants %}<tr><td>{{ v.name }}</td><td class="num">{{ v.scored }}</td>
<td class="num"><b>{{ v.accuracy }}</b> ({{ v.correct }} right)</td><td class="num">{{ v.macro_f1 }}</td>
<td class="num">{{ v.weighted_f1 }}</td></tr>
{% endfor %}
</table>
{% if item.subsets %}{{ subsets_table(item) }}{% endif %}
{% if item.calibration %}
<div class="charts"><figure>{{ item.calibration.svg }}
<figcaption>Calibration of {{ confidence_field }}: accuracy against confidence in {{ item.calibration.bins }}
equal bins. Expected calibration error (ECE): {% for e in item.calibration.errors %}{{ e.variant }}
<b>{{ e.value }}</b>{% if not loop.last %}, {% endif %}{% endfor %}.</figcaption></figure></div>
{% endif %}
{% if item.paired %}
<p>Accuracy under the compare flags minus under the flags, over the {{ item.paired.rows }} rows scored
under both: <span class="big">{{ item.paired.difference }}</span> (95% bootstrap interval
{{ item.paired.low }} to {{ item.paired.high }}). {{ item.paired.flags_only }} rows are right under the
flags only, {{ item.paired.compare_only }} under the compare flags only.</p>
{% endif %}
{% for v in item.variants %}
<h4>{{ item.field }}, {{ v.name }}: per class</h4>
<table>
<tr><th>class</th><th class="num">precision</th><th class="num">recall</th><th class="num">F1</th>
<th class="num">support</th></tr>
{% for c in v.classes %}<tr><td>{{ c.label }}</td><td class="num">{{ c.precision }}</td>
<td class="num">{{ c.recall }}</td><td class="num">{{ c.f1 }}</td><td class="num">{{ c.support }}</td></tr>
{% endfor %}
{% for a in v.averages %}<tr><th>{{ a.name }} average</th><td class="num">{{ a.precision }}</td>
<td class="num">{{ a.recall }}</td><td class="num">{{ a.f1 }}</td><td class="num">{{ a.support }}</td></tr>
{% endfor %}
</table>
<h4>{{ item.field }}, {{ v.name }}: truth (rows) against the pipeline (columns)</h4>
<table>
<tr><th></th>{% for label in v.labels %}<th class="num">{{ label }}</th>{% endfor %}
<th class="num">total</th></tr>
{% for line in v.confusion %}<tr><th>{{ line.truth }}</th>
{% for cell in line.cells %}<td class="num{% if cell.same %} same{% endif %}">{{ cell.rows }}</td>{% endfor %}
<td class="num">{{ line.total }}</td></tr>
{% endfor %}
</table>
{% if v.confident_wrong %}
<h4>{{ item.field }}, {{ v.name }}: the most confident wrong rows</h4>
<table>
<tr><th class="num">row</th>{% for column in input_columns %}<th>{{ column }}</th>{% endfor %}
<th>truth</th><th>{{ item.field }}</th><th class="num">{{ confidence_field }}</th></tr>
{% for row in v.confident_wrong %}<tr><td class="num">{{ row.row }}</td>
{% for value in row.inputs %}<td class="wrap">{{ value }}</td>{% endfor %}
<td>{{ row.truth }}</td><td>{{ row.predicted }}</td><td class="num">{{ row.confidence }}</td></tr>
{% endfor %}
</table>
{% if case_job %}<p class="muted">To keep this job's wrong rows as edge cases:
<code>just case add --from-job {{ case_job }}</code></p>{% endif %}
{% endif %}
{% endfor %}
{% if item.paired %}{% for split in item.paired.splits %}
<h4>{{ item.field }}: right under the {{ split.winner }} only{% if split.more %} (the first
{{ split.shown }}){% endif %}</h4>
<table>
<tr><th class="num">row</th>{% for column in input_columns %}<th>{{ column }}</th>{% endfor %}
<th>truth</th><th>flags</th><th>compare flags</th></tr>
{% for row in split.rows %}<tr><td class="num">{{ row.row }}</td>
{% for value in row.inputs %}<td class="wrap">{{ value }}</td>{% endfor %}
<td>{{ row.truth }}</td><td>{{ row.flags }}</td><td>{{ row.compare }}</td></tr>
{% endfor %}
</table>
{% endfor %}
{% endif %}
{% else %}
<table>
<tr><th>variant</th><th class="num">rows scored</th><th class="num">MAE</th><th class="num">RMSE</th></tr>
{% for v in item.variants %}<tr><td>{{ v.name }}</td><td class="num">{{ v.scored }}</td>
<td class="num"><b>{{ v.mae }}</b></td><td class="num">{{ v.rmse }}</td></tr>
{% endfor %}
</table>
{% if item.subsets %}{{ subsets_table(item) }}{% endif %}
{% endif %}
{% endfor %}
</section>
{% endif %}

<section id="distribution">
<h2>Distribution of outputs</h2>
{% if charts %}
<div class="charts">{% for svg in charts %}<figure>{{ svg }}</figure>{% endfor %}</div>
{% else %}
<p class="muted">The output has no categorical fields (enums, booleans or short texts) to count.</p>
{% endif %}
{% if numeric %}
<h3>Numeric outputs</h3>
<table>
<tr><th>field</th>{% if comparison %}<th>variant</th>{% endif %}<th class="num">rows</th>
<th class="num">mean</th><th class="num">min</th><th class="num">25%</th><th class="num">median</th>
<th class="num">75%</th><th class="num">max</th></tr>
{% for item in numeric %}<tr>{% if item.span %}<th rowspan="{{ item.span }}">{{ item.name }}</th>{% endif %}
{% if comparison %}<td>{{ item.variant }}</td>{% endif %}
<td class="num">{{ item.count }}</td><td class="num">{{ item.mean }}</td><td class="num">{{ item.low }}</td>
<td class="num">{{ item.q1 }}</td><td class="num">{{ item.median }}</td><td class="num">{{ item.q3 }}</td>
<td class="num">{{ item.high }}</td></tr>
{% endfor %}
</table>
{% if sampled %}<p class="muted">Quartiles of a field with more than {{ sample_size }} values come from a
uniform sample of {{ sample_size }} of them; count, mean, min and max are exact.</p>{% endif %}
{% endif %}
{% if shapes %}
<h3>Lists, objects and text</h3>
<table>
<tr><th>field</th><th>kind</th>{% if comparison %}<th>variant</th>{% endif %}
<th class="num">rows with a value</th><th class="num">empty</th><th class="num">none</th>
<th class="num">mean items</th></tr>
{% for item in shapes %}<tr>{% if item.span %}<th rowspan="{{ item.span }}">{{ item.name }}</th>
<td rowspan="{{ item.span }}">{{ item.kind }}</td>{% endif %}
{% if comparison %}<td>{{ item.variant }}</td>{% endif %}
<td class="num">{{ item.present }}</td><td class="num">{{ item.empty }}</td>
<td class="num">{{ item.missing }}</td><td class="num">{{ item.mean_items }}</td></tr>
{% endfor %}
</table>
{% endif %}
</section>

{% if histograms %}
<section id="histograms">
<h2>Numeric outputs, binned</h2>
<div class="charts">
{% for item in histograms %}<figure>{% if item.svg %}{{ item.svg }}
<figcaption><b>{{ item.field }}</b>: {{ item.rows }} from {{ item.low }} to {{ item.high }}
({{ item.source }}), {{ item.bins }}.</figcaption>{% else %}
<figcaption><b>{{ item.field }}</b>: {{ item.rows }}, every one {{ item.constant }}.</figcaption>{%
 endif %}</figure>
{% endfor %}
</div>
</section>
{% endif %}

<section id="review">
<h2>Rows most in need of review</h2>
{% if review is none %}
<p class="muted">The output marks no review or confidence field, so no rows are singled out.</p>
{% else %}
<p>{% if review.field %}<span class="big">{{ review.flagged }}</span> rows flagged for review
({{ review.flagged_share }}).{% endif %}
{% if review.rows %}Below: the {{ review.shown }} rows most in need of review, ranked by need:
{{ review.order }}.{% else %}No rows to show.{% endif %}</p>
{% if review.reasons %}
<table>
<tr><th>why ({{ review.reasons_field }})</th><th class="num">rows</th></tr>
{% for line in review.reasons %}
<tr><td class="wrap">{{ line.reason }}</td><td class="num">{{ line.rows }}</td></tr>
{% endfor %}
</table>
{% endif %}
{% if review.rows %}
{# shown by the script below: without it the controls would do nothing, and every row stays listed #}
<form id="review-filter" class="filter" hidden>
<label>Rows containing <input type="search" id="review-text" placeholder="any text in the row"></label>
{% if review.options %}
<fieldset><legend>with any of these reasons ({{ review.reasons_field }}); none ticked: every row</legend>
{% for option in review.options %}<label><input type="checkbox" name="reason" value="{{ option.index }}">
{{ option.reason }} <span class="muted">({{ option.rows }} listed)</span></label>
{% endfor %}
{% if review.options_more %}<p class="muted">The first {{ review.options|length }} reasons of the
{{ review.options_total }} in the list; the text box finds the others.</p>{% endif %}
</fieldset>
{% endif %}
<output id="review-count"></output>
</form>
<table id="review-rows">
<tr><th class="num">row</th>{% for column in input_columns %}<th>{{ column }}</th>{% endfor %}
{% if review.verdict_field %}<th>{{ review.verdict_field }}</th>{% endif %}
{% if review.certainty_field %}<th class="num">{{ review.certainty_field }}</th>{% endif %}
{% if review.field %}<th>{{ review.field }}</th>{% endif %}
{% if review.reasons_field %}<th>{{ review.reasons_field }}</th>{% endif %}</tr>
{% for item in review.rows %}<tr data-reasons="{{ item.options }}"><td class="num">{{ item.row }}</td>
{% for value in item.inputs %}<td class="wrap">{{ value }}</td>{% endfor %}
{% if review.verdict_field %}<td>{{ item.verdict }}</td>{% endif %}
{% if review.certainty_field %}<td class="num">{{ item.certainty }}</td>{% endif %}
{% if review.field %}
<td>{% if item.flagged %}<span class="flag">yes</span>{% else %}no{% endif %}</td>
{% endif %}
{% if review.reasons_field %}<td class="wrap">{{ item.reasons|join("; ") }}</td>{% endif %}
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
<p><span class="big">{{ comparison.changed_total }}</span> of {{ comparison.compared }} rows with both outputs
changed in at least one output field ({{ comparison.changed_share }}){% if comparison.one_failed %};
{{ comparison.one_failed }} rows failed under one flag set only{% endif %}.</p>
<p>Agreement{% if comparison.verdict_field %} on {{ comparison.verdict_field }}{%
 else %} on the whole output{% endif %}:
<span class="big">{{ comparison.rate }}</span> ({{ comparison.agreed }} of {{ comparison.compared }} rows
with both outputs).</p>
<h3>Field by field</h3>
<table>
<tr><th>field</th><th>kind</th><th class="num">rows changed</th><th class="num">agreement</th>
<th class="num">mean |difference|</th><th class="num">max |difference|</th></tr>
{% for item in comparison.fields %}<tr><td>{{ item.name }}</td><td>{{ item.kind }}</td>
<td class="num">{{ item.changed }}</td><td class="num">{{ item.agreement }}</td>
<td class="num">{{ item.mean_difference }}</td><td class="num">{{ item.max_difference }}</td></tr>
{% endfor %}
</table>
{% if numeric %}<p class="muted">The numeric outputs under each flag set are side by side in
<a href="#distribution">Distribution of outputs</a>.</p>{% endif %}
{% for table in comparison.tables %}
{% if table.matrix %}
<h3>{{ table.field }}: flags (rows) against compare flags (columns)</h3>
<table>
<tr><th></th>{% for column in table.matrix.columns %}<th class="num">{{ column }}</th>{% endfor %}
<th class="num">total</th></tr>
{% for line in table.matrix.rows %}<tr><th>{{ line.value }}</th>
{% for cell in line.cells %}<td class="num{% if cell.same %} same{% endif %}">{{ cell.rows }}</td>{% endfor %}
<td class="num">{{ line.total }}</td></tr>
{% endfor %}
</table>
{% else %}
<h3>{{ table.field }}: what it became{% if table.more %} (the {{ table.shown }} most frequent changes of
{{ table.kinds }}){% endif %}</h3>
<table>
<tr><th>flags</th><th>compare flags</th><th class="num">rows</th><th class="num">share</th></tr>
{% for line in table.changes %}<tr><td class="wrap">{{ line.before }}</td>
<td class="wrap">{{ line.after }}</td>
<td class="num">{{ line.rows }}</td><td class="num">{{ line.share }}</td></tr>
{% endfor %}
</table>
{% endif %}
{% endfor %}
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
<th>what changed (flags &rarr; compare flags)</th></tr>
{% for item in comparison.changed %}<tr><td class="num">{{ item.row }}</td>
{% for value in item.inputs %}<td class="wrap">{{ value }}</td>{% endfor %}
{% if comparison.verdict_field %}<td>{{ item.verdict }}</td>{% endif %}
{% if comparison.certainty_field %}<td class="num">{{ item.certainty }}</td>{% endif %}
{% if comparison.verdict_field %}<td>{{ item.compare_verdict }}</td>{% endif %}
{% if comparison.certainty_field %}<td class="num">{{ item.compare_certainty }}</td>{% endif %}
<td class="changes">{% for change in item.changes %}{{ change }}{% if not loop.last %}<br>{% endif %}{%
 endfor %}</td></tr>
{% endfor %}
</table>
{% else %}
<p>No rows changed.</p>
{% endif %}
</section>
{% endif %}
{% if review and review.rows %}
<script>{{ script }}</script>
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


def _review_order(summary: Summary) -> str:
    """How the review list is ranked, in the page's words; the order Summary keeps its rows in."""
    order = [f"flagged ({summary.review_field}) before the rest"] if summary.review_field else []
    if summary.reasons_field:
        order.append(f"by the number of reasons ({summary.reasons_field}), most first")
    if summary.confidence_field:
        order.append(f"by {summary.confidence_field}, lowest first")
    return "; then ".join(order) + "; ties in row order"


def _review_section(summary: Summary) -> dict[str, Any] | None:
    if summary.review_field is None and summary.confidence_field is None and summary.reasons_field is None:
        return None
    entries = summary.review_rows()
    # one tick box per reason in the list (the commonest over the job first, then as listed), a few
    # lines of script hide the rows without a ticked one
    listed: Counter[str] = Counter(reason for entry in entries for reason in dict.fromkeys(entry["reasons"]))
    reasons = sorted(listed, key=lambda reason: -summary.reasons[reason])  # stable: ties as listed
    index = {reason: i for i, reason in enumerate(reasons[:REASON_OPTIONS])}
    rows = [
        {
            **entry,
            "certainty": _decimal(entry["certainty"]),
            "options": " ".join(str(index[r]) for r in dict.fromkeys(entry["reasons"]) if r in index),
        }
        for entry in entries
    ]
    return {
        "field": summary.review_field,
        "verdict_field": summary.label_field,
        "certainty_field": summary.confidence_field,
        "flagged": _count(summary.flagged),
        "flagged_share": _percent(summary.flagged, summary.rows - summary.failed),
        "rows": rows,
        "shown": len(rows),
        "order": _review_order(summary),
        "reasons_field": summary.reasons_field,
        "reasons": [
            {"reason": reason, "rows": _count(n)} for reason, n in summary.reasons.most_common(LISTED_REASONS)
        ],
        "options": [
            {"index": i, "reason": truncate(reason, OPTION_CHARS), "rows": _count(listed[reason])}
            for reason, i in index.items()
        ],
        "options_total": len(reasons),
        "options_more": len(reasons) > len(index),
    }


def _known(summary: Summary) -> dict[str, Any] | None:
    """How many rows hold an input the pipeline knows (the `known` role), and whether that is most."""
    if summary.known_field is None:
        return None
    answered = summary.rows - summary.failed
    return {
        "field": summary.known_field,
        "rows": _count(summary.known),
        "share": _percent(summary.known, answered),
        "most": answered > 0 and summary.known / answered > KNOWN_WARNING,
    }


def _subsets(scores: FieldScores) -> list[dict[str, Any]]:
    """Known and unseen inputs scored apart, per flag set: accuracy, or MAE for numbers."""
    lines = []
    for variant, subsets in scores.subsets.items():
        line: dict[str, Any] = {"variant": variant}
        for name, score in subsets.items():
            line[f"{name}_rows"] = _count(score.scored)
            line[name] = _decimal(score.accuracy if isinstance(score, CategoricalScore) else score.mae)
        lines.append(line)
    return lines


def _numeric_rows(summary: Summary) -> list[dict[str, Any]]:
    """Each numeric field's summary under each flag set, one row per set, the sets side by side."""
    rows = []
    for name, by_variant in summary.numeric.items():
        for index, (variant, numbers) in enumerate(by_variant.items()):
            rows.append(
                {
                    "name": name,
                    "span": len(by_variant) if index == 0 else 0,
                    "variant": variant,
                    "count": _count(numbers.count),
                    "mean": _decimal(numbers.mean),
                    "low": _decimal(numbers.low if numbers.count else None),
                    "q1": _decimal(numbers.quantile(0.25)),
                    "median": _decimal(numbers.quantile(0.5)),
                    "q3": _decimal(numbers.quantile(0.75)),
                    "high": _decimal(numbers.high if numbers.count else None),
                }
            )
    return rows


def _shape_rows(summary: Summary) -> list[dict[str, Any]]:
    """Lists, objects and free text: rows with a value, empty, none, mean list size, per flag set."""
    rows = []
    for name, shapes in summary.shapes.items():
        for index, variant in enumerate(summary.variants):
            items = shapes.items.get(variant)
            rows.append(
                {
                    "name": name,
                    "kind": summary.kinds[name],
                    "span": len(summary.variants) if index == 0 else 0,
                    "variant": variant,
                    "present": _count(shapes.present[variant]),
                    "empty": _count(shapes.empty[variant]),
                    "missing": _count(shapes.missing[variant]),
                    "mean_items": _decimal(items.mean) if items is not None else "",
                }
            )
    return rows


def _histograms(summary: Summary) -> list[dict[str, Any]]:
    """A histogram per numeric field, over its schema's range, else the data's; both flag sets in one."""
    figures = []
    for name, by_variant in summary.numeric.items():
        found = histogram_of(by_variant, summary.outputs.fields[name])
        if found is None:
            continue
        counts = [f"{_count(n.count)} rows ({variant})" for variant, n in by_variant.items()]
        rows = counts[0].removesuffix(f" ({FLAGS})") if len(counts) == 1 else ", ".join(counts)
        if any(numbers.sampled for numbers in by_variant.values()):
            rows += f", binned from a uniform sample of {_count(SAMPLE_SIZE)}"
        figure = {"field": name, "rows": rows, "svg": None, "constant": None}
        if found.constant is not None:
            figures.append({**figure, "constant": _decimal(found.constant)})
            continue
        bins = len(next(iter(found.bins.values())))
        shown = (found.low + 0.5, found.high - 0.5) if found.per_value else (found.low, found.high)
        figures.append(
            {
                **figure,
                "low": _decimal(shown[0]),
                "high": _decimal(shown[1]),
                "source": RANGE_SOURCES[found.source],
                "bins": "one bin per value"
                if found.per_value
                else f"in bins of {_decimal((found.high - found.low) / bins)}",
                "svg": Markup(histogram(found.bins, found.low, found.high, name, found.per_value)),
            }
        )
    # the charts first, two to a line; the fields with nothing to bin after them
    return sorted(figures, key=lambda figure: figure["svg"] is None)


def _change_table(summary: Summary, name: str) -> dict[str, Any]:
    """What a categorical field's values became: a matrix for few values, else the commonest changes."""
    pairs = summary.changes[name].pairs
    seen = {a for a, _ in pairs} | {b for _, b in pairs}
    values = [value for value in summary.categoricals[name].order() if value in seen]
    values += sorted(seen - set(values))
    if len(values) <= MATRIX_VALUES:
        lines = [
            {
                "value": a,
                "cells": [{"rows": _count(pairs[(a, b)]), "same": a == b} for b in values],
                "total": _count(sum(pairs[(a, b)] for b in values)),
            }
            for a in values
        ]
        return {"field": name, "matrix": {"columns": values, "rows": lines}}
    changes = sorted(((n, a, b) for (a, b), n in pairs.items() if a != b), key=lambda x: (-x[0], x[1], x[2]))
    return {
        "field": name,
        "matrix": None,
        "changes": [
            {"before": a, "after": b, "rows": _count(n), "share": _percent(n, summary.compared)}
            for n, a, b in changes[:LISTED_CHANGES]
        ],
        "shown": min(len(changes), LISTED_CHANGES),
        "kinds": _count(len(changes)),
        "more": len(changes) > LISTED_CHANGES,
    }


def _comparison_section(summary: Summary) -> dict[str, Any] | None:
    if not summary.comparing:
        return None
    fields = []
    for name, _ in summary.columns:
        change = summary.changes[name]
        difference = change.difference
        fields.append(
            {
                "name": name,
                "kind": summary.kinds[name],
                "changed": _count(change.changed),
                "agreement": _percent(summary.compared - change.changed, summary.compared),
                "mean_difference": _decimal(difference.mean) if difference.count else "",
                "max_difference": _decimal(difference.high) if difference.count else "",
            }
        )
    # a table of what became what for the verdict, and for every other categorical field that changed
    tables = [
        _change_table(summary, name)
        for name in summary.categoricals
        if summary.changes[name].pairs and (name == summary.label_field or summary.changes[name].changed)
    ]
    changed = [
        {
            **item,
            "certainty": _decimal(item["certainty"]),
            "compare_certainty": _decimal(item["compare_certainty"]),
        }
        for item in summary.changed
    ]
    return {
        "fields": fields,
        "tables": tables,
        "verdict_field": summary.label_field,
        "certainty_field": summary.confidence_field,
        "rate": _percent(summary.agreed, summary.compared),
        "agreed": _count(summary.agreed),
        "compared": _count(summary.compared),
        "one_failed": _count(summary.compare_failed) if summary.compare_failed else None,
        "changed": changed,
        "changed_total": _count(summary.rows_changed),
        "changed_share": _percent(summary.rows_changed, summary.compared),
        "shown": len(changed),
        "more": summary.rows_changed > len(changed),
    }


def _scored_note(blank: int, unreadable: int) -> str:
    notes = [f"{_count(blank)} rows had no truth value"] if blank else []
    if unreadable:
        notes.append(f"{_count(unreadable)} held a truth that is not a number")
    if not notes:
        return "Every row with an output is scored."
    return "; ".join(notes) + ("; they are" if blank + unreadable > 1 else "; it is") + " not scored."


def _categorical_scores(name: str, score: CategoricalScore, scoring: Scoring, variant: str) -> dict[str, Any]:
    labels = score.labels()
    averages = score.averages()
    support = sum(c.support for c in score.classes())
    return {
        "name": variant,
        "scored": _count(score.scored),
        "correct": _count(score.correct),
        "accuracy": _decimal(score.accuracy),
        "macro_f1": _decimal(averages["macro"][2]) if "macro" in averages else MISSING,
        "weighted_f1": _decimal(averages["weighted"][2]) if "weighted" in averages else MISSING,
        "classes": [
            {
                "label": c.label,
                "precision": _decimal(c.precision),
                "recall": _decimal(c.recall),
                "f1": _decimal(c.f1),
                "support": _count(c.support),
            }
            for c in score.classes()
        ],
        "averages": [
            {
                "name": kind,
                "precision": _decimal(p),
                "recall": _decimal(r),
                "f1": _decimal(f),
                "support": _count(support),
            }
            for kind, (p, r, f) in averages.items()
        ],
        "labels": labels,
        "confusion": [
            {
                "truth": truth,
                "cells": [{"rows": _count(score.confusion[(truth, p)]), "same": truth == p} for p in labels],
                "total": _count(sum(score.confusion[(truth, p)] for p in labels)),
            }
            for truth in labels
        ],
        "confident_wrong": [
            {**row, "confidence": _decimal(row["confidence"])}
            for row in scoring.most_confident_wrong(name, variant)
        ],
    }


def _signed(value: float) -> str:
    return ("+" if value > 0 else "") + _decimal(value)


def _paired(scores: FieldScores) -> dict[str, Any] | None:
    """Both flag sets on the rows scored under both: the difference in accuracy, who gets which rows right."""
    found = scores.difference()
    if found is None:
        return None
    difference, low, high = found
    splits = []
    for winner, rows in scores.splits.items():
        right = (winner == FLAGS, winner != FLAGS)
        splits.append(
            {
                "winner": winner,
                "rows": [{**row, "flags": row[FLAGS], "compare": row[COMPARE]} for row in rows],
                "shown": len(rows),
                "more": scores.paired[right] > len(rows),
            }
        )
    return {
        "rows": _count(sum(scores.paired.values())),
        "difference": _signed(difference),
        "low": _signed(low),
        "high": _signed(high),
        "flags_only": _count(scores.paired[(True, False)]),
        "compare_only": _count(scores.paired[(False, True)]),
        "splits": sorted(splits, key=lambda split: split["winner"] != FLAGS),
    }


def _calibration(scores: FieldScores) -> dict[str, Any] | None:
    """The reliability chart and the expected calibration error per flag set, when rows were binned."""
    binned = {variant: c.bins() for variant, c in scores.calibration.items() if c.bins()}
    if not binned:
        return None
    return {
        "svg": Markup(reliability(binned, f"{scores.name}: calibration")),
        "bins": CALIBRATION_BINS,
        "errors": [
            {"variant": variant, "value": _decimal(scores.calibration[variant].expected_calibration_error)}
            for variant in binned
        ],
    }


def _scores_section(scoring: Scoring) -> list[dict[str, Any]]:
    """Each scored field: per flag set, accuracy and per-class scores with the confusion, or MAE and RMSE."""
    found = []
    for name, scores in scoring.fields.items():
        variants = []
        for variant, score in scores.variants.items():
            if isinstance(score, CategoricalScore):
                variants.append(_categorical_scores(name, score, scoring, variant))
            elif isinstance(score, NumericScore):
                variants.append(
                    {
                        "name": variant,
                        "scored": _count(score.scored),
                        "mae": _decimal(score.mae),
                        "rmse": _decimal(score.rmse),
                    }
                )
        found.append(
            {
                "calibration": _calibration(scores),
                "subsets": _subsets(scores),
                "measure": "accuracy" if scores.kind == CATEGORICAL else "MAE",
                "paired": _paired(scores),
                "field": name,
                "column": scores.column,
                "categorical": scores.kind == CATEGORICAL,
                "scored_note": _scored_note(scores.blank, scores.unreadable),
                "variants": variants,
            }
        )
    return found


def render_html(summary: Summary, scoring: Scoring, meta: JobMeta, info: PipelineInfo) -> str:
    """The report as one self-contained HTML page: inline SVG charts, no network; one inline script
    filters the review list, and the page reads whole without it."""
    summary.finish()
    charts = [
        Markup(bar_chart(categorical, summary.comparing))
        for categorical in summary.categoricals.values()
        if categorical.counts
    ]
    failed = {
        "rows": summary.failed_rows,
        "total": _count(summary.failed),
        "shown": len(summary.failed_rows),
        "more": summary.failed > len(summary.failed_rows),
    }
    return _HTML.render(
        style=Markup(_STYLE),
        script=Markup(_SCRIPT),
        policy=POLICY,
        ran=_what_ran(summary, meta, info),
        input_columns=summary.input_columns,
        charts=charts,
        numeric=_numeric_rows(summary),
        sampled=any(n.sampled for by_variant in summary.numeric.values() for n in by_variant.values()),
        sample_size=_count(SAMPLE_SIZE),
        shapes=_shape_rows(summary),
        histograms=_histograms(summary),
        review=_review_section(summary),
        failed=failed,
        comparison=_comparison_section(summary),
        scores=_scores_section(scoring),
        known=_known(summary),
        confidence_field=summary.confidence_field,
        # the command that turns the wrong rows into edge cases, for a job scored against a truth
        case_job=meta.id if meta.spec.truth else None,
    )
