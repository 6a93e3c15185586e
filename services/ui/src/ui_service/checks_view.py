"""The scheduled checks of the versions as people read them (no Streamlit here).

Plain functions over the gateway's GET /v1/versions/checks (`CheckList`): the latest check in one
sentence, each version's count, a line for each must-pass case a version fails (the page shows each in
red), and what changed since the check before. Apart from versions_view, which holds the rest of the page.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from onepipe.platform.schema.outputs import Outputs
from onepipe.platform.versions.types import (
    COULD_NOT_RUN,
    CheckedCase,
    CheckedVersion,
    CheckList,
    CheckSummary,
)
from ui_service import wording
from ui_service.versions_view import moment
from ui_service.views import output_titles

Mood = Literal["none", "ok", "alert", "failed"]
NO_CHECK: Final = (
    "No scheduled check has run yet. The beat process (`just up`, or the `beat` service in compose) "
    "sends one every `WORKER_CHECK_INTERVAL` seconds (an hour unless set; 0 turns them off), and a worker "
    "replays the edge-case library on the champion and the challenger."
)


@dataclass(frozen=True)
class CheckView:
    """The latest check as the page shows it: how it stands, in sentences."""

    mood: Mood
    headline: str
    versions: list[str] = field(default_factory=list)  # "Champion v1 (1a2b3c): 1 of 2 cases pass"
    red: list[str] = field(default_factory=list)  # a must-pass case a version fails, one each
    changes: str = ""


def check_view(listing: CheckList, output_schema: Mapping[str, Any]) -> CheckView:
    """The latest check; when it could not run, why, and the last one that did."""
    latest = listing.latest
    if latest is None:
        return CheckView("none", NO_CHECK)
    if latest.ok:
        failing = {case.id: case for case in latest.failing}
        return CheckView(
            "alert" if _must_pass_failing(latest) else "ok",
            f"Last check {moment(latest.started_at)}: {_cases(latest.cases)} replayed on "
            f"{_both(latest.versions)} through the model service, in {latest.seconds:.2f} s.",
            _counts(latest.versions),
            _red_lines(latest.versions, failing, output_schema),
            latest.changes,
        )
    ran = next((run for run in listing.history if run.ok), None)
    reason = (latest.error or "no reason was given.").removeprefix(COULD_NOT_RUN)
    why = f"The last check, {moment(latest.started_at)}, could not run: {reason}"
    if ran is None:
        return CheckView("failed", why)
    return CheckView(
        "failed",
        f"{why} The last check that ran, {moment(ran.started_at)}:",
        _counts(ran.versions),
        _red_lines(ran.versions, {}, output_schema),
    )


def _must_pass_failing(run: CheckSummary) -> bool:
    return any(version.must_pass_failing for version in run.versions)


def _cases(count: int) -> str:
    return "1 edge case" if count == 1 else f"{count:,} edge cases"


def _name(version: CheckedVersion) -> str:
    number = f"v{version.number} " if version.number is not None else ""
    return f"{version.label} {number}({version.version})"


def _both(versions: Sequence[CheckedVersion]) -> str:
    return " and ".join(f"the {_name(version)}" for version in versions) or "no version"


def _counts(versions: Sequence[CheckedVersion]) -> list[str]:
    return [
        f"{_name(version)[0].upper()}{_name(version)[1:]}: {version.passed} of "
        f"{version.passed + version.failed} pass"
        + (f", {len(version.must_pass_failing)} must-pass failing" if version.must_pass_failing else "")
        for version in versions
    ]


def _red_lines(
    versions: Sequence[CheckedVersion], failing: Mapping[str, CheckedCase], output_schema: Mapping[str, Any]
) -> list[str]:
    """One sentence per must-pass case a version fails: what was expected and what it answered."""
    titles = output_titles(Outputs.from_schema(output_schema))

    def fields(values: Mapping[str, Any]) -> str:
        return "; ".join(
            f"{titles.get(name) or wording.readable(name)}: {wording.value(value)}"
            for name, value in values.items()
        )

    lines = []
    for version in versions:
        for case_id in version.must_pass_failing:
            line = f"Must-pass case {case_id} fails on the {_name(version)}"
            case = failing.get(case_id)
            if case is not None:
                error = case.errors.get(version.label)
                answered = f"no answer ({error})" if error else fields(case.answers.get(version.label, {}))
                line += f": expected {fields(case.expected)}, answered {answered}"
                line += f" ({case.note})" if case.note else ""
            lines.append(line + ".")
    return lines
