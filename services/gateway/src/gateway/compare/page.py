"""A comparison of two jobs as one self-contained HTML page (the template in compare/templates)."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from datetime import datetime
from importlib.resources import files
from typing import Any, Final

import jinja2
from markupsafe import Markup

from gateway.compare.models import ComparedJob, JobComparison, ScoreChange
from onepipe.platform.schema.changes import figure
from onepipe.platform.schema.outputs import TOLERANCE_SHARE
from onepipe.platform.schema.values import show

SHOWN_CHARS: Final = 200  # of a value or an input row in the HTML page
MISSING: Final = "\u2013"  # an en dash: nothing to show
# the page's only style; the gateway's policy header names it by its hash, so it is inlined as the file is
STYLE: Final = (files("gateway.compare") / "templates" / "compare.css").read_text(encoding="utf-8")

_PAGE: Final = jinja2.Environment(
    loader=jinja2.PackageLoader("gateway.compare", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
).get_template("compare.html.j2")

Row = tuple[list[Markup], bool]  # a table row's cells, escaped, and whether to mark it as changed


def _escaped(text: str) -> Markup:
    # html.escape, not markupsafe's: the page has always written quotes as &#x27; and &quot;
    return Markup(html.escape(text))


def _e(value: Any) -> Markup:
    """Any value as escaped text (numbers to 6 significant digits), cut to SHOWN_CHARS."""
    if isinstance(value, datetime):
        text = f"{value:%Y-%m-%d %H:%M:%S} UTC"
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = value if isinstance(value, str) else show(value)
    return _escaped(text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "\u2026")


def _figure(value: float | None) -> Markup:
    return Markup(MISSING if value is None else f"{value:.3f}")


def _signed(value: float | None, higher_is_better: bool) -> Markup:
    if value is None:
        return Markup(MISSING)
    tone = "muted" if value == 0 else "up" if (value > 0) == higher_is_better else "down"
    return Markup(f"<span class='{tone}'>{value:+.3f}</span>")


def _share(part: int, whole: int) -> Markup:
    return Markup(f"{part} ({part / whole:.1%})" if whole else str(part))


def _pairs(values: Mapping[str, Any], empty: str) -> Markup:
    if not values:
        return Markup(f"<span class='muted'>{empty}</span>")
    return Markup("<br>").join(
        Markup(f"<code>{_escaped(k)}={_e(json.dumps(v))}</code>") for k, v in values.items()
    )


def _listed(rows: list[int], total: int) -> Markup:
    if not rows:
        return Markup("")
    more = f", \u2026 ({total - len(rows)} more)" if total > len(rows) else ""
    return Markup(f"<br><span class='muted'>rows {', '.join(str(r) for r in rows)}{more}</span>")


def _text(value: object) -> Markup:
    """A figure or a fixed word: nothing in it to escape."""
    return Markup(str(value))


def _what_ran(a: ComparedJob, b: ComparedJob) -> list[Row]:
    """Each job's pipeline, version, flags, truth, failures and finish, marked where they differ."""
    return [
        ([_text("pipeline"), _e(a.pipeline or MISSING), _e(b.pipeline or MISSING)], a.pipeline != b.pipeline),
        (
            [_text("version"), _e(a.pipeline_version or MISSING), _e(b.pipeline_version or MISSING)],
            a.pipeline_version != b.pipeline_version,
        ),
        ([_text("flags"), _pairs(a.flags, "(defaults)"), _pairs(b.flags, "(defaults)")], a.flags != b.flags),
        ([_text("truth"), _pairs(a.truth, "(none)"), _pairs(b.truth, "(none)")], a.truth != b.truth),
        (
            [_text("rows failed"), _text(a.rows_failed), _text(b.rows_failed)],
            a.rows_failed != b.rows_failed,
        ),
        ([_text("finished"), _e(a.finished_at or MISSING), _e(b.finished_at or MISSING)], False),
    ]


def _summary(comparison: JobComparison) -> list[Row]:
    """The rows of the file: compared, with a decision changed, with any field changed, failed."""
    return [
        ([_text("rows in the file"), _text(comparison.rows)], False),
        ([_text("with an output in both jobs"), _text(comparison.compared)], False),
        (
            [_text("whose decisions changed"), _share(comparison.decisions_changed, comparison.compared)],
            comparison.decisions_changed > 0,
        ),
        (
            [
                _text("whose output changed (any field; a number past its tolerance)"),
                _share(comparison.rows_changed, comparison.compared),
            ],
            comparison.rows_changed > 0,
        ),
        ([_text("failed in one job only"), _text(comparison.failed_in_one)], comparison.failed_in_one > 0),
        ([_text("failed in both"), _text(comparison.failed_in_both)], False),
    ]


def _fields(comparison: JobComparison) -> list[Row]:
    """Each field: what it is to the comparison, the rows it changed on, how far a number moved."""
    body = []
    for change in comparison.fields:
        drift = [change.median_difference, change.p95_difference, change.largest_difference]
        cells = [
            _e(change.field),
            _text(change.compared_as),
            _share(change.changed, comparison.compared),
            *(_text("") if value is None else _text(figure(value)) for value in drift),
            _text("") if change.compared_as != "number" else _tolerance(change.tolerance),
        ]
        body.append((cells, change.changed > 0))
    return body


def _tolerance(value: float | None) -> Markup:
    return _text(f"{TOLERANCE_SHARE:.0%} of the larger value") if value is None else _text(figure(value))


def _scores(scores: list[ScoreChange]) -> list[Row]:
    """Each scored field in both jobs: the measure, the difference, the rows fixed and broken."""
    body = []
    for score in scores:
        higher = score.measure == "accuracy"
        cells = [
            Markup(f"{_e(score.field)} <span class='muted'>(column {_e(score.column)})</span>"),
            _text("accuracy" if higher else "MAE"),
            _text(score.scored),
            _figure(score.a),
            _figure(score.b),
            _signed(score.difference, higher),
            Markup(f"{score.fixed}{_listed(score.fixed_rows, score.fixed)}"),
            Markup(f"{score.broken}{_listed(score.broken_rows, score.broken)}"),
        ]
        body.append((cells, score.fixed + score.broken > 0))
    return body


def _changed_rows(comparison: JobComparison) -> dict[str, Any] | None:
    """The changed rows listed, a line per changed field, the row and its input on the first."""
    if not comparison.changed_rows:
        return None
    body: list[Row] = []
    for changed in comparison.changed_rows:
        cells = "; ".join(f"{column}: {show(value)}" for column, value in changed.input.items())
        for index, change in enumerate(changed.changes):
            first = index == 0
            row = [
                _text(changed.row) if first else _text(""),
                _e(cells) if first else _text(""),
                _e(change.field),
                _e(change.before),
                _e(change.after),
            ]
            body.append((row, False))
    shown = len(comparison.changed_rows)
    return {
        "rows": body,
        "shown": shown,
        "total": comparison.rows_changed,
        "more": comparison.rows_changed > shown,
    }


def render_html(comparison: JobComparison) -> str:
    """The comparison as one self-contained HTML page (every value escaped)."""
    a, b = comparison.a, comparison.b
    files_shown = _escaped(a.file_name) + (
        Markup(f" (job B: {_escaped(b.file_name)})") if b.file_name != a.file_name else Markup("")
    )
    return _PAGE.render(
        style=Markup(STYLE),
        a_id=_escaped(a.id),
        b_id=_escaped(b.id),
        rows=comparison.rows,
        files=files_shown,
        ran=_what_ran(a, b),
        summary=_summary(comparison),
        scores=_scores(comparison.scores),
        a_name=_escaped(a.name),
        b_name=_escaped(b.name),
        headline=_escaped(comparison.headline),
        fields=_fields(comparison),
        transitions=[
            {
                "field": _escaped(change.field),
                "rows": [
                    ([_e(t.before), _e(t.after), _text(t.rows)], t.before != t.after)
                    for t in change.transitions
                ],
            }
            for change in comparison.fields
            if change.transitions
        ],
        changed=_changed_rows(comparison),
        failed=[
            ([_text(f.row), _text(f"job {f.failed_in.upper()}"), _e(f.error)], False)
            for f in comparison.failed_rows
        ],
    )
