"""A check's plain functions: cases judged on each version by the promotion's rules, what changed since the
last check, and the store that keeps the last few (on a real folder)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from onepipe.platform.cases import Case
from onepipe.platform.jobs.storage import CheckStore
from onepipe.platform.versions.checks import failed_check, run_check
from onepipe.platform.versions.evidence import Candidate
from onepipe.platform.versions.types import CheckRun

CASES = [
    Case(input={"text": "a"}, expected={"label": "x"}, source="engineer", must_pass=True, note="first"),
    Case(input={"text": "b"}, expected={"label": "y"}, source="engineer"),
    Case(input={"text": "c"}, expected={"label": "z"}, source="engineer", flags={"mode": "other"}),
]


def _version(label: str, version: str, answers: dict[str, str], number: int | None = 1) -> Candidate:
    """A version answering each text with the label given; a text it has no label for fails."""

    def run(inputs: list[dict[str, Any]], flags: dict[str, Any]) -> list[dict[str, Any]]:
        missing = [item["text"] for item in inputs if item["text"] not in answers]
        if missing:
            raise ValueError(f"no answer for {missing[0]}")
        return [{"label": answers[item["text"]], "other": 1} for item in inputs]

    return Candidate(label, "p", version, number, run)


def test_each_version_is_counted_and_the_challengers_must_pass_break_named() -> None:
    champion = _version("champion", "aaa", {"a": "x", "b": "wrong", "c": "z"}, 1)
    challenger = _version("challenger", "bbb", {"a": "wrong", "b": "y"}, 2)
    run = run_check("p", [champion, challenger], CASES, None)
    assert run.ok and run.cases == 3 and run.changes == "The first check: nothing to compare with yet."
    first, second = run.versions
    assert (first.label, first.passed, first.failed, first.failing) == ("champion", 2, 1, [CASES[1].id])
    assert (second.passed, second.failed, second.must_pass_failing) == (1, 2, [CASES[0].id])
    assert run.must_pass_broken == [CASES[0].id]
    assert run.outcomes is not None and (run.outcomes.fixed, run.outcomes.broken) == (1, 2)
    assert run.outcomes.must_pass_broken == 1
    failing = {case.id: case for case in run.failing}
    assert failing[CASES[0].id].answers == {"champion": {"label": "x"}, "challenger": {"label": "wrong"}}
    assert failing[CASES[2].id].errors == {"challenger": "ValueError: no answer for c"}
    assert failing[CASES[2].id].failing_on == ["challenger"]


def test_the_next_check_names_what_changed_on_which_version() -> None:
    champion = _version("champion", "aaa", {"a": "x", "b": "wrong", "c": "z"})
    before = run_check("p", [champion], CASES, None)
    assert before.outcomes is None and before.must_pass_broken == []
    same = run_check("p", [champion], CASES, before)
    assert same.changes.startswith("Nothing changed since the last run (")
    assert same.compared_with == before.id
    moved = _version("champion", "ccc", {"a": "wrong", "b": "y", "c": "z"}, 2)
    after = run_check("p", [moved], CASES, before)
    assert [(c.id, c.version, c.must_pass) for c in after.newly_failing] == [(CASES[0].id, "champion", True)]
    assert [c.id for c in after.newly_passing] == [CASES[1].id]
    assert after.changes.endswith(
        f"the champion is now v2 (ccc); 1 case newly failing on the champion ({CASES[0].id}); "
        f"1 case newly passing on the champion ({CASES[1].id})."
    )


def _run(pipeline: str, minutes: int, ok: bool = True) -> CheckRun:
    at = datetime(2026, 12, 6, tzinfo=UTC) + timedelta(minutes=minutes)
    if not ok:
        return failed_check(pipeline, "down", at, 0.1)
    return CheckRun(id=f"{at:%Y%m%d%H%M%S%f}", pipeline=pipeline, started_at=at, seconds=0.1, ok=True)


def test_the_store_keeps_the_last_checks_and_finds_the_last_that_ran(tmp_path: Path) -> None:
    store = CheckStore(str(tmp_path), kept=3)
    assert store.latest("p") is None and store.last_pipeline() is None
    for minutes in range(5):
        store.save(_run("p", minutes))
    store.save(_run("p", 5, ok=False))
    store.save(_run("q", 1))
    runs = store.runs("p")
    assert [run.started_at.minute for run in runs] == [5, 4, 3]
    assert store.latest("p") == runs[0] and runs[0].error == "The check could not run: down."
    assert store.latest("p", ran=True) == runs[1]
    assert store.last_pipeline() == "p"  # its newest check is newer than q's
    assert [path.name.endswith(".json") for path in (tmp_path / "checks" / "p").iterdir()] == [True] * 3
