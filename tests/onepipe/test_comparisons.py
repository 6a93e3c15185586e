"""The shared rules of every comparison: what the two sides are called (onepipe.platform.jobs.variants)
and when a field changed (onepipe.platform.schema.outputs, .changes), on the example's real schemas."""

from __future__ import annotations

from typing import Any

import pytest

from onepipe.platform.jobs.types import JobMeta, JobSpec
from onepipe.platform.jobs.variants import flag_set_names, job_variants, jobs_variants
from onepipe.platform.schema.changes import ChangeTally
from onepipe.platform.schema.outputs import Outputs
from review_triage.pipeline import pipeline as example

INFO = example.describe("0123456789ab")


def _meta(spec: dict[str, Any], **changes: Any) -> JobMeta:
    return JobMeta(
        id="20261206154755123456-1a2b3c4d",
        spec=JobSpec(file_name="f.csv", file_format="csv", mapping={}, **spec),
        owner="o",
        owner_name="o",
        **changes,
    )


def test_two_flag_sets_are_named_by_what_differs_from_the_schema_and_the_steps() -> None:
    # one flag whose values pick named step variants (kind__tfidf, kind__minilm): the variants' names,
    # the default filled in from the flags schema
    assert flag_set_names({}, {"classifier": "minilm"}, INFO) == ("tfidf", "minilm")
    # a flag that only switches a step on or off: flag=value, as on a command line
    assert flag_set_names({}, {"check_duplicates": False}, INFO) == (
        "check_duplicates=true",
        "check_duplicates=false",
    )
    assert flag_set_names({"neighbours": 3}, {"neighbours": 5}, INFO) == ("neighbours=3", "neighbours=5")
    # several flags: each one that differs, in the schema's order; a flag set alike on both sides is left out
    assert flag_set_names(
        {"neighbours": 5}, {"classifier": "minilm", "retriever": "embedding", "neighbours": 5}, INFO
    ) == (
        "classifier=tfidf, retriever=bm25",
        "classifier=minilm, retriever=embedding",
    )
    assert flag_set_names({}, {"classifier": "tfidf"}, INFO) == ("", "")  # the default, given


def test_a_jobs_two_answers_and_two_jobs_are_named_by_their_flags_or_versions() -> None:
    flags = job_variants(_meta({"compare_flags": {"classifier": "minilm"}}), INFO)
    assert (flags.first, flags.second, flags.kind) == ("tfidf", "minilm", "flag set")
    versions = job_variants(
        _meta(
            {"compare_version": "challenger"},
            pipeline_version="1a2b3c4d5e6f",
            compare_pipeline_version="9f8e7d6c5b4a",
        ),
        INFO,
    )
    assert (versions.first, versions.second, versions.kind) == (
        "champion 1a2b3c4d5e6f",
        "challenger 9f8e7d6c5b4a",
        "version",
    )
    same = job_variants(_meta({"version": "1a2b3c4d5e6f", "compare_version": "1a2b3c4d5e6f"}), INFO)
    assert (same.first, same.second) == ("1a2b3c4d5e6f", "1a2b3c4d5e6f (compared)")
    alike = job_variants(_meta({"flags": {"neighbours": 5}, "compare_flags": {"neighbours": 5}}), INFO)
    assert (alike.first, alike.second) == ("neighbours=5 (first run)", "neighbours=5 (second run)")

    old = _meta({}, pipeline_version="1a2b3c4d5e6f")
    new = _meta({"version": "challenger"}, pipeline_version="9f8e7d6c5b4a")
    assert (jobs_variants(old, new, INFO).first, jobs_variants(old, new, INFO).second) == (
        "champion 1a2b3c4d5e6f",
        "challenger 9f8e7d6c5b4a",
    )
    minilm = _meta(
        {"version": "challenger", "flags": {"classifier": "minilm"}}, pipeline_version="9f8e7d6c5b4a"
    )
    both = jobs_variants(old, minilm, INFO)
    assert (both.first, both.second) == ("champion 1a2b3c4d5e6f, tfidf", "challenger 9f8e7d6c5b4a, minilm")
    assert (jobs_variants(old, old, INFO).first, jobs_variants(old, old, INFO).second) == ("job A", "job B")


def _outputs(**properties: dict[str, Any]) -> Outputs:
    return Outputs.from_schema({"type": "object", "properties": properties})


def test_a_number_changes_past_its_declared_or_default_tolerance_a_decision_on_any_change() -> None:
    outputs = _outputs(
        verdict={"enum": ["a", "b"], "type": "string"},
        share={"type": "number", "minimum": 0, "maximum": 10},  # 5% of the range: 0.5
        score={"type": "number", "x-tolerance": 0.1},
        loose={"type": "number"},  # 5% of the larger value
        count={"type": "integer"},  # any step
        text={"type": "string"},
    )
    fields = outputs.fields
    assert [f.compared_as for f in fields.values()] == [
        "decision",
        "number",
        "number",
        "number",
        "number",
        "other",
    ]
    assert (fields["share"].tolerance, fields["score"].tolerance, fields["loose"].tolerance) == (
        0.5,
        0.1,
        None,
    )
    assert fields["count"].tolerance == 0
    assert not fields["share"].changed(5.0, 5.5) and fields["share"].changed(5.0, 5.51)
    assert not fields["score"].changed(0.5, 0.6) and fields["score"].changed(0.5, 0.61)
    assert not fields["loose"].changed(100, 104) and fields["loose"].changed(100, 106)
    assert fields["loose"].changed(0, 0.001) and fields["loose"].changed(None, 1.0)
    assert fields["count"].changed(3, 4) and not fields["count"].changed(3, 3.0)
    assert fields["verdict"].changed("a", "b") and fields["text"].changed("x", "y")

    tally = ChangeTally(outputs)
    assert (
        tally.add({"verdict": "a", "share": 5.0, "score": 0.5}, {"verdict": "a", "share": 5.2, "score": 0.55})
        == []
    )
    assert tally.add({"verdict": "a", "share": 5.0}, {"verdict": "b", "share": 6.0}) == ["verdict", "share"]
    assert (tally.rows, tally.rows_changed, tally.decisions_changed) == (2, 1, 1)
    assert tally.headline() == (
        "Verdict changed on 1 of 2 rows; share moved by median 0.6, 95th percentile 0.96, largest 1 "
        "(1 row past its tolerance of 0.5); score moved by median 0.05, 95th percentile 0.05, largest 0.05 "
        "(0 rows past its tolerance of 0.1)."
    )


@pytest.mark.parametrize("value", ["0.1", -1, True, None])
def test_a_tolerance_that_is_not_a_number_of_0_or_more_is_refused_naming_the_field(value: Any) -> None:
    with pytest.raises(
        ValueError, match=r"output field score: x-tolerance must be a number of 0 or more, not "
    ):
        _outputs(score={"type": "number", "x-tolerance": value})
