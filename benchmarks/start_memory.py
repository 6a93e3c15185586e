"""The model service's start with several processes, and each process's resident and proportional memory.

Starts the model service as `just up` does (`MODEL_WORKERS`, 2 by default; no registry unless
`--registry`), times launch to `/readyz` 200, sends every named example under each classifier so
that both variants' code and models are touched, then reads RSS and PSS of every process of its
session from /proc/PID/smaps_rollup. Beside it, a fresh process importing and loading the pipeline
alone (the floor of any start). Median of `--runs`; prints a table and writes JSON.

    uv run --frozen --no-sync python -m benchmarks.start_memory --runs 3 [--registry] [--output FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from benchmarks.memory import session_processes
from benchmarks.throughput import load_alone_seconds
from model_service.settings import Settings
from onepipe.platform.loading import import_pipeline
from onepipe.platform.settings import load_settings
from onepipe_harness.processes import free_port, model_service

MIB = 2**20


def _role(process: dict[str, Any], session: int, parent: int | None) -> str:
    if process["pid"] == session:
        return "uv run"
    if process["parent"] == session:
        return "parent"
    helper = "resource_tracker" in str(process["command"])  # multiprocessing's, beside spawned workers
    return "worker" if process["parent"] == parent and not helper else "other"


def once(env: dict[str, str], inputs: list[Any], flag_sets: list[dict[str, Any]]) -> dict[str, Any]:
    """One start: seconds to ready, then each process's memory after both variants answered."""
    started = time.monotonic()
    with model_service(free_port(), **env) as service:
        seconds = time.monotonic() - started
        for flags in flag_sets:
            for _ in range(2):  # both processes answer, whichever takes the connection
                answer = httpx.post(service.url + "/v1/predict", json={"inputs": inputs, "flags": flags})
                answer.raise_for_status()
        assert service.process is not None
        session = service.process.pid
        processes = session_processes(session)
        parent = next((p["pid"] for p in processes if p["parent"] == session), None)
        memory: dict[str, list[dict[str, float]]] = {}
        for process in processes:
            role = _role(process, session, parent)
            memory.setdefault(role, []).append(
                {"rss_mib": int(process["rss"]) / MIB, "pss_mib": int(process["pss"]) / MIB}
            )
    return {"start_seconds": seconds, "memory": memory}


def _median_memory(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per role, the median over runs of each process's mean and of the role's sum."""
    found: dict[str, dict[str, float]] = {}
    for role in runs[0]["memory"]:
        present = [run["memory"][role] for run in runs if role in run["memory"]]
        found[role] = {
            "processes": len(present[0]),
            "rss_mib_each": statistics.median(statistics.mean(p["rss_mib"] for p in r) for r in present),
            "pss_mib_each": statistics.median(statistics.mean(p["pss_mib"] for p in r) for r in present),
            "pss_mib_sum": statistics.median(sum(p["pss_mib"] for p in r) for r in present),
        }
    return found


def main() -> None:
    """Measure `--runs` starts, print the medians, write them as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--registry", action="store_true", help="serve from a fresh embedded registry")
    parser.add_argument("--output", type=Path, default=Path("test-output/start-memory.json"))
    args = parser.parse_args()
    settings = load_settings(Settings)
    pipeline = import_pipeline(settings.pipeline)
    inputs = [example.model_dump(mode="json") for example in pipeline.examples.values()]
    flag_sets: list[dict[str, Any]] = [{}, *_variant_flags(pipeline)]
    artifacts = settings.artifacts_dir.resolve()
    env = {"MODEL_ARTIFACTS_DIR": str(artifacts), "MODEL_WORKERS": str(settings.workers)}
    runs = []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as folder:
            extra = (
                {"MODEL_REGISTRY": f"{folder}/registry", "MODEL_VERSIONS_CACHE": f"{folder}/versions"}
                if args.registry
                else {}
            )
            runs.append(once(env | extra, inputs, flag_sets))
    alone = load_alone_seconds(settings.pipeline, artifacts, args.runs)
    start = statistics.median(run["start_seconds"] for run in runs)
    result = {
        "workers": settings.workers,
        "registry": args.registry,
        "runs": args.runs,
        "start_seconds": start,
        "start_seconds_each": [run["start_seconds"] for run in runs],
        "load_alone_seconds": alone,
        "start_over_load_alone": start / alone,
        "memory": _median_memory(runs),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"start {start:.2f} s (each {', '.join(f'{s:.2f}' for s in result['start_seconds_each'])}); "
        f"import and load alone {alone:.2f} s; ratio {start / alone:.2f}"
    )
    for role, figures in result["memory"].items():
        print(
            f"{role}: {figures['processes']:.0f} process(es), RSS {figures['rss_mib_each']:.0f} MiB each, "
            f"PSS {figures['pss_mib_each']:.0f} MiB each, {figures['pss_mib_sum']:.0f} MiB together"
        )


def _variant_flags(pipeline: Any) -> list[dict[str, Any]]:
    """The example's other classifier (and retriever), when the flags model has them."""
    fields = pipeline.flags_model.model_fields
    if "classifier" in fields:
        return [{"classifier": "minilm"} | ({"retriever": "embedding"} if "retriever" in fields else {})]
    return []


if __name__ == "__main__":
    main()
