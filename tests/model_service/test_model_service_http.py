"""The model service as a real uvicorn process over HTTP: concurrency, micro-batching, other pipelines."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from onepipe import LoadedPipeline
from onepipe.contract import cpu_threads
from onepipe.platform.http.client import AsyncModelServiceClient, ModelServiceClient
from onepipe.platform.http.envelopes import is_background, pipeline_ms, server_timing
from onepipe_harness.processes import ROOT, ServiceProcess, free_port, model_service
from review_triage.pipeline import pipeline as example
from tests.conftest import EXAMPLE_ARTIFACTS

Loaded = LoadedPipeline[Any, Any, Any]


@pytest.fixture(scope="module")
def served(example_service: ServiceProcess) -> ServiceProcess:
    return example_service


def _metric(text: str, name: str) -> float:
    match = re.search(rf"^{re.escape(name)} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_debug_predict_over_http_returns_every_step(served: ServiceProcess, example_pipeline: Loaded) -> None:
    with ModelServiceClient(served.url) as client:
        assert client.ready()["version"] == example_pipeline.version
        example_input = example.examples["plot summary"].model_dump()
        answer = client.predict([example_input], debug=True, request_id="trace-me")
    assert answer.outputs[0]["label"] == "plot"
    assert answer.traces is not None
    assert [s.name for s in answer.traces[0].steps] == [s.name for s in example.describe("").steps]
    assert '"request_id": "trace-me"' in served.log_with('"request_id": "trace-me"')


def test_64_concurrent_mixed_requests_are_batched_and_equal_one_by_one(served: ServiceProcess) -> None:
    flag_sets: list[dict[str, Any]] = [
        {},
        {"classifier": "minilm"},
        {"retriever": "embedding"},
        {"neighbours": 1},
    ]
    texts = [f"{text} (variation {i})" for i, text in enumerate(e.text for e in example.examples.values())]
    requests = [([{"text": texts[i % len(texts)]}], flag_sets[i % len(flag_sets)]) for i in range(64)]

    with ModelServiceClient(served.url) as client:
        one_by_one = [client.predict(inputs, flags).outputs for inputs, flags in requests]
    before = httpx.get(served.url + "/metrics").text

    async def all_at_once() -> list[Any]:
        async with AsyncModelServiceClient(served.url) as client:
            answers = await asyncio.gather(*(client.predict(inputs, flags) for inputs, flags in requests))
        return [a.outputs for a in answers]

    concurrent = asyncio.run(all_at_once())
    after = httpx.get(served.url + "/metrics").text
    assert concurrent == one_by_one
    calls = _metric(after, "pipeline_calls_total") - _metric(before, "pipeline_calls_total")
    gathered = _metric(after, "pipeline_batch_requests_sum") - _metric(before, "pipeline_batch_requests_sum")
    assert gathered == 64
    assert calls < 64, f"64 requests took {calls} pipeline calls"
    largest = [
        float(m.group(1))
        for m in re.finditer(r'^pipeline_batch_requests_bucket\{le="1.0"\} ([0-9.e+]+)$', after, re.MULTILINE)
    ]
    assert largest and largest[0] < _metric(after, "pipeline_batch_requests_count")  # some batch held > 1


def test_a_background_request_answers_the_same_and_every_answer_says_its_pipeline_time(
    served: ServiceProcess,
) -> None:
    # 10 inputs: a background request runs them BACKGROUND_CHUNK at a time
    body = {"inputs": [{"text": f"{e.text} ({i})"} for i, e in enumerate(example.examples.values())][:10]}
    live = httpx.post(served.url + "/v1/predict", json=body, timeout=60)
    shadow = httpx.post(served.url + "/v1/predict", json=body, headers={"Priority": "u=7, i"}, timeout=60)
    assert live.status_code == shadow.status_code == 200
    assert shadow.json() == live.json()
    for answer in (live, shadow):
        assert pipeline_ms(answer.headers["server-timing"]) is not None
        assert (pipeline_ms(answer.headers["server-timing"]) or 0) > 0


def test_the_priority_and_server_timing_headers_are_read_as_their_rfcs_write_them() -> None:
    assert [is_background(h) for h in ("u=7", "u=7, i", "i, u=7", "u=3", "u=70", "", None)] == [
        True,
        True,
        True,
        False,
        False,
        False,
        False,
    ]
    assert pipeline_ms(server_timing(12.3456)) == 12.346
    assert pipeline_ms('db;dur=3, pipeline;desc="run";dur=7.5') == 7.5
    assert [pipeline_ms(h) for h in ("db;dur=3", "", None, "pipelines;dur=4")] == [None] * 4


def test_batching_off_runs_each_request_alone(example_pipeline: Loaded) -> None:
    env = {"MODEL_ARTIFACTS_DIR": str(EXAMPLE_ARTIFACTS.parent), "MODEL_BATCHING": "false"}
    with model_service(free_port(), **env) as process:

        async def burst() -> None:
            async with AsyncModelServiceClient(process.url) as client:
                await asyncio.gather(*(client.predict([{"text": f"film {i}"}]) for i in range(16)))

        asyncio.run(burst())
        metrics = httpx.get(process.url + "/metrics").text
    assert _metric(metrics, "pipeline_calls_total") == 16
    assert _metric(metrics, "pipeline_batch_requests_sum") == 16


def test_serves_another_pipeline_with_no_code_change(tiny_artifacts: Path) -> None:
    env = {
        "MODEL_PIPELINE": "tests.tiny_pipeline:pipeline",
        "MODEL_ARTIFACTS_DIR": str(tiny_artifacts.parent),
    }
    with model_service(free_port(), **env) as process, ModelServiceClient(process.url) as client:
        info = client.pipeline()
        assert info.name == "tiny" and set(info.input_schema["properties"]) == {"values", "unit"}
        assert set(info.flags_schema["properties"]) == {"method", "scale", "with_spread"}
        answer = client.predict([{"values": [1, 2], "unit": "kg"}], {"method": "mean"})
        assert answer.outputs == [{"value": 2.0, "unit": "kg", "spread": 1.0}]


def test_serve_without_artifacts_stops_with_what_to_run(tmp_path: Path) -> None:
    done = subprocess.run(
        ["uv", "run", "--frozen", "--no-sync", "model-service", "serve"],
        cwd=ROOT,
        env={
            "PATH": __import__("os").environ["PATH"],
            "MODEL_ARTIFACTS_DIR": str(tmp_path),
            "MODEL_PORT": "1",
            "MODEL_REGISTRY": "none",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "no artifacts for pipeline 'review-triage'" in done.stderr and "just train" in done.stderr


def test_two_workers_share_the_port_and_metrics_count_every_request(tiny_artifacts: Path) -> None:
    env = {
        "MODEL_PIPELINE": "tests.tiny_pipeline:pipeline",
        "MODEL_ARTIFACTS_DIR": str(tiny_artifacts.parent),
        "MODEL_WORKERS": "2",
    }
    with model_service(free_port(), **env) as process:
        assert process.process is not None
        assert len(_forked_workers(process.process.pid)) == 2
        answers = asyncio.run(
            _fresh_connections(process.url, [{"values": [i, 1], "unit": "kg"} for i in range(120)])
        )
        assert [answer.status_code for answer in answers] == [200] * 120
        metrics = httpx.get(process.url + "/metrics").text
    # both workers' counts, summed by whichever answered /metrics: labelled metrics and the service's
    # own unlabelled ones (made at import, before the fork)
    served = r'http_requests_total{method="POST",route="/v1/predict",status="200"}'
    assert _metric(metrics, served) == 120
    assert _metric(metrics, "pipeline_batch_requests_sum") == 120


@pytest.mark.parametrize(
    "flags", [{}, {"classifier": "minilm", "retriever": "embedding"}], ids=["tfidf", "minilm"]
)
def test_forked_workers_answer_as_a_fresh_process_and_stop_cleanly(
    example_pipeline: Loaded, flags: dict[str, Any]
) -> None:
    """The workers fork from a parent that imported the pipeline: each loads its own models (an ONNX
    Runtime session made before a fork loses its threads and hangs its process at exit), each given
    its share of the cores for them."""
    texts = [given.model_dump(mode="json") for given in example.examples.values()]
    expected = [o.model_dump(mode="json") for o in example_pipeline.run(texts, flags).outputs]
    service = model_service(free_port(), MODEL_ARTIFACTS_DIR=str(EXAMPLE_ARTIFACTS.parent), MODEL_WORKERS="2")
    with service:
        assert service.process is not None
        workers = _forked_workers(service.process.pid)
        assert len(workers) == 2
        # one connection per request, many at once: both workers answer
        answers = asyncio.run(_fresh_connections(service.url, texts * 10, flags))
        assert {answer.status_code for answer in answers} == {200}
        assert [answer.json()["outputs"][0] for answer in answers] == expected * 10
        ready = [line for line in service.log().splitlines() if '"message": "pipeline ready"' in line]
    # two processes on the cores this one may use: each model gets half, so none waits for another's threads
    assert [json.loads(line)["threads"] for line in ready] == [max(1, cpu_threads() // 2)] * 2
    assert service.process.returncode == 0  # SIGTERM: every worker ended (none hung at exit)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]


async def _fresh_connections(
    url: str, inputs: list[Any], flags: dict[str, Any] | None = None
) -> list[httpx.Response]:
    """One request per input, each on a connection of its own, all at once: each connection is accepted
    by whichever worker is free."""

    async def one(given: Any) -> httpx.Response:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            return await client.post("/v1/predict", json={"inputs": [given], "flags": flags or {}})

    return list(await asyncio.gather(*(one(given) for given in inputs)))


def _forked_workers(session: int) -> list[int]:
    """The worker processes in a service's session: forked by the parent after it imported the pipeline,
    so they run the parent's command (spawned ones would run multiprocessing's)."""
    commands: dict[int, tuple[int, bytes]] = {}
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and os.getsid(int(entry.name)) == session:
                parent = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
                commands[int(entry.name)] = (parent, (entry / "cmdline").read_bytes())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return [
        pid
        for pid, (parent, command) in commands.items()
        if parent in commands and commands[parent][1] == command and b"model-service" in command
    ]
