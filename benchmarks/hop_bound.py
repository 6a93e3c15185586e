"""What one Python HTTP hop costs on this machine: the bound on the gateway's share of the model service.

Runs, under wrk at concurrency 1 and 32, one input per request (the pipeline's first
named example):

- a bare FastAPI app answering the model service's own response body (no work);
- a bare proxy: FastAPI forwarding the body to the model service over aiohttp's pool,
  with no key check, rate limit, log line or metric;
- the model service alone, and the gateway in front of it (as `just bench` starts them).

and prints each one's rows/s, p50 and the CPU milliseconds per request of every process
involved (from /proc). If the bare proxy already passes less than the issue's 0.8 of the
model service's throughput, no gateway doing more work can reach it on this machine.

    uv run python -m benchmarks.hop_bound [--seconds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from benchmarks import load
from benchmarks.throughput import KEY, services
from model_service.settings import Settings
from onepipe.platform.loading import import_pipeline
from onepipe.platform.settings import load_settings
from onepipe_harness.processes import ServiceProcess, free_port

ROOT = Path(__file__).resolve().parent.parent

TICK = os.sysconf("SC_CLK_TCK")
BARE = """
from pathlib import Path
from fastapi import FastAPI, Request
from fastapi.responses import Response

app = FastAPI()
BODY = Path(__file__).with_name("body.json").read_bytes()


@app.post("/v1/predict")
async def predict(request: Request) -> Response:
    await request.body()
    return Response(BODY, media_type="application/json")
"""
PROXY = """
import os
from contextlib import asynccontextmanager

import aiohttp
from fastapi import FastAPI, Request
from fastapi.responses import Response


TARGET = os.environ["TARGET"]
pool: dict[str, aiohttp.ClientSession] = {}


@asynccontextmanager
async def lifespan(app):
    pool["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=100))
    yield
    await pool["session"].close()


app = FastAPI(lifespan=lifespan)


@app.post("/v1/predict")
async def predict(request: Request) -> Response:
    body = await request.body()
    headers = {"Content-Type": "application/json"}
    async with pool["session"].post(TARGET, data=body, headers=headers) as answer:
        return Response(await answer.read(), status_code=answer.status, media_type="application/json")
"""


def cpu_seconds(session: int) -> float:
    """User and system CPU seconds of every process in a session (a service started in its own)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
            if int(fields[3]) == session:
                total += (int(fields[11]) + int(fields[12])) / TICK
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
    return total


@contextmanager
def bare_app(folder: Path, module: str, source: str, **env: str) -> Iterator[ServiceProcess]:
    """One of the bare apps above under uvicorn (httptools, uvloop), as the services run."""
    (folder / f"{module}.py").write_text(textwrap.dedent(source))
    port = free_port()
    command = ["uv", "run", "--frozen", "--no-sync", "uvicorn", "--app-dir", str(folder), f"{module}:app"]
    process = ServiceProcess(module, [*command, "--port", str(port), "--log-level", "warning"], env, port)
    process.start()
    process.wait_ready("/docs")
    try:
        yield process
    finally:
        process.stop()


def measure(
    url: str, bodies: list[str], sessions: dict[str, int], seconds: int, **headers: str
) -> dict[str, Any]:
    """p50 at concurrency 1; rows/s at 32 and each session's CPU ms per request meanwhile."""
    target = url + "/v1/predict"
    load.run(target, bodies, headers, 32, 1)  # warm-up
    single = load.run(target, bodies, headers, 1, seconds)
    before = {name: cpu_seconds(session) for name, session in sessions.items()}
    loaded = load.run(target, bodies, headers, 32, seconds)
    requests = loaded.requests_per_second * seconds
    return {
        "c1_p50_ms": single.p50_ms,
        "c32_rows_per_second": loaded.requests_per_second,
        "cpu_ms_per_request": {
            name: (cpu_seconds(session) - before[name]) / requests * 1000
            for name, session in sessions.items()
        },
    }


def main() -> None:
    """Measure the four paths and print them as JSON, with the ratios to the model service."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="seconds per wrk run")
    args = parser.parse_args()
    settings = load_settings(Settings)
    pipeline = import_pipeline(settings.pipeline)
    bodies = [
        json.dumps({"inputs": [example.model_dump(mode="json")]}) for example in pipeline.examples.values()
    ]
    model_env = {
        "MODEL_ARTIFACTS_DIR": str(settings.artifacts_dir.resolve()),
        "MODEL_WORKERS": str(settings.workers),
    }
    found: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as name, services(model_env, Path(name)) as stack:
        folder = Path(name)
        pids = {face: process.process.pid for face, process in stack.items() if process.process is not None}
        (folder / "body.json").write_bytes(
            httpx.post(stack["model"].url + "/v1/predict", content=bodies[0]).content
        )
        with bare_app(folder, "bare", BARE) as bare:
            assert bare.process is not None
            found["bare answer"] = measure(bare.url, bodies, {"bare": bare.process.pid}, args.seconds)
        with bare_app(folder, "proxy", PROXY, TARGET=stack["model"].url + "/v1/predict") as proxy:
            assert proxy.process is not None
            sessions = {"proxy": proxy.process.pid, "model": pids["model"]}
            found["bare proxy -> model service"] = measure(proxy.url, bodies, sessions, args.seconds)
        found["model service"] = measure(stack["model"].url, bodies, {"model": pids["model"]}, args.seconds)
        sessions = {"gateway": pids["gateway"], "model": pids["model"]}
        found["gateway -> model service"] = measure(
            stack["gateway"].url, bodies, sessions, args.seconds, **{"X-API-Key": KEY}
        )
    model = found["model service"]
    for path in ("bare proxy -> model service", "gateway -> model service"):
        found[path]["c32_share_of_model_service"] = (
            found[path]["c32_rows_per_second"] / model["c32_rows_per_second"]
        )
        found[path]["c1_p50_over_model_service_ms"] = found[path]["c1_p50_ms"] - model["c1_p50_ms"]
    print(json.dumps(found, indent=2))


if __name__ == "__main__":
    main()
