"""The job queue's faults and retries: a Redis that accepts but never answers, SIGTERM, Idempotency-Key.

The hostile-input catalogue's entry for "a silent Redis" (its shared stack has a real
Redis, so the case lives here, with a listener of its own): real gateway processes, a
real worker for the idempotency cases.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.auth import Caller
from gateway.idempotency import LOC, MAX_LENGTH, IdempotencyStore, parse, submit_once
from gateway.queue import EMBEDDED, Enqueuer, QueueUnavailableError, producer, queue_state
from onepipe.platform.http.server import ProblemError
from onepipe.platform.jobs.storage import JobStore
from onepipe.platform.jobs.types import JobMeta, JobSpec
from onepipe_harness.processes import RedisServer, ServiceProcess, ThreadedServer, free_port, gateway
from tests.stacks import PROBLEM, Stack, as_key, csv_bytes, keys_env, stack

CSV = csv_bytes([{"text": "A warm, funny film."}, {"text": "Dull and far too long."}])
QUEUE_TIMEOUT = 3.0


class SilentListener:
    """A TCP listener that accepts every connection and never answers (nor closes): a hung Redis."""

    def __init__(self) -> None:
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(512)
        self.port = int(self.server.getsockname()[1])
        self.held: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return  # closed
            self.held.append(connection)

    def __enter__(self) -> SilentListener:
        self.thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.server.close()
        for connection in self.held:
            connection.close()


def _submit(url: str, key: str = "reviewer", **headers: str) -> httpx.Response:
    return httpx.post(
        url + "/v1/jobs",
        files={"file": ("reviews.csv", CSV)},
        headers={**as_key(key), **headers},
        timeout=60,
    )


def _job_folders(storage: Path) -> list[str]:
    folder = storage / "jobs"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.fixture(scope="module")
def silent_front(example_service: ServiceProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    storage = tmp_path_factory.mktemp("silent") / "storage"
    with (
        SilentListener() as silent,
        gateway(
            free_port(),
            example_service.url,
            GATEWAY_API_KEYS=keys_env(),
            GATEWAY_QUEUE_TIMEOUT=str(QUEUE_TIMEOUT),
            REDIS_URL=silent.url,
            STORAGE_URL=str(storage),
        ) as front,
    ):
        yield front, storage


def test_a_silent_redis_refuses_a_job_within_the_bound_and_keeps_nothing(silent_front: Any) -> None:
    front, storage = silent_front
    started = time.monotonic()
    answer = _submit(front.url)
    seconds = time.monotonic() - started
    print(f"503 after {seconds:.2f} s against a silent Redis")
    assert answer.status_code == 503, answer.text
    assert answer.headers["content-type"] == PROBLEM and answer.headers["Retry-After"] == "10"
    assert answer.json()["title"] == "Job queue unavailable"
    assert "nothing was queued" in answer.json()["detail"]
    assert "127.0.0.1" not in answer.text  # no internal address
    assert seconds < QUEUE_TIMEOUT + 4  # bounded (it hung for minutes), with room for a loaded machine
    assert _job_folders(storage) == []


def test_readyz_says_degraded_naming_the_queue_and_predict_still_answers(silent_front: Any) -> None:
    front, _ = silent_front
    started = time.monotonic()
    ready = httpx.get(front.url + "/readyz", timeout=10)
    seconds = time.monotonic() - started
    assert ready.status_code == 200, ready.text  # compose's healthcheck passes: degraded, not down
    body = ready.json()
    assert body["status"] == "degraded" and body["model_service"] == "ready"
    assert body["queue"] == "unavailable: no answer from the queue in time"
    assert seconds < 4.0  # the probe is bounded at a second (room for a loaded machine)
    predict = httpx.post(
        front.url + "/v1/predict",
        json={"inputs": {"text": "Lovely."}},
        headers=as_key("reviewer"),
        timeout=10,
    )
    assert predict.status_code == 200 and predict.json()["outputs"][0]["label"] in ("fresh", "rotten", "plot")


def test_fifty_refused_submissions_leave_every_other_route_answering(silent_front: Any) -> None:
    front, storage = silent_front
    before = front.log().count("could not queue job")
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda _: _submit(front.url), range(50)))
    seconds = time.monotonic() - started
    print(f"50 submissions, 10 at a time: {seconds:.1f} s")
    assert Counter(a.status_code for a in answers) == {503: 50}
    assert _job_folders(storage) == []
    for path in ("/v1/jobs", "/v1/cases"):
        started = time.monotonic()
        listed = httpx.get(front.url + path, headers=as_key("reviewer"), timeout=10)
        assert listed.status_code == 200, listed.text
        assert time.monotonic() - started < 5.0
    assert httpx.get(front.url + "/v1/jobs", headers=as_key("reviewer")).json()["total"] == 0
    log = front.log()
    assert log.count("could not queue job") - before == 50  # once per request
    assert "Traceback" not in log


class _SlowModel:
    """A model service that is ready but never finishes a predict: a request that hangs."""

    def __init__(self) -> None:
        self.app = FastAPI()

        @self.app.get("/readyz")
        async def readyz() -> dict[str, str]:
            return {"status": "ready", "pipeline": "slow", "version": "0"}

        @self.app.post("/v1/predict")
        async def predict() -> dict[str, str]:
            await asyncio.sleep(120)
            return {}


def test_sigterm_stops_the_gateway_within_its_grace_while_requests_hang(tmp_path: Path) -> None:
    with SilentListener() as silent, ThreadedServer(_SlowModel().app) as model:
        front = gateway(
            free_port(),
            model.url,
            GATEWAY_API_KEYS=keys_env(),
            GATEWAY_MODEL_TIMEOUT="100",
            GATEWAY_MODEL_ATTEMPTS="1",
            REDIS_URL=silent.url,
            STORAGE_URL=str(tmp_path / "storage"),
        )
        with front:
            hanging = threading.Thread(
                target=lambda: httpx.post(
                    front.url + "/v1/predict",
                    json={"inputs": {"text": "x"}},
                    headers=as_key("reviewer"),
                    timeout=60,
                ),
                daemon=True,
            )
            hanging.start()
            time.sleep(1.0)  # the predict is at the model service, which never answers
            assert front.process is not None
            started = time.monotonic()
            front.process.send_signal(signal.SIGTERM)
            front.process.wait(timeout=30)
            seconds = time.monotonic() - started
            print(f"stopped {seconds:.2f} s after one SIGTERM")
            assert seconds < 12.0  # 5 s of grace, then the hung request is cancelled (it ignored SIGTERM)
            assert "timeout graceful shutdown exceeded" in front.log()


# -- Idempotency-Key with a real Redis and a real worker ------------------------------------


@pytest.fixture(scope="module")
def idem_stack(
    redis_server: RedisServer, example_service: ServiceProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with stack(example_service.url, tmp_path_factory.mktemp("idem"), redis=redis_server.url(5)) as started:
        yield started


def test_the_same_idempotency_key_gives_the_first_job_and_others_are_independent(idem_stack: Stack) -> None:
    url = idem_stack.gateway.url
    first = _submit(url, **{"Idempotency-Key": "order-1"})
    assert first.status_code == 202, first.text
    again = _submit(url, **{"Idempotency-Key": "order-1"})
    assert again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Location"] == first.headers["Location"]
    other_key = _submit(url, key="other", **{"Idempotency-Key": "order-1"})
    other_idem = _submit(url, **{"Idempotency-Key": "order-2"})
    plain = _submit(url)
    ids = {first.json()["id"], other_key.json()["id"], other_idem.json()["id"], plain.json()["id"]}
    assert len(ids) == 4
    assert _job_folders(idem_stack.storage) == sorted(ids)
    done = idem_stack.wait(first.json()["id"])
    assert done["state"] == "succeeded" and done["rows_done"] == 2
    replay = _submit(url, **{"Idempotency-Key": "order-1"})
    assert replay.status_code == 202 and replay.json()["id"] == first.json()["id"]
    assert replay.json()["state"] == "succeeded"  # the job as it is now
    assert len(_job_folders(idem_stack.storage)) == 4


def test_an_idempotency_key_reused_or_malformed_is_a_422_naming_it(
    idem_stack: Stack,
) -> None:
    url = idem_stack.gateway.url
    assert _submit(url, **{"Idempotency-Key": "reused"}).status_code == 202
    before = _job_folders(idem_stack.storage)
    other = httpx.post(
        url + "/v1/jobs",
        files={"file": ("other.csv", CSV)},
        headers={**as_key("reviewer"), "Idempotency-Key": "reused"},
        timeout=60,
    )
    assert other.status_code == 422 and other.headers["content-type"] == PROBLEM
    assert other.json()["errors"][0]["loc"] == LOC
    assert "another submission" in other.json()["detail"]
    long = _submit(url, **{"Idempotency-Key": "k" * (MAX_LENGTH + 1)})
    assert long.status_code == 422 and long.json()["errors"] == [
        {"loc": LOC, "message": f"must be 1 to {MAX_LENGTH} characters, not {MAX_LENGTH + 1}"}
    ]
    assert _job_folders(idem_stack.storage) == before
    # declared in the OpenAPI document
    document = httpx.get(url + "/openapi.json").json()
    parameters = document["paths"]["/v1/jobs"]["post"]["parameters"]
    assert [p["name"] for p in parameters if p["in"] == "header"] == ["Idempotency-Key"]


def test_concurrent_submissions_with_one_idempotency_key_make_one_job(idem_stack: Stack) -> None:
    before = set(_job_folders(idem_stack.storage))
    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(
            pool.map(lambda _: _submit(idem_stack.gateway.url, **{"Idempotency-Key": "at-once"}), range(6))
        )
    statuses = Counter(a.status_code for a in answers)
    assert set(statuses) <= {202, 409} and statuses[202] >= 1, statuses
    assert len({a.json()["id"] for a in answers if a.status_code == 202}) == 1
    for answer in answers:
        if answer.status_code == 409:
            assert answer.headers["Retry-After"] == "1"
    assert len(set(_job_folders(idem_stack.storage)) - before) == 1


# -- the same logic without a server -----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", f"must be 1 to {MAX_LENGTH} characters, not 0"),
        ("x" * 256, f"must be 1 to {MAX_LENGTH} characters, not 256"),
        ("tab\there", "must be printable ASCII (letters, digits, punctuation, spaces), e.g. a UUID"),
        ("café", "must be printable ASCII (letters, digits, punctuation, spaces), e.g. a UUID"),
    ],
)
def test_an_idempotency_key_is_one_to_255_printable_characters(value: str, message: str) -> None:
    with pytest.raises(ProblemError) as refused:
        parse(value)
    assert refused.value.status == 422 and refused.value.errors is not None
    assert [(e.loc, e.message) for e in refused.value.errors] == [(LOC, message)]
    assert parse("6f1c2a9e-0b7d-4c3e-9a51-2d8f7e6b5a41") == "6f1c2a9e-0b7d-4c3e-9a51-2d8f7e6b5a41"
    assert parse(None) is None


def test_a_failed_submission_releases_its_idempotency_key(tmp_path: Path) -> None:
    store = JobStore(str(tmp_path))
    claims = IdempotencyStore(store)
    caller = Caller("reviewer", frozenset({"jobs"}), None, "a" * 16)
    calls: list[str] = []

    def refused(job_id: str) -> JobMeta:
        calls.append(job_id)
        raise ProblemError(503, "Job queue unavailable", "down")

    def accepted(job_id: str) -> JobMeta:
        calls.append(job_id)
        meta = JobMeta(
            id=job_id,
            spec=JobSpec(file_name="f.csv", file_format="csv", mapping={}),
            owner=caller.key_id,
            owner_name=caller.name,
        )
        store.save(meta)
        return meta

    with pytest.raises(ProblemError):
        submit_once(claims, caller, "k", "print", refused)
    assert not store.fs.exists(claims.path(caller.key_id, "k"))
    meta, replayed = submit_once(claims, caller, "k", "print", accepted)
    assert not replayed and meta.id == calls[-1]
    again, replayed = submit_once(claims, caller, "k", "print", accepted)
    assert replayed and again.id == meta.id and len(calls) == 2
    stranger = Caller("other", frozenset({"jobs"}), None, "b" * 16)
    theirs, replayed = submit_once(claims, stranger, "k", "print", accepted)
    assert not replayed and theirs.id != meta.id


class _StuckBroker:
    """A Celery app whose send never returns (until released)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def send_task(self, *args: Any, **kwargs: Any) -> None:
        self.release.wait(10)


def test_the_enqueue_gives_up_at_its_deadline_even_when_every_sender_is_stuck() -> None:
    broker = _StuckBroker()
    enqueue = Enqueuer(broker, 0.3)  # only send_task is used (Celery is untyped here)
    try:
        with ThreadPoolExecutor(max_workers=8) as pool:
            started = time.monotonic()
            outcomes = list(pool.map(lambda i: _fails(enqueue, f"job-{i}"), range(8)))
            seconds = time.monotonic() - started
        assert outcomes == ["no answer from the queue within 0.3 s"] * 8
        assert seconds < 1.5  # 8 sends, 4 senders: none waits for another's turn past its deadline
    finally:
        broker.release.set()
        enqueue.close()


def _fails(enqueue: Enqueuer, job_id: str) -> str:
    try:
        enqueue(job_id, "ticket")
    except QueueUnavailableError as error:
        return str(error)
    return "sent"


def test_the_embedded_queue_reads_as_embedded_and_a_refusing_redis_as_unavailable() -> None:
    assert asyncio.run(queue_state("sqla+sqlite:///queue.sqlite")) == EMBEDDED
    started = time.monotonic()
    state = asyncio.run(queue_state(f"redis://127.0.0.1:{free_port()}/0"))
    assert state == "unavailable: cannot connect to the queue"
    assert time.monotonic() - started < 3.0


def test_a_refusing_redis_fails_the_enqueue_at_once_and_the_embedded_queue_takes_it(tmp_path: Path) -> None:
    refusing = Enqueuer(producer(f"redis://127.0.0.1:{free_port()}/0", QUEUE_TIMEOUT), QUEUE_TIMEOUT)
    started = time.monotonic()
    with pytest.raises(QueueUnavailableError, match="cannot connect to the queue"):
        refusing("20261206154755123456-1a2b3c4d", "ticket")
    assert time.monotonic() - started < QUEUE_TIMEOUT - 0.5  # refused before the deadline
    refusing.close()
    embedded = Enqueuer(producer(f"sqla+sqlite:///{tmp_path / 'queue.sqlite'}", QUEUE_TIMEOUT), QUEUE_TIMEOUT)
    embedded("20261206154755123456-1a2b3c4d", "ticket")  # no socket options for SQLite: sent
    embedded.close()
    assert (tmp_path / "queue.sqlite").stat().st_size > 0
