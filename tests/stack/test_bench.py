"""`just bench`, run short: every figure and ratio is written, well formed. No timing is asserted."""

from __future__ import annotations

import json
import math
import os
import subprocess
from pathlib import Path
from typing import Any

from onepipe import LoadedPipeline
from onepipe_harness.processes import ROOT
from tests.conftest import EXAMPLE_ARTIFACTS

BENCH = ["uv", "run", "--frozen", "--no-sync", "python", "-m", "benchmarks.throughput"]
FACES = {"in_process", "model", "gateway", "model_unbatched"}


def test_a_short_bench_writes_every_figure_and_ratio(
    example_pipeline: LoadedPipeline[Any, Any, Any], tmp_path: Path
) -> None:
    done = subprocess.run(
        [*BENCH, "--runs", "1", "--seconds", "1", "--job-rows", "20,40", "--output", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "MODEL_ARTIFACTS_DIR": str(EXAMPLE_ARTIFACTS.parent)},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads((tmp_path / "bench.json").read_text())
    assert figures["pipeline"] == "review-triage" and figures["version"] == example_pipeline.version
    measured = figures["flag_sets"]["default flags"]
    assert set(measured) == FACES
    assert set(measured["in_process"]) == {
        "p50_ms",
        "rows_per_second_1",
        "rows_per_second_32",
        "rows_per_second_100",
    }
    for face in ("model", "gateway"):
        assert set(measured[face]) == {"c1_p50_ms", "c32"}
        assert set(measured[face]["c32"]) == {"rows_per_second", "p50_ms", "p99_ms"}
    assert set(figures["jobs"]) == {"20 rows", "40 rows"}
    for measured_job in figures["jobs"].values():
        assert set(measured_job) == {"rows_per_second", "worker_peak_mib", "model_peak_mib"}
        # a whole Python process with its libraries: tens of MiB at least, never the sampler's zero
        assert measured_job["worker_peak_mib"] > 20 and measured_job["model_peak_mib"] > 20
    # six per flag set, a job's each, the worker's and the model service's memory, four for the
    # start (two processes, one, the pipeline's own import and load, and start over that), and two for
    # the champion with a challenger loaded against alone, and five for shadow traffic (off against the
    # gateway without a challenger at c1 and c32, rate 1 at c1 and c32, rate 0.1 at c32)
    # and three for the hop: the bare proxy against the model service, the gateway against the proxy
    assert len(figures["ratios"]) == 24
    hops = figures["hops"]
    assert hops["rounds"] == 1 and set(hops["paired"]) <= set(figures["ratios"])
    assert set(hops["gateway -> model service"]["cpu_ms_per_request"]) == {"gateway", "model"}
    assert all(
        hops[path]["c32_rows_per_second"] > 0 for path in ("model service", "bare proxy -> model service")
    )
    challenger = figures["challenger"]
    assert challenger["challenger_flags"] == {"classifier": "minilm"}  # the example's first flag, changed
    assert set(challenger) == {"challenger_flags", "champion alone", "champion with a challenger"}
    shadowed = figures["shadow"]
    assert shadowed["challenger_flags"] == {"neighbours": 4}  # the example's first numeric flag, moved
    assert set(shadowed) == {"challenger_flags", "rounds", "shadow 0", "shadow 1", "shadow 0.1"}
    assert shadowed["rounds"] == 1
    # each rate paired with shadow off in the same round: off against itself is exactly no change
    assert shadowed["shadow 0"]["c1_p50_over_off_ms"] == 0
    assert shadowed["shadow 0"]["c32_rows_per_second_over_off"] == 1
    assert shadowed["shadow 0"]["record"]["requests"] == 0 and shadowed["shadow 1"]["record"]["requests"] > 0
    assert figures["start_seconds"] > 0 and figures["load_alone_seconds"] > 0
    assert all(isinstance(v, float) and math.isfinite(v) for v in figures["ratios"].values())
    # ratios are positive; the latency over in-process is a difference, which a short, loaded run may
    # see below zero
    assert all(v > 0 for name, v in figures["ratios"].items() if not name.endswith(", ms"))
    table = (tmp_path / "bench.md").read_text()
    assert all(name in table for name in figures["ratios"])
