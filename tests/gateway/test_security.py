"""Security: keys in no log, report or answer; CORS closed unless origins are listed; no start on defaults.

The real gateway and a real Celery worker in front of the run's model service, on a database of the
run's own Redis; the keys are made as `gateway new-key` makes them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from redis import Redis

from gateway.app import create_app
from gateway.auth import hash_key, new_key
from gateway.settings import ApiKeyEntry, Settings
from onepipe.platform.settings import DEVELOPMENT_KEY
from onepipe_harness.processes import RedisServer, ServiceProcess, free_port, gateway, worker

KEYS = {"app": new_key(), "reviewer": new_key()}
WRONG = {"unknown": new_key(), "near miss": KEYS["app"][:-1] + ("A" if KEYS["app"][-1] != "A" else "B")}
ORIGIN = "https://app.example.com"
WINDOW = 12  # any run of this many characters of a key's secret part counts as a leak


@dataclass
class Secured:
    """A gateway and a worker, and everything they answered (bodies and headers), to search for keys."""

    gateway: ServiceProcess
    worker: ServiceProcess
    storage: Path
    answers: list[httpx.Response] = field(default_factory=list)

    def call(self, method: str, path: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"X-API-Key": key} if key else {}
        url = path if path.startswith("http") else self.gateway.url + path
        answer = httpx.request(method, url, headers={**headers, **kwargs.pop("headers", {})}, **kwargs)
        self.answers.append(answer)
        return answer


@pytest.fixture(scope="module")
def secured(
    redis_server: RedisServer, example_service: ServiceProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Secured]:
    Redis.from_url(redis_server.url(8)).flushdb()  # the run's own server: nobody else's data
    storage = tmp_path_factory.mktemp("secured") / "storage"
    entries = [
        {"name": "app", "sha256": hash_key(KEYS["app"]), "scopes": ["predict", "debug"]},
        {"name": "reviewer", "sha256": hash_key(KEYS["reviewer"]), "scopes": ["predict", "jobs"]},
    ]
    shared = {"STORAGE_URL": str(storage), "REDIS_URL": redis_server.url(8)}
    with ExitStack() as started:
        front = started.enter_context(
            gateway(
                free_port(),
                example_service.url,
                GATEWAY_API_KEYS=json.dumps(entries),
                GATEWAY_LOG_LEVEL="DEBUG",  # the most a log ever says
                **shared,
            )
        )
        env = {"MODEL_URL": example_service.url, "WORKER_LOG_LEVEL": "DEBUG", "WORKER_CHUNK_SIZE": "10"}
        process = started.enter_context(worker(**env, **shared))
        yield Secured(front, process, storage)


def _secrets() -> dict[str, list[str]]:
    """Per key: the whole key, its secret part (after `op_`) and every WINDOW-long run of that part."""
    found = {}
    for name, key in {**KEYS, **WRONG}.items():
        secret = key.removeprefix("op_")
        found[name] = [key, secret, *(secret[i : i + WINDOW] for i in range(len(secret) - WINDOW + 1))]
    return found


def test_keys_are_in_no_log_report_or_answer(secured: Secured, example_service: ServiceProcess) -> None:
    app, reviewer = KEYS["app"], KEYS["reviewer"]
    body = {"inputs": {"text": "A sharp, funny film."}}
    assert secured.call("POST", "/v1/predict", app, json=body).status_code == 200
    bearer = {"Authorization": f"Bearer {app}"}
    assert secured.call("POST", "/v1/predict", json=body, headers=bearer).status_code == 200
    debugged = secured.call("POST", "/v1/predict", app, json={**body, "debug": True})
    assert debugged.status_code == 200 and debugged.json()["traces"]
    assert secured.call("GET", "/v1/pipeline", reviewer).status_code == 200
    for wrong in WRONG.values():  # failing attempts: an unknown key, a typo of a real one
        assert secured.call("POST", "/v1/predict", wrong, json=body).status_code == 401
        bearer_wrong = {"Authorization": f"Bearer {wrong}"}
        assert secured.call("GET", "/v1/pipeline", headers=bearer_wrong).status_code == 401
        assert secured.call("GET", "/v1/jobs", wrong).status_code == 401
    assert secured.call("POST", "/v1/predict", reviewer, json={**body, "debug": True}).status_code == 403
    assert secured.call("POST", "/v1/jobs", app, files={"file": ("x.csv", b"text\nhi\n")}).status_code == 403
    refused = secured.call("POST", "/v1/predict", app, json={"inputs": {"text": ""}})
    assert refused.status_code == 422

    rows = "text,id\n" + "".join(f"review number {i} was a fine film,r{i}\n" for i in range(40))
    submitted = secured.call(
        "POST", "/v1/jobs", reviewer, files={"file": ("reviews.csv", rows.encode())}, data={"flags": "{}"}
    )
    assert submitted.status_code == 202, submitted.text
    job = submitted.json()
    deadline = time.monotonic() + 180
    while job["state"] not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, f"job not finished: {job}\n{secured.worker.log()[-3000:]}"
        time.sleep(0.3)
        job = secured.call("GET", job["url"], reviewer).json()
    assert job["state"] == "succeeded" and job["rows_done"] == 40, job
    reports = {fmt: secured.call("GET", url, reviewer) for fmt, url in job["reports"].items()}
    assert set(reports) == {"html", "csv", "jsonl", "parquet"}
    assert all(r.status_code == 200 and r.content for r in reports.values())
    assert secured.call("GET", "/v1/jobs", reviewer).json()["jobs"][0]["id"] == job["id"]
    time.sleep(1)  # log lines are written after the answers

    places: dict[str, bytes] = {
        "gateway log": secured.gateway.log_path.read_bytes(),
        "worker log": secured.worker.log_path.read_bytes(),
        "model service log": example_service.log_path.read_bytes(),
    }
    stored = [p for p in secured.storage.rglob("*") if p.is_file()]
    places |= {f"stored file {p.relative_to(secured.storage)}": p.read_bytes() for p in stored}
    for number, answer in enumerate(secured.answers):
        places[f"answer {number} ({answer.request.method} {answer.request.url.path})"] = (
            answer.content + json.dumps(dict(answer.headers)).encode()
        )
    # what is searched is real: the logs saw these requests, storage holds the job and its reports
    assert job["id"].encode() in places["gateway log"] and job["id"].encode() in places["worker log"]
    assert b"Invalid API key" in places["gateway log"] or b" 401" in places["gateway log"]
    assert any(str(p).endswith((".html", ".csv", ".jsonl", ".parquet")) for p in stored), stored
    leaks = [
        f"{name}: {len(run)} characters of it in the {place}"
        for name, runs in _secrets().items()
        for run in runs
        for place, content in places.items()
        if run.encode() in content
    ]
    assert not leaks, sorted(set(leaks))[:20]


def test_cors_is_closed_by_default(secured: Secured) -> None:
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}
    answers = [
        secured.call(
            "OPTIONS", "/v1/predict", headers={**preflight, "Access-Control-Request-Headers": "X-API-Key"}
        ),
        secured.call("GET", "/v1/pipeline", KEYS["app"], headers={"Origin": ORIGIN}),
        secured.call(
            "POST", "/v1/predict", KEYS["app"], json={"inputs": {"text": "ok"}}, headers={"Origin": ORIGIN}
        ),
        secured.call("GET", "/healthz", headers={"Origin": "null"}),
    ]
    assert [a.status_code for a in answers] == [405, 200, 200, 200]  # no preflight is answered
    for answer in answers:
        assert not [h for h in answer.headers if h.lower().startswith("access-control-")], answer.headers


def test_cors_opens_only_to_the_listed_origins(example_service: ServiceProcess) -> None:
    settings = Settings(
        environment="production",
        api_keys=[ApiKeyEntry(name="app", sha256=hash_key(KEYS["app"]), scopes=["predict"])],
        cors_origins=[ORIGIN],
        redis_url="memory://",
        model_url=example_service.url,
    )
    client = TestClient(create_app(settings))
    listed = client.get("/healthz", headers={"Origin": ORIGIN})
    assert listed.headers["access-control-allow-origin"] == ORIGIN
    assert "access-control-allow-credentials" not in listed.headers  # keys travel in headers, not cookies
    assert "X-Request-ID" in listed.headers["access-control-expose-headers"]
    for other in ("https://evil.example", "https://app.example.com.evil.example", "null"):
        assert "access-control-allow-origin" not in client.get("/healthz", headers={"Origin": other}).headers
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "X-API-Key"}
    allowed = client.options("/v1/predict", headers={"Origin": ORIGIN, **preflight})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == ORIGIN
    refused = client.options("/v1/predict", headers={"Origin": "https://evil.example", **preflight})
    assert refused.status_code == 400 and "access-control-allow-origin" not in refused.headers
    put = client.options("/v1/predict", headers={"Origin": ORIGIN, "Access-Control-Request-Method": "PUT"})
    assert put.status_code == 400  # only the methods the API has


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({}, "GATEWAY_API_KEYS is empty"),
        (
            {"GATEWAY_API_KEYS": json.dumps([{"name": "dev", "sha256": hash_key(DEVELOPMENT_KEY)}])},
            "built-in development key",
        ),
    ],
    ids=["nothing set", "the development key"],
)
def test_with_no_environment_set_the_gateway_refuses_default_secrets(
    env: dict[str, str], words: str, tmp_path: Path
) -> None:
    # GATEWAY_ENVIRONMENT absent (production is the default), and no .env: run from an empty folder
    done = subprocess.run(
        [str(Path(sys.executable).parent / "gateway"), "serve"],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1 and words in done.stderr, done.stderr
    assert "Uvicorn running" not in done.stderr
