"""The gateway as a real process in front of a real model service, over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_spec_validator import validate

from gateway.auth import hash_key
from onepipe import LoadedPipeline
from onepipe.platform.settings import DEVELOPMENT_KEY
from onepipe_harness.processes import ROOT, RedisServer, ServiceProcess, free_port, gateway, model_service
from review_triage.pipeline import pipeline as example
from tests.conftest import EXAMPLE_ARTIFACTS

PROBLEM = "application/problem+json"
RUN = uuid.uuid4().hex[:8]  # fresh keys each run: rate-limit counters in Redis start at zero
KEYS = {
    "app": f"app-key-{RUN}",
    "debugger": f"debug-key-{RUN}",
    "throttled": f"slow-key-{RUN}",
    "reviewer": f"jobs-key-{RUN}",
}
ORIGIN = "https://app.example.com"


def _keys_env() -> str:
    return json.dumps(
        [
            {"name": "app", "sha256": hash_key(KEYS["app"]), "scopes": ["predict"]},
            {"name": "debugger", "sha256": hash_key(KEYS["debugger"]), "scopes": ["predict", "debug"]},
            {"name": "reviewer", "sha256": hash_key(KEYS["reviewer"]), "scopes": ["jobs"]},
            {
                "name": "throttled",
                "sha256": hash_key(KEYS["throttled"]),
                "scopes": ["predict"],
                "rate_limit": "3/minute",
            },
        ]
    )


def _gateway_env(redis: RedisServer, **extra: str) -> dict[str, str]:
    return {
        "GATEWAY_API_KEYS": _keys_env(),
        "GATEWAY_MAX_INPUTS": "4",
        "GATEWAY_MAX_BODY_BYTES": "16384",
        "GATEWAY_CORS_ORIGINS": json.dumps([ORIGIN]),
        "GATEWAY_MODEL_ATTEMPTS": "2",
        "REDIS_URL": redis.url(15),
        **extra,
    }


@pytest.fixture(scope="module")
def front(example_service: ServiceProcess, redis_server: RedisServer) -> Iterator[ServiceProcess]:
    with gateway(free_port(), example_service.url, **_gateway_env(redis_server)) as process:
        yield process


def _as(key: str) -> dict[str, str]:
    return {"X-API-Key": KEYS[key]}


def test_health_readiness_and_pipeline(front: ServiceProcess, example_service: ServiceProcess) -> None:
    assert httpx.get(front.url + "/healthz").json() == {"status": "alive"}
    ready = httpx.get(front.url + "/readyz").json()
    model_info = httpx.get(example_service.url + "/v1/pipeline").json()
    assert ready == {
        "status": "ready",
        "pipeline": "review-triage",
        "version": model_info["version"],
        "model_service": "ready",
        "queue": "ready",
    }
    info = httpx.get(front.url + "/v1/pipeline", headers=_as("app"))
    assert info.json() == model_info and info.headers["X-Pipeline-Version"] == model_info["version"]


def test_outputs_equal_the_model_service_for_every_named_example(
    front: ServiceProcess, example_service: ServiceProcess
) -> None:
    for name, item in example.examples.items():
        body = item.model_dump()
        single = httpx.post(front.url + "/v1/predict", json={"inputs": body}, headers=_as("app"))
        listed = httpx.post(
            front.url + "/v1/predict", json={"inputs": [body], "flags": {"neighbours": 1}}, headers=_as("app")
        )
        direct = httpx.post(example_service.url + "/v1/predict", json={"inputs": [body]}).json()
        direct_one = httpx.post(
            example_service.url + "/v1/predict", json={"inputs": [body], "flags": {"neighbours": 1}}
        ).json()
        assert single.status_code == 200, name
        assert single.json() == direct and listed.json() == direct_one
        assert single.headers["X-Pipeline-Version"] == direct["version"]


def test_keys_in_either_header(front: ServiceProcess) -> None:
    body = {"inputs": {"text": "Fine."}}
    by_header = httpx.post(front.url + "/v1/predict", json=body, headers=_as("app"))
    by_bearer = httpx.post(
        front.url + "/v1/predict", json=body, headers={"Authorization": f"Bearer {KEYS['app']}"}
    )
    assert by_header.status_code == by_bearer.status_code == 200


@pytest.mark.parametrize(
    ("headers", "title"),
    [
        ({}, "Missing API key"),
        ({"X-API-Key": "wrong"}, "Invalid API key"),
        ({"Authorization": "Bearer nope"}, "Invalid API key"),
    ],
)
def test_no_key_or_a_wrong_key_is_401(front: ServiceProcess, headers: dict[str, str], title: str) -> None:
    for method, path in (("POST", "/v1/predict"), ("GET", "/v1/pipeline")):
        answer = httpx.request(method, front.url + path, json={"inputs": {"text": "x"}}, headers=headers)
        assert answer.status_code == 401 and answer.headers["content-type"] == PROBLEM
        assert answer.json()["title"] == title and "WWW-Authenticate" in answer.headers


def test_predict_needs_the_predict_scope(front: ServiceProcess) -> None:
    body = {"inputs": {"text": "A lovely film."}}
    refused = httpx.post(front.url + "/v1/predict", json=body, headers=_as("reviewer"))
    assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
    assert "lacks the 'predict' scope" in refused.json()["detail"]
    assert httpx.post(front.url + "/v1/predict", json=body, headers=_as("app")).status_code == 200


def test_logs_are_plain_json_and_a_callers_422_is_no_warning(front: ServiceProcess) -> None:
    refused = httpx.post(front.url + "/v1/predict", json={"inputs": {"text": ""}}, headers=_as("app"))
    assert refused.status_code == 422
    time.sleep(0.5)  # the log line is written after the response
    records = [json.loads(line) for line in front.log().splitlines() if line.startswith("{")]
    assert records and all("color_message" not in r and "\x1b" not in r["message"] for r in records)
    mine = [r for r in records if r["request_id"] == refused.headers["X-Request-ID"]]
    assert any(r["message"].startswith("model service refused the request") for r in mine), mine
    assert {r["level"] for r in mine} == {"INFO"}, mine


def test_debug_needs_the_debug_scope(front: ServiceProcess) -> None:
    body = {"inputs": {"text": "A lovely film."}, "debug": True}
    refused = httpx.post(front.url + "/v1/predict", json=body, headers=_as("app"))
    assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
    assert "lacks the 'debug' scope" in refused.json()["detail"]
    allowed = httpx.post(front.url + "/v1/predict", json=body, headers=_as("debugger")).json()
    assert [s["name"] for s in allowed["traces"][0]["steps"]] == [s.name for s in example.describe("").steps]


@pytest.mark.parametrize(
    ("body", "status", "loc", "words"),
    [
        ({"inputs": {"text": ""}}, 422, "inputs[0].text", "at least 1 character"),
        ({"inputs": [{"text": "ok"}, {"txt": "typo"}]}, 422, "inputs[1].text", "Field required"),
        (
            {"inputs": {"text": "ok"}, "flags": {"classifer": "minilm"}},
            422,
            "flags.classifer",
            "unknown flag",
        ),
        ({"flags": {}}, 422, "inputs", "Field required"),
        ({"inputs": [{"text": "ok"}] * 5}, 413, "inputs", "at most 4 inputs"),
    ],
)
def test_invalid_input_names_the_field(
    front: ServiceProcess, body: dict[str, Any], status: int, loc: str, words: str
) -> None:
    answer = httpx.post(front.url + "/v1/predict", json=body, headers=_as("app"))
    assert answer.status_code == status and answer.headers["content-type"] == PROBLEM
    errors = answer.json()["errors"]
    assert any(e["loc"] == loc and words in e["message"] for e in errors), errors


def test_body_over_the_limit_is_413(front: ServiceProcess) -> None:
    answer = httpx.post(front.url + "/v1/predict", json={"inputs": {"text": "x" * 20000}}, headers=_as("app"))
    assert answer.status_code == 413 and "the limit is 16384 bytes" in answer.json()["detail"]


def test_rate_limit_is_429_with_retry_after(front: ServiceProcess) -> None:
    answers = [
        httpx.post(front.url + "/v1/predict", json={"inputs": {"text": "again"}}, headers=_as("throttled"))
        for _ in range(4)
    ]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    limited = answers[-1]
    assert limited.headers["content-type"] == PROBLEM and 1 <= int(limited.headers["Retry-After"]) <= 60
    assert "over its rate limit of 3 per 1 minute" in limited.json()["detail"]
    # another key is not affected
    assert (
        httpx.post(front.url + "/v1/predict", json={"inputs": {"text": "x"}}, headers=_as("app")).status_code
        == 200
    )


def test_request_id_reaches_the_model_service(front: ServiceProcess, example_service: ServiceProcess) -> None:
    rid = f"gw-{RUN}"
    answer = httpx.post(
        front.url + "/v1/predict", json={"inputs": {"text": "x"}}, headers={**_as("app"), "X-Request-ID": rid}
    )
    assert answer.headers["X-Request-ID"] == rid
    # the model service logs a request once it has answered it: its line may land a moment after
    assert f'"request_id": "{rid}"' in example_service.log_with(f'"request_id": "{rid}"')


def test_cors_allows_only_configured_origins(front: ServiceProcess) -> None:
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "X-API-Key"}
    allowed = httpx.options(front.url + "/v1/predict", headers={"Origin": ORIGIN, **preflight})
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    other = httpx.options(front.url + "/v1/predict", headers={"Origin": "https://evil.example", **preflight})
    assert "access-control-allow-origin" not in other.headers


def test_openapi_is_valid_and_typed_by_the_pipeline(
    front: ServiceProcess, example_pipeline: LoadedPipeline[Any, Any, Any]
) -> None:
    document = httpx.get(front.url + "/openapi.json").json()
    validate(document)
    schemas = document["components"]["schemas"]
    info = example_pipeline.describe()
    expected_input = {k: v for k, v in info.input_schema.items() if k != "$defs"}
    assert schemas["PipelineInput"] == expected_input
    assert set(schemas["PipelineOutput"]["properties"]) == set(info.output_schema["properties"])
    assert schemas["PipelineFlags"]["properties"]["classifier"]["description"].startswith("Classifiers")
    assert "PipelineKnownSnippet" in schemas  # $defs of the output are components too, prefixed
    request = schemas["PublicPredictRequest"]["properties"]
    assert request["inputs"]["oneOf"][0] == {"$ref": "#/components/schemas/PipelineInput"}
    assert request["inputs"]["oneOf"][1]["maxItems"] == 4
    predict = document["paths"]["/v1/predict"]["post"]
    examples = predict["requestBody"]["content"]["application/json"]["examples"]
    assert {name: e["value"]["inputs"] for name, e in examples.items()} == info.examples
    assert {"401", "403", "413", "422", "429", "503"} <= set(predict["responses"])
    assert {"APIKeyHeader", "HTTPBearer"} <= set(document["components"]["securitySchemes"])
    docs = httpx.get(front.url + "/docs")
    assert docs.status_code == 200 and "/openapi.json" in docs.text


def test_metrics_count_gateway_routes(front: ServiceProcess) -> None:
    text = httpx.get(front.url + "/metrics").text
    assert 'http_requests_total{method="POST",route="/v1/predict",status="200"}' in text
    assert 'http_requests_total{method="POST",route="/v1/predict",status="401"}' in text


def test_model_service_down_is_503_and_recovers(
    example_pipeline: LoadedPipeline[Any, Any, Any], redis_server: RedisServer
) -> None:
    model_port = free_port()
    env = {"MODEL_ARTIFACTS_DIR": str(EXAMPLE_ARTIFACTS.parent)}
    model = model_service(model_port, **env)
    with model, gateway(free_port(), model.url, **_gateway_env(redis_server)) as front:
        body = {"inputs": {"text": "Still here?"}}
        assert httpx.post(front.url + "/v1/predict", json=body, headers=_as("app")).status_code == 200
        model.stop()
        down = httpx.post(front.url + "/v1/predict", json=body, headers=_as("app"))
        assert down.status_code == 503 and down.headers["content-type"] == PROBLEM
        assert down.headers["Retry-After"] == "5"
        assert "the model service is unavailable" in down.json()["detail"]
        assert "127.0.0.1" not in down.text  # no internal address leaks
        assert httpx.get(front.url + "/healthz").status_code == 200
        assert httpx.get(front.url + "/readyz").status_code == 503
        model.start()
        model.wait_ready()
        back = httpx.post(front.url + "/v1/predict", json=body, headers=_as("app"))
        assert back.status_code == 200 and back.json()["outputs"][0]["label"] in ("fresh", "rotten", "plot")
        assert httpx.get(front.url + "/readyz").status_code == 200


def test_another_pipeline_changes_the_openapi_with_no_gateway_change(
    tiny_artifacts: Path, redis_server: RedisServer
) -> None:
    env = {
        "MODEL_PIPELINE": "tests.tiny_pipeline:pipeline",
        "MODEL_ARTIFACTS_DIR": str(tiny_artifacts.parent),
    }
    with (
        model_service(free_port(), **env) as model,
        gateway(free_port(), model.url, **_gateway_env(redis_server)) as front,
    ):
        document = httpx.get(front.url + "/openapi.json").json()
        validate(document)
        schemas = document["components"]["schemas"]
        assert set(schemas["PipelineInput"]["properties"]) == {"values", "unit"}
        assert set(schemas["PipelineFlags"]["properties"]) == {"method", "scale", "with_spread"}
        answer = httpx.post(
            front.url + "/v1/predict",
            json={"inputs": {"values": [3, 1], "unit": "m"}, "flags": {"scale": 2}},
            headers=_as("app"),
        )
        assert answer.json()["outputs"] == [{"value": 9.0, "unit": "m", "spread": 2.0}]


@pytest.mark.parametrize(
    ("keys", "words"),
    [
        ("[]", "GATEWAY_API_KEYS is empty"),
        (json.dumps([{"name": "dev", "sha256": hash_key(DEVELOPMENT_KEY)}]), "built-in development key"),
    ],
)
def test_refuses_to_start_in_production_without_safe_keys(keys: str, words: str) -> None:
    done = subprocess.run(
        ["uv", "run", "--frozen", "--no-sync", "gateway", "serve"],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "GATEWAY_API_KEYS": keys, "GATEWAY_ENVIRONMENT": "production"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and words in done.stderr
    assert KEYS["app"] not in done.stderr


def test_development_mode_accepts_the_local_key(example_service: ServiceProcess) -> None:
    env = {"GATEWAY_ENVIRONMENT": "development", "GATEWAY_API_KEYS": "[]", "REDIS_URL": "memory://"}
    with gateway(free_port(), example_service.url, **env) as front:
        answer = httpx.post(
            front.url + "/v1/predict",
            json={"inputs": {"text": "ok"}, "debug": True},
            headers={"X-API-Key": DEVELOPMENT_KEY},
        )
        assert answer.status_code == 200 and answer.json()["traces"]


def test_several_workers_without_redis_refuse_to_start_in_one_line() -> None:
    done = subprocess.run(
        ["uv", "run", "--frozen", "--no-sync", "gateway", "serve"],
        cwd=ROOT,
        env={
            "PATH": os.environ["PATH"],
            "GATEWAY_ENVIRONMENT": "development",
            "GATEWAY_WORKERS": "2",
            "REDIS_URL": "sqla+sqlite:///queue.db",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: GATEWAY_WORKERS=2 needs Redis (REDIS_URL): without it each worker would count rate "
        "limits on its own; set REDIS_URL, or GATEWAY_WORKERS=1"
    )
