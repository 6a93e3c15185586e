"""The stack every benchmark measures: its services as `just up` starts them, its key, its inputs."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from gateway.auth import hash_key
from onepipe import Pipeline
from onepipe.platform.versions.evidence import held_out_of
from onepipe_harness.processes import RedisServer, ServiceProcess, free_port, gateway, model_service, worker

KEY = "bench-" + os.urandom(8).hex()
VARIED = 32  # distinct inputs the load cycles through


@contextmanager
def services(model_env: dict[str, str], folder: Path) -> Iterator[dict[str, ServiceProcess]]:
    """A private Redis, the model service, the gateway and a worker, as `just up` starts them."""
    with ExitStack() as stack:
        redis = RedisServer(folder)
        stack.callback(redis.stop)
        keys = json.dumps([{"name": "bench", "sha256": hash_key(KEY), "scopes": ["predict", "jobs"]}])
        shared = {"REDIS_URL": redis.url(0), "STORAGE_URL": str(folder / "storage")}
        model = stack.enter_context(model_service(free_port(), **model_env))
        front = stack.enter_context(
            gateway(
                free_port(), model.url, GATEWAY_API_KEYS=keys, GATEWAY_RATE_LIMIT="10000000/minute", **shared
            )
        )
        batch = stack.enter_context(worker(MODEL_URL=model.url, **shared))
        yield {"model": model, "gateway": front, "worker": batch}


def session_of(service: ServiceProcess) -> int:
    """The id of a service's session: its pid, as each service starts a session of its own."""
    assert service.process is not None
    return service.process.pid


def varied_inputs(pipeline: Pipeline[Any, Any, Any]) -> list[dict[str, Any]]:
    """The named examples, then held-out inputs spread over the set, VARIED in all (fewer without).

    Varied lengths, not one input repeated: a batch of copies pads nothing and makes
    in-process batches unrealistically cheap.
    """
    inputs = [example.model_dump(mode="json") for example in pipeline.examples.values()][:VARIED]
    held = [item for item, _ in held_out_of(pipeline) or []]
    wanted = VARIED - len(inputs)
    if held and wanted > 0:
        inputs += held[:: max(1, len(held) // wanted)][:wanted]
    return inputs
