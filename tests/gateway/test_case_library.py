"""GET /v1/cases/library: the edge-case library, each case answered by the champion now, through a real
gateway in front of a real model service; the answers equal the library replayed in-process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from onepipe import LoadedPipeline
from onepipe.platform.cases import read_cases
from onepipe.platform.versions.library import LibraryReplay
from onepipe_harness.processes import ROOT, RedisServer, ServiceProcess, free_port, model_service
from review_triage.pipeline import pipeline as example
from tests.case_library import BROKEN, TINY, library_gateway, replayed_in_process, tiny_library_broken
from tests.stacks import PROBLEM, as_key

LIBRARY = ROOT / "cases" / "review-triage.jsonl"


@pytest.fixture(scope="module")
def example_gateway(
    example_service: ServiceProcess, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceProcess]:
    tmp = tmp_path_factory.mktemp("library")
    with library_gateway(example_service.url, tmp, redis_server.url(1)) as front:
        yield front


@pytest.fixture(scope="module")
def tiny_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny pipeline's library with a must-pass case it answers wrongly, in a folder of its own."""
    return tiny_library_broken(tmp_path_factory.mktemp("tiny-cases"))


@pytest.fixture(scope="module")
def tiny_gateway(
    tiny_artifacts: Path,
    tiny_library: Path,
    redis_server: RedisServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServiceProcess]:
    env = {
        "MODEL_PIPELINE": TINY,
        "MODEL_ARTIFACTS_DIR": str(tiny_artifacts.parent),
        "MODEL_CASES_DIR": str(tiny_library),
    }
    tmp = tmp_path_factory.mktemp("tiny")
    with (
        model_service(free_port(), **env) as service,
        library_gateway(service.url, tmp, redis_server.url(1)) as front,
    ):
        yield front


def library_of(front: ServiceProcess, key: str = "reviewer") -> httpx.Response:
    return httpx.get(front.url + "/v1/cases/library", headers=as_key(key), timeout=60)


def judged(replay: LibraryReplay) -> list[tuple[Any, ...]]:
    """What must be equal whichever face replayed it: each case, its answer and its verdict."""
    return [
        (c.id, c.input, c.flags, c.expected, c.must_pass, c.answer, c.right, c.wrong) for c in replay.cases
    ]


def test_every_case_of_the_example_is_answered_by_the_champion_as_replayed_in_process(
    example_gateway: ServiceProcess, example_pipeline: LoadedPipeline[Any, Any, Any]
) -> None:
    assert library_of(example_gateway).status_code == 200  # the first answer warms MiniLM up
    started = time.perf_counter()
    answered = library_of(example_gateway)
    took = time.perf_counter() - started
    assert answered.status_code == 200, answered.text
    shown = LibraryReplay.model_validate(answered.json())
    expected = replayed_in_process(example_pipeline, read_cases(LIBRARY))
    assert (shown.pipeline, shown.label) == ("review-triage", "champion")
    assert shown.version == example_pipeline.version
    assert (shown.total, shown.right, shown.must_pass, shown.must_pass_wrong) == (
        expected.total,
        expected.right,
        expected.must_pass,
        expected.must_pass_wrong,
    )
    assert shown.total == 53 and shown.must_pass == 6
    assert judged(shown) == judged(expected)
    assert all(case.error is None for case in shown.cases)
    assert took < 3.0, f"53 cases took {took:.2f} s"
    # a key's name stays in the repo's file: the library shows where a case came from, not who sent it
    assert "reported_by" not in answered.json()["cases"][0]


def test_the_library_takes_the_scope_that_reports_cases(example_gateway: ServiceProcess) -> None:
    assert library_of(example_gateway, "curator").status_code == 200  # cases:admin
    assert library_of(example_gateway, "admin").status_code == 200
    for key in ("other", "app"):  # jobs alone, predict alone
        refused = library_of(example_gateway, key)
        assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
        assert "lacks the 'feedback' or 'cases:admin' scope" in refused.json()["detail"]
    unknown = httpx.get(example_gateway.url + "/v1/cases/library", headers={"X-API-Key": "nope"})
    assert unknown.status_code == 401 and unknown.headers["content-type"] == PROBLEM


def test_a_must_pass_case_the_champion_breaks_is_wrong_must_pass_and_counted(
    tiny_gateway: ServiceProcess, tiny: LoadedPipeline[Any, Any, Any], tiny_library: Path
) -> None:
    answered = library_of(tiny_gateway)
    assert answered.status_code == 200, answered.text
    shown = LibraryReplay.model_validate(answered.json())
    expected = replayed_in_process(tiny, read_cases(tiny_library / "tiny.jsonl"))
    assert judged(shown) == judged(expected)
    broken = next(case for case in shown.cases if case.id == BROKEN.id)
    assert (broken.must_pass, broken.right, broken.wrong) == (True, False, ["value"])
    assert broken.answer is not None and broken.answer["value"] == 1.5
    assert (shown.must_pass_wrong, shown.total - shown.right) == (1, 2)  # and one wrong on purpose


def test_the_openapi_document_types_the_library_by_the_pipelines_schemas(
    example_gateway: ServiceProcess,
) -> None:
    document = httpx.get(example_gateway.url + "/openapi.json").json()
    operation = document["paths"]["/v1/cases/library"]["get"]
    assert {"401", "403", "429", "503"} <= set(operation["responses"])
    case = document["components"]["schemas"]["LibraryCase"]["properties"]
    components = document["components"]["schemas"]
    predict = components["PublicPredictRequest"]["properties"]
    named = {  # as predict is typed: by the pipeline's own schemas
        "input": predict["inputs"]["oneOf"][0]["$ref"],
        "flags": predict["flags"]["allOf"][0]["$ref"],
        "output": components["PredictResponse"]["properties"]["outputs"]["items"]["$ref"],
    }
    refs = {name: case[name]["allOf"][0]["$ref"] for name in ("input", "flags")}
    assert refs == {"input": named["input"], "flags": named["flags"]}
    assert case["answer"]["anyOf"][0] == {"$ref": named["output"]}
    info = example.describe("")
    assert components[named["input"].rsplit("/", 1)[1]]["properties"] == info.input_schema["properties"]
    assert case["expected"]["additionalProperties"] is False
    assert set(case["expected"]["properties"]) == set(info.output_schema["properties"])


def test_a_model_service_down_is_a_503_problem_in_one_sentence(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    front = library_gateway(f"http://127.0.0.1:{free_port()}", tmp_path, redis_server.url(1))
    front.start()
    try:
        front.wait_ready("/healthz")  # alive; not ready without its model service
        answered = library_of(front)
    finally:
        front.stop()
    assert answered.status_code == 503 and answered.headers["content-type"] == PROBLEM
    assert answered.headers["retry-after"] == "5"
    assert answered.json()["detail"] == (
        "the model service is unavailable (down, starting or overloaded); retry later"
    )
