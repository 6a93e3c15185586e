"""Jobs pinned to a version (#22): every row of a job is answered by the version its first answer came from.

Real processes, as the other job tests: the run's own Redis, a real Celery worker, a real gateway and
real model services of the tiny pipeline, trained twice on different data (two versions). Between the
worker and the model service sits a relay: a real HTTP server that forwards every request as it is and
records the version each predict call asks for; it can hold calls, and be pointed at another model
service, as a redeploy with other artifacts would be. The model service is never replaced by a fake.

Without a registry the model service serves one version: asked for another hash it answers with its
own (today), or refuses it with a 422 on `version` (the contract of the registry-aware model service);
either way the job pauses. The tests with two versions served at once (a registry, aliases, a
promotion mid-job) are in tests/model_service/test_versions.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batch_worker.pinning import PausedError, Pin, names_a_hash
from batch_worker.sending import CallRefusedError, RejectedError, VersionRefusedError, rejection
from gateway.auth import hash_key
from onepipe.artifacts import write_artifacts
from onepipe.platform.http.client import ServiceRejectedError
from onepipe.platform.jobs.types import AT_REST, FINISHED, JobMeta, JobSpec
from onepipe_harness.processes import (
    ROOT,
    RedisServer,
    ServiceProcess,
    ThreadedServer,
    free_port,
    model_service,
)
from tests import tiny_pipeline
from tests.stacks import KEYS, PROBLEM, RUN, Stack, keys_env, stack
from ui_service import jobs_view

TINY = "tests.tiny_pipeline:pipeline"
PINNER = f"pinner-{RUN}"  # a key with the jobs and versions scopes
ROWS = 120
CHUNK = 10
LEASE = 4.0
# a job stopped, for good or until resumed; the gateway shows every state
STOPPED = (*FINISHED, "paused")


# -- plain functions: the pin, the refusals, the names, the UI's words ---------------------------------


def _meta(**changes: Any) -> JobMeta:
    spec = JobSpec(file_name="f.jsonl", file_format="jsonl", mapping={}, **changes.pop("spec", {}))
    return JobMeta(id="20261206154755123456-1a2b3c4d", spec=spec, owner="o", owner_name="o", **changes)


def test_the_first_answer_pins_the_version_and_any_other_version_pauses_the_job() -> None:
    meta = _meta()
    pin = Pin(meta, False, threading.Lock())
    assert pin.ref() is None  # the champion
    assert pin.record("aaaaaaaaaaaa") is True and meta.pipeline_version == "aaaaaaaaaaaa"
    assert pin.ref() == "aaaaaaaaaaaa" and pin.record("aaaaaaaaaaaa") is False
    with pytest.raises(PausedError) as paused:
        pin.record("bbbbbbbbbbbb")
    reason = str(paused.value)
    assert reason.startswith("Paused: the job is pinned to version aaaaaaaaaaaa, which the model service")
    assert "answered with version bbbbbbbbbbbb instead" in reason and "none counts as failed" in reason
    assert f"POST /v1/jobs/{meta.id}/resume" in reason
    assert meta.pipeline_version == "aaaaaaaaaaaa"  # never moved


def test_a_hash_asked_for_must_answer_and_an_alias_pins_whatever_it_names() -> None:
    asked_hash = _meta(spec={"version": "cccccccccccc"})
    with pytest.raises(PausedError, match="the job asks for version cccccccccccc"):
        Pin(asked_hash, False, threading.Lock()).record("aaaaaaaaaaaa")
    assert asked_hash.pipeline_version is None
    alias = _meta(spec={"version": "challenger", "compare_version": "v3"})
    compared = Pin(alias, True, threading.Lock())
    assert compared.ref() == "v3" and compared.record("dddddddddddd")
    assert (alias.pipeline_version, alias.compare_pipeline_version) == (None, "dddddddddddd")
    with pytest.raises(PausedError, match=r"pinned to compared version dddddddddddd \(asked as v3\)"):
        compared.record("eeeeeeeeeeee")
    assert [names_a_hash(ref) for ref in ("champion", "v3", "0123456789ab", "0123456789AB", None)] == [
        False,
        False,
        True,
        False,
        False,
    ]


def test_a_422_on_version_is_told_from_refused_rows_and_from_other_refusals() -> None:
    def refused(status: int, errors: list[dict[str, Any]]) -> Exception:
        problem = {"status": status, "detail": "version: no version 'v9' is registered", "errors": errors}
        return rejection(ServiceRejectedError("model service", status, problem))

    assert isinstance(refused(422, [{"loc": "version", "message": "not registered"}]), VersionRefusedError)
    rows = refused(422, [{"loc": "inputs[1].unit", "input": 1, "field": "unit", "message": "too long"}])
    assert isinstance(rows, RejectedError) and rows.reasons == {1: "unit: too long"}
    assert isinstance(refused(400, []), CallRefusedError)


def test_paused_is_not_finished_yet_at_rest_and_the_ui_offers_resume_and_cancel() -> None:
    assert "paused" not in FINISHED and "paused" in AT_REST
    paused = _meta(state="paused")
    assert not paused.finished and paused.at_rest
    now = jobs_view.when("2026-12-06T12:00:00Z")
    assert now is not None
    job = {
        "id": "j1",
        "state": "paused",
        "rows_total": 100,
        "rows_done": 40,
        "rows_failed": 0,
        "error": "Paused: the job is pinned to version aaaaaaaaaaaa, which ... once version aaaaaaaaaaaa is "
        "served again.",
    }
    assert not jobs_view.active(job)
    assert jobs_view.actions(job, now) == ["cancel", "resume"]
    assert jobs_view.STATES["paused"].startswith("paused")
    assert jobs_view.ending_text(job) == (
        "Job j1 paused after 40 of 100 rows: the job is pinned to version aaaaaaaaaaaa, which ... once "
        "version aaaaaaaaaaaa is served again."
    )


# -- the relay, the versions, the stack ----------------------------------------------------------------


class Relay:
    """A real HTTP relay in front of a model service: every request forwarded as it is.

    It records the `version` of each predict call (None: none asked, the champion), holds predict
    calls past `hold_after` until `release`, and forwards to whichever model service `target` names.
    """

    KEPT = ("content-type", "x-pipeline-version", "retry-after")

    def __init__(self, target: str) -> None:
        self.target = target
        self.url = ""  # where it listens, once served
        self.asked: list[str | None] = []
        self.held = 0
        self.hold_after: int | None = None
        self._open = threading.Event()
        self._open.set()
        self.app = Starlette(routes=[Route("/{path:path}", self.forward, methods=["GET", "POST"])])

    def reset(self, target: str) -> None:
        self.target, self.asked, self.held, self.hold_after = target, [], 0, None
        self._open.set()

    def hold(self, after: int) -> None:
        """Hold every predict call after the first `after` ones."""
        self.hold_after = after
        self._open.clear()

    def release(self, target: str) -> None:
        """Forward the held calls, and every call after, to `target`."""
        self.target, self.hold_after = target, None
        self._open.set()

    async def forward(self, request: Request) -> Response:
        body = await request.body()
        if request.url.path == "/v1/predict":
            if self.hold_after is not None and len(self.asked) >= self.hold_after:
                self.held += 1
                while not self._open.is_set():
                    await asyncio.sleep(0.02)
            self.asked.append(json.loads(body).get("version"))
        headers = {k: v for k, v in request.headers.items() if k in ("content-type", "x-request-id")}
        try:
            async with httpx.AsyncClient(timeout=60) as client:
                answer = await client.request(
                    request.method, self.target + request.url.path, content=body, headers=headers
                )
        except httpx.TransportError:
            return Response(status_code=503)  # as the model service down: the worker waits it out
        kept = {k: v for k, v in answer.headers.items() if k.lower() in self.KEPT}
        return Response(answer.content, answer.status_code, headers=kept)


@dataclass(frozen=True)
class Versions:
    """The tiny pipeline trained twice: artifacts folders (for MODEL_ARTIFACTS_DIR) and version hashes."""

    first: Path
    first_hash: str
    second: Path
    second_hash: str


def _other_offset(out: Path) -> str:
    (out / "offset.json").write_text(json.dumps({"offset": 1.5}))
    return "# Model card: tiny, trained again\n\nOffset 1.5."


@pytest.fixture(scope="module")
def versions(tiny_artifacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Versions:
    second = tmp_path_factory.mktemp("tiny-again") / "tiny"
    pipeline = tiny_pipeline.pipeline
    write_artifacts(
        second, pipeline=pipeline.name, trainer=pipeline.trainer_fingerprint(), build=_other_offset
    )
    first_hash, second_hash = pipeline.load(tiny_artifacts).version, pipeline.load(second).version
    assert first_hash != second_hash
    return Versions(tiny_artifacts.parent, first_hash, second.parent, second_hash)


@pytest.fixture(scope="module")
def first_service(versions: Versions) -> Iterator[ServiceProcess]:
    with model_service(free_port(), MODEL_PIPELINE=TINY, MODEL_ARTIFACTS_DIR=str(versions.first)) as process:
        yield process


@pytest.fixture(scope="module")
def second_service(versions: Versions) -> Iterator[ServiceProcess]:
    with model_service(free_port(), MODEL_PIPELINE=TINY, MODEL_ARTIFACTS_DIR=str(versions.second)) as process:
        yield process


@pytest.fixture(scope="module")
def module_relay(first_service: ServiceProcess) -> Iterator[Relay]:
    relay = Relay(first_service.url)
    with ThreadedServer(relay.app) as server:
        relay.url = server.url
        yield relay


@pytest.fixture
def relay(module_relay: Relay, first_service: ServiceProcess) -> Relay:
    module_relay.reset(first_service.url)
    return module_relay


def _keys() -> str:
    entries = json.loads(keys_env())
    entries.append({"name": "pinner", "sha256": hash_key(PINNER), "scopes": ["jobs", "versions"]})
    return json.dumps(entries)


@pytest.fixture(scope="module")
def pinned_stack(
    redis_server: RedisServer, module_relay: Relay, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    settings = {
        "GATEWAY_API_KEYS": _keys(),
        "WORKER_CHUNK_SIZE": str(CHUNK),
        "WORKER_TASK_BUDGET": "1",  # hand-overs to fresh tasks along every job
        "WORKER_LEASE_SECONDS": str(LEASE),
        "WORKER_VISIBILITY_TIMEOUT": "8",
        "WORKER_SWEEP_INTERVAL": "1",  # a paused job must stay paused under a busy sweep
    }
    with stack(
        module_relay.url, tmp_path_factory.mktemp("pinned"), redis=redis_server.url(3), **settings
    ) as started:
        yield started


def _rows(count: int = ROWS) -> list[dict[str, Any]]:
    return [{"values": [float(i), 1.0], "unit": "kg"} for i in range(count)]


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def _submit(started: Stack, content: bytes, key: str = PINNER, **form: str) -> httpx.Response:
    return httpx.post(
        started.gateway.url + "/v1/jobs",
        files={"file": ("readings.jsonl", content)},
        data=form,
        headers={"X-API-Key": key},
        timeout=60,
    )


def _job(started: Stack, job_id: str, key: str = PINNER) -> dict[str, Any]:
    answer = httpx.get(f"{started.gateway.url}/v1/jobs/{job_id}", headers={"X-API-Key": key}, timeout=30)
    return dict(answer.json())


def _until(started: Stack, job_id: str, key: str = PINNER, timeout: float = 120) -> dict[str, Any]:
    """The job once it stopped: finished, or paused."""
    deadline = time.monotonic() + timeout
    job = _job(started, job_id, key)
    while job["state"] not in STOPPED:
        if time.monotonic() > deadline:
            raise TimeoutError(f"job {job_id} is {job['state']}:\n{started.worker.log()[-4000:]}")
        time.sleep(0.2)
        job = _job(started, job_id, key)
    return job


def _resume(started: Stack, job_id: str) -> dict[str, Any]:
    answer = httpx.post(f"{started.gateway.url}/v1/jobs/{job_id}/resume", headers={"X-API-Key": PINNER})
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


def _values(started: Stack, job: dict[str, Any]) -> list[float]:
    report = httpx.get(job["reports"]["jsonl"], headers={"X-API-Key": PINNER}, timeout=60)
    return [json.loads(line)["output.value"] for line in report.text.splitlines()]


def _held(relay: Relay, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while relay.held == 0:
        assert time.monotonic() < deadline, "no predict call reached the hold"
        time.sleep(0.05)


# -- one version served, as today ------------------------------------------------------------------------


def test_a_job_pins_the_hash_of_its_first_answer_and_every_later_call_asks_for_it(
    pinned_stack: Stack, relay: Relay, versions: Versions
) -> None:
    relay.hold(after=5)
    sent = _submit(pinned_stack, _jsonl(_rows()))
    assert sent.status_code == 202, sent.text
    assert (sent.json()["version"], sent.json()["pipeline_version"]) == (None, None)  # pinned by the worker
    job_id = sent.json()["id"]
    _held(relay)
    pinned = _job(pinned_stack, job_id)
    assert pinned["state"] == "running" and pinned["pipeline_version"] == versions.first_hash
    # the worker dies with a call in flight; a new one takes the job once its lease lapses
    pinned_stack.worker.kill()
    relay.release(relay.target)
    pinned_stack.worker.start()
    pinned_stack.worker.wait_ready()
    job = _until(pinned_stack, job_id)
    assert job["state"] == "succeeded", job
    assert (job["rows_done"], job["rows_failed"], job["pipeline_version"]) == (ROWS, 0, versions.first_hash)
    # the first call asks for the champion; every later one, in every task, on both workers, for the hash
    assert relay.asked[0] is None and len(relay.asked) >= ROWS // CHUNK
    assert set(relay.asked[1:]) == {versions.first_hash}, relay.asked
    assert _values(pinned_stack, job) == [float(i) + 1.0 + 0.5 for i in range(ROWS)]
    html = httpx.get(job["reports"]["html"], headers={"X-API-Key": PINNER}).text
    assert f"{versions.first_hash} (the champion when the job started)" in html


def test_a_job_whose_version_is_no_longer_served_pauses_and_resumes_once_it_is_again(
    pinned_stack: Stack, relay: Relay, versions: Versions, second_service: ServiceProcess
) -> None:
    first = relay.target
    relay.hold(after=4)  # four chunks answered by the first version; then it is replaced
    job_id = _submit(pinned_stack, _jsonl(_rows())).json()["id"]
    _held(relay)
    relay.release(second_service.url)
    paused = _until(pinned_stack, job_id)
    assert paused["state"] == "paused", paused
    # the chunks the first version answered (four, unless the calls in flight crossed); nothing failed
    kept = paused["rows_done"]
    assert 0 < kept <= 4 * CHUNK and kept % CHUNK == 0 and paused["rows_failed"] == 0
    assert paused["pipeline_version"] == versions.first_hash and paused["finished_at"] is None
    error = paused["error"]
    assert f"pinned to version {versions.first_hash}" in error and "does not serve now" in error
    assert f"POST /v1/jobs/{job_id}/resume" in error and "none counts as failed" in error
    assert f"job {job_id}: Paused: the job is pinned" in pinned_stack.worker.log()

    # not swept back: the sweep runs every second, the lease lapsed long ago
    asked = len(relay.asked)
    time.sleep(LEASE + 2)
    assert _job(pinned_stack, job_id)["state"] == "paused" and len(relay.asked) == asked

    # resumed while the version is still not served: paused again, still nothing failed
    assert _resume(pinned_stack, job_id)["state"] == "queued"
    again = _until(pinned_stack, job_id)
    assert (again["state"], again["rows_done"], again["rows_failed"]) == ("paused", kept, 0)

    relay.release(first)  # the first version is served again
    _resume(pinned_stack, job_id)
    done = _until(pinned_stack, job_id)
    assert done["state"] == "succeeded", done
    assert (done["rows_done"], done["rows_failed"], done["pipeline_version"]) == (
        ROWS,
        0,
        versions.first_hash,
    )
    assert set(relay.asked[1:]) == {versions.first_hash}  # the calls the other version answered, too
    assert _values(pinned_stack, done) == [float(i) + 1.0 + 0.5 for i in range(ROWS)]


def test_a_job_asking_for_a_hash_not_served_pauses_can_be_cancelled_and_runs_once_it_is_served(
    pinned_stack: Stack, relay: Relay, versions: Versions, second_service: ServiceProcess
) -> None:
    job_id = _submit(pinned_stack, _jsonl(_rows(30)), version=versions.second_hash).json()["id"]
    paused = _until(pinned_stack, job_id)
    assert (paused["state"], paused["rows_done"], paused["rows_failed"]) == ("paused", 0, 0), paused
    assert paused["version"] == versions.second_hash and paused["pipeline_version"] is None
    assert f"the job asks for version {versions.second_hash}, which" in paused["error"]
    assert relay.asked == [versions.second_hash]

    cancel = httpx.delete(f"{pinned_stack.gateway.url}/v1/jobs/{job_id}", headers={"X-API-Key": PINNER})
    assert cancel.status_code == 200 and cancel.json()["state"] == "cancelled", cancel.text
    _resume(pinned_stack, job_id)
    assert _until(pinned_stack, job_id)["state"] == "paused"

    relay.release(second_service.url)
    _resume(pinned_stack, job_id)
    done = _until(pinned_stack, job_id)
    assert done["state"] == "succeeded", done
    assert (done["version"], done["pipeline_version"]) == (versions.second_hash, versions.second_hash)
    assert _values(pinned_stack, done) == [float(i) + 1.0 + 1.5 for i in range(30)]


def test_choosing_a_version_needs_the_versions_scope_and_a_version_reference(pinned_stack: Stack) -> None:
    content = _jsonl(_rows(3))
    before = httpx.get(f"{pinned_stack.gateway.url}/v1/jobs", headers={"X-API-Key": PINNER}).json()["total"]
    refused = _submit(pinned_stack, content, key=KEYS["reviewer"], version="champion")
    assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
    assert "lacks the 'versions' scope" in refused.json()["detail"]
    also = _submit(pinned_stack, content, key=KEYS["reviewer"], compare_version="challenger")
    assert also.status_code == 403
    for field, ref in [("version", "champion!"), ("version", "-v3"), ("compare_version", "x" * 65)]:
        bad = _submit(pinned_stack, content, **{field: ref})
        assert bad.status_code == 422 and bad.headers["content-type"] == PROBLEM, bad.text
        assert bad.json()["errors"][0]["loc"] == field and "is not a version" in bad.json()["detail"]
    both = _submit(pinned_stack, content, compare_version="challenger", compare_flags='{"method": "mean"}')
    assert both.status_code == 422 and both.json()["errors"][0]["loc"] == "compare_version"
    assert "not both" in both.json()["detail"]
    after = httpx.get(f"{pinned_stack.gateway.url}/v1/jobs", headers={"X-API-Key": PINNER}).json()["total"]
    assert after == before  # nothing stored or queued
    # an empty field asks for nothing: no scope needed
    plain = _submit(pinned_stack, content, key=KEYS["reviewer"], version="")
    assert plain.status_code == 202 and plain.json()["version"] is None
    assert _until(pinned_stack, plain.json()["id"], KEYS["reviewer"])["state"] == "succeeded"

    document = httpx.get(f"{pinned_stack.gateway.url}/openapi.json").json()
    upload = document["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]
    form = document["components"]["schemas"][upload["schema"]["$ref"].rsplit("/", 1)[1]]["properties"]
    for field in ("version", "compare_version"):
        assert form[field]["type"] == "string" and form[field]["pattern"].startswith("^[A-Za-z0-9]")
        assert "versions` scope" in form[field]["description"]


def test_just_batch_runs_a_job_on_a_version_against_another_and_the_report_names_both(
    pinned_stack: Stack, relay: Relay, versions: Versions, tmp_path: Path
) -> None:
    data = tmp_path / "readings.jsonl"
    data.write_bytes(_jsonl(_rows(40)))
    done = subprocess.run(
        [
            *("just", "batch", str(data), "--version", versions.first_hash),
            *("--compare-version", "champion", "--out", str(tmp_path / "reports")),
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "GATEWAY_URL": pinned_stack.gateway.url,
            "ONEPIPE_API_KEY": PINNER,
            "COLUMNS": "200",
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"version {versions.first_hash} against {versions.first_hash}" in done.stdout
    # every chunk twice: the hash asked for, and the champion until its first answer pinned it
    assert relay.asked[:2] == [versions.first_hash, "champion"]
    assert set(relay.asked[2:]) == {versions.first_hash} and len(relay.asked) == 2 * 40 // CHUNK
    reports = tmp_path / "reports"
    lines = [json.loads(line) for line in next(reports.glob("*.jsonl")).read_text().splitlines()]
    assert [line["compare.value"] for line in lines] == [line["output.value"] for line in lines]
    html = " ".join(next(reports.glob("*.html")).read_text().split())
    assert f"Versions: {versions.first_hash} against champion {versions.first_hash}" in html
    assert f"<th>Compared version</th><td>{versions.first_hash} (asked as champion)" in html
    assert "flags (rows) against" not in html and "</span> of 40 rows with both outputs" in html
