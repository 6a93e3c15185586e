"""Fuzzing: schemathesis against the live gateway's and model service's own OpenAPI documents.

Each service is run as a process, and schemathesis (its command line, every phase: examples, coverage,
fuzzing, stateful) generates requests from the document the service serves, valid ones and invalid
ones, for every operation. It fails on a 5xx, a status code, media type, header or body the document
does not give, an invalid request accepted, a valid one refused, a wrong `Allow` on 405, and (the
check below) an error that is not problem+json. The gateway's requests carry a key with every scope
the routes need; job routes get a real finished job's id half the time and generated ids otherwise.

Bounded and derandomized here (FUZZ_EXAMPLES per operation, 25 by default); `just fuzz` runs the same
with many more examples, and FUZZ_SEED=<n> seeds the generation instead, to explore other inputs.
Schemathesis's full output goes to test-output/fuzz-<service>.txt.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from schemathesis import Case, CheckContext, Response

from gateway.auth import hash_key
from onepipe_harness.processes import OUTPUT, ROOT, RedisServer, ServiceProcess, free_port, gateway, worker

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))
SEED = os.environ.get("FUZZ_SEED")
KEY = f"fuzz-{uuid.uuid4().hex[:8]}"
PROBLEM = "application/problem+json"


@schemathesis.check
def problem_json(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """Every error is an RFC 9457 problem, its status the response's."""
    if response.status_code < 400:
        return None
    media_type = (response.headers.get("content-type") or [""])[0].split(";")[0]
    assert media_type == PROBLEM, f"a {response.status_code} answered as {media_type!r}, not {PROBLEM}"
    if response.request.method != "HEAD":
        body = json.loads(response.content)
        assert body["status"] == response.status_code, f"problem status {body['status']}"
    return True


@schemathesis.check
def refused_only_for_its_version(ctx: CheckContext, response: Response, case: Case[Any]) -> bool | None:
    """A schema-valid predict may name a version nobody registered: refused (422), naming `version` alone."""
    mode = getattr(getattr(getattr(case, "meta", None), "generation", None), "mode", None)
    if response.status_code != 422 or not case.path.endswith("/v1/predict") or str(mode) != "positive":
        return None
    problems = json.loads(response.content).get("errors") or []
    assert problems and all(p["loc"] == "version" for p in problems), f"a valid predict refused: {problems}"
    return True


# a schema-valid predict is accepted, or refused only for a version it names that is not served
PREDICT_ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]


@dataclass
class FuzzedGateway:
    """A gateway with a worker behind it, and one job it has finished."""

    process: ServiceProcess
    job_id: str


@pytest.fixture(scope="module")
def fuzzed_gateway(
    example_service: ServiceProcess, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FuzzedGateway]:
    # the key the fuzzing sends: every scope a route needs, and a limit it never reaches
    keys = [
        {
            "name": "fuzz",
            "sha256": hash_key(KEY),
            "scopes": ["predict", "debug", "jobs", "versions", "feedback"],
            "rate_limit": "1000000/minute",
        }
    ]
    shared = {
        "REDIS_URL": redis_server.url(14),
        "STORAGE_URL": str(tmp_path_factory.mktemp("fuzz") / "storage"),
        "MODEL_URL": example_service.url,
    }
    front = gateway(
        free_port(), example_service.url, GATEWAY_API_KEYS=json.dumps(keys), GATEWAY_MAX_INPUTS="4", **shared
    )
    with front, worker(**shared):
        answer = httpx.post(
            front.url + "/v1/jobs",
            files={"file": ("reviews.csv", b"text\nA sharp, funny film.\nA dull, tired plot.\n")},
            headers={"X-API-Key": KEY},
            timeout=60,
        )
        assert answer.status_code == 202, answer.text
        job_id = answer.json()["id"]
        deadline = time.monotonic() + 120
        while (state := _job(front, job_id)["state"]) != "succeeded":
            assert state in ("queued", "running") and time.monotonic() < deadline, _job(front, job_id)
            time.sleep(0.2)
        yield FuzzedGateway(front, job_id)


def _job(front: ServiceProcess, job_id: str) -> dict[str, Any]:
    return dict(httpx.get(f"{front.url}/v1/jobs/{job_id}", headers={"X-API-Key": KEY}).json())


def _toml(value: Any) -> str:
    """A TOML value (JSON's strings, numbers, booleans and arrays are TOML's)."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml(v)}" for k, v in value.items()) + " }"
    return json.dumps(value)


def fuzz(name: str, url: str, config: dict[str, Any], tmp: Path) -> None:
    """Run schemathesis over the document at `url`; fail with its report unless every check passed."""
    # the problem_json check above; no crash cache in the work tree (the report has a curl line per failure)
    lines = [f"hooks = {_toml('tests.stack.test_fuzz')}", "[cache]", "enabled = false"]
    for key, value in config.items():
        if isinstance(value, list):  # arrays of tables
            lines += [line for item in value for line in (f"[[{key}]]", *_table(item))]
        elif isinstance(value, dict):
            lines += [f"[{key}]", *_table(value)]
    path = tmp / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    # derandomized (which keeps no example database), or seeded, and then with no database either
    mode = ["--seed", SEED, "--generation-database", "none"] if SEED else ["--generation-deterministic"]
    command = ["uv", "run", "--frozen", "--no-sync", "schemathesis", "--config-file", str(path), "run", url]
    command += [*mode, "--max-examples", str(EXAMPLES), "--workers", "1", "--no-color"]
    command += ["--request-timeout", "60"]
    started = time.monotonic()
    done = subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=1800,
    )
    OUTPUT.mkdir(exist_ok=True)
    report = OUTPUT / f"fuzz-{name}.txt"
    report.write_text(done.stdout + done.stderr)
    print(f"{name}: {time.monotonic() - started:.1f} s, {EXAMPLES} examples per operation; see {report}")
    assert done.returncode == 0, f"schemathesis failed ({report}):\n{(done.stdout + done.stderr)[-12000:]}"


def _table(values: dict[str, Any]) -> list[str]:
    return [f"{json.dumps(k)} = {_toml(v)}" for k, v in values.items()]


# 413 is how both services refuse too many inputs or too large a body, an invalid request like 422
REJECTED = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422", "428", "429"]


def test_gateway_keeps_its_published_contract(fuzzed_gateway: FuzzedGateway, tmp_path: Path) -> None:
    config = {
        "headers": {"X-API-Key": KEY},
        "checks": {"negative_data_rejection": {"expected-statuses": REJECTED}},
        "dictionaries": {"jobs": {"values": [fuzzed_gateway.job_id]}},
        "parameters": {
            "path.job_id": {"dictionary": "jobs", "probability": 0.5},
            "path.other_id": {"dictionary": "jobs", "probability": 0.5},  # the second job of a comparison
        },
        "operations": [
            {
                # an upload's content is beyond what a schema says (its header must hold the mapped
                # columns, its name the format), so a schema-valid upload is still refused with 422
                "include-operation-id": "submit_job_v1_jobs_post",
                "checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "422"]}},
            },
            {
                "include-operation-id": "predict_v1_predict_post",
                "checks": {"positive_data_acceptance": {"expected-statuses": PREDICT_ACCEPTED}},
            },
        ],
    }
    fuzz("gateway", fuzzed_gateway.process.url + "/openapi.json", config, tmp_path)


def test_model_service_keeps_its_published_contract(example_service: ServiceProcess, tmp_path: Path) -> None:
    config = {
        "checks": {"negative_data_rejection": {"expected-statuses": REJECTED}},
        "operations": [
            {
                "include-operation-id": "predict_v1_predict_post",
                "checks": {"positive_data_acceptance": {"expected-statuses": PREDICT_ACCEPTED}},
            }
        ],
    }
    fuzz("model", example_service.url + "/openapi.json", config, tmp_path)
