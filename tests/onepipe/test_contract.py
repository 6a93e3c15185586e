"""The pipeline contract, exercised through the tiny test pipeline only."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, Field

from onepipe import (
    ArtifactsError,
    LoadedPipeline,
    Pipeline,
    PipelineDefinitionError,
    PipelineInputError,
    Recorder,
    when,
)
from onepipe.contract import cpu_threads
from onepipe.platform.loading import import_pipeline
from tests import tiny_pipeline
from tests.tiny_pipeline import CALLS, Reading, Summary, TinyFlags

Tiny = LoadedPipeline[Any, Any, Any]


def test_runs_a_batch_and_returns_the_output_model(tiny: Tiny) -> None:
    result = tiny.run([{"values": [1, 2, -3, 4], "unit": "kg"}])
    assert result.outputs == [Summary(value=7.5, unit="kg", spread=3.0)]
    assert result.version == tiny.version and len(result.version) == 12
    assert result.traces is None


def test_flags_pick_variants_and_switch_steps_off(tiny: Tiny) -> None:
    reading = {"values": [2, 4], "unit": "m"}
    mean = tiny.run([reading], {"method": "mean", "scale": 2, "with_spread": False}).outputs[0]
    assert mean == Summary(value=(3.0 + 0.5) * 2, unit="m", spread=None)
    assert CALLS.get("combined__sum", 0) == 0 and CALLS.get("spread", 0) == 0


def test_batch_of_n_equals_n_batches_of_one(tiny: Tiny) -> None:
    readings = [{"values": [i, i * 2.5, -1], "unit": f"u{i}"} for i in range(7)]
    for flags in ({}, {"method": "mean"}, {"with_spread": False, "scale": 3}):
        batched = tiny.run(readings, flags).outputs
        one_by_one = [tiny.run([r], flags).outputs[0] for r in readings]
        assert batched == one_by_one


def test_debug_gives_a_trace_per_input_with_every_step(tiny: Tiny) -> None:
    readings = [{"values": [1, -2, 3], "unit": "kg"}, {"values": [5], "unit": "g"}]
    plain = tiny.run(readings, {"method": "mean"})
    debugged = tiny.run(readings, {"method": "mean"}, debug=True)
    assert debugged.outputs == plain.outputs
    assert debugged.traces is not None and len(debugged.traces) == 2
    trace = debugged.traces[0]
    assert [s.name for s in trace.steps] == ["cleaned", "combined", "unused", "spread", "summary"]
    assert trace.step("cleaned").output == [1.0, 3.0]
    assert trace.step("cleaned").debug == {"dropped": 1}
    assert debugged.traces[1].step("cleaned").debug == {"dropped": 0}
    assert trace.step("combined").variant == "mean"
    assert trace.step("combined").output == 2.5
    assert trace.step("unused").status == "not_needed"
    assert trace.step("summary").output == {"value": 2.5, "unit": "kg", "spread": 2.0}
    assert all(s.time_ms >= 0 and s.batch_size == 2 for s in trace.steps)
    assert json.loads(trace.model_dump_json())["pipeline"] == "tiny"
    off = tiny.run(readings, {"with_spread": False}, debug=True).traces
    assert off is not None and off[0].step("spread").status == "off"


def test_debug_off_computes_no_debug_detail(tiny: Tiny) -> None:
    tiny.run([{"values": [1], "unit": "kg"}] * 3)
    assert CALLS["cleaned"] == 1 and "cleaned.debug" not in CALLS
    tiny.run([{"values": [1], "unit": "kg"}], debug=True)
    assert CALLS["cleaned.debug"] == 1


def test_a_step_nothing_needs_never_runs(tiny: Tiny) -> None:
    tiny.run([{"values": [1], "unit": "kg"}], debug=True)
    assert "unused" not in CALLS


@pytest.mark.parametrize(
    ("inputs", "loc", "words"),
    [
        ([], "inputs", "at least one input"),
        ([{"values": [], "unit": "kg"}], "inputs[0].values", "at least 1 item"),
        ([{"values": [1], "unit": ""}], "inputs[0].unit", "at least 1 character"),
        (
            [{"values": [1], "unit": "kg"}, {"values": ["x"], "unit": "kg"}],
            "inputs[1].values[0]",
            "number",
        ),
        ([{"values": [1]}], "inputs[0].unit", "Field required"),
        ([{"values": [1], "unit": "kilograms!!"}], "inputs[0].unit", "at most 10 characters"),
    ],
)
def test_bad_inputs_name_the_field(tiny: Tiny, inputs: list[Any], loc: str, words: str) -> None:
    with pytest.raises(PipelineInputError) as caught:
        tiny.run(inputs)
    problem = caught.value.problems[0]
    assert problem.loc == loc
    assert words in problem.message


def test_a_bad_inputs_index_and_field_are_data_beside_its_loc(tiny: Tiny) -> None:
    with pytest.raises(PipelineInputError) as caught:
        tiny.run([{"values": [1], "unit": "kg"}, {"values": ["x"], "unit": "kg"}, "not an object"])
    found = [(p.loc, p.input, p.field) for p in caught.value.problems]
    assert found == [("inputs[1].values[0]", 1, "values[0]"), ("inputs[2]", 2, None)]
    with pytest.raises(PipelineInputError) as caught:
        tiny.run([{"values": [1], "unit": "kg"}], {"nope": 1})
    assert [(p.loc, p.input, p.field) for p in caught.value.problems] == [("flags.nope", None, None)]


@pytest.mark.parametrize(
    ("flags", "loc", "words"),
    [
        (
            {"mehtod": "sum"},
            "flags.mehtod",
            "unknown flag; known flags: method, scale, with_spread",
        ),
        ({"method": "median"}, "flags.method", "'sum' or 'mean'"),
        ({"scale": "big"}, "flags.scale", "valid number"),
        ({"scale": 1000}, "flags.scale", "less than or equal to 100"),
        ({"with_spread": "perhaps"}, "flags.with_spread", "valid boolean"),
    ],
)
def test_bad_flags_name_the_flag(tiny: Tiny, flags: dict[str, Any], loc: str, words: str) -> None:
    with pytest.raises(PipelineInputError) as caught:
        tiny.run([{"values": [1], "unit": "kg"}], flags)
    assert caught.value.problems[0].loc == loc
    assert words in caught.value.problems[0].message


def test_describe_comes_from_the_models(tiny: Tiny) -> None:
    info = tiny.describe()
    assert info.name == "tiny" and info.version == tiny.version
    assert [s.name for s in info.steps] == ["cleaned", "combined", "unused", "spread", "summary"]
    combined = info.steps[1]
    assert combined.variants == {"sum": {"method": "sum"}, "mean": {"method": "mean"}}
    assert combined.doc.startswith("The values combined")
    assert set(info.input_schema["properties"]) == {"values", "unit"}
    assert info.flags_schema["properties"]["scale"]["description"] == "Multiplier applied to the result."
    assert info.examples == {"three readings": {"values": [1.0, 2.0, 4.0], "unit": "kg"}}


def test_import_pipeline_by_path() -> None:
    assert import_pipeline("tests.tiny_pipeline:pipeline") is tiny_pipeline.pipeline
    with pytest.raises(PipelineDefinitionError, match="must look like"):
        import_pipeline("tests.tiny_pipeline")
    with pytest.raises(PipelineDefinitionError, match="cannot import"):
        import_pipeline("nowhere.at_all:pipeline")
    with pytest.raises(PipelineDefinitionError, match="is not a Pipeline"):
        import_pipeline("tests.tiny_pipeline:CALLS")


# -- artifacts ------------------------------------------------------------------


def test_training_writes_manifest_and_model_card(tiny_artifacts: Path) -> None:
    manifest = json.loads((tiny_artifacts / "manifest.json").read_text())
    assert manifest["pipeline"] == "tiny"
    assert set(manifest["files"]) == {"offset.json"}
    card = (tiny_artifacts / "MODEL_CARD.md").read_text()
    assert "# Model card: tiny" in card and manifest["files"]["offset.json"][:16] in card


def test_missing_artifacts_say_to_train(tmp_path: Path) -> None:
    with pytest.raises(ArtifactsError, match=r"run `just train`"):
        tiny_pipeline.pipeline.load(tmp_path / "nothing-here")


def test_stale_or_damaged_artifacts_say_to_train(tiny_artifacts: Path, tmp_path: Path) -> None:
    stale = tmp_path / "stale"
    shutil.copytree(tiny_artifacts, stale)
    manifest = json.loads((stale / "manifest.json").read_text())
    (stale / "manifest.json").write_text(json.dumps(manifest | {"trainer": "0123456789abcdef"}))
    with pytest.raises(ArtifactsError, match=r"stale.*run `just train`"):
        tiny_pipeline.pipeline.load(stale)

    damaged = tmp_path / "damaged"
    shutil.copytree(tiny_artifacts, damaged)
    (damaged / "offset.json").write_text('{"offset": 99}')
    with pytest.raises(ArtifactsError, match=r"offset.json .*changed since training"):
        tiny_pipeline.pipeline.load(damaged)


def test_failed_training_keeps_the_previous_artifacts(tiny_artifacts: Path, tmp_path: Path) -> None:
    target = tmp_path / "kept"
    shutil.copytree(tiny_artifacts, target)

    def broken(out: Path) -> str:
        (out / "half.bin").write_bytes(b"x")
        raise RuntimeError("out of memory")

    failing = Pipeline(
        name="tiny",
        input_model=Reading,
        output_model=Summary,
        flags_model=TinyFlags,
        steps=tiny_pipeline.pipeline.steps,
        examples={},
        resources=["offset"],
        load_resources=tiny_pipeline.load_resources,
        build_artifacts=broken,
    )
    with pytest.raises(RuntimeError, match="out of memory"):
        failing.train(target)
    assert sorted(p.name for p in target.iterdir()) == [
        "MODEL_CARD.md",
        "manifest.json",
        "offset.json",
    ]
    assert list(tmp_path.glob(".kept-*")) == []


@pytest.mark.parametrize("given, expected", [(3, 3), (None, cpu_threads())])
def test_a_loader_taking_threads_gets_the_count_given_or_every_core(
    tiny_artifacts: Path, given: int | None, expected: int
) -> None:
    told: list[int] = []

    def load_resources(artifacts: Path, threads: int) -> dict[str, Any]:
        told.append(threads)
        return tiny_pipeline.load_resources(artifacts)

    counting = dataclasses.replace(tiny_pipeline.pipeline, load_resources=load_resources)
    assert counting.load(tiny_artifacts, threads=given).resources == {"offset": 0.5}
    assert told == [expected]
    # a loader without the parameter is called as before, whatever the count
    assert tiny_pipeline.pipeline.load(tiny_artifacts, threads=given).resources == {"offset": 0.5}


def test_trained_artifacts_are_readable_by_other_users(tiny_artifacts: Path) -> None:
    # a container trains as root and serves as an unprivileged user (the model image)
    assert tiny_artifacts.stat().st_mode & 0o777 == 0o755
    assert all(path.stat().st_mode & 0o044 == 0o044 for path in tiny_artifacts.iterdir())


def test_version_changes_with_the_artifacts(tiny_artifacts: Path, tmp_path: Path) -> None:
    def other_offset(out: Path) -> str:
        (out / "offset.json").write_text(json.dumps({"offset": 1.5}))
        return "# other"

    retrained = tmp_path / "retrained"
    shutil.copytree(tiny_artifacts, retrained)
    before = tiny_pipeline.pipeline.load(retrained)
    (retrained / "offset.json").write_text(json.dumps({"offset": 1.5}))
    manifest = json.loads((retrained / "manifest.json").read_text())
    from onepipe.artifacts import file_sha256

    manifest["files"]["offset.json"] = file_sha256(retrained / "offset.json")
    (retrained / "manifest.json").write_text(json.dumps(manifest))
    after = tiny_pipeline.pipeline.load(retrained)
    assert before.version != after.version
    assert after.run([{"values": [1], "unit": "kg"}]).outputs[0].value == 2.5


# -- definitions that are wired wrongly are refused up front ---------------------------


class _In(BaseModel):
    x: int


class _Flags(BaseModel):
    on: bool = Field(True, description="A switch.")


def _define(steps: list[Any], flags: type[BaseModel] = _Flags) -> Pipeline[Any, Any, Any]:
    return Pipeline(
        name="bad", input_model=_In, output_model=_In, flags_model=flags, steps=steps, examples={}
    )


def test_a_step_needing_an_unknown_name_is_refused() -> None:
    def out(inputs: list[_In], missing: list[int]) -> list[_In]:
        """Out."""
        return inputs

    with pytest.raises(PipelineDefinitionError, match="needs 'missing'"):
        _define([out])


def test_a_step_without_a_docstring_is_refused() -> None:
    def out(inputs: list[_In]) -> list[_In]:
        return inputs

    with pytest.raises(PipelineDefinitionError, match="one-line docstring"):
        _define([out])


def test_flags_need_defaults_and_descriptions() -> None:
    def out(inputs: list[_In]) -> list[_In]:
        """Out."""
        return inputs

    class NoDefault(BaseModel):
        on: bool = Field(description="A switch.")

    class NoDescription(BaseModel):
        on: bool = True

    with pytest.raises(PipelineDefinitionError, match="'on' needs a default"):
        _define([out], NoDefault)
    with pytest.raises(PipelineDefinitionError, match="'on' needs a description"):
        _define([out], NoDescription)


def test_the_last_step_must_always_run() -> None:
    @when(on=True)
    def out(inputs: list[_In]) -> list[_In]:
        """Out."""
        return inputs

    with pytest.raises(PipelineDefinitionError, match="must always run"):
        _define([out])


def test_a_step_returning_the_wrong_count_is_a_definition_error() -> None:
    def out(inputs: list[_In], recorder: Recorder) -> list[_In]:
        """Out."""
        return inputs[:1]

    loaded = _define([out]).load()
    with pytest.raises(PipelineDefinitionError, match="returned 1 values for 2 inputs"):
        loaded.run([{"x": 1}, {"x": 2}])


def test_an_unknown_flag_does_not_hide_the_other_flags_problems(tiny: Tiny) -> None:
    with pytest.raises(PipelineInputError) as caught:
        tiny.run([{"values": [1], "unit": "kg"}], {"method": "median", "zzz": 1, "scale": "big"})
    assert sorted(p.loc for p in caught.value.problems) == ["flags.method", "flags.scale", "flags.zzz"]
