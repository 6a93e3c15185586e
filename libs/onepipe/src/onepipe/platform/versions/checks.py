"""Checks on a schedule: the edge-case library replayed on the live champion and challenger.

Each case is judged by the promotion's rules (onepipe.platform.versions.evidence), so a check says
between promotions what a promotion would see: which cases each version fails, which must-pass ones,
and what changed since the last check that ran. The worker's beat runs one every
WORKER_CHECK_INTERVAL (batch_worker.checks); the gateway shows them (GET /v1/versions/checks, /metrics).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime

from onepipe.platform.cases import Case
from onepipe.platform.versions.evidence import (
    Answer,
    Candidate,
    answer_cases,
    case_counts,
    case_verdict,
    is_right,
    shown,
)
from onepipe.platform.versions.types import (
    CHALLENGER,
    CHAMPION,
    COULD_NOT_RUN,
    CaseChange,
    CheckedCase,
    CheckedVersion,
    CheckRun,
)


def check_id(at: datetime) -> str:
    """A check's id: when it started, so that ids sort by time."""
    return f"{at:%Y%m%d%H%M%S%f}"


def run_check(
    pipeline: str, candidates: Sequence[Candidate], cases: Sequence[Case], previous: CheckRun | None
) -> CheckRun:
    """The cases replayed on each version (champion first), judged, and compared with `previous`."""
    started, clock = datetime.now(UTC), time.monotonic()
    answers = {candidate.label: answer_cases(candidate, cases) for candidate in candidates}
    versions = [_checked(candidate, cases, answers[candidate.label]) for candidate in candidates]
    run = CheckRun(
        id=check_id(started),
        pipeline=pipeline,
        started_at=started,
        seconds=0.0,
        ok=True,
        cases=len(cases),
        versions=versions,
        failing=[
            failing
            for index, case in enumerate(cases)
            if (failing := _failing(case, {label: found[index] for label, found in answers.items()}))
        ],
    )
    if CHAMPION in answers and CHALLENGER in answers:
        verdicts = [
            case_verdict(*judged)
            for judged in zip(cases, answers[CHAMPION], answers[CHALLENGER], strict=True)
        ]
        run.outcomes = case_counts(verdicts)
        run.must_pass_broken = [v.id for v in verdicts if v.outcome == "broken" and v.must_pass]
    run = compared(run, previous, {case.id: case for case in cases})
    run.seconds = round(time.monotonic() - clock, 3)
    return run


def failed_check(pipeline: str, reason: str, started: datetime, seconds: float) -> CheckRun:
    """A check that could not run, and why in one sentence ("The check could not run: <reason>.")."""
    return CheckRun(
        id=check_id(started),
        pipeline=pipeline,
        started_at=started,
        seconds=round(seconds, 3),
        ok=False,
        error=f"{COULD_NOT_RUN}{reason.rstrip('.')}.",
    )


def compared(run: CheckRun, previous: CheckRun | None, cases: dict[str, Case]) -> CheckRun:
    """The run with what changed since `previous` (the last check that ran): cases newly failing or passing
    on each version, and one sentence saying so."""
    if previous is None:
        run.changes = "The first check: nothing to compare with yet."
        return run
    before = {version.label: version for version in previous.versions}
    for version in run.versions:
        earlier = before.get(version.label)
        if earlier is None:
            continue
        now, then = set(version.failing), set(earlier.failing)
        run.newly_failing += [_change(cases[i], version.label) for i in version.failing if i not in then]
        run.newly_passing += [
            _change(cases[i], version.label) for i in earlier.failing if i not in now and i in cases
        ]
    run.compared_with = previous.id
    run.changes = _sentence(run, previous)
    return run


def _checked(candidate: Candidate, cases: Sequence[Case], answers: Sequence[Answer]) -> CheckedVersion:
    failing = [case for case, answer in zip(cases, answers, strict=True) if not is_right(case, answer)]
    return CheckedVersion(
        label=candidate.label,
        version=candidate.version,
        number=candidate.number,
        passed=len(cases) - len(failing),
        failed=len(failing),
        failing=[case.id for case in failing],
        must_pass_failing=[case.id for case in failing if case.must_pass],
    )


def _failing(case: Case, answers: dict[str, Answer]) -> CheckedCase | None:
    failing_on = [label for label, answer in answers.items() if not is_right(case, answer)]
    if not failing_on:
        return None
    return CheckedCase(
        id=case.id,
        note=case.note,
        must_pass=case.must_pass,
        expected=case.expected,
        answers={label: shown(case, output) for label, (output, _) in answers.items()},
        errors={label: error for label, (_, error) in answers.items() if error is not None},
        failing_on=failing_on,
    )


def _change(case: Case, label: str) -> CaseChange:
    return CaseChange(id=case.id, version=label, must_pass=case.must_pass, note=case.note)


def _sentence(run: CheckRun, previous: CheckRun) -> str:
    """What changed since `previous`, in one sentence."""
    when = f"{previous.started_at:%Y-%m-%d %H:%M} UTC"
    parts = [
        f"{_cases(changes)} newly {what} on the {label} ({', '.join(c.id for c in changes)})"
        for what, found in (("failing", run.newly_failing), ("passing", run.newly_passing))
        for label in (CHAMPION, CHALLENGER)
        if (changes := [change for change in found if change.version == label])
    ]
    moved = [
        f"the {version.label} is now {_name(version.number, version.version)}"
        for version in run.versions
        for earlier in previous.versions
        if earlier.label == version.label and earlier.version != version.version
    ]
    if not parts and not moved:
        return f"Nothing changed since the last run ({when})."
    return f"Since the last run ({when}): " + "; ".join(moved + parts) + "."


def _cases(changes: Sequence[CaseChange]) -> str:
    return f"{len(changes)} case" if len(changes) == 1 else f"{len(changes)} cases"


def _name(number: int | None, version: str) -> str:
    return f"v{number} ({version})" if number is not None else version
