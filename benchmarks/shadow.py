"""The caller's cost of shadow traffic: the gateway with GATEWAY_SHADOW_RATE 0, 1 and 0.1, in one run.

One model service serves a champion and a challenger from an embedded registry; three gateways (each
with its rate, the same private Redis for the record, each its own database) run side by side and
are measured in turn, round after round, each round in another order, with the shadow calls of one
settled (its record still) before the next is measured. A rate's cost is the median over rounds of
its difference from shadow off in the same round: this machine's drift (±1 ms at c1 from one minute
to the next) would swamp the 0.3 ms asked if each gateway were measured in one block.

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
import time
from contextlib import ExitStack
from pathlib import Path
from statistics import median
from typing import Any

import httpx

from benchmarks import load
from benchmarks.versions import other_default
from gateway.auth import hash_key
from onepipe import Pipeline
from onepipe.platform.versions.registry import Registry
from onepipe_harness.processes import RedisServer, free_port, gateway, model_service

RATES = ("0", "1", "0.1")
KEY = "shadow-bench-" + os.urandom(8).hex()
CONCURRENCY = 32  # the bench's loaded figure


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
    rounds: int,
    seconds: int,
) -> dict[str, Any] | None:
    """Each rate's figures (medians over rounds) and costs (paired with shadow off); None when no
    flag default can differ."""
    flags = nudged_default(pipeline)
    if flags is None:
        return None
    keys = json.dumps([{"name": "bench", "sha256": hash_key(KEY), "scopes": ["predict", "versions"]}])
    headers = {"X-API-Key": KEY}
    bodies = load.bodies(inputs, {})
    with tempfile.TemporaryDirectory() as folder, ExitStack() as stack:
        registry = Registry(str(Path(folder, "registry")), Path(folder, "cache"))
        registry.register(pipeline, artifacts, {})
        registry.register(pipeline, artifacts, flags, alias="challenger")
        redis = RedisServer(Path(folder))
        stack.callback(redis.stop)
        env = model_env | {
            "MODEL_REGISTRY": registry.location,
            "MODEL_VERSIONS_CACHE": str(Path(folder, "v")),
        }
        service = stack.enter_context(model_service(free_port(), **env))
        expected = _answers(service.url, inputs, {})
        fronts = {
            rate: stack.enter_context(
                gateway(
                    free_port(),
                    service.url,
                    GATEWAY_API_KEYS=keys,
                    GATEWAY_RATE_LIMIT="10000000/minute",
                    GATEWAY_SHADOW_RATE=rate,
                    REDIS_URL=redis.url(database),  # a record of each gateway's own
                    STORAGE_URL=str(Path(folder, "s")),
                )
            ).url
            for database, rate in enumerate(RATES)
        }
        for rate, url in fronts.items():
            if _answers(url, inputs, headers) != expected:
                raise RuntimeError(f"the gateway at shadow rate {rate} changed the champion's answers")
            load.run(url + "/v1/predict", bodies, headers, CONCURRENCY, 1)  # warm-up
            _settle(url, headers)
        measured: dict[str, list[tuple[load.Load, load.Load]]] = {rate: [] for rate in RATES}
        for turn in range(rounds):
            for rate in RATES[turn % len(RATES) :] + RATES[: turn % len(RATES)]:
                target = fronts[rate] + "/v1/predict"
                single = load.run(target, bodies, headers, 1, seconds)
                _settle(fronts[rate], headers)
                loaded = load.run(target, bodies, headers, CONCURRENCY, seconds)
                _settle(fronts[rate], headers)
                measured[rate].append((single, loaded))
        found: dict[str, Any] = {"challenger_flags": flags, "rounds": rounds}
        for rate, url in fronts.items():
            found[f"shadow {rate}"] = _figures(measured[rate], measured[RATES[0]]) | {
                "record": _record(url, headers)
            }
    return found


def _figures(
    runs: list[tuple[load.Load, load.Load]], off: list[tuple[load.Load, load.Load]]
) -> dict[str, Any]:
    """Medians over the rounds, and the median of each round's difference from shadow off."""
    c = f"c{CONCURRENCY}"
    return {
        "c1_p50_ms": median(single.p50_ms for single, _ in runs),
        c: {
            "rows_per_second": median(loaded.requests_per_second for _, loaded in runs),
            "p50_ms": median(loaded.p50_ms for _, loaded in runs),
            "p99_ms": median(loaded.p99_ms for _, loaded in runs),
        },
        "c1_p50_over_off_ms": median(
            mine.p50_ms - base.p50_ms for (mine, _), (base, _) in zip(runs, off, strict=True)
        ),
        f"{c}_rows_per_second_over_off": median(
            mine.requests_per_second / base.requests_per_second
            for (_, mine), (_, base) in zip(runs, off, strict=True)
        ),
    }


def _record(url: str, headers: dict[str, str]) -> dict[str, Any]:
    record = httpx.get(f"{url}/v1/versions/shadow", headers=headers, timeout=60).json()
    return {k: record[k] for k in ("requests", "failed", "skipped", "rows_changed")}


def _settle(url: str, headers: dict[str, str], timeout_s: float = 120) -> None:
    """Wait until the gateway's shadow calls are done: its record unchanged for a second."""
    deadline = time.monotonic() + timeout_s
    last = _record(url, headers)
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = _record(url, headers)
        if now == last:
            return
        last = now
    raise RuntimeError(f"the shadow record of {url} still changed after {timeout_s:.0f} s")


def _answers(url: str, inputs: list[dict[str, Any]], headers: dict[str, str]) -> list[Any]:
    return [
        httpx.post(f"{url}/v1/predict", json={"inputs": [item]}, headers=headers, timeout=60).json()[
            "outputs"
        ]
        for item in inputs
    ]


def ratios(measured: dict[str, Any], plain: dict[str, Any]) -> dict[str, float]:
    """The issue's figures: shadow off over the bench's gateway (`plain`, no challenger) at c1 (ms) and
    at c32; then each rate paired with shadow off in its rounds: c1 p50 (ms) and rows/s at c32."""
    off, every, tenth = (measured[f"shadow {rate}"] for rate in RATES)
    c = f"c{CONCURRENCY}"
    return {
        "shadow off: caller c1 p50 over the gateway without a challenger, ms": off["c1_p50_ms"]
        - plain["c1_p50_ms"],
        f"shadow off: caller rows/s at {c}, over the gateway without a challenger": off[c]["rows_per_second"]
        / plain[c]["rows_per_second"],
        "shadow 1: caller c1 p50 over shadow off (median of paired rounds), ms": every["c1_p50_over_off_ms"],
        f"shadow 0.1: caller rows/s at {c}, with / off (median of paired rounds)": tenth[
            f"{c}_rows_per_second_over_off"
        ],
        f"shadow 1: caller rows/s at {c}, with / off (median of paired rounds)": every[
            f"{c}_rows_per_second_over_off"
        ],
    }
