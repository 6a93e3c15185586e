"""The Versions page's scheduled checks as sentences (ui_service.checks_view), without Streamlit."""

from __future__ import annotations

from typing import Any

from onepipe.platform.versions.types import CheckList
from review_triage.pipeline import pipeline as example
from ui_service import checks_view

OUTPUTS = example.describe("").output_schema
AT = "2026-12-06T22:44:00Z"


def _version(label: str, number: int, failing: list[str], must_pass: list[str]) -> dict[str, Any]:
    return {"label": label, "version": f"{label[:3]}123", "number": number, "passed": 2 - len(failing),
            "failed": len(failing), "failing": failing, "must_pass_failing": must_pass}  # fmt: skip


def _run(ok: bool = True, **changes: Any) -> dict[str, Any]:
    run = {"id": "1", "pipeline": "p", "started_at": AT, "seconds": 0.25, "ok": ok, "cases": 2}
    if ok:
        run["versions"] = [_version("champion", 1, [], []), _version("challenger", 2, ["case-1"], ["case-1"])]
        run["failing"] = [
            {"id": "case-1", "note": "plain praise", "must_pass": True, "expected": {"label": "fresh"},
             "answers": {"champion": {"label": "fresh"}, "challenger": {"label": "rotten"}},
             "failing_on": ["challenger"]}
        ]  # fmt: skip
        run["changes"] = "Nothing changed since the last run (2026-12-06 21:44 UTC)."
    else:
        run["error"] = "The check could not run: the model service: unavailable."
    return run | changes


def test_before_the_first_check_one_sentence_says_what_sends_them() -> None:
    view = checks_view.check_view(CheckList(pipeline="p"), OUTPUTS)
    assert view.mood == "none" and "WORKER_CHECK_INTERVAL" in view.headline and not view.red


def test_a_must_pass_case_a_version_fails_is_a_red_line_with_its_answer() -> None:
    view = checks_view.check_view(CheckList.model_validate({"pipeline": "p", "latest": _run()}), OUTPUTS)
    assert view.mood == "alert"
    assert view.headline == (
        "Last check 2026-12-06 22:44 UTC: 2 edge cases replayed on the champion v1 (cha123) and the "
        "challenger v2 (cha123) through the model service, in 0.25 s."
    )
    assert view.versions == [
        "Champion v1 (cha123): 2 of 2 pass",
        "Challenger v2 (cha123): 1 of 2 pass, 1 must-pass failing",
    ]
    assert view.red == [
        "Must-pass case case-1 fails on the challenger v2 (cha123): expected Label: fresh, answered Label: "
        "rotten (plain praise)."
    ]
    assert view.changes.startswith("Nothing changed")


def test_a_check_that_could_not_run_says_why_and_shows_the_last_that_did() -> None:
    listing = {"pipeline": "p", "latest": _run(ok=False), "history": [_run(id="0")]}
    view = checks_view.check_view(CheckList.model_validate(listing), OUTPUTS)
    assert view.mood == "failed"
    assert view.headline == (
        "The last check, 2026-12-06 22:44 UTC, could not run: the model service: unavailable. The last "
        "check that ran, 2026-12-06 22:44 UTC:"
    )
    assert view.red == ["Must-pass case case-1 fails on the challenger v2 (cha123)."]
    alone = checks_view.check_view(CheckList.model_validate(listing | {"history": []}), OUTPUTS)
    assert alone.versions == [] and alone.headline.endswith("unavailable.")
