"""A gateway and a Celery worker started for a test, with the run's own API keys."""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from redis import Redis

from gateway.auth import hash_key
from onepipe_harness.processes import ServiceProcess, free_port, gateway, worker

RUN = uuid.uuid4().hex[:8]
PROBLEM = "application/problem+json"
KEYS = {
    "reviewer": f"reviewer-{RUN}",
    "other": f"other-{RUN}",
    "admin": f"admin-{RUN}",
    "app": f"app-{RUN}",
    "critic": f"critic-{RUN}",  # another key that reports cases
    "curator": f"curator-{RUN}",  # sees every key's reported cases, reports none
    "release": f"release-{RUN}",  # chooses versions for its jobs, promotes and rolls back
}


def keys_env() -> str:
    return json.dumps(
        [
            {
                "name": "reviewer",
                "sha256": hash_key(KEYS["reviewer"]),
                "scopes": ["predict", "jobs", "feedback"],
            },
            {"name": "other", "sha256": hash_key(KEYS["other"]), "scopes": ["jobs"]},
            {"name": "admin", "sha256": hash_key(KEYS["admin"]), "scopes": ["admin"]},
            {"name": "app", "sha256": hash_key(KEYS["app"]), "scopes": ["predict"]},
            {"name": "critic", "sha256": hash_key(KEYS["critic"]), "scopes": ["predict", "feedback"]},
            {"name": "curator", "sha256": hash_key(KEYS["curator"]), "scopes": ["cases:admin"]},
            {"name": "release", "sha256": hash_key(KEYS["release"]), "scopes": ["jobs", "versions"]},
        ]
    )


def as_key(name: str) -> dict[str, str]:
    return {"X-API-Key": KEYS[name]}


@dataclass
class Stack:
    """A gateway and a worker sharing one storage root and one Redis database."""

    gateway: ServiceProcess
    worker: ServiceProcess
    model_url: str
    storage: Path

    def submit(self, name: str, content: bytes, key: str = "reviewer", **form: Any) -> httpx.Response:
        data = {k: json.dumps(v) for k, v in form.items()}
        return httpx.post(
            self.gateway.url + "/v1/jobs",
            files={"file": (name, content)},
            data=data,
            headers=as_key(key),
            timeout=60,
        )

    def wait(self, job_id: str, key: str = "reviewer", timeout: float = 240) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            job = httpx.get(f"{self.gateway.url}/v1/jobs/{job_id}", headers=as_key(key)).json()
            if job["state"] in ("succeeded", "failed", "cancelled"):
                return dict(job)
            time.sleep(0.3)
        raise TimeoutError(f"job {job_id} not finished: {job}\n{self.worker.log()}")

    def report(self, job: dict[str, Any], file_format: str, key: str = "reviewer") -> bytes:
        answer = httpx.get(job["reports"][file_format], headers=as_key(key), timeout=60)
        assert answer.status_code == 200, answer.text
        return answer.content

    def rows(self, job: dict[str, Any], key: str = "reviewer") -> list[dict[str, Any]]:
        """A succeeded job's rows, from its JSON Lines report."""
        return [json.loads(line) for line in self.report(job, "jsonl", key).decode().splitlines()]


@contextmanager
def stack(model_url: str, tmp: Path, redis: str | None, **env: str) -> Iterator[Stack]:
    """A gateway and a worker on a fresh database of the run's Redis (None: the embedded SQLite queue).

    `env`: settings named GATEWAY_* go to the gateway, the others to the worker.
    """
    gateway_env = {name: value for name, value in env.items() if name.startswith("GATEWAY_")}
    worker_env = {name: value for name, value in env.items() if name not in gateway_env}
    if redis is None:
        broker = f"sqla+sqlite:///{tmp / 'queue.sqlite'}"
    else:
        Redis.from_url(redis).flushdb()  # the run's own server: nobody else's data
        broker = redis
    shared = {"STORAGE_URL": str(tmp / "storage"), "REDIS_URL": broker}
    with ExitStack() as started:
        front = started.enter_context(
            gateway(
                free_port(),
                model_url,
                **{
                    "GATEWAY_API_KEYS": keys_env(),
                    "GATEWAY_MAX_UPLOAD_BYTES": "2000000",
                    **shared,
                    **gateway_env,  # a test's own settings win
                },
            )
        )
        env = {
            "MODEL_URL": model_url,
            "WORKER_CHUNK_SIZE": "25",
            "WORKER_TASK_BUDGET": "3",
            "WORKER_LEASE_SECONDS": "4",
            "WORKER_VISIBILITY_TIMEOUT": "6",
            **shared,
            **worker_env,
        }
        process = started.enter_context(worker(**env))
        yield Stack(front, process, model_url, tmp / "storage")


def csv_bytes(rows: list[dict[str, Any]]) -> bytes:
    """Rows as a CSV file's bytes, with a header."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()
