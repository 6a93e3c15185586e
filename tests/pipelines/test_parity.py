"""One pipeline, the same outputs from every face, for inputs generated from its own schemas.

hypothesis-jsonschema draws inputs and flags from the configured pipeline's input and
flags schemas; the command line, the model service, the gateway and a batch job must
each give exactly what the pipeline gives in-process. Run for the example and for the
rich test pipeline (enums, optional fields, lists, nested and dict outputs, sparse rows).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import from_schema

from onepipe import LoadedPipeline
from onepipe_harness.processes import ROOT, RedisServer, ServiceProcess
from tests import rich_pipeline
from tests.conftest import EXAMPLE_ARTIFACTS, RICH_PIPELINE
from tests.stacks import Stack, as_key, stack

# per pipeline: each runs the command line and a batch job, a few seconds each (PARITY_EXAMPLES: more)
EXAMPLES = int(os.environ.get("PARITY_EXAMPLES", "8"))
MAX_INPUTS = 5


@dataclass
class Faces:
    """A pipeline in-process, and the environment and stack that serve it."""

    loaded: LoadedPipeline[Any, Any, Any]
    env: dict[str, str]  # what the command line needs to load the same pipeline
    stack: Stack


@pytest.fixture(scope="module", params=["example", "rich"])
def faces(
    request: pytest.FixtureRequest,
    redis_server: RedisServer,
    example_pipeline: LoadedPipeline[Any, Any, Any],
    example_service: ServiceProcess,
    rich_artifacts: Path,
    rich_service: ServiceProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Faces]:
    if request.param == "example":
        loaded, service, env = (
            example_pipeline,
            example_service,
            {"MODEL_ARTIFACTS_DIR": str(EXAMPLE_ARTIFACTS.parent)},
        )
        database = 5
    else:
        loaded = rich_pipeline.pipeline.load(rich_artifacts)
        service, database = rich_service, 6
        env = {"MODEL_PIPELINE": RICH_PIPELINE, "MODEL_ARTIFACTS_DIR": str(rich_artifacts.parent)}
    tmp = tmp_path_factory.mktemp(f"parity-{request.param}")
    unlimited = "100000/minute"
    with stack(
        service.url, tmp, redis_server.url(database), GATEWAY_RATE_LIMIT=unlimited, WORKER_CHUNK_SIZE="100"
    ) as started:
        yield Faces(loaded, env, started)


def _objects(schema: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """The JSON objects an object schema allows."""
    return cast("st.SearchStrategy[dict[str, Any]]", from_schema(schema))


def _cli(faces: Faces, inputs: list[dict[str, Any]], flags: dict[str, Any]) -> list[Any]:
    """`model-service predict - --json` with the inputs on stdin and each flag as name=value."""
    pairs = [
        f"{name}={value if isinstance(value, str) else json.dumps(value)}" for name, value in flags.items()
    ]
    done = subprocess.run(
        ["uv", "run", "--frozen", "--no-sync", "model-service", "predict", "-", "--json"]
        + [arg for pair in pairs for arg in ("--flag", pair)],
        input=json.dumps(inputs, ensure_ascii=False),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), **faces.env},
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout)["outputs"])


def _http(url: str, inputs: list[dict[str, Any]], flags: dict[str, Any], **headers: str) -> list[Any]:
    answer = httpx.post(
        url + "/v1/predict", json={"inputs": inputs, "flags": flags}, headers=headers, timeout=60
    )
    assert answer.status_code == 200, answer.text
    return list(answer.json()["outputs"])


def _batch_job(
    faces: Faces, inputs: list[dict[str, Any]], flags: dict[str, Any], like: list[Any]
) -> list[Any]:
    """The inputs as a JSONL file through a batch job; the outputs read back from its JSONL report.

    The report writes a nested field (a list or an object) as JSON text: read back as JSON
    wherever the expected output, `like`, holds one.
    """
    lines = "".join(json.dumps(item, ensure_ascii=False) + "\n" for item in inputs)
    submitted = faces.stack.submit("generated.jsonl", lines.encode(), flags=flags)
    assert submitted.status_code == 202, submitted.text
    job = faces.stack.wait(submitted.json()["id"])
    assert job["state"] == "succeeded" and job["rows_failed"] == 0, job
    records = [json.loads(line) for line in faces.stack.report(job, "jsonl").decode().splitlines()]
    assert [r["row"] for r in records] == list(range(1, len(inputs) + 1))
    return [
        {
            name: json.loads(record[f"output.{name}"])
            if isinstance(value, dict | list)
            else record[f"output.{name}"]
            for name, value in expected.items()
        }
        for record, expected in zip(records, like, strict=True)
    ]


# no shrinking: each example starts processes, and a failure is read as it was drawn
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=st.data())
def test_every_face_gives_the_in_process_outputs_for_generated_inputs(
    faces: Faces, data: st.DataObject
) -> None:
    info = faces.loaded.describe()
    # only the fields the schema names: every face ignores other keys, but a batch file keeps
    # them as columns of its own (and refuses a column with no name)
    named = {**info.input_schema, "additionalProperties": False}
    inputs = data.draw(st.lists(_objects(named), min_size=1, max_size=MAX_INPUTS), label="inputs")
    flags = data.draw(_objects(info.flags_schema), label="flags")
    expected = [o.model_dump(mode="json") for o in faces.loaded.run(inputs, flags).outputs]
    started = faces.stack
    assert _cli(faces, inputs, flags) == expected, "command line"
    assert _http(started.model_url, inputs, flags) == expected, "model service"
    assert _http(started.gateway.url, inputs, flags, **as_key("reviewer")) == expected, "gateway"
    assert _batch_job(faces, inputs, flags, like=expected) == expected, "batch job"
