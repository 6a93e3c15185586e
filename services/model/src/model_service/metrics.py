"""The model service's own Prometheus metrics (HTTP metrics live in onepipe.platform.http.server)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

PIPELINE_CALLS = Counter("pipeline_calls_total", "Pipeline runs (one per micro-batch)")
BATCH_INPUTS = Histogram(
    "pipeline_batch_inputs",
    "Inputs per pipeline run",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
)
BATCH_REQUESTS = Histogram(
    "pipeline_batch_requests",
    "Requests gathered into one pipeline run",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
STEP_SECONDS = Histogram(
    "pipeline_step_seconds",
    "Time of each pipeline step per run",
    ["step"],
    buckets=(0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
