"""What a comparison of two jobs answers (GET /v1/jobs/{a}/compare/{b}), and why it may not."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, Field

from onepipe.platform.schema.outputs import MAX_CATEGORIES, OTHER

LISTED_ROWS: Final = 200  # changed rows, and rows of each other list, shown in full


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
    name: str = Field(
        description="What this side is called in the comparison: what differs from the other job (its "
        "version as asked and its hash, the flags that differ: `classifier=minilm`, or a step variant's "
        "name), else `job A` / `job B`."
    )
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
    compared_as: Literal["decision", "number", "other"] = Field(
        description="decision: categories, booleans and the label, review and known roles, changed on any "
        "change of value; number: changed only past its tolerance; other: lists, objects, text, changed "
        "on any change."
    )
    changed: int = Field(description="Rows where the field changed (a number: past its tolerance).")
    tolerance: float | None = Field(
        None,
        description="Numbers: how far a value may move and count as unchanged (`x-tolerance`, else 5% of the "
        "schema's range, else 0 for integers); null for other numbers: 5% of the larger of the two values.",
    )
    median_difference: float | None = Field(None, description="Numbers: the median |B - A|.")
    p95_difference: float | None = Field(None, description="Numbers: the 95th percentile of |B - A|.")
    largest_difference: float | None = Field(None, description="Numbers: the largest |B - A|.")
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
    headline: str = Field(
        description="The comparison in one sentence, decisions first, then how far the numbers moved."
    )
    decisions_changed: int = Field(description="Rows with an output in both jobs where any decision changed.")
    rows_changed: int = Field(
        description="Rows with an output in both jobs where any output field changed (numbers past their "
        "tolerance)."
    )
    fields: list[FieldChange]
    changed_rows: list[ChangedRow] = Field(description=f"The first {LISTED_ROWS} changed rows.")
    failed_in_one: int = Field(description="Rows that failed in one job and not in the other.")
    failed_in_both: int
    failed_rows: list[FailedRow] = Field(description=f"The first {LISTED_ROWS} rows that failed in one job.")
    scores: list[ScoreChange] = Field(description="One per output field that either job scored.")
    listed: int = Field(LISTED_ROWS, description="How many rows each list holds at most.")
