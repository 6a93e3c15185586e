"""Edge-case libraries for tests: two cases of the example for tests with two versions (v1 TF-IDF, v2
MiniLM); the tiny pipeline's with a must-pass case it breaks, and a gateway to read them through."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from onepipe import LoadedPipeline
from onepipe.platform.cases import Case, read_cases, write_cases
from onepipe.platform.versions.evidence import candidate_of
from onepipe.platform.versions.library import LibraryReplay, replay_library
from onepipe_harness.processes import ROOT, ServiceProcess, free_port, gateway
from review_triage.pipeline import pipeline as example
from tests.stacks import keys_env

MINILM = {"classifier": "minilm"}
MUST_PASS = "case-b8dfb86b0e47"  # plain praise: the TF-IDF champion gets it right, MiniLM does not
FIXED = "case-addb37d65ea9"  # "not bad" is praise: MiniLM gets it right, TF-IDF does not


def two_case_library(folder: Path, must_pass: bool = True) -> Path:
    """Two cases of the example's library: one the challenger breaks (marked must-pass or not), one it
    fixes."""
    lines = (ROOT / "cases" / f"{example.name}.jsonl").read_text().splitlines()
    chosen = [json.loads(line) for line in lines if f'"{MUST_PASS}"' in line or f'"{FIXED}"' in line]
    for case in chosen:
        case["must_pass"] = must_pass and case["id"] == MUST_PASS
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{example.name}.jsonl").write_text("".join(json.dumps(case) + "\n" for case in chosen))
    return folder


# -- the library on the champion (GET /v1/cases/library, the UI's Cases page) ---------------------

TINY = "tests.tiny_pipeline:pipeline"
TINY_LIBRARY = ROOT / "tests" / "tiny_pipeline" / "cases.jsonl"
# a must-pass case the tiny pipeline answers otherwise: it adds an offset of 0.5
BROKEN = Case(
    input={"values": [1], "unit": "kg"},
    expected={"value": 1.0},
    note="a person forgets the offset",
    source="reviewer",
    must_pass=True,
)


def tiny_library_broken(folder: Path) -> Path:
    """The tiny pipeline's shipped library and BROKEN, in `folder` (for MODEL_CASES_DIR)."""
    write_cases(folder / "tiny.jsonl", [*read_cases(TINY_LIBRARY), BROKEN])
    return folder


def library_gateway(model_url: str, storage: Path, redis: str) -> ServiceProcess:
    """A gateway alone (no worker: the library and the reported cases need none), with the run's keys."""
    return gateway(
        free_port(), model_url, GATEWAY_API_KEYS=keys_env(), STORAGE_URL=str(storage), REDIS_URL=redis
    )


def replayed_in_process(loaded: LoadedPipeline[Any, Any, Any], cases: list[Case]) -> LibraryReplay:
    """The library replayed directly through the pipeline, as the gateway and the UI must show it."""
    return replay_library(candidate_of("champion", loaded, None, {}), cases)
