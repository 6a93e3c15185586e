"""Two finished jobs on the same file, compared row by row: what a change of flags or pipeline did.

Each job's own flag set is compared (its `output`, not the outputs of its compare flags).
Both jobs' results are read in step, one row at a time, keeping counts and capped lists of
rows, so jobs of any size compare in bounded memory. Fields, categories and roles come from
the description of the pipeline's outputs (onepipe.platform.schema.outputs; plus any other field an output
holds); what changed is the one rule of every comparison (onepipe.platform.schema.changes: decisions on
any change, numbers past their tolerance, their drift apart); each job is named by what differs from the
other (onepipe.platform.jobs.variants); scores against the truth judge a row as the worker's reports do
(onepipe.platform.schema.values).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any, Literal

from gateway.compare.models import (
    LISTED_ROWS,
    ChangedRow,
    ComparedJob,
    DifferentFilesError,
    FailedRow,
    FieldChange,
    JobComparison,
    NotFinishedError,
    ScoreChange,
    Transition,
    ValueChange,
)
from onepipe.contract import PipelineInfo
from onepipe.platform.jobs.storage import JobStore
from onepipe.platform.jobs.types import JobMeta, RowResult
from onepipe.platform.jobs.variants import jobs_variants
from onepipe.platform.schema.changes import ChangeTally
from onepipe.platform.schema.outputs import CategoryCap, Outputs
from onepipe.platform.schema.values import CATEGORICAL, abs_error, is_right, read_truth, show


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


@dataclass
class _Tally:
    """A comparison's running counts and capped lists, fed one pair of rows at a time."""

    changes: ChangeTally  # the fields in schema order (the label first), then any other as it is seen
    categories: dict[str, _Categories]
    scores: dict[str, _Score]
    rows: int = 0
    compared: int = 0
    failed_in_one: int = 0
    failed_in_both: int = 0
    failed_a: int = 0
    failed_b: int = 0
    changed_rows: list[ChangedRow] = field(default_factory=list)
    failed_rows: list[FailedRow] = field(default_factory=list)

    def add(self, a: RowResult, b: RowResult) -> None:
        """Count one row of both jobs."""
        self.rows += 1
        self.failed_a += a.output is None
        self.failed_b += b.output is None
        if a.output is None or b.output is None:
            self._add_failed(a, b)
            return
        self.compared += 1
        differing = self.changes.add(a.output, b.output)
        for name, counts in self.categories.items():
            counts.pairs[(counts.key(a.output.get(name)), counts.key(b.output.get(name)))] += 1
        for score in self.scores.values():
            score.add(a.row, a.input.get(score.column), a.output, b.output)
        if differing and len(self.changed_rows) < LISTED_ROWS:
            changes = [
                ValueChange(field=name, before=a.output.get(name), after=b.output.get(name))
                for name in differing
            ]
            self.changed_rows.append(ChangedRow(row=a.row, input=a.input, changes=changes))

    def _add_failed(self, a: RowResult, b: RowResult) -> None:
        if a.output is None and b.output is None:
            self.failed_in_both += 1
            return
        self.failed_in_one += 1
        if len(self.failed_rows) < LISTED_ROWS:
            side: Literal["a", "b"] = "a" if a.output is None else "b"
            reason = (a if side == "a" else b).error or "no output"
            self.failed_rows.append(FailedRow(row=a.row, failed_in=side, error=reason))

    def field_changes(self) -> list[FieldChange]:
        """Each field: the rows where it changed, a number's drift, and for categories what became what."""
        return [self._field_change(name) for name in self.changes.fields]

    def _field_change(self, name: str) -> FieldChange:
        changes, drift = self.changes, self.changes.drift.get(name)
        described = changes.outputs.fields.get(name)
        pairs = self.categories[name].pairs if name in self.categories else Counter()
        moved = drift is not None and drift.count > 0
        return FieldChange(
            field=name,
            compared_as=changes.compared_as(name),
            changed=changes.changed[name],
            tolerance=described.tolerance if drift is not None and described is not None else None,
            median_difference=drift.median if drift is not None and moved else None,
            p95_difference=drift.p95 if drift is not None and moved else None,
            largest_difference=drift.largest if drift is not None and moved else None,
            categorical=name in self.categories,
            transitions=[
                Transition(before=before, after=after, rows=count)
                for (before, after), count in sorted(pairs.items(), key=lambda item: (-item[1], item[0]))
            ],
        )


def _tally(first: JobMeta, second: JobMeta, output_schema: Mapping[str, Any]) -> _Tally:
    """An empty tally of the fields, categories and scores the output schema and the jobs' truths name."""
    outputs = Outputs.from_schema(output_schema)
    properties, label = outputs.fields, outputs.label
    fields = outputs.compared()
    categories = {
        name: _Categories() for name in fields if name == label or properties[name].categories is not None
    }
    scores: dict[str, _Score] = {}
    for name, column in {**second.spec.truth, **first.spec.truth}.items():  # A's column wins a field
        kind = properties[name].scored if name in properties else None
        if kind is not None:
            scores[name] = _Score(name, column, kind, properties[name].boolean)
    return _Tally(ChangeTally(outputs, fields), categories, scores)


def compare_jobs(store: JobStore, first: JobMeta, second: JobMeta, info: PipelineInfo) -> JobComparison:
    """Compare job A (`first`) with job B (`second`); raises NotComparableError saying why they cannot be."""
    check_comparable(first, second)
    tally = _tally(first, second, info.output_schema)
    for a, b in _in_step(store.iter_results(first.id), store.iter_results(second.id)):
        tally.add(a, b)
    named = jobs_variants(first, second, info)
    return JobComparison(
        a=_side(first, named.first, tally.failed_a),
        b=_side(second, named.second, tally.failed_b),
        rows=tally.rows,
        compared=tally.compared,
        headline=tally.changes.headline(),
        decisions_changed=tally.changes.decisions_changed,
        rows_changed=tally.changes.rows_changed,
        fields=tally.field_changes(),
        changed_rows=tally.changed_rows,
        failed_in_one=tally.failed_in_one,
        failed_in_both=tally.failed_in_both,
        failed_rows=tally.failed_rows,
        scores=[score.result() for score in tally.scores.values()],
    )


def _side(meta: JobMeta, name: str, failed: int) -> ComparedJob:
    return ComparedJob(
        id=meta.id,
        name=name,
        file_name=meta.spec.file_name,
        pipeline=meta.pipeline,
        pipeline_version=meta.pipeline_version,
        flags=meta.spec.flags,
        truth=meta.spec.truth,
        rows_failed=failed,
        finished_at=meta.finished_at,
    )
