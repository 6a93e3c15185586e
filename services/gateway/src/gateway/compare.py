"""Two finished jobs on the same file, compared row by row: what a change of flags or pipeline did.

Each job's own flag set is compared (its `output`, not the outputs of its compare flags).
Both jobs' results are read in step, one row at a time, keeping counts and capped lists of
rows, so jobs of any size compare in bounded memory. Fields, categories and roles come from
the pipeline's output schema (plus any other field an output holds); scores against the
truth judge a row as the worker's reports do (onepipe.values).
"""

from __future__ import annotations

import html
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from itertools import zip_longest
from typing import Any, Final, Literal

from pydantic import BaseModel, Field

from onepipe.jobs import JobMeta, RowResult
from onepipe.outputs import MAX_CATEGORIES, OTHER, CategoryCap, Outputs
from onepipe.storage import JobStore
from onepipe.values import CATEGORICAL, abs_error, is_right, read_truth, show

LISTED_ROWS: Final = 200  # changed rows, and rows of each other list, shown in full
SHOWN_CHARS: Final = 200  # of a value or an input row in the HTML page


class NotComparableError(ValueError):
    """The two jobs cannot be compared; the message says why, for people."""


class NotFinishedError(NotComparableError):
    """A job has not succeeded (yet)."""


class DifferentFilesError(NotComparableError):
    """The jobs did not run on the same file: `row` is the first row that differs, `why` how."""

    def __init__(self, row: int, why: str, files: str = "") -> None:
        super().__init__(f"the jobs did not run on the same file{files}: row {row} {why}")
        self.row, self.why = row, why


class ComparedJob(BaseModel):
    """One side of a comparison: which job, and what ran."""

    id: str
    file_name: str
    pipeline: str | None
    pipeline_version: str | None
    flags: dict[str, Any] = Field(description="The job's flag set (the one compared).")
    truth: dict[str, str] = Field(description="Output field -> the file's column of right answers.")
    rows_failed: int = Field(description="Rows without an output in this job.")
    finished_at: datetime | None


class Transition(BaseModel):
    """How many rows had `before` in job A and `after` in job B, for one categorical field."""

    before: str
    after: str
    rows: int


class FieldChange(BaseModel):
    """One output field over the rows with an output in both jobs: how often it changed, and to what."""

    field: str
    changed: int = Field(description="Rows where the field's value differs.")
    categorical: bool = Field(description="Whether its values are categories (transitions are counted).")
    transitions: list[Transition] = Field(
        description="Categorical fields: every before -> after pair with its rows, most rows first "
        f"(values beyond the {MAX_CATEGORIES}th seen pooled as {OTHER})."
    )


class ValueChange(BaseModel):
    """One field of one row: its value in job A and in job B."""

    field: str
    before: Any
    after: Any


class ChangedRow(BaseModel):
    """A row whose output differs between the jobs: its input cells and every field that changed."""

    row: int
    input: dict[str, Any]
    changes: list[ValueChange]


class FailedRow(BaseModel):
    """A row that failed in one job only."""

    row: int
    failed_in: Literal["a", "b"]
    error: str


class ScoreChange(BaseModel):
    """One output field scored against its truth column in both jobs, over the rows scored in both."""

    field: str
    column: str
    kind: Literal["categorical", "numeric"]
    measure: Literal["accuracy", "mae"] = Field(
        description="accuracy for categorical fields (higher is better), mean absolute error for numbers."
    )
    scored: int = Field(description="Rows with a truth value and an output in both jobs.")
    blank: int = Field(
        description="Rows with an output in both jobs but no truth value (blank; for numbers, not a number)."
    )
    a: float | None
    b: float | None
    difference: float | None = Field(description="b - a.")
    fixed: int = Field(description="Rows wrong in A and right in B (numbers: closer to the truth in B).")
    broken: int = Field(description="Rows right in A and wrong in B (numbers: farther from the truth in B).")
    fixed_rows: list[int] = Field(description=f"The first {LISTED_ROWS} fixed rows.")
    broken_rows: list[int] = Field(description=f"The first {LISTED_ROWS} broken rows.")


class JobComparison(BaseModel):
    """What changed from job A to job B on the same file: rows, fields, categories, scores."""

    a: ComparedJob
    b: ComparedJob
    rows: int = Field(description="Rows of the file.")
    compared: int = Field(description="Rows with an output in both jobs.")
    rows_changed: int = Field(description="Rows with an output in both jobs where any output field differs.")
    fields: list[FieldChange]
    changed_rows: list[ChangedRow] = Field(description=f"The first {LISTED_ROWS} changed rows.")
    failed_in_one: int = Field(description="Rows that failed in one job and not in the other.")
    failed_in_both: int
    failed_rows: list[FailedRow] = Field(description=f"The first {LISTED_ROWS} rows that failed in one job.")
    scores: list[ScoreChange] = Field(description="One per output field that either job scored.")
    listed: int = Field(LISTED_ROWS, description="How many rows each list holds at most.")


@dataclass
class _Categories:
    """One categorical field's before -> after counts, its values told apart up to MAX_CATEGORIES."""

    seen: CategoryCap = field(default_factory=CategoryCap)
    pairs: Counter[tuple[str, str]] = field(default_factory=Counter)

    def key(self, value: Any) -> str:
        return self.seen.key(show(value))


@dataclass
class _Score:
    """One scored field's running figures."""

    name: str
    column: str
    kind: str
    boolean: bool
    scored: int = 0
    blank: int = 0
    total_a: float = 0.0  # rows right (categorical) or summed absolute errors (numeric)
    total_b: float = 0.0
    fixed: int = 0
    broken: int = 0
    fixed_rows: list[int] = field(default_factory=list)
    broken_rows: list[int] = field(default_factory=list)

    def add(self, row: int, cell: Any, first: Mapping[str, Any], second: Mapping[str, Any]) -> None:
        truth = read_truth(cell, self.kind, self.boolean)
        if truth is None:
            self.blank += 1
            return
        if isinstance(truth, str):
            right_a, right_b = is_right(truth, first.get(self.name)), is_right(truth, second.get(self.name))
            score_a, score_b = float(right_a), float(right_b)
            better, worse = right_b and not right_a, right_a and not right_b
        else:
            error_a, error_b = (
                abs_error(truth, first.get(self.name)),
                abs_error(truth, second.get(self.name)),
            )
            if error_a is None or error_b is None:
                return
            score_a, score_b = error_a, error_b
            better, worse = error_b < error_a, error_b > error_a
        self.scored += 1
        self.total_a += score_a
        self.total_b += score_b
        if better:
            self.fixed += 1
            _note(self.fixed_rows, row)
        if worse:
            self.broken += 1
            _note(self.broken_rows, row)

    def result(self) -> ScoreChange:
        a = self.total_a / self.scored if self.scored else None
        b = self.total_b / self.scored if self.scored else None
        categorical = self.kind == CATEGORICAL
        return ScoreChange(
            field=self.name,
            column=self.column,
            kind="categorical" if categorical else "numeric",
            measure="accuracy" if categorical else "mae",
            scored=self.scored,
            blank=self.blank,
            a=a,
            b=b,
            difference=None if a is None or b is None else b - a,
            fixed=self.fixed,
            broken=self.broken,
            fixed_rows=self.fixed_rows,
            broken_rows=self.broken_rows,
        )


def _note(rows: list[int], row: int) -> None:
    if len(rows) < LISTED_ROWS:
        rows.append(row)


def check_comparable(first: JobMeta, second: JobMeta) -> None:
    """Refuse jobs that have not succeeded, or whose row counts already say they ran on other files."""
    for side, meta in (("A", first), ("B", second)):
        if meta.state != "succeeded":
            raise NotFinishedError(
                f"job {side} ({meta.id}) is {meta.state}; only jobs that succeeded can be compared"
            )
    a_rows, b_rows = first.rows_total, second.rows_total
    if a_rows is not None and b_rows is not None and a_rows != b_rows:
        raise DifferentFilesError(
            min(a_rows, b_rows) + 1,
            f"is in job {'A' if a_rows > b_rows else 'B'} only",
            f" (job A has {a_rows} rows, job B {b_rows})",
        )


def _in_step(
    first: Iterable[RowResult], second: Iterable[RowResult]
) -> Iterator[tuple[RowResult, RowResult]]:
    """Both jobs' results row by row; the first row that is not the same in both is refused."""
    for a, b in zip_longest(first, second):
        if a is None or b is None:
            only = a or b
            raise DifferentFilesError(only.row if only else 0, f"is in job {'A' if b is None else 'B'} only")
        if a.row != b.row:
            raise DifferentFilesError(min(a.row, b.row), f"is in job {'A' if a.row < b.row else 'B'} only")
        if a.input != b.input:
            columns = [c for c in dict.fromkeys([*a.input, *b.input]) if a.input.get(c) != b.input.get(c)]
            raise DifferentFilesError(a.row, f"differs (column {', '.join(repr(c) for c in columns)})")
        yield a, b


def compare_jobs(
    store: JobStore, first: JobMeta, second: JobMeta, output_schema: Mapping[str, Any]
) -> JobComparison:
    """Compare job A (`first`) with job B (`second`); raises NotComparableError saying why they cannot be."""
    check_comparable(first, second)
    outputs = Outputs.from_schema(output_schema)
    properties, label = outputs.fields, outputs.label
    # fields in schema order (the label first); a field the schema does not name is added when seen
    fields = list(dict.fromkeys([*([label] if label in properties else []), *properties]))
    changed: Counter[str] = Counter()
    categories = {
        name: _Categories() for name in fields if name == label or properties[name].categories is not None
    }
    scores: dict[str, _Score] = {}
    for name, column in {**second.spec.truth, **first.spec.truth}.items():  # A's column wins a field
        kind = properties[name].scored if name in properties else None
        if kind is not None:
            scores[name] = _Score(name, column, kind, properties[name].boolean)
    rows = compared = rows_changed = failed_in_one = failed_in_both = 0
    failed_a = failed_b = 0
    changed_rows: list[ChangedRow] = []
    failed_rows: list[FailedRow] = []
    for a, b in _in_step(store.iter_results(first.id), store.iter_results(second.id)):
        rows += 1
        failed_a += a.output is None
        failed_b += b.output is None
        if a.output is None or b.output is None:
            if a.output is None and b.output is None:
                failed_in_both += 1
            else:
                failed_in_one += 1
                if len(failed_rows) < LISTED_ROWS:
                    side: Literal["a", "b"] = "a" if a.output is None else "b"
                    reason = (a if side == "a" else b).error or "no output"
                    failed_rows.append(FailedRow(row=a.row, failed_in=side, error=reason))
            continue
        compared += 1
        for name in [*a.output, *b.output]:
            if name not in properties and name not in fields:
                fields.append(name)
        differing = [name for name in fields if a.output.get(name) != b.output.get(name)]
        changed.update(differing)
        for name, counts in categories.items():
            counts.pairs[(counts.key(a.output.get(name)), counts.key(b.output.get(name)))] += 1
        for score in scores.values():
            score.add(a.row, a.input.get(score.column), a.output, b.output)
        if differing:
            rows_changed += 1
            if len(changed_rows) < LISTED_ROWS:
                changed_rows.append(
                    ChangedRow(
                        row=a.row,
                        input=a.input,
                        changes=[
                            ValueChange(field=name, before=a.output.get(name), after=b.output.get(name))
                            for name in differing
                        ],
                    )
                )
    return JobComparison(
        a=_side(first, failed_a),
        b=_side(second, failed_b),
        rows=rows,
        compared=compared,
        rows_changed=rows_changed,
        fields=[
            FieldChange(
                field=name,
                changed=changed[name],
                categorical=name in categories,
                transitions=[
                    Transition(before=before, after=after, rows=count)
                    for (before, after), count in sorted(
                        categories[name].pairs.items(), key=lambda item: (-item[1], item[0])
                    )
                ]
                if name in categories
                else [],
            )
            for name in fields
        ],
        changed_rows=changed_rows,
        failed_in_one=failed_in_one,
        failed_in_both=failed_in_both,
        failed_rows=failed_rows,
        scores=[score.result() for score in scores.values()],
    )


def _side(meta: JobMeta, failed: int) -> ComparedJob:
    return ComparedJob(
        id=meta.id,
        file_name=meta.spec.file_name,
        pipeline=meta.pipeline,
        pipeline_version=meta.pipeline_version,
        flags=meta.spec.flags,
        truth=meta.spec.truth,
        rows_failed=failed,
        finished_at=meta.finished_at,
    )


# -- the HTML page -------------------------------------------------------------------------------

STYLE: Final = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 72rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; text-align: left; vertical-align: top; }
th { background: #f5f5f5; } code { font-size: 12px; }
.up { color: #1a7f37; } .down { color: #cf222e; } .muted { color: #777; }
tr.changed td { background: #fff8e1; }
"""
MISSING: Final = "\u2013"  # an en dash: nothing to show


def _e(value: Any) -> str:
    """Any value as escaped text (numbers to 6 significant digits), cut to SHOWN_CHARS."""
    if isinstance(value, datetime):
        text = f"{value:%Y-%m-%d %H:%M:%S} UTC"
    elif isinstance(value, float):
        text = f"{value:.6g}"
    else:
        text = value if isinstance(value, str) else show(value)
    return html.escape(text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "\u2026")


def _table(header: list[str], body: Iterable[tuple[list[str], bool]]) -> str:
    """A table of cells already escaped, each row with whether to mark it as changed."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    lines = "".join(
        ("<tr class='changed'>" if marked else "<tr>") + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"
        for cells, marked in body
    )
    return f"<table><tr>{head}</tr>{lines}</table>"


def _figure(value: float | None) -> str:
    return MISSING if value is None else f"{value:.3f}"


def _signed(value: float | None, higher_is_better: bool) -> str:
    if value is None:
        return MISSING
    tone = "muted" if value == 0 else "up" if (value > 0) == higher_is_better else "down"
    return f"<span class='{tone}'>{value:+.3f}</span>"


def _share(part: int, whole: int) -> str:
    return f"{part} ({part / whole:.1%})" if whole else str(part)


def _pairs(values: Mapping[str, Any], empty: str) -> str:
    if not values:
        return f"<span class='muted'>{empty}</span>"
    return "<br>".join(f"<code>{html.escape(k)}={_e(json.dumps(v))}</code>" for k, v in values.items())


def _listed(rows: list[int], total: int) -> str:
    if not rows:
        return ""
    more = f", \u2026 ({total - len(rows)} more)" if total > len(rows) else ""
    return f"<br><span class='muted'>rows {', '.join(str(r) for r in rows)}{more}</span>"


def render_html(comparison: JobComparison) -> str:
    """The comparison as one self-contained HTML page (every value escaped)."""
    a, b = comparison.a, comparison.b
    files = html.escape(a.file_name) + (
        f" (job B: {html.escape(b.file_name)})" if b.file_name != a.file_name else ""
    )
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>Job {html.escape(a.id)} vs {html.escape(b.id)}</title><style>{STYLE}</style></head><body>",
        f"<h1>What changed from job A <code>{html.escape(a.id)}</code> to job B "
        f"<code>{html.escape(b.id)}</code></h1>",
        f"<p>The same {comparison.rows} rows of <b>{files}</b> in both jobs; each job's own flag set is "
        "compared.</p>",
        "<h2>What ran</h2>",
        _table(
            ["", "job A", "job B"],
            [
                (
                    ["pipeline", _e(a.pipeline or MISSING), _e(b.pipeline or MISSING)],
                    a.pipeline != b.pipeline,
                ),
                (
                    ["version", _e(a.pipeline_version or MISSING), _e(b.pipeline_version or MISSING)],
                    a.pipeline_version != b.pipeline_version,
                ),
                (["flags", _pairs(a.flags, "(defaults)"), _pairs(b.flags, "(defaults)")], a.flags != b.flags),
                (["truth", _pairs(a.truth, "(none)"), _pairs(b.truth, "(none)")], a.truth != b.truth),
                (["rows failed", str(a.rows_failed), str(b.rows_failed)], a.rows_failed != b.rows_failed),
                (["finished", _e(a.finished_at or MISSING), _e(b.finished_at or MISSING)], False),
            ],
        ),
        "<h2>Summary</h2>",
        _table(
            ["", "rows"],
            [
                (["rows in the file", str(comparison.rows)], False),
                (["with an output in both jobs", str(comparison.compared)], False),
                (
                    [
                        "whose output changed (any field)",
                        _share(comparison.rows_changed, comparison.compared),
                    ],
                    comparison.rows_changed > 0,
                ),
                (["failed in one job only", str(comparison.failed_in_one)], comparison.failed_in_one > 0),
                (["failed in both", str(comparison.failed_in_both)], False),
            ],
        ),
    ]
    if comparison.scores:
        parts += ["<h2>Scores against the truth</h2>", _scores(comparison.scores)]
    parts += [
        "<h2>Output fields</h2>",
        _table(
            ["field", "rows changed"],
            [
                ([_e(f.field), _share(f.changed, comparison.compared)], f.changed > 0)
                for f in comparison.fields
            ],
        ),
    ]
    for change in comparison.fields:
        if change.transitions:
            parts += [
                f"<h2>{html.escape(change.field)}: job A \u2192 job B</h2>",
                _table(
                    ["job A", "job B", "rows"],
                    [
                        ([_e(t.before), _e(t.after), str(t.rows)], t.before != t.after)
                        for t in change.transitions
                    ],
                ),
            ]
    parts += ["<h2>Changed rows</h2>", _changed_rows(comparison)]
    if comparison.failed_rows:
        parts += [
            "<h2>Rows that failed in one job</h2>",
            _table(
                ["row", "failed in", "why"],
                [
                    ([str(f.row), f"job {f.failed_in.upper()}", _e(f.error)], False)
                    for f in comparison.failed_rows
                ],
            ),
        ]
    parts.append("</body></html>")
    return "\n".join(parts)


def _scores(scores: list[ScoreChange]) -> str:
    header = ["field", "measure", "rows scored", "job A", "job B", "B \u2212 A", "fixed", "broken"]
    body = []
    for score in scores:
        higher = score.measure == "accuracy"
        body.append(
            (
                [
                    f"{_e(score.field)} <span class='muted'>(column {_e(score.column)})</span>",
                    "accuracy" if higher else "MAE",
                    str(score.scored),
                    _figure(score.a),
                    _figure(score.b),
                    _signed(score.difference, higher),
                    f"{score.fixed}{_listed(score.fixed_rows, score.fixed)}",
                    f"{score.broken}{_listed(score.broken_rows, score.broken)}",
                ],
                score.fixed + score.broken > 0,
            )
        )
    note = (
        "<p class='muted'>Over the rows with a truth value and an output in both jobs. Fixed: wrong in A "
        "and right in B (numbers: closer to the truth in B); broken: the other way.</p>"
    )
    return note + _table(header, body)


def _changed_rows(comparison: JobComparison) -> str:
    if not comparison.changed_rows:
        return "<p>No row's output changed.</p>"
    shown = len(comparison.changed_rows)
    note = (
        f"<p class='muted'>The first {shown} of {comparison.rows_changed}.</p>"
        if comparison.rows_changed > shown
        else ""
    )
    body = []
    for changed in comparison.changed_rows:
        cells = "; ".join(f"{column}: {show(value)}" for column, value in changed.input.items())
        for index, change in enumerate(changed.changes):
            first = index == 0
            body.append(
                (
                    [
                        str(changed.row) if first else "",
                        _e(cells) if first else "",
                        _e(change.field),
                        _e(change.before),
                        _e(change.after),
                    ],
                    False,
                )
            )
    return note + _table(["row", "input", "field", "job A", "job B"], body)
