"""The Versions page: its plain functions, then the page with AppTest and in Chromium, against a real
gateway and model service on an embedded MLflow registry holding two versions of the example.

In file order: the versions before any promotion, a forced promotion's evidence, a rollback, the page
in a browser (champion and challenger again, the last promotion's evidence: test-output/ui-versions.png),
the registry down; then a model service without a registry, and the gateway down.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import streamlit as st
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from streamlit.testing.v1 import AppTest

from batch_worker.checks import check_versions
from onepipe.platform.http.client import ModelServiceClient
from onepipe.platform.jobs.storage import CheckStore
from onepipe.platform.versions.evidence import Evidence, held_out_of
from onepipe.platform.versions.registry import Registry
from onepipe.platform.versions.types import CheckRun, RegistryState, VersionInfo, headline_metrics
from onepipe_harness.processes import (
    ROOT,
    RedisServer,
    ServiceProcess,
    free_port,
    gateway,
    model_service,
)
from review_triage.pipeline import pipeline as example
from tests.browsing import (
    body_text,
    button,
    chromium,
    click,
    open_page,
    screenshot,
    settled,
    shows,
    wait_for,
)
from tests.case_library import FIXED, MINILM, MUST_PASS, two_case_library
from tests.conftest import EXAMPLE_ARTIFACTS, example_labels
from tests.stacks import KEYS, Stack, as_key, csv_bytes, keys_env, stack
from tests.ui.apptest import errors_on, submit_and_wait, upload_file
from ui_service import shadow_view, versions_view, wording

APP = str(ROOT / "services" / "ui" / "src" / "ui_service" / "app.py")
FLAGS = example.describe("").flags_schema
OUTPUTS = example.describe("").output_schema
REASON = "the must-pass case is wrong; fixed in the library next"


# -- the plain functions --------------------------------------------------------------------------


def _evidence(**changes: Any) -> Evidence:
    record: dict[str, Any] = {
        "pipeline": "p",
        "champion": {"label": "champion", "version": "aaa111", "number": 1},
        "challenger": {"label": "challenger", "version": "bbb222", "number": 2},
        "cases": {
            "total": 5,
            "fixed": 1,
            "broken": 2,
            "must_pass_broken": 1,
            "still_wrong": 1,
            "still_right": 1,
        },
        "fixed": [],
        "broken": [],
        "held_out": [],
        "held_out_note": "All 10 held-out rows, scored by both versions.",
        "may_promote": True,
        "seed": 0,
        "resamples": 1000,
        "gathered_at": "2026-12-06T19:24:24Z",
    }
    return Evidence.model_validate(record | changes)


def _case(
    case_id: str, must_pass: bool, champion: Any, challenger: Any, error: str | None = None
) -> dict[str, Any]:
    return {
        "id": case_id,
        "note": "a note",
        "must_pass": must_pass,
        "expected": {"label": "fresh"},
        "champion": {"label": champion},
        "challenger": {} if error else {"label": challenger},
        "champion_right": champion == "fresh",
        "challenger_right": challenger == "fresh",
        "challenger_error": error,
        "outcome": "broken",
    }


def test_the_verdict_says_promoted_forced_by_whom_and_why_or_refused() -> None:
    promoted = versions_view.promotion_verdict(_evidence())
    assert (promoted.kind, promoted.when) == ("promoted", "2026-12-06 19:24 UTC")
    assert promoted.text == (
        "Promoted: v2 (bbb222) became champion in place of v1 (aaa111). No must-pass case broke."
    )
    refusal = "The challenger breaks 1 must-pass case: case-1."
    forced = versions_view.promotion_verdict(
        _evidence(refusal=refusal, forced=True, forced_by="release", reason="known wrong.")
    )
    assert forced.kind == "forced" and forced.text == (
        "Forced by release because “known wrong”: v2 (bbb222) became champion in place of v1 (aaa111), "
        "although the challenger breaks 1 must-pass case: case-1."
    )
    anonymous = versions_view.promotion_verdict(_evidence(refusal=refusal, forced=True, reason="why"))
    assert anonymous.text.startswith("Forced by an unnamed caller because “why”")
    refused = versions_view.promotion_verdict(_evidence(refusal=refusal, may_promote=False))
    assert refused.kind == "refused" and refused.text == (
        "Refused: The challenger breaks 1 must-pass case: case-1. v1 (aaa111) stayed champion."
    )


def test_a_difference_of_accuracies_is_stated_in_points_with_its_interval() -> None:
    scores = [
        {"field": "label", "metric": "accuracy", "champion": 0.784, "challenger": 0.760,
         "difference": -0.024, "low": -0.039, "high": -0.007, "rows": 3472},
        {"field": "needs_review", "metric": "accuracy", "champion": 0.9, "challenger": 0.91,
         "difference": 0.01, "low": -0.0004, "high": 0.02, "rows": 10},
        {"field": "stars", "metric": "mean absolute error", "champion": 0.5, "challenger": 0.25,
         "difference": -0.25, "low": -0.4, "high": -0.1, "rows": 10},
    ]  # fmt: skip
    rows = versions_view.held_out_rows(_evidence(held_out=scores).held_out, OUTPUTS)
    label, review, stars = rows
    assert (label.field, label.champion, label.challenger) == ("Label", "78.4%", "76.0%")
    assert label.difference == "-2.4 points (-3.9 to -0.7)" and label.judgement == "worse"
    assert label.reads == "worse: the whole interval is below zero"
    assert label.rows == "3,472" and label.values == pytest.approx((-2.4, -3.9, -0.7))
    assert review.difference == "+1.0 points (0.0 to +2.0)"
    assert review.reads == "no clear difference: the interval includes zero"
    assert stars.difference == "-0.25 (-0.4 to -0.1)"  # an error: lower is better
    assert stars.reads == "better: the whole interval is below zero"
    assert stars.unit == "mean absolute error"
    charts = versions_view.interval_points(rows)
    assert list(charts) == ["points", "mean absolute error"] and len(charts["points"]) == 2


def test_cases_list_must_pass_first_with_both_answers_in_words() -> None:
    verdicts = _evidence(
        broken=[
            _case("case-2", False, "fresh", "rotten"),
            _case("case-1", True, "fresh", None, "Timeout: slow"),
        ]
    ).broken
    rows = versions_view.case_rows(verdicts, OUTPUTS)
    assert [(row.case, row.must_pass) for row in rows] == [("case-1", True), ("case-2", False)]
    assert (rows[0].expected, rows[0].champion) == ("Label: fresh", "Label: fresh")
    assert rows[0].challenger == "no answer (Timeout: slow)"
    assert rows[1].challenger == "Label: rotten"


def test_versions_read_as_rows_with_accuracies_first_and_what_sets_the_challenger_apart() -> None:
    metrics = {"seed": 13.0, "metrics.tfidf/kind.accuracy": 0.9836, "metrics.b/sentiment.accuracy": 0.784,
               "training_seconds": 86.6, "held_out": 0.25}  # fmt: skip
    first = VersionInfo(number=1, version="aaa", aliases=["champion"], metrics=metrics, code="c1",
                        created_at=datetime(2026, 12, 6, 19, 23, tzinfo=UTC), loaded=True)  # fmt: skip
    second = first.model_copy(
        update={
            "number": 2,
            "version": "bbb",
            "aliases": ["challenger"],
            "flag_defaults": MINILM,
            "loaded": False,
        }
    )
    assert headline_metrics(metrics, 3) == [
        "metrics.b/sentiment.accuracy",
        "metrics.tfidf/kind.accuracy",
        "held_out",
    ]
    rows = versions_view.version_rows([second, first], FLAGS)
    assert [(row.name, row.aliases, row.flag_defaults, row.loaded) for row in rows] == [
        ("v2", ["challenger"], "Classifier: minilm", "no"),
        ("v1", ["champion"], "the code's own", "yes"),
    ]
    assert rows[1].metrics == {
        "b/sentiment accuracy": "78.4%",
        "tfidf/kind accuracy": "98.4%",
        "held out": "0.25",
        "seed": "13",
    }
    assert rows[1].trained == "2026-12-06 19:23 UTC"
    every = versions_view.every_metric([second, first.model_copy(update={"metrics": {"seed": 12.0}})])
    assert every[:2] == [
        {"Metric": "b/sentiment accuracy", "v2": "78.4%", "v1": "-"},
        {"Metric": "tfidf/kind accuracy", "v2": "98.4%", "v1": "-"},
    ]
    assert every[-1] == {"Metric": "training seconds", "v2": "86.6", "v1": "-"} and len(every) == 5
    assert versions_view.differences(first, second, FLAGS) == ["Classifier: tfidf → minilm"]
    retrained = second.model_copy(update={"code": "c2", "metrics": {**metrics, "seed": 14.0}})
    assert versions_view.differences(first, retrained, FLAGS) == [
        "Classifier: tfidf → minilm",
        "trained by different pipeline code (c1 → c2)",
        "seed: 13 → 14",
    ]
    assert versions_view.by_alias([second, first], "champion") == first
    assert versions_view.version_name(None) == "unregistered"
    assert versions_view.missing_text("challenger") == (
        "No version holds it: `just train --alias challenger [--flag name=value]` registers one."
    )


def test_the_registry_reads_as_one_sentence_in_each_state() -> None:
    ok = versions_view.registry_message(RegistryState(kind="mlflow", location="/data/registry"))
    assert ok == versions_view.RegistryMessage(
        "ok", "Versions come from the MLflow registry at /data/registry, which answers."
    )
    down = versions_view.registry_message(
        RegistryState(kind="mlflow", location="http://mlflow:5000", status="down", error="refused.")
    )
    assert down.mood == "down" and down.text.startswith(
        "The MLflow registry at http://mlflow:5000 does not answer: refused. The model service keeps serving"
    )
    none = versions_view.registry_message(RegistryState(kind="none", location="/artifacts"))
    assert none.mood == "none" and "set `MODEL_REGISTRY` (`docs/versions.md`)" in none.text
    damaged = _evidence().model_dump(mode="json") | {"cases": None}
    assert versions_view.read_evidence(damaged) == (
        "The last promotion's record cannot be read (cases: Input should be a valid dictionary or instance "
        "of CaseCounts); another version of onepipe may have written it."
    )


# -- a registry of two versions, a model service and a gateway on it -------------------------------


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory, example_pipeline: Any) -> Registry:
    """An embedded registry: v1 the example as trained (champion), v2 with classifier=minilm (challenger)."""
    folder = tmp_path_factory.mktemp("ui-versions")
    found = Registry(str(folder / "registry"), folder / "cache")
    found.register(example, EXAMPLE_ARTIFACTS, {})
    found.register(example, EXAMPLE_ARTIFACTS, MINILM, alias="challenger")
    return found


@pytest.fixture(scope="module")
def service(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    folder = tmp_path_factory.mktemp("ui-versions-service")
    env = {
        "MODEL_ARTIFACTS_DIR": str(EXAMPLE_ARTIFACTS.parent),
        "MODEL_REGISTRY": registry.location,
        "MODEL_VERSIONS_CACHE": str(folder / "cache"),
        "MODEL_REGISTRY_POLL_SECONDS": "0.5",
        "MODEL_CASES_DIR": str(two_case_library(folder / "cases")),
    }
    with model_service(free_port(), **env) as process:
        yield process


def _gateway_env(tmp: Path, redis_server: RedisServer) -> dict[str, str]:
    return {"GATEWAY_API_KEYS": keys_env(), "STORAGE_URL": str(tmp), "REDIS_URL": redis_server.url(3)}


@pytest.fixture(scope="module")
def storage(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The gateway's storage root, where the scheduled checks are kept."""
    return tmp_path_factory.mktemp("ui-versions-storage")


@pytest.fixture(scope="module")
def front(service: ServiceProcess, redis_server: RedisServer, storage: Path) -> Iterator[ServiceProcess]:
    """The gateway the page reads, shadowing every champion predict to the challenger."""
    env = _gateway_env(storage, redis_server) | {
        "GATEWAY_SHADOW_RATE": "1",
        "GATEWAY_RATE_LIMIT": "100000/minute",
    }
    with gateway(free_port(), service.url, **env) as process:
        yield process


def _app(
    monkeypatch: pytest.MonkeyPatch,
    model_url: str,
    gateway_url: str,
    key: str = "reviewer",
    page_name: str = "Versions",
) -> AppTest:
    """The app on one of its pages (the Versions page), with a key (the UI's: no `versions` scope)."""
    monkeypatch.setenv("MODEL_URL", model_url)
    monkeypatch.setenv("GATEWAY_URL", gateway_url)
    monkeypatch.setenv("UI_API_KEY", KEYS[key])
    st.cache_resource.clear()  # clients are cached per process: each test gets its own URLs
    st.cache_data.clear()
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.sidebar.radio(key="page").set_value(page_name).run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def page(monkeypatch: pytest.MonkeyPatch, service: ServiceProcess, front: ServiceProcess) -> Any:
    return lambda: _app(monkeypatch, service.url, front.url)


def _plain(markdown: str) -> str:
    """Markdown as the text it shows: the escapes the page puts before punctuation taken out."""
    return re.sub(r"\\(.)", r"\1", markdown)


def _tables(at: AppTest) -> list[Any]:
    """The page's tables as plain text (cells and column names)."""
    return [table.value.map(_plain).rename(columns=_plain) for table in at.table]


def _table(at: AppTest, column: str) -> Any:
    return next(table for table in _tables(at) if column in table.columns)


def _said(elements: Any) -> list[str]:
    """What alerts (success, info, warning) say, as plain text."""
    return [_plain(element.value) for element in elements]


def _markdown(at: AppTest) -> str:
    return _plain("\n".join(m.value for m in at.markdown))


def _versions(registry: Registry) -> dict[str, str]:
    return {f"v{v.number}": v.version for v in registry.versions(example.name)}


def _shadow_summary(front: ServiceProcess) -> dict[str, Any]:
    answer = httpx.get(f"{front.url}/v1/versions/shadow", headers=as_key("release"), timeout=30)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


@pytest.fixture(scope="module")
def shadowed(front: ServiceProcess) -> dict[str, Any]:
    """Champion predicts of varied held-out snippets through the gateway, each shadowed to the challenger
    (MiniLM answers some differently); the gateway's summary once all are recorded."""
    texts = sorted({str(row["text"]) for row, _ in (held_out_of(example) or [])}, key=len)
    chosen = [*texts[:: max(1, len(texts) // 10)][:10], texts[-1]]
    bodies: list[dict[str, Any]] = [{"inputs": {"text": text}} for text in chosen[:8]]
    bodies.append({"inputs": [{"text": text} for text in chosen[8:]], "flags": {"neighbours": 1}})
    for body in bodies:
        sent = httpx.post(f"{front.url}/v1/predict", json=body, headers=as_key("reviewer"), timeout=120)
        assert sent.status_code == 200, sent.text
    deadline = time.monotonic() + 120
    while (summary := _shadow_summary(front))["requests"] < len(bodies):
        assert time.monotonic() < deadline, (summary, front.log()[-3000:])
        time.sleep(0.3)
    assert summary["rows_changed"] > 0 and summary["failed"] == 0, summary
    return summary


def test_the_page_lists_both_versions_and_sets_the_challenger_beside_the_champion(
    page: Any, registry: Registry
) -> None:
    at = page()
    assert not at.error and at.header[0].value == "Versions"
    assert _said(at.success) == [
        f"Versions come from the MLflow registry at {registry.location}, which answers."
    ]
    table = _table(at, "Aliases")
    hashes = _versions(registry)
    assert list(table["Version"]) == ["**v2**", "**v1**"]
    assert list(table["Hash"]) == [f"`{hashes['v2']}`", f"`{hashes['v1']}`"]
    assert list(table["Aliases"]) == [":blue-badge[challenger]", ":green-badge[champion]"]
    assert list(table["Flag defaults"]) == ["Classifier: minilm", "the code's own"]
    assert list(table["Loaded"]) == ["yes", "yes"]
    # the headline metrics: the model card's held-out accuracies, as `just versions` picks them
    accuracies = [c for c in table.columns if c.endswith("accuracy")]
    assert len(accuracies) == 4 and "tfidf/kind accuracy" in accuracies
    v1 = registry.resolve(example.name, "v1")
    assert table["tfidf/kind accuracy"][1] == f"{v1.metrics['metrics.tfidf/kind.accuracy'] * 100:.1f}%"
    shown = _markdown(at)
    assert ":green-badge[champion] **v1**" in shown and ":blue-badge[challenger] **v2**" in shown
    assert "**What differs**: Classifier: tfidf → minilm." in shown
    assert "Flag defaults: Classifier: minilm" in shown
    captions = _said(at.caption)
    assert any(c.startswith(f"`{hashes['v2']}` · trained ") and c.endswith("· loaded") for c in captions)
    assert any(c.startswith("No promotion recorded yet: `just promote`") for c in captions)
    assert any("`just rollback` brings back the previous champion" in c for c in captions)  # said, not done
    assert not at.button  # the UI promotes nothing
    assert shadow_view.SCOPE_TEXT in captions  # the reviewer's key has no `versions` scope: one sentence
    (every,) = at.expander
    assert every.label == f"Every metric ({len(v1.metrics)})" and len(_table(at, "Metric")) == len(v1.metrics)


def test_the_page_shows_shadow_traffic_as_the_gateway_counts_it(
    monkeypatch: pytest.MonkeyPatch, service: ServiceProcess, front: ServiceProcess, shadowed: dict[str, Any]
) -> None:
    at = _app(monkeypatch, service.url, front.url, key="release")  # the versions scope
    assert not at.error and not at.exception, [e.value for e in at.error]
    assert "Shadow traffic" in [s.value for s in at.subheader]
    assert at.radio(key="versions.shadow_since").value == shadow_view.SINCE_SET
    summary = _shadow_summary(front)
    assert summary["requests"] == shadowed["requests"]  # nothing more was sent
    counts = {m.label: m.value for m in at.metric}
    assert counts == {
        "Shadowed": str(summary["requests"]),
        "Inputs compared": str(summary["rows"]),
        "Decisions changed": str(summary["decisions_changed"]),
        "Changed": str(summary["rows_changed"]),
        "Failed": "0",
        "Skipped": str(summary["skipped"]),
    }
    text = _markdown(at)
    assert f"{summary['requests']} requests of the champion v1 ({summary['champion']}) shadowed" in text
    agreement = _table(at, "Agreement")
    assert agreement["Field"][0] == "Label" and len(agreement) == len(summary["agreement"])
    label = summary["agreement"][0]
    assert agreement["Agreement"][0].endswith(f"({label['agreeing']} of {label['compared']})")
    # the decisions lead the headline; each number says how far it moved, against its tolerance
    assert summary["headline"].split(",")[0].split(";")[0] in text
    confidence = next(a for a in summary["agreement"] if a["field"] == "confidence")
    moved = list(agreement["Moved by"])[list(agreement["Field"]).index("Confidence")]
    assert moved.endswith("(tolerance 0.05)") == (confidence["largest_difference"] is not None), moved
    changed = _table(at, "Differs in")
    assert len(changed) == len(summary["changed"]) == summary["rows_changed"]
    shown = [wording.shorten(c["input"]["text"], shadow_view.INPUT_LIMIT) for c in summary["changed"]]
    assert list(changed["Input"]) == [f"Text: {text}" for text in shown]
    assert any("Label" in row for row in changed["Differs in"])
    latency = _table(at, "p95")
    assert list(latency["Calls"]) == [str(summary["requests"])] * 2
    assert len(at.get("vega_lite_chart")) == 1  # the agreement, drawn
    # the last hour holds them all; a window after them none, and the page says how shadowing is turned on
    at.radio(key="versions.shadow_since").set_value("Last hour").run()
    assert {m.label: m.value for m in at.metric}["Shadowed"] == str(summary["requests"])


# -- the Batch jobs page: one job on two versions -------------------------------------------------


@pytest.fixture(scope="module")
def batch_stack(
    service: ServiceProcess, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """A gateway and a worker for the Batch jobs page, on the same model service and registry."""
    folder = tmp_path_factory.mktemp("ui-versions-jobs")
    with stack(service.url, folder, redis=redis_server.url(4)) as started:
        yield started


def _batch_rows() -> list[dict[str, str]]:
    """The example's first 40 held-out snippets (varied lengths; the two versions disagree on some)."""
    return [{"text": str(row["text"])} for row, _ in (held_out_of(example) or [])[:40]]


V1_LABEL = f"v1 · champion · {versions_view.CODE_DEFAULTS} flag defaults"
V2_LABEL = "v2 · challenger · Classifier: minilm"


def test_the_batch_page_runs_one_job_on_two_versions(
    monkeypatch: pytest.MonkeyPatch,
    service: ServiceProcess,
    registry: Registry,
    batch_stack: Stack,
    example_pipeline: Any,
) -> None:
    hashes = _versions(registry)
    at = _app(monkeypatch, service.url, batch_stack.gateway.url, key="release", page_name="Batch jobs")
    rows = _batch_rows()
    upload_file(at, "two-versions.csv", csv_bytes(rows))
    chosen = at.selectbox(key="batch.version")
    assert (chosen.value, chosen.options) == ("v1", [V1_LABEL, V2_LABEL])
    at.radio(key="batch.compare_with").set_value("version").run()
    second = at.selectbox(key="batch.compare_version")
    assert (second.value, second.options) == ("v2", [V2_LABEL])  # the challenger, and not the first again
    submit_and_wait(at, len(rows))
    job = httpx.get(
        f"{batch_stack.gateway.url}/v1/jobs/{at.session_state['batch.job']}", headers=as_key("release")
    ).json()
    assert (job["version"], job["compare_version"]) == (None, "v2")  # None: the champion when it started
    assert (job["pipeline_version"], job["compare_pipeline_version"]) == (hashes["v1"], hashes["v2"])
    answered = batch_stack.rows(job, "release")
    texts = [row["text"] for row in rows]
    champion, challenger = (example_labels(example_pipeline, texts, flags) for flags in ({}, MINILM))
    assert [row["output.label"] for row in answered] == champion
    assert [row["compare.label"] for row in answered] == challenger
    assert champion != challenger  # the two versions differ on this file


def test_the_batch_page_says_why_a_second_version_cannot_be_had(
    monkeypatch: pytest.MonkeyPatch,
    service: ServiceProcess,
    batch_stack: Stack,
    example_service: ServiceProcess,
) -> None:
    # with the challenger first, the only other version is the champion: still two to compare
    at = _app(monkeypatch, service.url, batch_stack.gateway.url, key="release", page_name="Batch jobs")
    upload_file(at, "two-versions.csv", csv_bytes(_batch_rows()))
    at.selectbox(key="batch.version").set_value("v2").run()
    at.radio(key="batch.compare_with").set_value("version").run()
    assert at.selectbox(key="batch.compare_version").options == [V1_LABEL]
    # a key without the `versions` scope: the gateway refuses the job in one sentence naming the scope
    at = _app(monkeypatch, service.url, batch_stack.gateway.url, key="reviewer", page_name="Batch jobs")
    upload_file(at, "two-versions.csv", csv_bytes(_batch_rows()))
    at.radio(key="batch.compare_with").set_value("version").run()
    at.button(key="batch.submit").click().run()
    (refused,) = errors_on(at)
    assert refused.startswith("The gateway ") and "versions" in refused, refused
    # a model service without a registry: one version only, and the page says what versions need
    with stack(example_service.url, Path(str(batch_stack.storage)).parent / "plain", redis=None) as plain:
        at = _app(monkeypatch, example_service.url, plain.gateway.url, key="release", page_name="Batch jobs")
        upload_file(at, "one-version.csv", csv_bytes(_batch_rows()))
        assert not [box for box in at.selectbox if box.key == "batch.version"]
        at.radio(key="batch.compare_with").set_value("version").run()
        at.button(key="batch.submit").click().run()
        (why,) = errors_on(at)
        assert why.startswith("No registry: the model service serves one artifacts folder"), why


def test_the_batch_page_compares_two_versions_in_a_browser(
    browser: webdriver.Chrome,
    service: ServiceProcess,
    registry: Registry,
    batch_stack: Stack,
    tmp_path: Path,
) -> None:
    hashes = _versions(registry)
    dataset = tmp_path / "held-out.csv"
    dataset.write_bytes(csv_bytes(_batch_rows()))
    port = free_port()
    env = {"MODEL_URL": service.url, "GATEWAY_URL": batch_stack.gateway.url, "UI_API_KEY": KEYS["release"],
           "STREAMLIT_SERVER_PORT": str(port)}  # fmt: skip
    command = ["uv", "run", "--frozen", "--no-sync", "streamlit", "run", "services/ui/src/ui_service/app.py"]
    with ServiceProcess("ui", command, env, port) as ui:
        ui.wait_ready("/_stcore/health")
        browser.get(ui.url)
        open_page(browser, "Batch jobs")
        browser.find_element(By.CSS_SELECTOR, "input[type='file']").send_keys(str(dataset))
        shows(browser, "Compare with")
        click(browser, "//label[.//p[normalize-space()='Another version']]")
        shows(browser, "Second version")
        screenshot(browser, "ui-batch-versions-form.png")  # the select boxes' values are drawn, not text
        click(browser, button("Submit job"))
        shows(browser, "succeeded: 40 rows, 0 failed")
        body = body_text(browser)
        assert "Traceback" not in body
        screenshot(browser, "ui-batch-versions.png")
        # the report on the page names both versions by what was asked and what answered
        frame = browser.find_element(By.CSS_SELECTOR, "iframe")
        browser.switch_to.frame(frame)
        report = body_text(browser)
        browser.switch_to.default_content()
        assert hashes["v1"] in report and hashes["v2"] in report, report[:2000]


@pytest.fixture(scope="module")
def promoted(front: ServiceProcess, shadowed: dict[str, Any]) -> dict[str, Any]:
    """A promotion forced past the broken must-pass case by the release key through the gateway, which
    adds its shadow record to the evidence; the answer."""
    body = {"force": True, "reason": REASON, "held_out_rows": 40}
    done = httpx.post(f"{front.url}/v1/versions/promote", json=body, headers=as_key("release"), timeout=600)
    assert done.status_code == 200, done.text
    return dict(done.json())


def test_the_last_promotion_shows_its_verdict_cases_and_held_out_scores(
    page: Any, registry: Registry, promoted: dict[str, Any]
) -> None:
    hashes = _versions(registry)
    at = page()
    assert not at.error
    verdict = (
        f"Forced by release because “{REASON}”: v2 ({hashes['v2']}) became champion in place of "
        f"v1 ({hashes['v1']}), although the challenger breaks 1 must-pass case: {MUST_PASS}."
    )
    assert _said(at.warning) == [verdict]
    assert list(_table(at, "Aliases")["Aliases"]) == [":green-badge[champion]", ":gray-badge[previous]"]
    counts = {m.label: m.value for m in at.metric}
    assert counts == {
        "Fixed": "1",
        "Broken": "1",
        "Must-pass broken": "1",
        "Still wrong": "0",
        "Still right": "0",
    }
    assert "**Edge cases**: 2 replayed on both versions" in _markdown(at)
    broken, fixed = (table for table in _tables(at) if "Case" in table.columns)
    assert list(broken["Case"]) == [f"{MUST_PASS} :red-badge[must pass]"]
    assert list(broken["Expected"]) == ["Label: fresh"]
    assert list(broken[f"Champion v1 ({hashes['v1']})"]) == ["Label: fresh"]
    assert list(broken[f"Challenger v2 ({hashes['v2']})"]) == ["Label: rotten"]
    assert list(fixed["Case"]) == [FIXED]
    held_out = _table(at, "Difference (95% interval)")
    score = promoted["evidence"]["held_out"][0]
    low, high = (versions_view.signed_points(score[end] * 100) for end in ("low", "high"))
    assert list(held_out["Field"]) == ["Label"] and list(held_out["Rows"]) == ["40"]
    difference = versions_view.signed_points(score["difference"] * 100)
    assert held_out["Difference (95% interval)"][0] == f"{difference} points ({low} to {high})"
    assert any(c.value.startswith("A random sample of 40 of the ") for c in at.caption)
    shadow = promoted["evidence"]["shadow"]
    assert shadow["requests"] > 0 and shadow["challenger"] == hashes["v2"]
    assert "**Shadow traffic** (live requests sent to both versions before the promotion)" in _markdown(at)
    assert any(
        _plain(c.value).startswith(f"{shadow['requests']} requests of the champion v1") for c in at.caption
    )
    label = shadow["agreement"][0]
    assert _table(at, "Agreement")["Agreement"][0].endswith(f"({label['agreeing']} of {label['compared']})")
    assert len(at.get("vega_lite_chart")) == 2  # the interval and the shadow agreement, drawn


@pytest.fixture(scope="module")
def rolled_back(service: ServiceProcess, promoted: dict[str, Any]) -> dict[str, Any]:
    """The promotion rolled back: v1 champion again, v2 challenger again; the evidence stays the last."""
    back = httpx.post(f"{service.url}/v1/versions/rollback", timeout=600)
    assert back.status_code == 200, back.text
    return dict(back.json())


def test_after_a_rollback_the_page_says_the_champion_is_back(page: Any, rolled_back: dict[str, Any]) -> None:
    at = page()
    assert _said(at.info) == ["Rolled back since: v1 is champion again (`just rollback`)."]
    assert list(_table(at, "Aliases")["Aliases"]) == [":blue-badge[challenger]", ":green-badge[champion]"]
    assert _said(at.warning)[0].startswith("Forced by release")  # still the last promotion


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    with chromium("The Versions page's browser test") as driver:
        yield driver


@pytest.fixture(scope="module")
def scheduled_check(service: ServiceProcess, storage: Path, rolled_back: dict[str, Any]) -> CheckRun:
    """A scheduled check after the rollback (v1 champion, v2 challenger), as a worker runs it: the plain
    function over HTTP to the live model service, kept in the gateway's storage (the beat and the
    worker that send and run it: tests/batch_worker/test_checks.py)."""
    with ModelServiceClient(service.url, timeout=60) as client:
        return check_versions(client, CheckStore(str(storage)))


def test_the_page_shows_the_last_check_with_a_red_line_for_the_broken_must_pass_case(
    page: Any, registry: Registry, scheduled_check: CheckRun
) -> None:
    hashes = _versions(registry)
    at = page()
    assert not at.exception
    red = (
        f"Must-pass case {MUST_PASS} fails on the challenger v2 ({hashes['v2']}): expected Label: fresh, "
        "answered Label: rotten"
    )
    (line,) = _said(at.error)
    assert line.startswith(red)
    text = _markdown(at)
    assert f"Champion v1 ({hashes['v1']}): 1 of 2 pass" in text
    assert f"Challenger v2 ({hashes['v2']}): 1 of 2 pass, 1 must-pass failing" in text
    assert f"2 edge cases replayed on the champion v1 ({hashes['v1']}) and the challenger v2" in text


def test_the_versions_page_in_a_browser(
    browser: webdriver.Chrome,
    service: ServiceProcess,
    front: ServiceProcess,
    rolled_back: dict[str, Any],
    scheduled_check: CheckRun,
) -> None:
    summary = _shadow_summary(front)  # champion and challenger again: their record since it was first set
    port = free_port()
    # a key with the `versions` scope, as the docs give the UI's: the shadow traffic shows
    env = {"MODEL_URL": service.url, "GATEWAY_URL": front.url, "UI_API_KEY": KEYS["release"],
           "STREAMLIT_SERVER_PORT": str(port)}  # fmt: skip
    command = ["uv", "run", "--frozen", "--no-sync", "streamlit", "run", "services/ui/src/ui_service/app.py"]
    with ServiceProcess("ui", command, env, port) as ui:
        ui.wait_ready("/_stcore/health")
        browser.get(ui.url)
        label = "//*[@data-testid='stSidebar']//label[.//p[normalize-space()='Versions']]"
        wait_for(browser).until(expected_conditions.element_to_be_clickable((By.XPATH, label))).click()
        wait_for(browser).until(
            expected_conditions.text_to_be_present_in_element((By.TAG_NAME, "body"), "Held-out rows")
        )
        settled(browser)
        body = browser.find_element(By.TAG_NAME, "body").text
        assert "Forced by release because" in body and "must pass" in body
        assert "Rolled back since: v1 is champion again" in body and "What differs" in body
        assert f"Must-pass case {MUST_PASS} fails on the challenger" in body  # the red line
        assert f"{summary['requests']} requests of the champion v1 ({summary['champion']}) shadowed" in body
        assert "Agreement per output field" in body and "Changed answers" in body
        assert summary["changed"][0]["input"]["text"][:40] in body
        assert "Shadow traffic (live requests sent to both versions before the promotion)" in body
        assert "Traceback" not in body and "Deploy" not in body
        screenshot(browser, "ui-versions.png")


def test_a_registry_that_does_not_answer_is_one_sentence_and_the_loaded_versions_stay(
    page: Any, registry: Registry
) -> None:
    store = Path(registry.location) / "mlflow.db"
    intact = store.read_bytes()
    with store.open("r+b") as damaged:  # in place: the service's open connections read it too
        damaged.write(b"\0" * 4096)
    try:
        at = page()
    finally:
        store.write_bytes(intact)
    assert not at.exception
    assert all(_plain(e.value).startswith(f"Must-pass case {MUST_PASS}") for e in at.error)  # the check's
    (down,) = _said(at.warning)
    assert down.startswith(f"The MLflow registry at {registry.location} does not answer: ")
    assert sorted(_table(at, "Aliases")["Version"]) == ["**v1**", "**v2**"]  # the ones the service holds
    assert "The last promotion's evidence shows again once the registry answers." in _said(at.caption)


# -- no registry, no gateway ----------------------------------------------------------------------


def test_without_a_registry_the_page_says_what_versions_need(
    monkeypatch: pytest.MonkeyPatch,
    example_service: ServiceProcess,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    with gateway(free_port(), example_service.url, **_gateway_env(tmp_path, redis_server)) as plain:
        at = _app(monkeypatch, example_service.url, plain.url)
    assert not at.error and not at.exception
    (info,) = _said(at.info)
    assert info.startswith("No registry: the model service serves one artifacts folder")
    assert "set `MODEL_REGISTRY` (`docs/versions.md`)" in info
    table = _table(at, "Aliases")
    assert list(table["Version"]) == ["**unregistered**"] and list(table["Aliases"]) == [
        ":green-badge[champion]"
    ]
    assert list(table["Loaded"]) == ["yes"]
    assert [s.value for s in at.subheader] == ["Registered versions", "Scheduled checks"]
    assert any(_plain(c.value).startswith("No scheduled check has run yet.") for c in at.caption)


def test_with_the_gateway_down_the_page_is_one_sentence(
    monkeypatch: pytest.MonkeyPatch, service: ServiceProcess
) -> None:
    at = _app(monkeypatch, service.url, f"http://127.0.0.1:{free_port()}")
    assert [e.value for e in at.error] == [
        "The gateway is unavailable (down or still starting). Start it with `just up` (or "
        "`docker compose up`), wait until it is ready, then try again."
    ]
    assert not at.exception and not at.table
