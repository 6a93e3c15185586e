"""The model service in-process (TestClient, lifespan included): every route and every refusal."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest
from fastapi.testclient import TestClient

from model_service.app import create_app
from model_service.service import ModelService
from model_service.settings import Settings
from onepipe import ArtifactsError, LoadedPipeline
from onepipe.contract import cpu_threads
from onepipe.platform.http.server import ProblemError
from review_triage.pipeline import pipeline as example
from tests.conftest import EXAMPLE_ARTIFACTS
from tests.pipelines.test_review_triage_pipeline import STEPS, VARIANTS

Loaded = LoadedPipeline[Any, Any, Any]
PROBLEM = "application/problem+json"


def _wait_ready(client: TestClient) -> None:
    deadline = time.monotonic() + 120
    while client.get("/readyz").status_code != 200:
        assert time.monotonic() < deadline, "model service not ready"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def client(example_pipeline: Loaded) -> Iterator[TestClient]:
    settings = Settings(artifacts_dir=EXAMPLE_ARTIFACTS.parent, max_inputs=8, max_body_bytes=64 * 1024)
    with TestClient(create_app(settings)) as test_client:
        _wait_ready(test_client)
        yield test_client


def test_health_and_readiness(client: TestClient, example_pipeline: Loaded) -> None:
    assert client.get("/healthz").json() == {"status": "alive"}
    ready = client.get("/readyz")
    assert ready.json() == {
        "status": "ready",
        "pipeline": "review-triage",
        "version": example_pipeline.version,
        "registry": "none",
    }
    assert ready.headers["X-Pipeline-Version"] == example_pipeline.version


def test_pipeline_describes_steps_schemas_and_examples(client: TestClient, example_pipeline: Loaded) -> None:
    info = client.get("/v1/pipeline").json()
    assert info == example_pipeline.describe().model_dump(mode="json")
    assert [s["name"] for s in info["steps"]] == STEPS
    assert info["steps"][3]["variants"] == {
        "tfidf": {"classifier": "tfidf"},
        "minilm": {"classifier": "minilm"},
    }
    assert info["flags_schema"]["properties"]["neighbours"]["default"] == 3
    assert set(info["examples"]) == set(example.examples)


@pytest.mark.parametrize(
    "flags", VARIANTS, ids=lambda f: ",".join(f"{k}={v}" for k, v in f.items()) or "default"
)
def test_predict_equals_the_pipeline_for_every_example(
    client: TestClient, example_pipeline: Loaded, flags: dict[str, Any]
) -> None:
    inputs = [ex.model_dump() for ex in example.examples.values()]
    answer = client.post("/v1/predict", json={"inputs": inputs, "flags": flags})
    assert answer.status_code == 200
    direct = example_pipeline.run(inputs, flags)
    assert answer.json() == {
        "version": direct.version,
        "outputs": [o.model_dump(mode="json") for o in direct.outputs],
    }
    assert answer.headers["X-Pipeline-Version"] == direct.version


def test_debug_returns_a_trace_of_every_step(client: TestClient) -> None:
    answer = client.post(
        "/v1/predict",
        json={
            "inputs": [{"text": "A tender, funny film."}],
            "debug": True,
            "flags": {"classifier": "minilm"},
        },
    ).json()
    (trace,) = answer["traces"]
    assert [s["name"] for s in trace["steps"]] == STEPS
    assert trace["steps"][1]["status"] == "ran" and trace["steps"][1]["debug"]["encode_ms"] > 0
    assert trace["steps"][3]["variant"] == "minilm"
    assert "traces" not in client.post("/v1/predict", json={"inputs": [{"text": "fine"}]}).json()


def test_request_id_is_kept_or_made(client: TestClient) -> None:
    kept = client.post("/v1/predict", json={"inputs": [{"text": "ok"}]}, headers={"X-Request-ID": "abc-123"})
    assert kept.headers["X-Request-ID"] == "abc-123"
    made = [client.get("/healthz").headers["X-Request-ID"] for _ in range(3)]
    assert all(re.fullmatch("[0-9a-f]{32}", one) for one in made), made
    assert len(set(made)) == 3


@pytest.mark.parametrize(
    ("body", "status", "loc", "words"),
    [
        ({"inputs": [{"text": ""}]}, 422, "inputs[0].text", "at least 1 character"),
        ({"inputs": [{"text": "x" * 5001}]}, 422, "inputs[0].text", "at most 5000 characters"),
        ({"inputs": [{"text": 12}]}, 422, "inputs[0].text", "valid string"),
        ({"inputs": [{"text": "ok"}], "flags": {"colour": "red"}}, 422, "flags.colour", "unknown flag"),
        (
            {"inputs": [{"text": "ok"}], "flags": {"neighbours": 99}},
            422,
            "flags.neighbours",
            "at most|less than",
        ),
        ({"inputs": []}, 422, "inputs", "at least one input"),
        ({"inputs": "text"}, 422, "inputs", "valid list"),
        ({"flags": {}}, 422, "inputs", "Field required"),
        ({"inputs": [{"text": "ok"}] * 9}, 413, "inputs", "at most 8 inputs"),
    ],
)
def test_bad_requests_get_problems_naming_the_field(
    client: TestClient, body: dict[str, Any], status: int, loc: str, words: str
) -> None:
    answer = client.post("/v1/predict", json=body)
    assert answer.status_code == status
    assert answer.headers["content-type"] == PROBLEM
    problem = answer.json()
    assert problem["status"] == status and problem["title"]
    import re

    assert any(e["loc"] == loc and re.search(words, e["message"]) for e in problem["errors"]), problem


def test_every_problem_of_inputs_and_flags_is_listed_at_once(client: TestClient) -> None:
    problem = client.post(
        "/v1/predict", json={"inputs": [{"text": "ok"}, {"text": ""}], "flags": {"x": 1}}
    ).json()
    assert [e["loc"] for e in problem["errors"]] == ["inputs[1].text", "flags.x"]
    # an input's index and the field inside it come as data too: a caller never parses `loc`
    assert problem["errors"][0] == {"loc": "inputs[1].text", "input": 1, "field": "text", "message": ANY}
    assert set(problem["errors"][1]) == {"loc", "message"}


def test_body_over_the_limit_is_413_with_the_limit(client: TestClient) -> None:
    answer = client.post("/v1/predict", json={"inputs": [{"text": "x" * 70_000}]})
    assert answer.status_code == 413 and answer.headers["content-type"] == PROBLEM
    assert "the limit is 65536 bytes" in answer.json()["detail"]


def test_malformed_json_unknown_route_and_wrong_method_are_problems(client: TestClient) -> None:
    broken = client.post("/v1/predict", content=b"{not json", headers={"content-type": "application/json"})
    assert broken.status_code == 422 and broken.headers["content-type"] == PROBLEM
    assert "JSON" in broken.json()["detail"]
    missing = client.get("/v1/nothing")
    assert missing.status_code == 404 and missing.json()["title"] == "Not Found"
    wrong = client.get("/v1/predict")
    assert wrong.status_code == 405 and wrong.headers["content-type"] == PROBLEM


def test_metrics_count_requests_batches_and_step_times(client: TestClient) -> None:
    client.post("/v1/predict", json={"inputs": [{"text": "metrics please"}]})
    text = client.get("/metrics").text
    assert 'http_requests_total{method="POST",route="/v1/predict",status="200"}' in text
    assert 'http_request_duration_seconds_count{method="POST",route="/v1/predict"}' in text
    assert "pipeline_batch_inputs_count" in text
    for step in ("normalised_text", "kind", "sentiment", "similar", "triage"):
        assert f'pipeline_step_seconds_count{{step="{step}"}}' in text


def test_not_ready_is_503_with_retry_after(example_pipeline: Loaded) -> None:
    service = ModelService(example, Settings(artifacts_dir=EXAMPLE_ARTIFACTS.parent))
    with pytest.raises(ProblemError) as caught:
        service.ready()
    assert caught.value.status == 503 and caught.value.headers == {"Retry-After": "2"}
    assert "still loading pipeline 'review-triage'" in caught.value.detail


def test_missing_artifacts_stop_the_start(tmp_path: Path) -> None:
    app = create_app(Settings(artifacts_dir=tmp_path))
    with pytest.raises(ArtifactsError, match=r"run `just train`"), TestClient(app):
        pass


def test_a_failing_step_is_a_500_problem_without_traceback(tiny_artifacts: Path) -> None:
    settings = Settings(pipeline="tests.tiny_pipeline:pipeline", artifacts_dir=tiny_artifacts.parent)
    with TestClient(create_app(settings), raise_server_exceptions=False) as tiny_client:
        _wait_ready(tiny_client)
        ok = tiny_client.post("/v1/predict", json={"inputs": [{"values": [1], "unit": "kg"}]})
        assert ok.json()["outputs"] == [{"value": 1.5, "unit": "kg", "spread": 0.0}]
        failed = tiny_client.post(
            "/v1/predict",
            json={"inputs": [{"values": [1], "unit": "fail"}]},
            headers={"X-Request-ID": "r-500"},
        )
    assert failed.status_code == 500 and failed.headers["content-type"] == PROBLEM
    assert failed.json()["detail"] == (
        "the service failed on this request; its log has the details under request id r-500"
    )
    assert "Traceback" not in failed.text and "RuntimeError" not in failed.text


@pytest.mark.parametrize(
    ("content", "kind", "status", "loc", "words"),
    [
        (b'{"inputs": [{"text": NaN}]}', "application/json", 422, "body", "NaN is not a JSON number"),
        (b'{"inputs": [{"text": "a\\ud800"}]}', "application/json", 422, "inputs[0].text", "surrogate"),
        (b'{"inputs": [{"text": "caf\xe9"}]}', "application/json", 422, "body", "not UTF-8"),
        (b"[" * 100 + b"]" * 100, "application/json", 422, "body", "nested more than"),
        (b"text=hello", "application/x-www-form-urlencoded", 415, "header.content-type", "form"),
    ],
)
def test_bodies_json_cannot_carry_are_problems_not_500s(
    client: TestClient, content: bytes, kind: str, status: int, loc: str, words: str
) -> None:
    # the model service's own callers (the UI, the worker) get what the gateway's get
    answer = client.post("/v1/predict", content=content, headers={"Content-Type": kind})
    assert (answer.status_code, answer.headers["content-type"]) == (status, PROBLEM), answer.text
    assert any(e["loc"] == loc and words in e["message"] for e in answer.json()["errors"]), answer.json()


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        # threads given as 0: a MODEL_THREADS in the environment or a .env does not count here
        ({"workers": 1, "threads": 0}, cpu_threads()),
        ({"workers": 2, "threads": 0}, max(1, cpu_threads() // 2)),
        ({"workers": 64, "threads": 0}, 1),
        ({"workers": 2, "threads": 3}, 3),
    ],
)
def test_each_process_gives_its_models_a_share_of_the_cores_unless_told(
    settings: dict[str, int], expected: int
) -> None:
    assert Settings(**settings).threads_per_process() == expected  # type: ignore[arg-type]
