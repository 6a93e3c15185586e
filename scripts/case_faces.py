"""The four faces a case is replayed through: in-process, the model service, the gateway, a batch job.

Each face is a function of (inputs, flags) giving the outputs in order and the pipeline's version
(scripts/cases.py replays the library through them).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx

from model_service.settings import Settings
from onepipe import LoadedPipeline
from onepipe.platform.jsonlines import json_line, read_values

FACES = ("in-process", "model service", "gateway", "batch job")
PER_REQUEST = 32  # inputs per predict call: under every service's limit

Answer = tuple[list[dict[str, Any]], str]  # the outputs, in order, and the pipeline's version
Face = Callable[[list[dict[str, Any]], dict[str, Any]], Answer]


def in_process(loaded: LoadedPipeline[Any, Any, Any]) -> Face:
    """The pipeline called in this process."""

    def run(inputs: list[dict[str, Any]], flags: dict[str, Any]) -> Answer:
        result = loaded.run(inputs, flags)
        return [o.model_dump(mode="json") for o in result.outputs], loaded.version

    return run


def over_http(url: str, headers: Mapping[str, str] | None = None) -> Face:
    """POST /v1/predict of a service (the model service, or the gateway with a key)."""

    def run(inputs: list[dict[str, Any]], flags: dict[str, Any]) -> Answer:
        outputs: list[dict[str, Any]] = []
        versions = set()
        for start in range(0, len(inputs), PER_REQUEST):
            answer = httpx.post(
                url + "/v1/predict",
                json={"inputs": inputs[start : start + PER_REQUEST], "flags": flags},
                headers=dict(headers or {}),
                timeout=120,
            )
            if answer.status_code != 200:
                raise RuntimeError(f"{url} answered {answer.status_code}: {answer.text[:500]}")
            body = answer.json()
            outputs += body["outputs"]
            versions.add(body["version"])
        return outputs, ",".join(sorted(versions))

    return run


def as_batch_job(gateway_url: str, headers: Mapping[str, str], like: Face) -> Face:
    """The inputs as a JSON Lines file through a batch job; outputs read back from its JSONL report.

    The report writes a nested output (a list or an object) as JSON text: read back as JSON
    wherever `like` (the in-process face) gives one.
    """

    def run(inputs: list[dict[str, Any]], flags: dict[str, Any]) -> Answer:
        lines = "".join(json_line(item) for item in inputs).encode()
        sent = httpx.post(
            gateway_url + "/v1/jobs",
            files={"file": ("cases.jsonl", lines)},
            data={"flags": json.dumps(flags)},
            headers=dict(headers),
            timeout=120,
        )
        if sent.status_code != 202:
            raise RuntimeError(f"the gateway refused the batch job: {sent.status_code} {sent.text[:500]}")
        job = _finished(sent.json()["url"], headers)
        if job["state"] != "succeeded":
            raise RuntimeError(f"the batch job {job['id']} ended {job['state']}: {job.get('error')}")
        report = httpx.get(job["reports"]["jsonl"], headers=dict(headers), timeout=120)
        records = read_values(report.text)
        shapes, _ = like(inputs, flags)
        outputs = [
            {
                name: json.loads(record[f"output.{name}"])
                if isinstance(value, dict | list) and isinstance(record.get(f"output.{name}"), str)
                else record.get(f"output.{name}")
                for name, value in shape.items()
            }
            for record, shape in zip(records, shapes, strict=True)
        ]
        return outputs, str(job.get("pipeline_version") or "")

    return run


def _finished(url: str, headers: Mapping[str, str], timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = dict(httpx.get(url, headers=dict(headers), timeout=30).json())
        if job["state"] in ("succeeded", "failed", "cancelled", "paused"):
            return job
        time.sleep(0.3)
    raise RuntimeError(f"the batch job at {url} did not finish within {timeout:g} s")


@contextmanager
def private_stack(settings: Settings) -> Iterator[dict[str, Face]]:
    """The model service, the gateway and a worker, started here on free ports (no Redis needed)."""
    from gateway.auth import hash_key
    from onepipe_harness.processes import free_port, gateway, model_service, worker

    key = "cases-" + os.urandom(8).hex()
    keys = [{"name": "cases", "sha256": hash_key(key), "scopes": ["predict", "jobs"]}]
    with tempfile.TemporaryDirectory(prefix="onepipe-cases-") as folder, ExitStack() as started:
        shared = {
            "STORAGE_URL": str(Path(folder) / "storage"),
            "REDIS_URL": f"sqla+sqlite:///{Path(folder) / 'queue.sqlite'}",
        }
        model = started.enter_context(
            model_service(
                free_port(),
                MODEL_PIPELINE=settings.pipeline,
                MODEL_ARTIFACTS_DIR=str(settings.artifacts_dir.resolve()),
            )
        )
        front = started.enter_context(
            gateway(
                free_port(),
                model.url,
                GATEWAY_API_KEYS=json.dumps(keys),
                GATEWAY_RATE_LIMIT="100000/minute",
                **shared,
            )
        )
        started.enter_context(worker(MODEL_URL=model.url, **shared))
        headers = {"X-API-Key": key}
        yield {
            "model service": over_http(model.url),
            "gateway": over_http(front.url, headers),
            "batch job": as_batch_job(front.url, headers, over_http(model.url)),
        }
