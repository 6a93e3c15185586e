"""`just bench`: model-service throughput as ratios to the in-process pipeline, measured in one run.

For whatever pipeline the model service is configured with (MODEL_PIPELINE, its
artifacts under MODEL_ARTIFACTS_DIR): the rows are its named examples, repeated.
Figures: rows per second for the pipeline in-process (one row per call, and 32
per call), and over HTTP to a real model service process (sequential single
requests; 64 concurrent single requests with micro-batching on and off).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from model_service.settings import Settings  # noqa: E402
from onepipe.client import AsyncModelServiceClient, ModelServiceClient  # noqa: E402
from onepipe.loading import import_pipeline  # noqa: E402
from onepipe.settings import load_settings  # noqa: E402
from tests.processes import OUTPUT, free_port, model_service  # noqa: E402

ROWS = int(os.environ.get("BENCH_ROWS", "512"))
CONCURRENCY = 64


def _rate(rows: int, work: Callable[[], Any]) -> float:
    start = time.perf_counter()
    work()
    return rows / (time.perf_counter() - start)


def _sequential(client: ModelServiceClient, inputs: list[dict[str, Any]]) -> float:
    return _rate(len(inputs), lambda: [client.predict([item]) for item in inputs])


async def _concurrent(url: str, inputs: list[dict[str, Any]]) -> None:
    gate = asyncio.Semaphore(CONCURRENCY)
    async with AsyncModelServiceClient(url, timeout=120) as client:

        async def one(item: dict[str, Any]) -> None:
            async with gate:
                await client.predict([item])

        await asyncio.gather(*(one(item) for item in inputs))


def main() -> None:
    """Measure and print the table; also saved to test-output/bench.json."""
    console = Console()
    settings = load_settings(Settings)
    pipeline = import_pipeline(settings.pipeline)
    examples = [example.model_dump(mode="json") for example in pipeline.examples.values()]
    if not examples:
        raise SystemExit(f"error: pipeline {pipeline.name} has no named examples to measure with")
    inputs: list[dict[str, Any]] = [examples[n % len(examples)] for n in range(ROWS)]
    artifacts = settings.artifacts_dir.resolve()
    loaded = pipeline.load(artifacts / pipeline.name)
    loaded.run(inputs[:8])  # warm-up

    figures: dict[str, float] = {}
    figures["in-process, 1 row per call"] = _rate(len(inputs), lambda: [loaded.run([i]) for i in inputs])
    figures["in-process, 32 rows per call"] = _rate(
        len(inputs), lambda: [loaded.run(inputs[k : k + 32]) for k in range(0, len(inputs), 32)]
    )
    for batching in ("true", "false"):
        label = "on" if batching == "true" else "off"
        with model_service(
            free_port(), MODEL_ARTIFACTS_DIR=str(artifacts), MODEL_BATCHING=batching
        ) as served:
            with ModelServiceClient(served.url, timeout=120) as client:
                client.predict(inputs[:8])
                if batching == "true":
                    figures["HTTP, sequential single requests"] = _sequential(client, inputs)
            figures[f"HTTP, {CONCURRENCY} concurrent single requests, batching {label}"] = _rate(
                len(inputs), partial(asyncio.run, _concurrent(served.url, inputs))
            )

    base = figures["in-process, 1 row per call"]
    table = Table(
        title=f"{pipeline.name}: model service throughput, {len(inputs)} rows "
        f"({len(examples)} examples), {os.cpu_count()} cores"
    )
    table.add_column("how")
    table.add_column("rows/s", justify="right")
    table.add_column("ratio to in-process, 1 row per call", justify="right")
    for name, rate in figures.items():
        table.add_row(name, f"{rate:.0f}", f"{rate / base:.2f}")
    console.print(table)
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "bench.json").write_text(
        json.dumps({"pipeline": pipeline.name, "rows": len(inputs), "rows_per_second": figures}, indent=2)
    )


if __name__ == "__main__":
    main()
