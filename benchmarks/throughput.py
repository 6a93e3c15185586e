"""`just bench`: every face's speed as ratios to the in-process pipeline, measured in one run.

For whatever pipeline is configured (MODEL_PIPELINE, its artifacts under
MODEL_ARTIFACTS_DIR), with 32 inputs of varied length (its named examples, then its
held-out inputs), against real processes started here (a private Redis, the model
service, the gateway, a batch worker):

- in-process: p50 of one input per call; rows/s at one, 32 per call and at the job's chunk size;
- model service and gateway under wrk: p50 at concurrency 1, rows/s and p99 at 32
  (the model service also with micro-batching off);
- batch jobs of each --job-rows size, with and without a compared flag set, and the
  peak memory of the worker and the model service during each;
- the model service's start: seconds from launch to ready;
- the champion's speed with a challenger loaded beside it, against alone (benchmarks/versions.py);
- the gateway's callers with shadow traffic at rates 0, 1 and 0.1 (benchmarks/shadow.py).

Each figure is the median of --runs runs. Writes test-output/bench.json and
test-output/bench.md; docs/performance.md keeps the latest results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from benchmarks import hop_bound, load, shadow, versions
from benchmarks.memory import PeakMemory
from benchmarks.stack import KEY, services, session_of, varied_inputs
from model_service.settings import Settings
from onepipe import LoadedPipeline
from onepipe.platform.loading import import_pipeline
from onepipe.platform.settings import load_settings
from onepipe_harness.processes import (
    OUTPUT,
    ServiceProcess,
    free_port,
    model_service,
)

ROOT = Path(__file__).resolve().parent.parent
CONCURRENCY = 32
CHUNK = 100  # the worker's default chunk size


def _median(runs: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(runs))


def _loads(runs: int, measure: Callable[[], load.Load]) -> dict[str, float]:
    """The median of each figure over `runs` wrk runs."""
    found = [measure() for _ in range(runs)]
    return {
        "rows_per_second": statistics.median(f.requests_per_second for f in found),
        "p50_ms": statistics.median(f.p50_ms for f in found),
        "p99_ms": statistics.median(f.p99_ms for f in found),
    }


def in_process(
    loaded: LoadedPipeline[Any, Any, Any], inputs: list[Any], flags: dict[str, Any], runs: int
) -> dict[str, float]:
    """p50 of one input per call; rows/s at one, 32 per call and at the job's chunk size."""
    loaded.run(inputs[:8], flags)  # warm-up

    def p50() -> float:
        times = []
        for item in inputs[:200]:
            start = time.perf_counter()
            loaded.run([item], flags)
            times.append((time.perf_counter() - start) * 1000)
        return statistics.median(times)

    def rate(size: int) -> float:
        rows = inputs * max(1, 640 // len(inputs))
        start = time.perf_counter()
        for k in range(0, len(rows), size):
            loaded.run(rows[k : k + size], flags)
        return len(rows) / (time.perf_counter() - start)

    return {
        "p50_ms": _median(runs, p50),
        "rows_per_second_1": _median(runs, lambda: rate(1)),
        "rows_per_second_32": _median(runs, lambda: rate(32)),
        f"rows_per_second_{CHUNK}": _median(runs, lambda: rate(CHUNK)),
    }


def http(
    url: str, inputs: list[Any], flags: dict[str, Any], args: argparse.Namespace, **headers: str
) -> dict[str, Any]:
    """p50 at concurrency 1; rows/s, p50 and p99 at CONCURRENCY."""
    bodies = load.bodies(inputs, flags)
    target = url + "/v1/predict"
    load.run(target, bodies, headers, CONCURRENCY, 1)  # warm-up
    single = _loads(args.runs, lambda: load.run(target, bodies, headers, 1, args.seconds))
    loaded = _loads(args.runs, lambda: load.run(target, bodies, headers, CONCURRENCY, args.seconds))
    return {"c1_p50_ms": single["p50_ms"], f"c{CONCURRENCY}": loaded}


def start_seconds(model_env: dict[str, str], runs: int) -> float:
    """Seconds from launching the model service to its /readyz answering 200."""

    def once() -> float:
        started = time.monotonic()
        with model_service(free_port(), **model_env):
            return time.monotonic() - started

    return _median(runs, once)


LOAD_ALONE = """
import sys, time
from pathlib import Path
started = time.monotonic()
from onepipe.platform.loading import import_pipeline

pipeline = import_pipeline(sys.argv[1])
pipeline.load(Path(sys.argv[2]) / pipeline.name)
print(time.monotonic() - started)
"""


def load_alone_seconds(pipeline: str, artifacts: Path, runs: int) -> float:
    """Seconds a fresh Python process takes to import the pipeline and load it: the floor of any start."""

    def once() -> float:
        done = subprocess.run(
            [sys.executable, "-c", LOAD_ALONE, pipeline, str(artifacts)],
            capture_output=True,
            text=True,
            check=True,
        )
        return float(done.stdout.split()[-1])

    return _median(runs, once)


def job(
    stack: dict[str, ServiceProcess],
    inputs: list[Any],
    rows: int,
    flags: dict[str, Any],
    compare: dict[str, Any] | None,
) -> dict[str, float]:
    """Rows/s of a batch job of `rows` rows, from its creation to its end (reports included), and
    the peak memory (MiB) of the worker's and the model service's processes meanwhile."""
    lines = "".join(json.dumps(inputs[n % len(inputs)]) + "\n" for n in range(rows)).encode()
    form = {"flags": json.dumps(flags)} | (
        {"compare_flags": json.dumps(compare)} if compare is not None else {}
    )
    headers = {"X-API-Key": KEY}
    sessions = {name: session_of(stack[name]) for name in ("worker", "model")}
    with PeakMemory(sessions) as memory:
        answer = httpx.post(
            stack["gateway"].url + "/v1/jobs",
            files={"file": ("bench.jsonl", lines)},
            data=form,
            headers=headers,
            timeout=300,
        )
        answer.raise_for_status()
        url = answer.json()["url"]
        while (view := httpx.get(url, headers=headers, timeout=30).json())["state"] not in (
            "succeeded",
            "failed",
            "cancelled",
        ):
            time.sleep(0.5)
    if view["state"] != "succeeded" or view["rows_failed"]:
        raise RuntimeError(f"the bench job did not succeed: {view}")
    seconds = (
        datetime.fromisoformat(view["finished_at"]) - datetime.fromisoformat(view["created_at"])
    ).total_seconds()
    peaks = memory.megabytes()
    return {
        "rows_per_second": rows / seconds,
        "worker_peak_mib": peaks["worker"],
        "model_peak_mib": peaks["model"],
    }


def ratios(figures: dict[str, Any]) -> dict[str, float]:
    """The issue's targets as ratios (and the two latencies in ms), for each flag set."""
    found: dict[str, float] = {}
    for name, measured in figures["flag_sets"].items():
        local, model, front = measured["in_process"], measured["model"], measured["gateway"]
        c = f"c{CONCURRENCY}"
        found[f"{name}: gateway c1 p50 over in-process, ms"] = front["c1_p50_ms"] - local["p50_ms"]
        found[f"{name}: gateway / model service rows/s at c{CONCURRENCY}"] = (
            front[c]["rows_per_second"] / model[c]["rows_per_second"]
        )
        found[f"{name}: gateway p99 / p50 at c{CONCURRENCY}"] = front[c]["p99_ms"] / front[c]["p50_ms"]
        found[f"{name}: model service / in-process 32 per call"] = (
            model[c]["rows_per_second"] / local["rows_per_second_32"]
        )
        # batching in the pipeline itself (e.g. MiniLM's length buckets): the same rows, fewer calls
        found[f"{name}: in-process 32 per call / one per call"] = (
            local["rows_per_second_32"] / local["rows_per_second_1"]
        )
        found[f"{name}: model service batching on / off"] = (
            model[c]["rows_per_second"] / measured["model_unbatched"][c]["rows_per_second"]
        )
    for name, measured in figures["jobs"].items():
        found[f"job {name} / in-process at chunk size"] = (
            measured["rows_per_second"] / figures["jobs_in_process"][name]
        )
    sizes = sorted({size for size, _ in figures["job_sizes"].values()})
    if len(sizes) > 1:
        # memory must not grow with the job: the largest job's peak against the smallest's
        for compared in (False, True):
            named = {size: name for name, (size, c) in figures["job_sizes"].items() if c == compared}
            if sizes[0] in named and sizes[-1] in named:
                small, large = figures["jobs"][named[sizes[0]]], figures["jobs"][named[sizes[-1]]]
                for face in ("worker", "model"):
                    found[f"{face} peak memory, {named[sizes[-1]]} / {sizes[0]} rows"] = (
                        large[f"{face}_peak_mib"] / small[f"{face}_peak_mib"]
                    )
    found |= figures["hops"]["paired"]
    found["model service start, s"] = figures["start_seconds"]
    found["model service start, one process, s"] = figures["start_seconds_one_process"]
    found["pipeline import and load in a fresh process, s"] = figures["load_alone_seconds"]
    found["model service start / import and load"] = figures["start_seconds"] / figures["load_alone_seconds"]
    return found


def markdown(figures: dict[str, Any]) -> str:
    """The figures and ratios as markdown tables."""
    lines = [
        f"{figures['pipeline']} {figures['version']}, {figures['machine']}, model service workers: "
        f"{figures['model_workers']}; median of {figures['runs']} runs",
        "",
        "| figure | value |",
        "| --- | --- |",
    ]
    for name, measured in figures["flag_sets"].items():
        for face, values in measured.items():
            for key, value in _flat(values):
                lines.append(f"| {name}: {face} {key} | {value:,.2f} |")
    for name, measured in figures["jobs"].items():
        lines.append(f"| job {name}, rows/s | {measured['rows_per_second']:,.1f} |")
        lines.append(f"| job {name}, worker peak memory, MiB | {measured['worker_peak_mib']:,.0f} |")
        lines.append(f"| job {name}, model service peak memory, MiB | {measured['model_peak_mib']:,.0f} |")
    lines += ["", "| ratio | value |", "| --- | --- |"]
    lines += [f"| {name} | {value:.2f} |" for name, value in figures["ratios"].items()]
    return "\n".join(lines) + "\n"


def _flat(values: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, float]]:
    for key, value in values.items():
        if isinstance(value, dict):
            yield from _flat(value, f"{prefix}{key} ")
        else:
            yield f"{prefix}{key}", float(value)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (the median is kept)")
    parser.add_argument("--seconds", type=int, default=5, help="seconds per wrk run")
    parser.add_argument(
        "--job-rows",
        type=lambda text: [int(part) for part in text.split(",")],
        default=[10000, 200000],
        help="rows of the batch jobs, comma-separated (memory is compared between the smallest and largest)",
    )
    parser.add_argument(
        "--flags", action="append", default=[], help="another flag set to measure, as JSON (repeat)"
    )
    parser.add_argument("--output", type=Path, default=OUTPUT, help="where bench.json and bench.md go")
    return parser.parse_args()


def main() -> None:
    """Measure, print the tables, write test-output/bench.json and bench.md."""
    args = _arguments()
    load.wrk_path()
    settings = load_settings(Settings)
    pipeline = import_pipeline(settings.pipeline)
    inputs = varied_inputs(pipeline)
    if not inputs:
        raise SystemExit(f"error: pipeline {pipeline.name} has no named examples to measure with")
    artifacts = settings.artifacts_dir.resolve()
    loaded = pipeline.load(artifacts / pipeline.name)
    flag_sets = {"default flags": {}} | {text: json.loads(text) for text in args.flags}
    figures: dict[str, Any] = {
        "pipeline": pipeline.name,
        "version": loaded.version,
        "machine": f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        + subprocess.run([load.wrk_path(), "--version"], capture_output=True, text=True).stdout.split(" [")[
            0
        ],
        "runs": args.runs,
        "flag_sets": {},
    }
    # the model service as `just up` runs it: the configured artifacts and processes
    model_env = {"MODEL_ARTIFACTS_DIR": str(artifacts), "MODEL_WORKERS": str(settings.workers)}
    figures["model_workers"] = settings.workers
    figures["start_seconds"] = start_seconds(model_env, args.runs)
    figures["start_seconds_one_process"] = start_seconds(model_env | {"MODEL_WORKERS": "1"}, args.runs)
    figures["load_alone_seconds"] = load_alone_seconds(settings.pipeline, artifacts, args.runs)
    with tempfile.TemporaryDirectory() as folder, services(model_env, Path(folder)) as stack:
        for name, flags in flag_sets.items():
            figures["flag_sets"][name] = {
                "in_process": in_process(loaded, inputs, flags, args.runs),
                "model": http(stack["model"].url, inputs, flags, args),
                "gateway": http(stack["gateway"].url, inputs, flags, args, **{"X-API-Key": KEY}),
            }
        # the gateway against a bare proxy in front of the same model service, in paired rounds
        figures["hops"] = hop_bound.paired_hops(
            stack, Path(folder), load.bodies(inputs, {}), args.runs, args.seconds, KEY
        )
        compare = flag_sets[args.flags[0]] if args.flags else None
        figures["job_sizes"] = {
            f"{rows} rows{', compared' if other else ''}": (rows, other is not None)
            for rows in args.job_rows
            for other in ([None, compare] if compare else [None])
        }
        jobs = {name: compare if compared else None for name, (_, compared) in figures["job_sizes"].items()}
        figures["jobs"] = {
            name: job(stack, inputs, rows, {}, jobs[name]) for name, (rows, _) in figures["job_sizes"].items()
        }
    # the in-process rate depends on the flag sets only, not on the job's size: measured once for each
    rates = {
        compared: _in_process_job(loaded, inputs, compare if compared else None, args.runs)
        for compared in {compared for _, compared in figures["job_sizes"].values()}
    }
    figures["jobs_in_process"] = {
        name: rates[compared] for name, (_, compared) in figures["job_sizes"].items()
    }
    with model_service(free_port(), **model_env, MODEL_BATCHING="false") as unbatched:
        for name, flags in flag_sets.items():
            figures["flag_sets"][name]["model_unbatched"] = {
                f"c{CONCURRENCY}": http(unbatched.url, inputs, flags, args)[f"c{CONCURRENCY}"]
            }
    # the champion alone and with a challenger loaded beside it (docs/versions.md)
    cost = versions.challenger_cost(
        pipeline, artifacts / pipeline.name, model_env, lambda url: http(url, inputs, {}, args)
    )
    figures |= {"challenger": cost} if cost else {}
    figures["ratios"] = ratios(figures) | (versions.ratios(cost, CONCURRENCY) if cost else {})
    # the caller's cost of shadow traffic at rates 0, 1 and 0.1 (docs/versions.md#shadow-traffic)
    if found := shadow.shadow_cost(
        pipeline, artifacts / pipeline.name, model_env, inputs, args.runs, args.seconds
    ):
        plain = figures["flag_sets"]["default flags"]["gateway"]
        figures["shadow"], figures["ratios"] = found, figures["ratios"] | shadow.ratios(found, plain)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "bench.json").write_text(json.dumps(figures, indent=2) + "\n")
    (args.output / "bench.md").write_text(markdown(figures))
    print(markdown(figures))


def _in_process_job(
    loaded: LoadedPipeline[Any, Any, Any], inputs: list[Any], compare: dict[str, Any] | None, runs: int
) -> float:
    """In-process rows/s at the job's chunk size: one run per chunk, two when comparing."""
    plain = in_process(loaded, inputs, {}, runs)[f"rows_per_second_{CHUNK}"]
    if compare is None:
        return plain
    other = in_process(loaded, inputs, compare, runs)[f"rows_per_second_{CHUNK}"]
    return 1 / (1 / plain + 1 / other)


if __name__ == "__main__":
    main()
