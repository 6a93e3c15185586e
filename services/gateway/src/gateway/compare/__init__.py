"""Two finished jobs on the same file, compared: what a change of flags or pipeline did.

The parts: `models` (what a comparison answers), `counting` (the jobs read in step, row by
row) and `page` (the comparison as an HTML page, from templates/compare.html.j2).
"""

from gateway.compare.counting import check_comparable, compare_jobs
from gateway.compare.models import (
    LISTED_ROWS,
    ChangedRow,
    ComparedJob,
    DifferentFilesError,
    FailedRow,
    FieldChange,
    JobComparison,
    NotComparableError,
    NotFinishedError,
    ScoreChange,
    Transition,
    ValueChange,
)
from gateway.compare.page import STYLE, render_html

__all__ = [
    "LISTED_ROWS",
    "STYLE",
    "ChangedRow",
    "ComparedJob",
    "DifferentFilesError",
    "FailedRow",
    "FieldChange",
    "JobComparison",
    "NotComparableError",
    "NotFinishedError",
    "ScoreChange",
    "Transition",
    "ValueChange",
    "check_comparable",
    "compare_jobs",
    "render_html",
]
