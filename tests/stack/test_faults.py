"""Faults with real processes: under predict load, and during batch jobs in both queue modes.

The queue modes are Redis and the embedded SQLite queue. After each fault a job
finishes with every row exactly once, with no person involved (or, when the
storage was full, after one resume), and the gateway never answered 500. The
workers' sweep is what takes up a job nobody is answerable for.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from onepipe_harness.processes import (
    RedisServer,
    ServiceProcess,
    descendants,
    free_port,
    gateway,
    model_service,
)
from tests.conftest import EXAMPLE_ARTIFACTS
from tests.stacks import KEYS, Stack, as_key, csv_bytes, keys_env, stack

ROWS = 600
# short leases and frequent sweeps, so that each recovery takes seconds
FAST = {
    "WORKER_CHUNK_SIZE": "10",
    "WORKER_LEASE_SECONDS": "4",
    "WORKER_SWEEP_INTERVAL": "1",
}
MODES = ["redis", "embedded"]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    from review_triage.data import load_snippets

    found = [s.text for s in load_snippets() if s.text.strip()]
    return (found * (ROWS // len(found) + 1))[:ROWS]


def _broker(mode: str, redis_server: RedisServer) -> str | None:
    return redis_server.url(14) if mode == "redis" else None


def _job(started: Stack, name: str, texts: list[str]) -> dict[str, Any]:
    answer = started.submit(name, csv_bytes([{"text": t} for t in texts]))
    assert answer.status_code == 202, answer.text
    return dict(answer.json())


def _view(job: dict[str, Any]) -> dict[str, Any]:
    return dict(httpx.get(job["url"], headers=as_key("reviewer"), timeout=30).json())


def _until_rows(job: dict[str, Any], rows: int, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (seen := _view(job))["rows_done"] >= rows:
            return seen
        time.sleep(0.05)
    raise TimeoutError(f"job {job['id']} never reached {rows} rows: {seen}")


def _every_row_once(started: Stack, job: dict[str, Any], total: int = ROWS) -> dict[str, Any]:
    finished = started.wait(job["id"])
    assert finished["state"] == "succeeded", (finished, started.worker.log()[-3000:])
    assert (finished["rows_done"], finished["rows_failed"]) == (total, 0)
    rows = [json.loads(line)["row"] for line in started.report(finished, "jsonl").splitlines()]
    assert rows == list(range(1, total + 1))
    return finished


def _no_500(started: Stack) -> None:
    statuses = [
        json.loads(line).get("status")
        for line in started.gateway.log().splitlines()
        if line.startswith("{") and '"request"' in line
    ]
    assert statuses and not [s for s in statuses if s >= 500], statuses


@contextmanager
def _tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A RAM file system of `size` at `folder`: storage that can be filled or made read-only for real."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True)
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _remount(folder: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(folder)], check=True)


@pytest.mark.parametrize("mode", MODES)
def test_a_worker_killed_mid_job_loses_nothing(
    mode: str, redis_server: RedisServer, example_service: ServiceProcess, tmp_path: Path, texts: list[str]
) -> None:
    with stack(example_service.url, tmp_path, _broker(mode, redis_server), **FAST) as started:
        job = _job(started, "kill.csv", texts)
        _until_rows(job, 50)
        started.worker.kill()  # SIGKILL of the whole worker, mid-job: its lease is never released
        killed_at = _view(job)
        assert killed_at["state"] == "running" and 0 < killed_at["rows_done"] < ROWS
        started.worker.start()
        started.worker.wait_ready()
        _every_row_once(started, job)
        _no_500(started)


@pytest.mark.parametrize("mode", MODES)
def test_a_pool_child_killed_mid_job_is_replaced_and_the_job_finishes(
    mode: str, redis_server: RedisServer, example_service: ServiceProcess, tmp_path: Path, texts: list[str]
) -> None:
    # what the kernel's OOM killer does: the child running the task dies, the worker's main process lives
    with stack(example_service.url, tmp_path, _broker(mode, redis_server), **FAST) as started:
        job = _job(started, "child.csv", texts)
        _until_rows(job, 50)
        assert started.worker.process is not None
        celery_main = descendants(started.worker.process.pid)[0]
        pool = descendants(celery_main)
        assert pool, "no pool child under the worker"
        for child in pool:
            os.kill(child, signal.SIGKILL)
        finished = _every_row_once(started, job)
        assert finished["last_worked_at"] >= finished["started_at"]
        _no_500(started)


@pytest.mark.parametrize("mode", MODES)
def test_the_model_service_killed_mid_job_then_restarted_completes(
    mode: str, redis_server: RedisServer, tmp_path: Path, texts: list[str]
) -> None:
    model = model_service(free_port(), MODEL_ARTIFACTS_DIR=str(EXAMPLE_ARTIFACTS.parent))
    with model, stack(model.url, tmp_path, _broker(mode, redis_server), **FAST) as started:
        job = _job(started, "outage.csv", texts)
        _until_rows(job, 30)
        model.kill()
        time.sleep(3)
        paused = _view(job)
        assert paused["state"] == "running" and paused["rows_done"] < ROWS
        model.start()
        model.wait_ready()
        _every_row_once(started, job)
        assert "model service unavailable" in started.worker.log()
        _no_500(started)


@pytest.mark.parametrize("mode", MODES)
def test_storage_full_fails_the_job_clearly_and_it_resumes_once_there_is_room(
    mode: str, redis_server: RedisServer, example_service: ServiceProcess, tmp_path: Path, texts: list[str]
) -> None:
    content = csv_bytes([{"text": t} for t in texts])
    # room for the upload and a few chunks, not for every chunk
    with (
        _tmpfs(tmp_path / "storage", f"{len(content) // 1024 + 96}k") as storage,
        stack(example_service.url, tmp_path, _broker(mode, redis_server), **FAST) as started,
    ):
        job = _job(started, "full.csv", texts)
        failed = started.wait(job["id"])
        assert failed["state"] == "failed", failed
        assert failed["error"].startswith("the job storage failed: ")
        assert "No space left on device" in failed["error"] and "resume the job" in failed["error"]
        assert 0 < failed["rows_done"] < ROWS
        _remount(storage, "size=64m")
        resumed = httpx.post(job["url"] + "/resume", headers=as_key("reviewer"))
        assert resumed.status_code == 202, resumed.text
        _every_row_once(started, job)
        _no_500(started)


@pytest.mark.parametrize("mode", MODES)
def test_storage_read_only_mid_job_then_writable_again_the_job_finishes_by_itself(
    mode: str, redis_server: RedisServer, example_service: ServiceProcess, tmp_path: Path, texts: list[str]
) -> None:
    with (
        _tmpfs(tmp_path / "storage", "64m") as storage,
        stack(example_service.url, tmp_path, _broker(mode, redis_server), **FAST) as started,
    ):
        job = _job(started, "readonly.csv", texts)
        _until_rows(job, 50)
        _remount(storage, "ro")
        time.sleep(6)  # past the lease: the worker has stopped, and the sweep cannot write either
        stuck = _view(job)  # the gateway still reads it
        assert stuck["state"] == "running" and stuck["rows_done"] < ROWS
        _remount(storage, "rw")
        _every_row_once(started, job)
        assert "Read-only file system" in started.worker.log()
        _no_500(started)


def test_redis_restarted_empty_across_a_hand_over_the_job_finishes_by_itself(
    example_service: ServiceProcess, tmp_path: Path, texts: list[str]
) -> None:
    redis = RedisServer(tmp_path)  # this test's own: it is stopped and restarted empty (nothing saved)
    try:
        with stack(example_service.url, tmp_path, redis.url(), **FAST, WORKER_TASK_BUDGET="1") as started:
            # five times the rows: the job must still be running when Redis stops
            job = _job(started, "redis.csv", texts * 5)
            _until_rows(job, 30)
            redis.stop()
            # longer than a task run: its continuation cannot be queued, and Redis comes back empty
            time.sleep(4)
            redis.start()
            _every_row_once(started, job, total=5 * ROWS)
            # the continuation was lost one of two ways: it could not be sent while Redis was down,
            # or it was sent and Redis came back without it; either way the sweep queued the job again
            log = started.worker.log()
            assert "could not queue its next task" in log or "queued again" in log, log[-3000:]
            # the gateway's rate-limit counters are on the restarted Redis too: it reconnected
            predicted = httpx.post(
                started.gateway.url + "/v1/predict",
                json={"inputs": {"text": texts[0]}},
                headers=as_key("reviewer"),
            )
            assert predicted.status_code == 200, predicted.text
            _no_500(started)
    finally:
        redis.stop()


def test_the_model_service_killed_under_predict_load_then_restarted_serves_again(
    redis_server: RedisServer, tmp_path: Path, texts: list[str]
) -> None:
    model = model_service(free_port(), MODEL_ARTIFACTS_DIR=str(EXAMPLE_ARTIFACTS.parent))
    front = gateway(
        free_port(),
        model.url,
        GATEWAY_API_KEYS=keys_env(),
        GATEWAY_RATE_LIMIT="100000/minute",
        REDIS_URL=redis_server.url(15),
        STORAGE_URL=str(tmp_path / "storage"),
    )
    answers: list[tuple[float, int, str]] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(headers={"X-API-Key": KEYS["app"]}, timeout=30) as client:
            for n in range(10**9):
                if stop.is_set():
                    return
                answer = client.post(front.url + "/v1/predict", json={"inputs": {"text": texts[n % ROWS]}})
                answers.append((time.monotonic(), answer.status_code, answer.headers.get("content-type", "")))

    with model, front:
        senders = [threading.Thread(target=load) for _ in range(4)]
        for sender in senders:
            sender.start()
        try:
            time.sleep(2)
            model.kill()
            time.sleep(3)
            model.start()
            model.wait_ready()
            back = time.monotonic()
            time.sleep(3)
        finally:
            stop.set()
            for sender in senders:
                sender.join(timeout=30)
    statuses = Counter(status for _, status, _ in answers)
    assert statuses[200] > 0 and set(statuses) <= {200, 502, 503, 504}, statuses
    assert statuses[503] + statuses[502] > 0, statuses  # the outage was seen, as problems
    refused = [kind for _, status, kind in answers if status != 200]
    assert all(kind.startswith("application/problem+json") for kind in refused)
    after = [status for at, status, _ in answers if at > back + 1]
    assert after and set(after) == {200}, Counter(after)
