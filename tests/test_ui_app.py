"""The Streamlit UI with AppTest, against a real model service, gateway and worker."""

from __future__ import annotations

import csv
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from onepipe.cases import case_id
from onepipe.storage import CaseStore
from review_triage.pipeline import pipeline as example
from tests import rich_pipeline
from tests.processes import ROOT, RedisServer, ServiceProcess, free_port, model_service
from tests.stacks import KEYS, Stack, stack
from ui_service.forms import NOT_SET

APP = str(ROOT / "services" / "ui" / "src" / "ui_service" / "app.py")
STEPS = [s.name for s in example.describe("").steps]


@pytest.fixture(scope="module")
def ui_stack(
    example_service: ServiceProcess, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with stack(example_service.url, tmp_path_factory.mktemp("ui"), redis=redis_server.url(10)) as started:
        yield started


@pytest.fixture
def app(ui_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    monkeypatch.setenv("MODEL_URL", ui_stack.model_url)
    monkeypatch.setenv("GATEWAY_URL", ui_stack.gateway.url)
    monkeypatch.setenv("UI_API_KEY", KEYS["reviewer"])
    return _fresh()


def _fresh() -> AppTest:
    st.cache_resource.clear()  # clients are cached per process: each test gets its own URLs
    st.cache_data.clear()
    return AppTest.from_file(APP, default_timeout=120)


def _page(at: AppTest, name: str) -> AppTest:
    at.run()
    at.sidebar.radio(key="page").set_value(name).run()
    assert not at.exception, at.exception
    return at


def _predict(model_url: str, item: dict[str, Any], flags: dict[str, Any]) -> dict[str, Any]:
    body = {"inputs": [item], "flags": flags, "debug": True}
    return dict(httpx.post(model_url + "/v1/predict", json=body, timeout=60).json())


def _submit_and_wait(at: AppTest, rows: int) -> None:
    """Submit the batch form, then rerun the page until the job's success shows every row done."""
    at.button(key="batch.submit").click().run()
    assert not at.error, [e.value for e in at.error]
    deadline = time.monotonic() + 120
    while not at.success and time.monotonic() < deadline:
        time.sleep(1)
        at.run()
    assert at.success and f"{rows} rows, 0 failed" in at.success[0].value


def _expander_labels(at: AppTest) -> list[str]:
    return [e.label for e in at.expander]


@pytest.mark.parametrize("page", ["Explore", "Compare", "Batch jobs", "Cases"])
def test_every_page_renders(app: AppTest, page: str) -> None:
    at = _page(app, page)
    assert at.header[0].value == page
    assert any("Pipeline **review-triage**" in c.value for c in at.sidebar.caption)


@pytest.mark.parametrize("name", list(example.examples))
def test_explore_each_example_shows_every_step(app: AppTest, ui_stack: Stack, name: str) -> None:
    at = _page(app, "Explore")
    at.selectbox(key="explore.example").set_value(name).run()
    assert at.text_area(key="explore.input.text").value == example.examples[name].text
    at.button(key="explore.run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    expected = _predict(ui_stack.model_url, example.examples[name].model_dump(), {})
    trace = expected["traces"][0]
    shown = _expander_labels(at) + [m.value for m in at.markdown]
    for number, step in enumerate(trace["steps"], start=1):
        assert any(
            text.startswith(f"{number}. {step['name']}") or f"{number}\\. **{step['name']}**" in text
            for text in shown
        ), step["name"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["label"] == expected["outputs"][0]["label"]
    assert metrics["confidence"] == f"{expected['outputs'][0]['confidence']:.3f}"
    assert any(expected["version"] in c.value for c in at.caption)


def test_changing_a_flag_changes_the_result_as_the_pipeline_says(app: AppTest, ui_stack: Stack) -> None:
    at = _page(app, "Explore")
    at.selectbox(key="explore.example").set_value("rotten review").run()
    at.sidebar.selectbox(key="explore.flags.classifier").set_value("minilm").run()
    at.sidebar.number_input(key="explore.flags.neighbours").set_value(5).run()
    at.button(key="explore.run").click().run()
    expected = _predict(
        ui_stack.model_url,
        example.examples["rotten review"].model_dump(),
        {"classifier": "minilm", "neighbours": 5},
    )
    labels = _expander_labels(at)
    assert any(label.startswith("2. embeddings") for label in labels)  # the MiniLM variant needs embeddings
    assert any(label.startswith("4. kind (minilm)") for label in labels)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["confidence"] == f"{expected['outputs'][0]['confidence']:.3f}"
    tables = [d.value for d in at.dataframe]
    assert any(len(t) == 5 and "label" in t.columns for t in tables)  # the 5 neighbours with their labels


def test_this_is_wrong_keeps_a_case_that_the_cases_page_lists(app: AppTest, ui_stack: Stack) -> None:
    at = _page(app, "Explore")
    at.selectbox(key="explore.example").set_value("rotten review").run()
    at.sidebar.selectbox(key="explore.flags.classifier").set_value("minilm").run()
    at.button(key="explore.run").click().run()
    answered = {m.label: m.value for m in at.metric}["label"]
    assert at.multiselect(key="explore.fix").value == ["label"]  # the verdict, picked to start with
    assert at.selectbox(key="explore.fix.label").value == answered  # starts from the pipeline's answer
    right = next(option for option in ("fresh", "rotten", "plot") if option != answered)
    at.selectbox(key="explore.fix.label").set_value(right).run()
    at.text_area(key="explore.fix.note").input("a domain expert disagrees").run()
    at.button(key="explore.fix.send").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    text = example.examples["rotten review"].text
    expected_id = case_id({"text": text}, {"classifier": "minilm"})
    assert f"Kept as case {expected_id}; the pipeline answers it wrongly: label." in at.success[0].value
    kept = {case.note: case for _, case in CaseStore(str(ui_stack.storage)).cases(example.name)}
    case = kept["a domain expert disagrees"]
    assert (case.expected, case.source, case.input["text"]) == ({"label": right}, "ui", text)
    assert case.flags["classifier"] == "minilm"
    at.sidebar.radio(key="page").set_value("Cases").run()
    table = at.dataframe[0].value
    row = table[table["note"] == "a domain expert disagrees"].iloc[0]
    assert (
        row["case"] == expected_id and row["expected"] == f"label: {right}" and row["from"] == "ui (reviewer)"
    )


def test_compare_shows_both_variants_and_marks_differences(app: AppTest, ui_stack: Stack) -> None:
    at = _page(app, "Compare")
    at.selectbox(key="compare.example").set_value("fresh review").run()
    at.selectbox(key="compare.b.classifier").set_value("minilm").run()
    at.selectbox(key="compare.b.retriever").set_value("embedding").run()
    at.button(key="compare.run").click().run()
    assert not at.exception and not at.error
    item = example.examples["fresh review"].model_dump()
    a = _predict(ui_stack.model_url, item, {})["outputs"][0]
    b = _predict(ui_stack.model_url, item, {"classifier": "minilm", "retriever": "embedding"})["outputs"][0]
    changed = [k for k in a if a[k] != b[k]]
    summary = next(m.value for m in at.markdown if "output field(s) differ" in m.value)
    assert summary.startswith(f"{len(changed)} output field(s) differ")
    confidences = [m.value for m in at.metric if m.label.startswith("confidence")]
    assert confidences == [f"{a['confidence']:.3f}", f"{b['confidence']:.3f}"]
    labels = _expander_labels(at)
    assert any(label.startswith("4. kind: :orange[differs]") for label in labels)
    assert any(label.startswith("1. normalised_text: same") for label in labels)


def test_the_batch_page_submits_a_file_and_shows_the_finished_job(app: AppTest, ui_stack: Stack) -> None:
    at = _page(app, "Batch jobs")
    rows = [
        {"review": e.text, "id": n, "expected": "plot" if "plot" in name else "fresh"}
        for n, (name, e) in enumerate(example.examples.items())
    ]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["id", "review", "expected"])
    writer.writeheader()
    writer.writerows(rows)
    at.file_uploader(key="batch.file").set_value(("mine.csv", buffer.getvalue().encode(), "text/csv")).run()
    assert any("columns id, review" in c.value for c in at.caption)
    at.selectbox(key="batch.map.text").set_value("review").run()
    # only the fields that can be scored are offered; none is preset without a column of its name
    truth_keys = [s.key for s in at.selectbox if (s.key or "").startswith("batch.truth.")]
    assert "batch.truth.label" in truth_keys and "batch.truth.similar" not in truth_keys
    assert at.selectbox(key="batch.truth.label").value == "(none)"
    at.selectbox(key="batch.truth.label").set_value("expected").run()
    at.checkbox(key="batch.compare").check().run()
    at.selectbox(key="batch.b.classifier").set_value("minilm").run()
    _submit_and_wait(at, len(rows))
    assert sorted(getattr(b, "label", "") for b in at.get("download_button")) == [
        "Download .csv",
        "Download .html",
        "Download .jsonl",
        "Download .parquet",
    ]
    recent = at.dataframe[-1].value
    assert recent.iloc[0]["file"] == "mine.csv" and recent.iloc[0]["state"] == "succeeded"
    job = httpx.get(
        f"{ui_stack.gateway.url}/v1/jobs/{at.session_state['batch.job']}",
        headers={"X-API-Key": KEYS["reviewer"]},
    ).json()
    assert job["truth"] == {"label": "expected"}


def test_a_job_submitted_with_the_gateway_down_gets_one_sentence_not_a_traceback(
    ui_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_URL", ui_stack.model_url)
    monkeypatch.setenv("GATEWAY_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("UI_API_KEY", KEYS["reviewer"])
    at = _page(_fresh(), "Batch jobs")
    content = "text\n" + "\n".join(e.text for e in example.examples.values()) + "\n"
    at.file_uploader(key="batch.file").set_value(("down.csv", content.encode(), "text/csv")).run()
    at.button(key="batch.submit").click().run()
    assert not at.exception, at.exception
    errors = [e.value for e in at.error]
    assert any("The gateway is unavailable" in e and "just up" in e for e in errors), errors
    assert not any("Traceback" in e for e in errors)


def test_a_stopped_model_service_is_named_and_the_rest_keeps_working(
    ui_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("GATEWAY_URL", ui_stack.gateway.url)
    at = _fresh()
    at.run()
    assert not at.exception
    assert any("The model service is unavailable" in e.value and "just up" in e.value for e in at.error)
    assert at.sidebar.radio(key="page").options == ["Explore", "Compare", "Batch jobs", "Cases"]


def test_a_model_service_stopped_after_start_gives_the_message_on_run(
    ui_stack: Stack, monkeypatch: pytest.MonkeyPatch, example_pipeline: Any
) -> None:
    from tests.conftest import EXAMPLE_ARTIFACTS

    model = model_service(free_port(), MODEL_ARTIFACTS_DIR=str(EXAMPLE_ARTIFACTS.parent))
    with model:
        monkeypatch.setenv("MODEL_URL", model.url)
        at = _fresh()
        _page(at, "Explore")
        at.selectbox(key="explore.example").set_value("plot summary").run()
        model.stop()
        at.button(key="explore.run").click().run()
    assert not at.exception
    assert any("The model service is unavailable" in e.value for e in at.error)


def test_another_pipeline_renders_its_own_form_and_flags(
    tiny_artifacts: Path, ui_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        "MODEL_PIPELINE": "tests.tiny_pipeline:pipeline",
        "MODEL_ARTIFACTS_DIR": str(tiny_artifacts.parent),
    }
    with model_service(free_port(), **env) as model:
        monkeypatch.setenv("MODEL_URL", model.url)
        at = _fresh()
        _page(at, "Explore")
        assert at.text_input(key="explore.input.values").label.startswith("Values")
        assert at.text_input(key="explore.input.unit").label == "Unit"
        assert at.sidebar.selectbox(key="explore.flags.method").options == ["sum", "mean"]
        assert at.sidebar.number_input(key="explore.flags.scale").value == 1.0
        assert at.sidebar.checkbox(key="explore.flags.with_spread").value is True
        at.selectbox(key="explore.example").set_value("three readings").run()
        assert json.loads(at.text_input(key="explore.input.values").value or "") == [1.0, 2.0, 4.0]
        at.sidebar.selectbox(key="explore.flags.method").set_value("mean").run()
        at.button(key="explore.run").click().run()
        assert not at.exception and not at.error
        shown = [e.label for e in at.expander]
        assert any(s.startswith("2. combined (mean)") for s in shown)
        assert any("**value**" in m.value for m in at.markdown)


@pytest.fixture(scope="module")
def rich_stack(
    rich_service: ServiceProcess, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with stack(rich_service.url, tmp_path_factory.mktemp("ui-rich"), redis=redis_server.url(4)) as started:
        yield started


def test_the_rich_pipeline_runs_on_every_page(rich_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Enums, an optional choice and number left unset, a list, nested and dict outputs, sparse rows."""
    monkeypatch.setenv("MODEL_URL", rich_stack.model_url)
    monkeypatch.setenv("GATEWAY_URL", rich_stack.gateway.url)
    monkeypatch.setenv("UI_API_KEY", KEYS["reviewer"])
    at = _page(_fresh(), "Explore")
    priority, days = (
        at.selectbox(key="explore.input.priority"),
        at.number_input(key="explore.input.customer_days"),
    )
    assert priority.options == [NOT_SET, "low", "normal", "high"] and priority.value is None
    assert days.value is None  # an optional number starts empty, not at 0
    assert at.selectbox(key="explore.input.channel").options == ["email", "chat", "phone"]
    at.text_input(key="explore.input.subject").set_value("Refund for an invoice: the app is down").run()
    at.text_input(key="explore.input.tags").set_value('["billing"]').run()
    at.sidebar.selectbox(key="explore.flags.scorer").set_value("weighted").run()
    at.button(key="explore.run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    item = {"subject": "Refund for an invoice: the app is down", "tags": ["billing"]}
    expected = _predict(rich_stack.model_url, item, {"scorer": "weighted"})
    output = expected["outputs"][0]
    assert output["tenure"] is None and output["urgency"] == 35.0  # no priority, one urgent word
    labels = _expander_labels(at)
    assert any(label.startswith("3. team_scores (weighted)") for label in labels), labels
    shown = [m.value for m in at.markdown]
    assert output["team"] in shown and any(v.startswith("sparse csr (shape=(1, 7)") for v in shown)
    # the optional fields set: the UI sends them, and the pipeline's answer changes as it says
    at.selectbox(key="explore.input.priority").set_value("high").run()
    at.number_input(key="explore.input.customer_days").set_value(400.0).run()
    at.button(key="explore.run").click().run()
    assert not at.exception and not at.error
    with_both = _predict(rich_stack.model_url, {**item, "priority": "high", "customer_days": 400.0}, {})
    assert with_both["outputs"][0]["tenure"] == "high" and with_both["outputs"][0]["urgency"] == 75.0

    at = _page(at, "Compare")
    at.selectbox(key="compare.example").set_value("a billing complaint").run()
    at.selectbox(key="compare.b.scorer").set_value("weighted").run()
    at.checkbox(key="compare.b.urgent_words").uncheck().run()
    at.button(key="compare.run").click().run()
    assert not at.exception and not at.error
    assert any(label.startswith("4. urgent_hits: :orange[differs]") for label in _expander_labels(at))

    at = _page(at, "Batch jobs")
    rows = [t.model_dump(mode="json", exclude_none=True) for t in rich_pipeline.pipeline.examples.values()]
    lines = "".join(json.dumps(row) + "\n" for row in rows).encode()
    at.file_uploader(key="batch.file").set_value(("tickets.jsonl", lines, "application/jsonl")).run()
    _submit_and_wait(at, len(rows))
