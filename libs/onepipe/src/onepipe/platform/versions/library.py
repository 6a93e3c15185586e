"""The edge-case library replayed on one version: each case with that version's answer, right or wrong.

What people who report cases want to see (the gateway's GET /v1/cases/library, the UI's Cases page):
the whole library, not only the cases some version fails. Each case is answered and judged by the
promotion's own rules (`answer_cases`, `is_right` in onepipe.platform.versions.evidence), so the page,
a promotion and a scheduled check never disagree on whether a case is right. Here rather than in
onepipe.platform.cases, which the evidence imports.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field

from onepipe.platform.cases import Case, CaseSource, wrong_fields
from onepipe.platform.versions.evidence import Answer, Candidate, answer_cases, is_right


class LibraryCase(BaseModel):
    """One case of the library with the version's answer, and whether it is the answer a person expects."""

    id: str = Field(description="The case's id: a hash of its input and flags.")
    input: dict[str, Any] = Field(description="The input, as the pipeline's input schema says.")
    flags: dict[str, Any] = Field(description="The flags it runs with, besides their defaults.")
    expected: dict[str, Any] = Field(description="Output field -> the value a person expects.")
    note: str = Field(description="Why the case matters.")
    source: CaseSource = Field(description="Where it came from: ui, app (team), reviewer or engineer.")
    added_at: datetime = Field(description="When it was added.")
    must_pass: bool = Field(
        description="A wrong answer fails `just cases`; a challenger that breaks it is not promoted."
    )
    answer: dict[str, Any] | None = Field(
        description="The version's whole answer; null when it gave none (`error` says why)."
    )
    right: bool = Field(description="The version answered every expected field as expected.")
    wrong: list[str] = Field(description="The expected fields it answers otherwise (all, without an answer).")
    error: str | None = Field(None, description="Why the version gave no answer, if it did not.")


class LibraryReplay(BaseModel):
    """The whole library replayed on one version, in the library's order, with the counts."""

    pipeline: str
    label: str = Field(description="The alias of the version that answered: champion.")
    version: str = Field(description="The hash of the version that answered every case.")
    total: int = Field(description="Cases in the library.")
    right: int = Field(description="Cases it answers as expected.")
    must_pass: int = Field(description="Cases marked must-pass.")
    must_pass_wrong: int = Field(
        description="Must-pass cases it answers otherwise: `just cases` fails on any."
    )
    replayed_at: datetime
    seconds: float = Field(description="How long the replay took.")
    cases: list[LibraryCase]


def replay_library(candidate: Candidate, cases: Sequence[Case]) -> LibraryReplay:
    """Every case answered by one version (one run per flag set), judged, and counted."""
    started, clock = datetime.now(UTC), time.monotonic()
    answered = [
        library_case(case, answer) for case, answer in zip(cases, answer_cases(candidate, cases), strict=True)
    ]
    return LibraryReplay(
        pipeline=candidate.pipeline,
        label=candidate.label,
        version=candidate.version,
        total=len(answered),
        right=sum(case.right for case in answered),
        must_pass=sum(case.must_pass for case in answered),
        must_pass_wrong=sum(case.must_pass and not case.right for case in answered),
        replayed_at=started,
        seconds=round(time.monotonic() - clock, 3),
        cases=answered,
    )


def library_case(case: Case, answer: Answer) -> LibraryCase:
    """One case with a version's answer, judged as a promotion judges it."""
    output, error = answer
    right = is_right(case, answer)
    return LibraryCase(
        **case.model_dump(exclude={"reported_by"}),  # a key's name stays in the repo's file
        answer=output,
        right=right,
        wrong=[] if right else (list(case.expected) if output is None else wrong_fields(case, output)),
        error=error,
    )
