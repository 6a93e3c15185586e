"""The command-line face, run as a real process: `model-service predict` and its errors."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from onepipe import LoadedPipeline
from onepipe_harness.processes import ROOT
from review_triage.pipeline import pipeline as example
from tests.pipelines.test_review_triage_pipeline import STEPS


def _predict(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["uv", "run", "--frozen", "model-service", "predict", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={"COLUMNS": "200", "PATH": _path()},
    )


def _path() -> str:
    import os

    return os.environ["PATH"]


def test_predict_json_equals_the_in_process_pipeline(
    example_pipeline: LoadedPipeline[Any, Any, Any],
) -> None:
    text = example.examples["rotten review"].text
    done = _predict(
        json.dumps({"text": text}),
        "--flag",
        "classifier=minilm",
        "--flag",
        "neighbours=2",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    expected = example_pipeline.run([{"text": text}], {"classifier": "minilm", "neighbours": 2})
    assert printed["outputs"] == [o.model_dump(mode="json") for o in expected.outputs]
    assert printed["version"] == example_pipeline.version


def test_predict_debug_shows_every_step_with_its_time_and_detail(
    example_pipeline: LoadedPipeline[Any, Any, Any],
) -> None:
    done = _predict("--example", "known snippet", "--debug")
    assert done.returncode == 0, done.stderr
    for number, name in enumerate(STEPS, start=1):
        assert f"{number}. {name}" in done.stdout
    assert "ms (batch of 1)" in done.stdout
    assert "top_terms" in done.stdout and "confirmed" in done.stdout and "query_terms" in done.stdout
    assert "embeddings: not needed with these flags" in done.stdout


def test_predict_errors_name_the_problem(example_pipeline: LoadedPipeline[Any, Any, Any]) -> None:
    bad_flag = _predict('{"text": "fine"}', "--flag", "clasifier=minilm")
    assert bad_flag.returncode == 2 and "flags.clasifier: unknown flag" in bad_flag.stderr
    bad_json = _predict("{text: oops}")
    assert bad_json.returncode == 2 and "not valid JSON" in bad_json.stderr
    too_long = _predict(json.dumps({"text": "x" * 5001}))
    assert too_long.returncode == 2 and "inputs[0].text: String should have at most 5000" in too_long.stderr
    no_example = _predict("--example", "nope")
    assert no_example.returncode == 2 and "examples: fresh review" in no_example.stderr
