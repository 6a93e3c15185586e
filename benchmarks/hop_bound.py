"""What one Python HTTP hop costs on this machine: the bound on the gateway's share of the model service.

Runs, under wrk at concurrency 1 and 32, one input per request (the bench's 32 inputs of varied
length, in turn):

- a bare FastAPI app answering the model service's own response body (no work);
- then in paired rounds (`paired_hops`, which `just bench` also runs): the model service alone, a
  bare proxy in front of it (FastAPI forwarding the body over aiohttp's pool, with no key check,
  rate limit, log line or metric), and the gateway in front of it (as `just bench` starts them);

and prints each one's rows/s, p50 and the CPU milliseconds per request of every process
involved (from /proc), with the gateway against the bare proxy round by round. If the bare proxy
already passes less than a target share of the model service's throughput, no gateway doing more
work can reach it on this machine.

    uv run python -m benchmarks.hop_bound [--seconds 5] [--rounds 3]
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
from statistics import median
from typing import Any

import httpx

from benchmarks import load
from benchmarks.stack import KEY, services, session_of, varied_inputs
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


PATHS = ("model service", "bare proxy -> model service", "gateway -> model service")


def measure(
    url: str, bodies: list[str], sessions: dict[str, int], seconds: int, **headers: str
) -> dict[str, Any]:
    """p50 at concurrency 1; rows/s at 32 and each session's CPU ms per request meanwhile."""
    target = url + "/v1/predict"
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


def paired_hops(
    stack: dict[str, ServiceProcess], folder: Path, bodies: list[str], rounds: int, seconds: int, key: str
) -> dict[str, Any]:
    """The model service, a bare proxy in front of it and the gateway in front of it, measured in turn
    for `rounds` rounds (each round in another order): each path's medians, and the gateway against
    the bare proxy as the median of each round's ratio (c32 rows/s) and difference (c1 p50), so the
    machine's drift between minutes cancels out."""
    model_session = session_of(stack["model"])
    with bare_app(folder, "proxy", PROXY, TARGET=stack["model"].url + "/v1/predict") as proxy:
        paths = {
            "model service": (stack["model"].url, {"model": model_session}, {}),
            "bare proxy -> model service": (
                proxy.url,
                {"proxy": session_of(proxy), "model": model_session},
                {},
            ),
            "gateway -> model service": (
                stack["gateway"].url,
                {"gateway": session_of(stack["gateway"]), "model": model_session},
                {"X-API-Key": key},
            ),
        }
        for url, _, headers in paths.values():
            load.run(url + "/v1/predict", bodies, headers, 32, 1)  # warm-up
        runs: dict[str, list[dict[str, Any]]] = {path: [] for path in PATHS}
        for turn in range(rounds):
            for path in PATHS[turn % len(PATHS) :] + PATHS[: turn % len(PATHS)]:
                url, sessions, headers = paths[path]
                runs[path].append(measure(url, bodies, sessions, seconds, **headers))
    found: dict[str, Any] = {"rounds": rounds}
    for path, measured in runs.items():
        found[path] = {
            "c1_p50_ms": median(m["c1_p50_ms"] for m in measured),
            "c32_rows_per_second": median(m["c32_rows_per_second"] for m in measured),
            "cpu_ms_per_request": {
                name: median(m["cpu_ms_per_request"][name] for m in measured)
                for name in measured[0]["cpu_ms_per_request"]
            },
        }
    model, proxy_runs, front = (runs[path] for path in PATHS)
    found["paired"] = {
        "bare proxy / model service rows/s at c32": median(
            p["c32_rows_per_second"] / m["c32_rows_per_second"]
            for p, m in zip(proxy_runs, model, strict=True)
        ),
        "gateway / bare proxy rows/s at c32": median(
            g["c32_rows_per_second"] / p["c32_rows_per_second"]
            for g, p in zip(front, proxy_runs, strict=True)
        ),
        "gateway over bare proxy c1 p50, ms": median(
            g["c1_p50_ms"] - p["c1_p50_ms"] for g, p in zip(front, proxy_runs, strict=True)
        ),
    }
    return found


def main() -> None:
    """Measure the bare answer, then the three paths in paired rounds, and print them as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the three paths, each in turn")
    args = parser.parse_args()
    settings = load_settings(Settings)
    pipeline = import_pipeline(settings.pipeline)
    bodies = load.bodies(varied_inputs(pipeline), {})
    model_env = {
        "MODEL_ARTIFACTS_DIR": str(settings.artifacts_dir.resolve()),
        "MODEL_WORKERS": str(settings.workers),
    }
    found: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as name, services(model_env, Path(name)) as stack:
        folder = Path(name)
        (folder / "body.json").write_bytes(
            httpx.post(stack["model"].url + "/v1/predict", content=bodies[0]).content
        )
        with bare_app(folder, "bare", BARE) as bare:
            load.run(bare.url + "/v1/predict", bodies, {}, 32, 1)  # warm-up
            found["bare answer"] = measure(bare.url, bodies, {"bare": session_of(bare)}, args.seconds)
        found |= paired_hops(stack, folder, bodies, args.rounds, args.seconds, KEY)
    print(json.dumps(found, indent=2))


if __name__ == "__main__":
    main()
