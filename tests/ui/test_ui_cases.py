"""The Cases page: the edge-case library with the champion's answers, filtered, then the reported cases.

The plain functions of ui_service.library_view, then the page with AppTest against a real model
service and gateway: its counts and rows equal the library replayed in-process through the example;
the tiny pipeline's must-pass case broken shows wrong and must-pass; each failure is one sentence.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from onepipe import LoadedPipeline
from onepipe.platform.cases import read_cases
from onepipe.platform.versions.library import LibraryCase, LibraryReplay
from onepipe_harness.processes import ROOT, RedisServer, ServiceProcess, free_port, model_service
from review_triage.pipeline import pipeline as example
from tests.case_library import BROKEN, TINY, library_gateway, replayed_in_process, tiny_library_broken
from tests.stacks import KEYS, as_key
from tests.tiny_pipeline import pipeline as tiny_definition
from tests.ui.apptest import assert_clean, errors_on
from ui_service import library_view, wording
from ui_service.library_view import MUST_PASS, RIGHT, WRONG, Filter
from ui_service.render import escape

APP = str(ROOT / "services" / "ui" / "src" / "ui_service" / "app.py")
LIBRARY = ROOT / "cases" / "review-triage.jsonl"
INFO = example.describe("")
TINY_INFO = tiny_definition.describe("")
ANSWER = "Champion's answer"


# -- the plain functions ----------------------------------------------------------------------------


def _case(right: bool, must_pass: bool, note: str = "", **more: Any) -> LibraryCase:
    case = {
        "id": f"case-{note or 'x'}",
        "input": {"text": f"input of {note}"},
        "flags": {},
        "expected": {"label": "fresh"},
        "note": note,
        "source": "engineer",
        "added_at": datetime(2026, 12, 2, tzinfo=UTC),
        "must_pass": must_pass,
        "answer": {"label": "fresh" if right else "rotten", "confidence": 0.9},
        "right": right,
        "wrong": [] if right else ["label"],
    }
    return LibraryCase.model_validate(case | more)


def _replay(*cases: LibraryCase) -> LibraryReplay:
    return LibraryReplay(
        pipeline="review-triage",
        label="champion",
        version="1a2b3c4d5e6f",
        total=len(cases),
        right=sum(c.right for c in cases),
        must_pass=sum(c.must_pass for c in cases),
        must_pass_wrong=sum(c.must_pass and not c.right for c in cases),
        replayed_at=datetime(2026, 12, 7, 2, 30, tzinfo=UTC),
        seconds=0.31,
        cases=list(cases),
    )


def test_the_headline_counts_right_cases_and_names_the_must_pass_ones() -> None:
    both = _replay(_case(True, True, "a"), _case(False, False, "b"), _case(False, True, "c"))
    assert library_view.headline(both) == (
        "The champion (1a2b3c4d5e6f) gets 1 of 3 cases right (33%); 1 of the 2 must-pass cases is wrong."
    )
    fine = _replay(_case(True, True, "a"), _case(False, False, "b"))
    assert library_view.headline(fine).endswith("gets 1 of 2 cases right (50%); the must-pass case right.")
    none = _replay(_case(True, False, "a"))
    assert library_view.headline(none).endswith("1 of 1 case right (100%); no case is marked must-pass.")
    assert library_view.headline(_replay()).startswith("The edge-case library of review-triage holds no case")
    (line,) = library_view.must_pass_lines(both, INFO.output_schema)
    assert line == (
        "Must-pass case case-c is wrong on the champion: expected Label: fresh, answered Label: rotten (c)."
    )
    failed = _case(False, True, "d", error="ServiceRejectedError: no", answer=None)
    assert (
        "answered no answer (ServiceRejectedError: no)"
        in library_view.must_pass_lines(_replay(failed), INFO.output_schema)[0]
    )


def test_rows_take_their_columns_from_the_schemas_wrong_must_pass_first_and_filter() -> None:
    replay = _replay(
        _case(True, True, "praise"),
        _case(False, False, "irony", flags={"classifier": "minilm"}),
        _case(False, True, "negation"),
    )
    rows = library_view.library_rows(replay, INFO.input_schema, INFO.output_schema, INFO.flags_schema)
    assert [row["Note"] for row in rows] == ["negation", "irony", "praise"]
    assert list(rows[0]) == ["Result", "Must pass", "Expected", ANSWER, "Text", "Flags", "Note", "Case"]
    assert rows[1] == {
        "Result": WRONG,
        "Must pass": "",
        "Text": "input of irony",
        "Flags": "Classifier: minilm",
        "Expected": "Label: fresh",
        ANSWER: "Label: rotten",
        "Note": "irony",
        "Case": "case-irony",
    }
    assert rows[2]["Result"] == RIGHT and rows[2]["Flags"] == "defaults"

    def notes(keep: Filter) -> list[str]:
        return [
            row["Note"]
            for row in library_view.library_rows(
                replay, INFO.input_schema, INFO.output_schema, INFO.flags_schema, keep
            )
        ]

    assert notes(Filter("wrong")) == ["negation", "irony"] and notes(Filter("right")) == ["praise"]
    assert notes(Filter(must_pass_only=True)) == ["negation", "praise"]
    assert notes(Filter("wrong", True)) == ["negation"]
    assert notes(Filter(words="MiniLM")) == ["irony"]  # the flags, as shown, case apart
    assert notes(Filter(words="input rotten")) == ["negation", "irony"]  # every word, anywhere in the row
    assert library_view.shown_label("wrong", replay) == "Wrong (2)"
    # an input field titled like one of the case's columns keeps apart from it
    clash = {"properties": {"note": {"type": "string"}}}
    assert "Input: Note" in library_view.library_rows(replay, clash, INFO.output_schema, {})[0]


# -- the page ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def example_gateway(
    example_service: ServiceProcess, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    with library_gateway(
        example_service.url, tmp_path_factory.mktemp("ui-cases"), redis_server.url(2)
    ) as front:
        yield front


@pytest.fixture(scope="module")
def tiny_stack(
    tiny_artifacts: Path, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
    """The tiny pipeline with its library and a must-pass case it breaks, behind a gateway."""
    env = {
        "MODEL_PIPELINE": TINY,
        "MODEL_ARTIFACTS_DIR": str(tiny_artifacts.parent),
        "MODEL_CASES_DIR": str(tiny_library_broken(tmp_path_factory.mktemp("ui-tiny-cases"))),
    }
    storage = tmp_path_factory.mktemp("ui-tiny")
    with (
        model_service(free_port(), **env) as service,
        library_gateway(service.url, storage, redis_server.url(2)) as front,
    ):
        yield service, front


def _cases_page(
    monkeypatch: pytest.MonkeyPatch, model_url: str, gateway_url: str, key: str = "reviewer"
) -> AppTest:
    monkeypatch.setenv("MODEL_URL", model_url)
    monkeypatch.setenv("GATEWAY_URL", gateway_url)
    monkeypatch.setenv("UI_API_KEY", KEYS[key])
    st.cache_resource.clear()  # clients and answers are cached per process: each test gets its own
    st.cache_data.clear()
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.sidebar.radio(key="page").set_value("Cases").run()
    assert not at.exception, at.exception
    return at


def _table(at: AppTest) -> list[dict[str, Any]]:
    return list(at.dataframe[0].value.to_dict("records"))


def _metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_the_page_shows_the_library_as_the_example_replays_it_in_process(
    example_gateway: ServiceProcess,
    example_service: ServiceProcess,
    example_pipeline: LoadedPipeline[Any, Any, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    at = _cases_page(monkeypatch, example_service.url, example_gateway.url)
    assert_clean(at)
    expected = replayed_in_process(example_pipeline, read_cases(LIBRARY))
    wrong = expected.total - expected.right
    assert f"**{escape(library_view.headline(expected))}**" in [m.value for m in at.markdown]
    assert _metrics(at) == {
        "Right": f"{expected.right} of 53",
        "Wrong": str(wrong),
        "Must-pass wrong": "0 of 6",
    }
    rows = library_view.library_rows(expected, INFO.input_schema, INFO.output_schema, INFO.flags_schema)
    assert _table(at) == rows and len(rows) == 53
    # every wrong case first, each with the pipeline's own answer for its expected fields
    by_id = {case.id: case for case in expected.cases}
    for row in _table(at)[:wrong]:
        case = by_id[row["Case"]]
        assert row["Result"] == WRONG and not case.right and case.answer is not None
        assert all(wording.value(case.answer[name]) in row[ANSWER] for name in case.expected)
    assert "No case reported from this UI is waiting" in at.info[0].value

    at.radio(key="cases.library.shown").set_value("wrong").run()
    assert {row["Result"] for row in _table(at)} == {WRONG} and len(_table(at)) == wrong
    assert f"Showing {wrong} of 53 cases, wrong must-pass cases first." in [c.value for c in at.caption]
    at.radio(key="cases.library.shown").set_value("all").run()
    at.toggle(key="cases.library.must_pass").set_value(True).run()
    assert {row["Case"] for row in _table(at)} == {case.id for case in expected.cases if case.must_pass}
    at.toggle(key="cases.library.must_pass").set_value(False).run()
    at.text_input(key="cases.library.search").input("MINILM").run()
    assert {row["Case"] for row in _table(at)} == {
        case.id for case in expected.cases if "minilm" in f"{case.flags} {case.note} {case.input}".casefold()
    }
    at.text_input(key="cases.library.search").input("no such words anywhere").run()
    assert not at.dataframe and "No case matches these filters." in [i.value for i in at.info]
    assert_clean(at)


def test_a_must_pass_case_broken_shows_wrong_must_pass_and_in_red(
    tiny_stack: tuple[ServiceProcess, ServiceProcess],
    tiny: LoadedPipeline[Any, Any, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service, front = tiny_stack
    at = _cases_page(monkeypatch, service.url, front.url)
    assert not at.exception
    assert errors_on(at) == [
        escape(
            f"Must-pass case {BROKEN.id} is wrong on the champion: expected Value: 1, answered Value: 1.5 "
            "(a person forgets the offset)."
        )
    ]
    assert _metrics(at)["Must-pass wrong"] == "1 of 3"
    first = _table(at)[0]
    # the tiny pipeline's own input fields as columns: nothing of the example's
    assert list(first) == [
        "Result",
        "Must pass",
        "Expected",
        ANSWER,
        "Values",
        "Unit",
        "Flags",
        "Note",
        "Case",
    ]
    assert (first["Case"], first["Result"], first["Must pass"]) == (BROKEN.id, WRONG, MUST_PASS)
    assert (first["Values"], first["Unit"], first["Expected"], first[ANSWER]) == (
        "1",
        "kg",
        "Value: 1",
        "Value: 1.5",
    )
    shipped = read_cases(ROOT / "tests" / "tiny_pipeline" / "cases.jsonl")
    expected = replayed_in_process(tiny, [*shipped, BROKEN])
    rows = library_view.library_rows(
        expected, TINY_INFO.input_schema, TINY_INFO.output_schema, TINY_INFO.flags_schema
    )
    assert _table(at) == rows
    # a case reported here waits below the library
    report = {"input": {"values": [2, 2], "unit": "m"}, "expected": {"value": 4.0}, "note": "reported"}
    sent = httpx.post(front.url + "/v1/cases", json=report, headers=as_key("reviewer"), timeout=60)
    assert sent.status_code == 201, sent.text
    at.run()
    assert _metrics(at)["Reported cases waiting"] == "1"
    assert list(at.table[0].value["Note"]) == ["reported"]


def test_a_key_without_the_scope_is_told_which_in_one_sentence(
    example_gateway: ServiceProcess, example_service: ServiceProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    at = _cases_page(monkeypatch, example_service.url, example_gateway.url, key="other")
    assert not at.exception
    assert errors_on(at) == [library_view.SCOPE_TEXT]  # once: the reported cases need the same scope
    assert not at.dataframe and not at.table


def test_a_gateway_down_or_without_its_model_service_is_one_sentence(
    example_service: ServiceProcess,
    redis_server: RedisServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    at = _cases_page(monkeypatch, example_service.url, f"http://127.0.0.1:{free_port()}")
    assert not at.exception
    (error,) = errors_on(at)
    assert error.startswith("The gateway is unavailable (down or still starting).") and "just up" in error
    # a gateway up whose model service is down: the gateway's reason, once (the reported cases need it too)
    front = library_gateway(f"http://127.0.0.1:{free_port()}", tmp_path, redis_server.url(2))
    front.start()
    try:
        front.wait_ready("/healthz")
        at = _cases_page(monkeypatch, example_service.url, front.url)
    finally:
        front.stop()
    assert not at.exception
    assert errors_on(at) == [
        "The gateway cannot replay the library on the champion now: the model service is unavailable "
        "(down, starting or overloaded); retry later."
    ]
    assert not at.dataframe and not at.table
