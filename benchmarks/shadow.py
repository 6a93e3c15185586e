"""The caller's cost of shadow traffic: the gateway with GATEWAY_SHADOW_RATE 0, 1 and 0.1, in one run.

One model service serves a champion and a challenger from an embedded registry; three gateways in
turn (each with its rate, the same private Redis for the record) are measured by the same callers.
The challenger sets a numeric flag's default (the first one, moved within its bounds): other answers
for about the same work, so the figures are what shadowing costs the caller, not the price of a
heavier model on the same two cores (a challenger that costs more takes its share of the CPU: that
is GATEWAY_SHADOW_MAX_IN_FLIGHT's to bound). Each gateway's answers are checked against the
champion's own, and its record read back (requests shadowed, failed, skipped).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from benchmarks.versions import other_default
from gateway.auth import hash_key
from onepipe import Pipeline
from onepipe.platform.versions.registry import Registry
from onepipe_harness.processes import RedisServer, free_port, gateway, model_service

RATES = ("0", "1", "0.1")
KEY = "shadow-bench-" + os.urandom(8).hex()
Measure = Callable[[str, dict[str, str]], dict[str, Any]]  # (url, headers) -> figures


def nudged_default(pipeline: Pipeline[Any, Any, Any]) -> dict[str, Any] | None:
    """The first numeric flag's default moved by one step within its bounds; else another default."""
    defaults = pipeline.flags_model().model_dump(mode="json")
    for name, schema in pipeline.flags_model.model_json_schema().get("properties", {}).items():
        if schema.get("type") in ("integer", "number"):
            step = 1 if schema["type"] == "integer" else 0.05
            high = schema.get("maximum", defaults[name] + step)
            value = defaults[name] + step if defaults[name] + step <= high else defaults[name] - step
            return {name: round(value, 6)}
    return other_default(pipeline)


def shadow_cost(
    pipeline: Pipeline[Any, Any, Any],
    artifacts: Path,
    model_env: dict[str, str],
    inputs: list[dict[str, Any]],
    measure: Measure,
) -> dict[str, Any] | None:
    """The gateway measured at each shadow rate; None when no flag default can differ."""
    flags = nudged_default(pipeline)
    if flags is None:
        return None
    keys = json.dumps([{"name": "bench", "sha256": hash_key(KEY), "scopes": ["predict", "versions"]}])
    headers = {"X-API-Key": KEY}
    with tempfile.TemporaryDirectory() as folder:
        registry = Registry(str(Path(folder, "registry")), Path(folder, "cache"))
        registry.register(pipeline, artifacts, {})
        registry.register(pipeline, artifacts, flags, alias="challenger")
        redis = RedisServer(Path(folder))
        found: dict[str, Any] = {"challenger_flags": flags}
        env = model_env | {
            "MODEL_REGISTRY": registry.location,
            "MODEL_VERSIONS_CACHE": str(Path(folder, "v")),
        }
        try:
            with model_service(free_port(), **env) as service:
                expected = _answers(service.url, inputs, {})
                for database, rate in enumerate(RATES):  # a record of each gateway's own
                    shared = {"REDIS_URL": redis.url(database), "STORAGE_URL": str(Path(folder, "s"))}
                    with gateway(
                        free_port(),
                        service.url,
                        GATEWAY_API_KEYS=keys,
                        GATEWAY_RATE_LIMIT="10000000/minute",
                        GATEWAY_SHADOW_RATE=rate,
                        **shared,
                    ) as front:
                        figures = measure(front.url, headers)
                        if _answers(front.url, inputs, headers) != expected:
                            raise RuntimeError(
                                f"the gateway at shadow rate {rate} changed the champion's answers"
                            )
                        record = httpx.get(
                            f"{front.url}/v1/versions/shadow", headers=headers, timeout=60
                        ).json()
                    figures["record"] = {
                        k: record[k] for k in ("requests", "failed", "skipped", "rows_changed")
                    }
                    found[f"shadow {rate}"] = figures
        finally:
            redis.stop()
    return found


def _answers(url: str, inputs: list[dict[str, Any]], headers: dict[str, str]) -> list[Any]:
    return [
        httpx.post(f"{url}/v1/predict", json={"inputs": [item]}, headers=headers, timeout=60).json()[
            "outputs"
        ]
        for item in inputs
    ]


def ratios(measured: dict[str, Any], concurrency: int, plain: dict[str, Any]) -> dict[str, float]:
    """The issue's figures: shadow off over the bench's gateway (`plain`, no challenger) at c1 (ms) and
    at c`concurrency`; rate 1's c1 p50 over off (ms); rows/s at c`concurrency` at 0.1 and 1 over off."""
    off, every, tenth = (measured[f"shadow {rate}"] for rate in RATES)
    c = f"c{concurrency}"
    return {
        "shadow off: caller c1 p50 over the gateway without a challenger, ms": off["c1_p50_ms"]
        - plain["c1_p50_ms"],
        f"shadow off: caller rows/s at {c}, over the gateway without a challenger": off[c]["rows_per_second"]
        / plain[c]["rows_per_second"],
        "shadow 1: caller c1 p50 over shadow off, ms": every["c1_p50_ms"] - off["c1_p50_ms"],
        f"shadow 0.1: caller rows/s at {c}, with / off": tenth[c]["rows_per_second"]
        / off[c]["rows_per_second"],
        f"shadow 1: caller rows/s at {c}, with / off": every[c]["rows_per_second"]
        / off[c]["rows_per_second"],
    }
