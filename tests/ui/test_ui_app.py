"""The Streamlit UI with AppTest, against a real model service, gateway and worker.

Every page and action with the example, the tiny and the rich test pipelines (optional fields
left unset), and each peer down during each action: one sentence naming it, never a traceback.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import streamlit as st
from redis import Redis
from streamlit.testing.v1 import AppTest

from onepipe.platform.cases import case_id
from onepipe.platform.jobs.storage import CaseStore
from onepipe_harness.processes import ROOT, RedisServer, ServiceProcess, free_port, gateway, model_service
from review_triage.pipeline import pipeline as example
from tests import rich_pipeline
from tests.stacks import KEYS, Stack, as_key, csv_bytes, keys_env, stack
from tests.ui.apptest import assert_clean, errors_on, jobs_table, submit_and_wait, upload_file
from ui_service import compare_view, wording
from ui_service.forms import NOT_SET
from ui_service.render import escape

APP = str(ROOT / "services" / "ui" / "src" / "ui_service" / "app.py")
INFO = example.describe("")
STEPS = [s.name for s in INFO.steps]


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


def _markdown(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def _one_sentence_about(at: AppTest, service: str) -> list[str]:
    """The page names the failing peer in a sentence, with no exception and no traceback."""
    assert not at.exception, at.exception
    errors = errors_on(at)
    assert errors and all(e.startswith(f"The {service} ") for e in errors), errors
    assert not any("Traceback" in e or 'File "' in e for e in errors), errors
    return errors


def _step_card(number: int, name: str) -> str:
    return f"**{number}. {escape(wording.readable(name))}**"


@pytest.mark.parametrize("page", ["Explore", "Compare", "Batch jobs", "Cases", "Versions"])
def test_every_page_renders_with_its_intro_and_the_version(app: AppTest, page: str) -> None:
    at = _page(app, page)
    assert_clean(at)
    assert at.header[0].value == page
    intro = "**review\\-triage** takes a snippet of text about a movie and gives"
    assert any(c.value.startswith(intro) for c in at.caption)
    assert any(c.value.startswith("Pipeline **review\\-triage** · version `") for c in at.sidebar.caption)


@pytest.mark.parametrize("name", list(example.examples))
def test_explore_an_example_card_shows_the_verdict_then_every_step(
    app: AppTest, ui_stack: Stack, name: str
) -> None:
    at = _page(app, "Explore")
    at.button(key=f"explore.example.{name}").click().run()  # fills the form and runs it
    assert_clean(at)
    assert at.text_area(key="explore.input.text").value == example.examples[name].text
    expected = _predict(ui_stack.model_url, example.examples[name].model_dump(), {})
    output, trace = expected["outputs"][0], expected["traces"][0]
    # the verdict first, in words, its confidence as a bar, every decision's scores as bars
    assert [(m.label, m.value) for m in at.metric] == [("Label", output["label"])]
    assert at.get("progress")[0].proto.text == wording.percent(output["confidence"])
    shown = _markdown(at)
    if output["needs_review"]:
        assert ":orange-badge[:material/flag: Needs review]" in shown
        assert all(f"- {escape(reason)}" in shown for reason in output["review_reasons"])
    else:
        assert ":green-badge[:material/check: no review needed]" in shown
    assert "**Kind \\(tfidf\\)**" in shown and "**Sentiment \\(tfidf\\)**" in shown
    # the other fields in words, numbers rounded, nested lists as tables with their full text
    assert f"**Kind confidence** {escape(wording.number(output['kind_confidence']))}" in shown
    similar = at.table[0].value
    assert list(similar.columns) == ["Id", "Label", "Movie", "Text", "Score"]
    assert list(similar["Text"]) == [s["text"] for s in output["similar"]]
    if output["duplicate_of"]:
        assert any("already knows" in i.value for i in at.info)
    # every step as a card, in order, with why a step did not run
    for number, step in enumerate(trace["steps"], start=1):
        card = next((m for m in shown if m.startswith(_step_card(number, step["name"]))), None)
        assert card is not None, step["name"]
        if step["status"] == "not_needed":
            assert "not needed with these flags" in card
    # the last step's output is the answer: said once, not repeated
    assert shown.count("The pipeline's answer, shown in full under **Answer**.") == 1
    assert any(expected["version"] in c.value for c in at.caption)
    assert len(at.get("vega_lite_chart")) >= 3  # the decisions' scores, the waterfall, term weights


def test_changing_a_flag_changes_the_result_as_the_pipeline_says(app: AppTest, ui_stack: Stack) -> None:
    at = _page(app, "Explore")
    at.text_area(key="explore.input.text").input(example.examples["rotten review"].text).run()
    at.sidebar.selectbox(key="explore.flags.classifier").set_value("minilm").run()
    at.sidebar.number_input(key="explore.flags.neighbours").set_value(5).run()
    at.button(key="explore.run").click().run()
    assert_clean(at)
    expected = _predict(
        ui_stack.model_url,
        example.examples["rotten review"].model_dump(),
        {"classifier": "minilm", "neighbours": 5},
    )
    shown = _markdown(at)
    assert any(m.startswith("**2. Embeddings** :gray-badge[") for m in shown)  # MiniLM needs embeddings
    assert any(m.startswith("**4. Kind** :blue-badge[minilm]") for m in shown)
    assert any("384 values \\(float32\\)" in m for m in shown)  # the vector as a short summary
    share = at.get("progress")[0].proto.text
    assert share == wording.percent(expected["outputs"][0]["confidence"])
    assert any(len(t.value) == 5 and "Label" in t.value.columns for t in at.table)  # the 5 neighbours


def test_a_run_answers_within_a_second_of_the_model_service_and_the_pipeline_is_asked_once(
    app: AppTest, ui_stack: Stack
) -> None:
    at = _page(app, "Explore")
    asked = _pipeline_requests(ui_stack.model_url)
    for name in example.examples:
        started = time.perf_counter()
        at.button(key=f"explore.example.{name}").click().run()
        spent = time.perf_counter() - started
        assert_clean(at)
        answered = at.session_state["explore.result"]["answered_ms"] / 1000
        assert spent - answered < 1.0, (name, spent, answered)
    at.sidebar.radio(key="page").set_value("Compare").run()
    at.sidebar.radio(key="page").set_value("Explore").run()
    assert _pipeline_requests(ui_stack.model_url) == asked  # reruns read the cached description


def _pipeline_requests(model_url: str) -> float:
    metrics = httpx.get(model_url + "/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("http_requests_total{") and 'route="/v1/pipeline"' in line
    )


def test_this_is_wrong_keeps_a_case_that_the_cases_page_lists(app: AppTest, ui_stack: Stack) -> None:
    at = _page(app, "Explore")
    at.sidebar.selectbox(key="explore.flags.classifier").set_value("minilm").run()
    at.button(key="explore.example.rotten review").click().run()
    answered = {m.label: m.value for m in at.metric}["Label"]
    assert at.multiselect(key="explore.fix").value == ["label"]  # the verdict, picked to start with
    assert at.selectbox(key="explore.fix.label").value == answered  # starts from the pipeline's answer
    right = next(option for option in ("fresh", "rotten", "plot") if option != answered)
    at.selectbox(key="explore.fix.label").set_value(right).run()
    at.text_area(key="explore.fix.note").input("a domain expert disagrees").run()
    at.button(key="explore.fix.send").click().run()
    assert_clean(at)
    text = example.examples["rotten review"].text
    expected_id = case_id({"text": text}, {"classifier": "minilm"})
    assert f"Kept as case {expected_id}; the pipeline answers it wrongly now: Label." in at.success[0].value
    kept = {case.note: case for _, case in CaseStore(str(ui_stack.storage)).cases(example.name)}
    case = kept["a domain expert disagrees"]
    assert (case.expected, case.source, case.input["text"]) == ({"label": right}, "ui", text)
    assert case.flags["classifier"] == "minilm"
    # a case another key reported is not this UI's to show
    other = {
        "input": {"text": "Reported elsewhere."},
        "expected": {"label": "plot"},
        "note": "not from the UI",
    }
    sent = httpx.post(ui_stack.gateway.url + "/v1/cases", json=other, headers=as_key("critic"), timeout=60)
    assert sent.status_code == 201, sent.text
    at.sidebar.radio(key="page").set_value("Cases").run()
    assert_clean(at)
    assert "Reported here, waiting for `just cases pull`" in [h.value for h in at.subheader]
    table = at.table[0].value
    assert "not from the UI" not in list(table["Note"])
    row = table[table["Note"] == "a domain expert disagrees"].iloc[0]
    assert (row["Case"], row["Right answer"], row["From"]) == (
        expected_id,
        f"Label: {right}",
        "ui (reviewer)",
    )
    assert row["Input"] == f"Text: {text}" and row["Flags"] == "Classifier: minilm"


def test_compare_shows_both_flag_sets_then_one_summary_then_what_differs(
    app: AppTest, ui_stack: Stack
) -> None:
    at = _page(app, "Compare")
    assert any("A and B are the same flag set" in c.value for c in at.caption)
    at.selectbox(key="compare.b.classifier").set_value("minilm").run()
    at.selectbox(key="compare.b.retriever").set_value("embedding").run()
    assert any(
        c.value
        == "B differs from A in: Classifier minilm \\(A\\: tfidf\\); Retriever embedding \\(A\\: bm25\\)."
        for c in at.caption
    )
    at.button(key="compare.example.fresh review").click().run()
    assert_clean(at)
    item = example.examples["fresh review"].model_dump()
    a = _predict(ui_stack.model_url, item, {})["outputs"][0]
    b = _predict(ui_stack.model_url, item, {"classifier": "minilm", "retriever": "embedding"})["outputs"][0]
    schema = INFO.output_schema
    # top to bottom: the flag sets, the button, the summary, its metrics, the fields, the steps
    assert "#### " + escape(compare_view.compare_summary(a, b, schema)) in _markdown(at)
    metrics = {m.label: (m.value, m.delta) for m in at.metric}
    difference = wording.signed(b["confidence"] - a["confidence"])
    assert metrics["Confidence (B)"] == (
        wording.distinct(a["confidence"], b["confidence"])[1],
        None if difference == "0" else difference,
    )
    assert metrics["Label (B)"][0] == b["label"]
    changed = compare_view.changed_fields(a, b)
    differing = at.table[0].value
    assert list(differing["Field"]) == [wording.field_titles(schema)[name] for name in changed]
    labels = [e.label for e in at.expander]
    assert "4. Kind: :orange[differs]" in labels and "1. Normalised text: same" in labels
    assert "6. Similar: :orange[differs]" in labels


def test_the_batch_page_prefills_only_matching_columns_and_shows_the_finished_job(
    app: AppTest, ui_stack: Stack
) -> None:
    at = _page(app, "Batch jobs")
    rows = [
        {"id": n, "review": e.text, "expected": "plot" if "plot" in name else "fresh"}
        for n, (name, e) in enumerate(example.examples.items())
    ]
    upload_file(at, "mine.csv", csv_bytes(rows))
    assert any("columns id, review" in c.value for c in at.caption)
    # no column is named like the text field: nothing is guessed, and the job waits for a choice
    assert at.selectbox(key="batch.map.text").value is None
    at.button(key="batch.submit").click().run()
    assert errors_on(at) == ["Choose the file's column for Text (no column has its name)."]
    at.selectbox(key="batch.map.text").set_value("review").run()
    # only the fields that can be scored are offered; none is preset without a column of its name
    truth_keys = [s.key for s in at.selectbox if (s.key or "").startswith("batch.truth.")]
    assert "batch.truth.label" in truth_keys and "batch.truth.similar" not in truth_keys
    assert at.selectbox(key="batch.truth.label").value == "(none)"
    at.selectbox(key="batch.truth.label").set_value("expected").run()
    at.radio(key="batch.compare_with").set_value("flags").run()
    at.selectbox(key="batch.b.classifier").set_value("minilm").run()
    submit_and_wait(at, len(rows))
    assert sorted(getattr(b, "label", "") for b in at.get("download_button")) == [
        "Download .csv",
        "Download .html",
        "Download .jsonl",
        "Download .parquet",
    ]
    jobs = jobs_table(at)
    first = jobs.iloc[0]
    assert (first["File"], first["State"], first["Progress"]) == ("mine.csv", "succeeded", 1.0)
    assert first["Rows"] == f"{len(rows)} of {len(rows)}" and first["Time"].startswith("took ")
    job = httpx.get(
        f"{ui_stack.gateway.url}/v1/jobs/{at.session_state['batch.job']}", headers=as_key("reviewer")
    ).json()
    assert job["truth"] == {"label": "expected"} and job["mapping"] == {"text": "review"}
    # any past job reopens with its report; closing it leaves the list
    at.selectbox(key="batch.open").set_value(None).run()
    assert not at.success and not at.get("download_button")
    at.selectbox(key="batch.open").set_value(job["id"]).run()
    assert f"Job {job['id']} succeeded" in at.success[0].value


def test_a_job_whose_rows_failed_is_not_shown_as_a_plain_success(app: AppTest) -> None:
    at = _page(app, "Batch jobs")
    # a blank text is refused
    upload_file(at, "blank.csv", csv_bytes([{"text": "A fine film."}, {"text": "   "}]))
    at.button(key="batch.submit").click().run()
    assert_clean(at)
    deadline = time.monotonic() + 120
    while not at.warning and time.monotonic() < deadline:
        time.sleep(1)
        at.run()
    (warning,) = [w.value for w in at.warning]
    assert "succeeded: 2 rows, 1 failed" in warning and "failed rows with their reasons" in warning
    assert not at.success


@pytest.fixture
def idle_gateway(
    example_service: ServiceProcess, redis_server: RedisServer, tmp_path: Path
) -> Iterator[ServiceProcess]:
    """A gateway of this test's own, that it may stop, whose queue no worker reads: its jobs wait, queued."""
    Redis.from_url(redis_server.url(12)).flushdb()
    process = gateway(
        free_port(),
        example_service.url,
        GATEWAY_API_KEYS=keys_env(),
        STORAGE_URL=str(tmp_path / "storage"),
        REDIS_URL=redis_server.url(12),
    )
    with process:
        yield process


def test_a_job_is_cancelled_and_resumed_from_the_page_and_a_gateway_gone_is_one_sentence(
    idle_gateway: ServiceProcess, ui_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_URL", ui_stack.model_url)
    monkeypatch.setenv("GATEWAY_URL", idle_gateway.url)
    monkeypatch.setenv("UI_API_KEY", KEYS["reviewer"])
    at = _page(_fresh(), "Batch jobs")
    upload_file(at, "waiting.csv", b"text\nA fine film.\nA dull one.\n")
    at.button(key="batch.submit").click().run()
    assert_clean(at)
    job_id = at.session_state["batch.job"]
    # followed live: its progress bar, and the table's row
    assert at.get("progress")[0].proto.text.startswith(f"Job {job_id}: queued: 0 of ")
    assert jobs_table(at).iloc[0]["State"] == "queued (waiting for a worker)"
    at.button(key=f"batch.cancel.{job_id}").click().run()
    assert_clean(at)
    assert _state(idle_gateway, job_id) == "cancelled"
    (stopped,) = [w.value for w in at.warning]
    assert stopped.startswith(f"Job {job_id} was cancelled by reviewer after ")
    at.button(key=f"batch.resume.{job_id}").click().run()
    assert_clean(at)
    assert _state(idle_gateway, job_id) == "queued"
    assert [i.value for i in at.info] == [f"Job {job_id} queued again; the rows already done are kept."]
    # the gateway gone while the page shows the job: its cancel button is one sentence
    idle_gateway.stop()
    at.button(key=f"batch.cancel.{job_id}").click().run()
    _one_sentence_about(at, "gateway")
    # back (the page finds the job it showed), cancelled; gone again: its resume button is one sentence
    idle_gateway.start().wait_ready()
    at.run()
    assert_clean(at)
    at.button(key=f"batch.cancel.{job_id}").click().run()
    assert_clean(at)
    idle_gateway.stop()
    at.button(key=f"batch.resume.{job_id}").click().run()
    _one_sentence_about(at, "gateway")


def _state(gateway_process: ServiceProcess, job_id: str) -> str:
    answer = httpx.get(f"{gateway_process.url}/v1/jobs/{job_id}", headers=as_key("reviewer"), timeout=10)
    return str(answer.json()["state"])


def test_a_job_submitted_with_the_gateway_down_gets_one_sentence_not_a_traceback(
    ui_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_URL", ui_stack.model_url)
    monkeypatch.setenv("GATEWAY_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("UI_API_KEY", KEYS["reviewer"])
    at = _page(_fresh(), "Batch jobs")
    content = "text\n" + "\n".join(e.text for e in example.examples.values()) + "\n"
    upload_file(at, "down.csv", content.encode())
    at.button(key="batch.submit").click().run()
    errors = _one_sentence_about(at, "gateway")
    assert any("The gateway is unavailable" in e and "just up" in e for e in errors), errors


@pytest.fixture(scope="module")
def lame_gateway(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    """A gateway up, but with its model service down: it answers 503 to what needs the pipeline."""
    Redis.from_url(redis_server.url(13)).flushdb()
    process = gateway(
        free_port(),
        f"http://127.0.0.1:{free_port()}",
        GATEWAY_API_KEYS=keys_env(),
        STORAGE_URL=str(tmp_path_factory.mktemp("lame") / "storage"),
        REDIS_URL=redis_server.url(13),
    )
    process.start()
    process.wait_ready("/healthz")
    yield process
    process.stop()


def test_a_gateway_that_answers_503_is_one_sentence_on_submit_case_report_and_cases(
    ui_stack: Stack, lame_gateway: ServiceProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The traceback the issue found: a 503 on job submission escaped the client as an internal error."""
    monkeypatch.setenv("MODEL_URL", ui_stack.model_url)
    monkeypatch.setenv("GATEWAY_URL", lame_gateway.url)
    monkeypatch.setenv("UI_API_KEY", KEYS["reviewer"])
    at = _page(_fresh(), "Batch jobs")
    assert_clean(at)  # listing jobs needs no model service
    upload_file(at, "lame.csv", b"text\nA fine film.\n")
    at.button(key="batch.submit").click().run()
    (error,) = _one_sentence_about(at, "gateway")
    assert error.startswith("The gateway cannot take this now: ") and error.endswith("Try again in a moment.")
    # another version to compare needs the versions, which the gateway cannot list now: said once, so
    at.radio(key="batch.compare_with").set_value("version").run()
    assert_clean(at)
    at.button(key="batch.submit").click().run()
    assert _one_sentence_about(at, "gateway") == [error]
    at.sidebar.radio(key="page").set_value("Cases").run()
    _one_sentence_about(at, "gateway")
    at.sidebar.radio(key="page").set_value("Explore").run()
    at.button(key="explore.example.fresh review").click().run()
    assert_clean(at)
    at.button(key="explore.fix.send").click().run()
    _one_sentence_about(at, "gateway")


def test_a_stopped_model_service_is_named_and_the_rest_keeps_working(
    ui_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODEL_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("GATEWAY_URL", ui_stack.gateway.url)
    at = _fresh()
    at.run()
    assert not at.exception
    assert any("The model service is unavailable" in e.value and "just up" in e.value for e in at.error)
    assert at.sidebar.radio(key="page").options == ["Explore", "Compare", "Batch jobs", "Cases", "Versions"]


def test_a_model_service_stopped_after_start_is_one_sentence_on_explore_and_compare(
    ui_stack: Stack, monkeypatch: pytest.MonkeyPatch, example_pipeline: Any
) -> None:
    from tests.conftest import EXAMPLE_ARTIFACTS

    model = model_service(free_port(), MODEL_ARTIFACTS_DIR=str(EXAMPLE_ARTIFACTS.parent))
    with model:
        monkeypatch.setenv("MODEL_URL", model.url)
        monkeypatch.setenv("GATEWAY_URL", ui_stack.gateway.url)
        at = _fresh()
        _page(at, "Explore")
        at.text_area(key="explore.input.text").input(example.examples["plot summary"].text).run()
        model.stop()
        at.button(key="explore.run").click().run()
        errors = _one_sentence_about(at, "model service")
        assert any("The model service is unavailable" in e for e in errors)
        at.sidebar.radio(key="page").set_value("Compare").run()  # the description is cached: the page shows
        at.button(key="compare.example.plot summary").click().run()
        _one_sentence_about(at, "model service")
        at.button(key="compare.run").click().run()
        _one_sentence_about(at, "model service")


def test_another_pipeline_renders_its_own_form_and_flags(
    tiny_artifacts: Path, ui_stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        "MODEL_PIPELINE": "tests.tiny_pipeline:pipeline",
        "MODEL_ARTIFACTS_DIR": str(tiny_artifacts.parent),
    }
    with model_service(free_port(), **env) as model:
        monkeypatch.setenv("MODEL_URL", model.url)
        monkeypatch.setenv("GATEWAY_URL", ui_stack.gateway.url)
        at = _fresh()
        _page(at, "Explore")
        assert at.text_input(key="explore.input.values").label == "Values :gray[(up to 50 items)]"
        assert at.text_input(key="explore.input.unit").label == "Unit :gray[(up to 10 characters)]"
        assert at.sidebar.selectbox(key="explore.flags.method").options == ["sum", "mean"]
        assert at.sidebar.number_input(key="explore.flags.scale").label == "Scale :gray[(above 0, up to 100)]"
        assert at.sidebar.number_input(key="explore.flags.scale").value == 1.0
        assert at.sidebar.toggle(key="explore.flags.with_spread").value is True
        at.sidebar.selectbox(key="explore.flags.method").set_value("mean").run()
        at.button(key="explore.example.three readings").click().run()
        assert_clean(at)
        assert at.text_input(key="explore.input.values").value == "1, 2, 4"
        shown = _markdown(at)
        assert not at.metric  # no roles: no headline, every field in words
        assert "**Value** 2\\.83" in shown and "**Unit** kg" in shown and "**Spread** 3" in shown
        assert any(m.startswith("**2. Combined** :blue-badge[mean]") for m in shown)
        assert any(m.startswith("**3. Unused** :gray[— not needed") for m in shown)
        at.text_input(key="explore.input.values").input("1, two").run()
        at.button(key="explore.run").click().run()
        assert errors_on(at) == ["Values: 'two' is not a number"]


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
    assert days.label == "Customer days :gray[(0 to 36500)] :gray[optional]"  # its limits, before sending
    assert at.selectbox(key="explore.input.channel").options == ["email", "chat", "phone"]
    at.text_input(key="explore.input.subject").set_value("Refund for an invoice: the app is down").run()
    at.text_input(key="explore.input.tags").set_value("billing").run()
    at.sidebar.selectbox(key="explore.flags.scorer").set_value("weighted").run()
    at.button(key="explore.run").click().run()
    assert_clean(at)
    item = {"subject": "Refund for an invoice: the app is down", "tags": ["billing"]}
    expected = _predict(rich_stack.model_url, item, {"scorer": "weighted"})
    output = expected["outputs"][0]
    assert output["tenure"] is None and output["urgency"] == 35.0  # no priority, one urgent word
    assert [(m.label, m.value) for m in at.metric] == [("Team", output["team"])]
    shown = _markdown(at)
    assert "**Scores**" in shown  # the output's own scores, beside the verdict, not again in the details
    assert "**Urgency** 35" in shown and "**Tenure** none" in shown and "**Channel** email" in shown
    assert any(m.startswith("**3. Team scores** :blue-badge[weighted]") for m in shown)
    assert any("sparse matrix 1 \u00d7 7 \\(csr, float64\\) with 2 values set" in m for m in shown)
    assert any(":gray-badge[refund]" in m for m in shown)  # the step's words as chips
    # the optional fields set: the UI sends them, and the pipeline's answer changes as it says
    at.selectbox(key="explore.input.priority").set_value("high").run()
    at.number_input(key="explore.input.customer_days").set_value(400.0).run()
    at.button(key="explore.run").click().run()
    assert_clean(at)
    with_both = _predict(rich_stack.model_url, {**item, "priority": "high", "customer_days": 400.0}, {})
    assert with_both["outputs"][0]["tenure"] == "high" and with_both["outputs"][0]["urgency"] == 75.0
    assert "**Tenure** high" in _markdown(at)

    at = _page(at, "Compare")
    at.selectbox(key="compare.b.scorer").set_value("weighted").run()
    at.toggle(key="compare.b.urgent_words").set_value(False).run()
    at.button(key="compare.example.a billing complaint").click().run()
    assert_clean(at)
    labels = [e.label for e in at.expander]
    assert "4. Urgent hits: :orange[differs]" in labels and "1. Words: same" in labels

    at = _page(at, "Batch jobs")
    rows = [t.model_dump(mode="json", exclude_none=True) for t in rich_pipeline.pipeline.examples.values()]
    lines = "".join(json.dumps(row) + "\n" for row in rows).encode()
    upload_file(at, "tickets.jsonl", lines)
    assert at.selectbox(key="batch.map.subject").value == "subject"  # named like the field: pre-filled
    submit_and_wait(at, len(rows))
