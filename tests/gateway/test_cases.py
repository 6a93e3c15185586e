"""The edge-case library: its file, `just cases` through every face, `just case add`, the gateway's
POST /v1/cases and `just cases pull`."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.auth import hash_key
from gateway.cases import as_case_problem
from onepipe import LoadedPipeline, Problem
from onepipe.errors import problem_at
from onepipe.platform.cases import (
    Case,
    CasesFileError,
    case_id,
    expected_problems,
    input_problems,
    matches,
    merge_cases,
    read_cases,
    without_defaults,
    write_cases,
    wrong_fields,
)
from onepipe.platform.http.server import ProblemError
from onepipe.platform.jobs.storage import CaseStore, StoredCase
from onepipe.platform.jsonlines import json_line, read_values
from onepipe_harness.processes import ROOT, RedisServer, ServiceProcess
from scripts.cases import (
    FACES,
    CaseRun,
    as_batch_job,
    changes_since,
    check_cases,
    in_process,
    over_http,
    replay,
    saved_run,
)
from tests.conftest import EXAMPLE_ARTIFACTS
from tests.stacks import KEYS, PROBLEM, Stack, as_key, csv_bytes, stack

LIBRARY = ROOT / "cases" / "review-triage.jsonl"
# every character some reader takes for a line end: U+2028, U+2029, U+0085 (which str.splitlines()
# splits at and JSON leaves unescaped), CR and LF (which JSON escapes)
BREAKS = "Dull\u2028as a line\u2029as a paragraph\x85as NEL\ras CR\nas LF, and still one film."
TINY_LIBRARY = ROOT / "tests" / "tiny_pipeline" / "cases.jsonl"
TINY = "tests.tiny_pipeline:pipeline"
CASES = ["uv", "run", "--frozen", "--no-sync", "python", "-m", "scripts.cases"]


def _case(text: str, label: str, **more: Any) -> Case:
    return Case(input={"text": text}, expected={"label": label}, source="engineer", **more)


def _cases_command(
    *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CASES, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "MODEL_ARTIFACTS_DIR": str(EXAMPLE_ARTIFACTS.parent), **(env or {})},
    )


# -- the library file ---------------------------------------------------------------------


def test_a_case_is_its_question_the_same_input_and_flags_whatever_the_answer() -> None:
    a, b = _case("Dull.", "rotten"), _case("Dull.", "fresh", note="another opinion")
    assert a.id == b.id == case_id({"text": "Dull."}, {})
    assert _case("Dull.", "rotten", flags={"classifier": "minilm"}).id != a.id
    assert a.id.startswith("case-") and len(a.id) == len("case-") + 12


def test_merging_adds_new_cases_drops_repeats_and_reports_conflicts() -> None:
    held = [_case("Dull.", "rotten"), _case("Masterpiece.", "fresh")]
    incoming = [_case("Dull.", "rotten", note="again"), _case("Dull.", "fresh"), _case("Meh.", "rotten")]
    merged = merge_cases(held, incoming)
    assert [c.input["text"] for c in merged.cases] == ["Dull.", "Masterpiece.", "Meh."]
    assert [c.input["text"] for c in merged.added] == ["Meh."]
    assert [c.note for c in merged.duplicates] == ["again"]
    assert [(h.expected, i.expected) for h, i in merged.conflicts] == [
        ({"label": "rotten"}, {"label": "fresh"})
    ]


def test_the_file_round_trips_and_a_bad_line_is_named_by_number(tmp_path: Path) -> None:
    path = tmp_path / "cases.jsonl"
    cases = [_case("Dull.", "rotten", must_pass=True), _case("Une merveille.", "fresh", note="French")]
    write_cases(path, cases)
    assert read_cases(path) == cases
    assert read_cases(tmp_path / "missing.jsonl") == []
    lines = path.read_text().splitlines()
    path.write_text(
        "\n".join([lines[0], '{"input": {"text": "x"}, "source": "engineer"}', "not json"]) + "\n"
    )
    with pytest.raises(CasesFileError) as caught:
        read_cases(path)
    assert "line 2: expected: Field required" in str(caught.value)
    assert "line 3: the line: Invalid JSON" in str(caught.value) and "line 1:" not in str(caught.value)


def test_every_line_break_of_a_text_is_escaped_and_the_file_is_split_at_newlines_only(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cases.jsonl"
    cases = [_case(BREAKS, "rotten", note="a note\u2028on two lines"), _case("Une merveille.", "fresh")]
    write_cases(path, cases)
    raw = path.read_text(encoding="utf-8")
    assert not {"\u2028", "\u2029", "\x85", "\r"} & set(raw)
    assert "\\u2028" in raw and "\\u2029" in raw and "\\u0085" in raw and "\\r" in raw
    assert len(raw.splitlines()) == len(raw.split("\n")) - 1 == 2  # any reader sees two lines
    assert read_cases(path) == cases
    # a file written before the escaping (raw separators in a text) still reads as JSON Lines
    path.write_text(
        cases[0].model_dump_json() + "\r\n" + cases[1].model_dump_json() + "\n\n", encoding="utf-8"
    )
    assert "\u2028" in path.read_text(encoding="utf-8")
    assert read_cases(path) == cases
    assert read_values(json_line({"text": BREAKS}) * 2) == [{"text": BREAKS}] * 2


def test_the_model_services_refusal_of_inputs_0_is_a_refusal_of_the_case_input() -> None:
    problems = [
        problem_at(["inputs", 0, "text"], "too short"),
        problem_at(["inputs", 0, "tags", 2], "not a string"),
        problem_at(["inputs", 0], "not an object"),
        Problem(loc="flags.top_k", message="too large"),
    ]
    refused = ProblemError(422, "Invalid input", "; ".join(str(p) for p in problems), problems)
    case = as_case_problem(refused)
    assert [(p.loc, p.message, p.input, p.field) for p in case.errors or []] == [
        ("input.text", "too short", None, None),
        ("input.tags[2]", "not a string", None, None),
        ("input", "not an object", None, None),
        ("flags.top_k", "too large", None, None),
    ]
    assert case.status == 422 and case.title == "Invalid case"
    assert case.detail == (
        "input.text: too short; input.tags[2]: not a string; input: not an object; flags.top_k: too large"
    )
    # a refusal naming no input (the service is loading) passes on as it came
    loading = as_case_problem(ProblemError(503, "Pipeline loading", "retry shortly"))
    assert (loading.status, loading.title, loading.detail, loading.errors) == (
        503,
        "Pipeline loading",
        "retry shortly",
        [],
    )


def test_input_fields_the_pipeline_lacks_are_named_with_the_known_ones() -> None:
    schema = {"properties": {"text": {"type": "string"}, "lang": {"type": "string"}}, "required": ["text"]}
    assert input_problems({"text": "x", "lang": "en"}, schema) == []
    found = {p.loc: p.message for p in input_problems({"text": "x", "colour": 1, "size": 2}, schema)}
    assert found == {
        "input.colour": "not an input field; fields: text, lang",
        "input.size": "not an input field; fields: text, lang",
    }
    assert input_problems({"colour": 1}, {**schema, "additionalProperties": True}) == []


def test_reported_cases_are_kept_in_a_folder_per_key_and_old_ones_stay_readable(tmp_path: Path) -> None:
    store = CaseStore(str(tmp_path))
    mine, theirs = _case("Dull.", "rotten"), _case("Meh.", "rotten")
    first = store.add("review-triage", mine, "a1b2")
    second = store.add("review-triage", theirs, "c3d4")
    # a report kept before the folders per key: in the pipeline's folder itself
    (tmp_path / "cases" / "review-triage" / "20260101000000000000-old.json").write_text(
        _case("Old.", "plot").model_dump_json()
    )
    (tmp_path / "cases" / "review-triage" / "a1b2" / f"{first}.json.tmp-1234").write_text("half")
    assert (tmp_path / "cases" / "review-triage" / "a1b2" / f"{first}.json").exists()
    assert (store.count("review-triage", "a1b2"), store.count("review-triage", "nobody")) == (1, 0)
    assert store.stored("review-triage", "a1b2") == [StoredCase(first, mine, "a1b2")]
    every = store.stored("review-triage")
    assert [(s.key, s.owner) for s in every] == [
        ("20260101000000000000-old", None),
        (first, "a1b2"),
        (second, "c3d4"),
    ]
    assert [c.input["text"] for _, c in store.cases("review-triage")] == ["Old.", "Dull.", "Meh."]
    store.remove("review-triage", "20260101000000000000-old")
    store.remove("review-triage", first, "a1b2")
    assert [s.key for s in store.stored("review-triage")] == [second]
    with pytest.raises(ValueError, match="invalid key id"):
        store.add("review-triage", mine, "../elsewhere")


def test_expected_values_are_checked_against_the_output_schema(
    example_pipeline: LoadedPipeline[Any, Any, Any],
) -> None:
    schema = example_pipeline.describe().output_schema
    assert expected_problems({"label": "plot", "needs_review": True}, schema) == []
    found = {
        p.loc: p.message for p in expected_problems({"label": "meh", "nope": 1, "confidence": "x"}, schema)
    }
    assert set(found) == {"expected.label", "expected.nope", "expected.confidence"}
    assert "'meh' is not one of" in found["expected.label"]
    assert found["expected.nope"].startswith("not an output field; fields: label, confidence")
    assert [p.loc for p in expected_problems({}, schema)] == ["expected"]


def test_flags_at_their_default_are_left_out_so_every_face_asks_the_same_question() -> None:
    schema = {"properties": {"classifier": {"default": "tfidf"}, "neighbours": {"default": 3}, "x": {}}}
    given = {"classifier": "tfidf", "neighbours": 5, "x": 1}
    assert without_defaults(given, schema) == {"neighbours": 5, "x": 1}


def test_answers_match_as_json_values_numbers_to_a_billionth() -> None:
    assert matches(0.1 + 0.2, 0.3) and not matches(0.3, 0.31)
    assert not matches(True, 1) and not matches(1, True) and matches(None, None)
    assert matches({"a": [1, 2]}, {"a": [1, 2]}) and not matches("1", 1)
    case = Case(input={}, expected={"value": 2.5, "unit": "kg"}, source="engineer")
    assert wrong_fields(case, {"value": 2.5000000001, "unit": "g"}) == ["unit"]


def test_the_example_ships_forty_cases_or_more_that_it_can_run(
    example_pipeline: LoadedPipeline[Any, Any, Any],
) -> None:
    cases = read_cases(LIBRARY)
    assert len(cases) >= 40
    assert check_cases(example_pipeline, cases) == []
    assert all(case.id == case_id(case.input, case.flags) for case in cases)
    assert len({case.id for case in cases}) == len(cases)
    assert {case.source for case in cases} >= {"engineer", "ui", "app", "reviewer"}
    # some it gets wrong today: the library is there to show them, not to flatter the pipeline
    wrong = [
        c for c in cases if wrong_fields(c, example_pipeline.run([c.input], c.flags).outputs[0].model_dump())
    ]
    assert wrong and not [c for c in wrong if c.must_pass]


def test_replay_marks_a_face_that_answers_otherwise() -> None:
    cases = [_case("a", "fresh"), _case("b", "rotten", flags={"classifier": "minilm"})]
    calls: list[tuple[list[str], dict[str, Any]]] = []

    def reference(inputs: list[dict[str, Any]], flags: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
        calls.append(([i["text"] for i in inputs], flags))
        return [{"label": "fresh"} for _ in inputs], "v1"

    def other(inputs: list[dict[str, Any]], flags: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
        return [{"label": "fresh" if i["text"] == "a" else "plot"} for i in inputs], "v1"

    def older(inputs: list[dict[str, Any]], flags: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
        return [{"label": "fresh"} for _ in inputs], "v0"

    runs = replay(cases, {"in-process": reference, "model service": other, "gateway": older})
    assert calls == [(["a"], {}), (["b"], {"classifier": "minilm"})]  # one call per flag set
    assert [run.disagreeing for run in runs] == [["gateway"], ["model service", "gateway"]]
    assert [run.wrong for run in runs] == [[], ["label"]]
    kept = saved_run(runs, "test")
    assert kept["cases"][cases[1].id] == {
        "expected": {"label": "rotten"},
        "note": "",
        "output": {"label": "fresh"},
        "right": False,
    }
    later = [CaseRun(cases[0], {"in-process": {"label": "plot"}}, {"in-process": "v2"})]
    changes = {c.case_id: (c.what, c.fields) for c in changes_since(kept, later)}
    assert changes == {
        cases[0].id: ("broken", {"label": ("fresh", "plot")}),
        cases[1].id: ("removed", {}),
    }


# -- `just cases` through the four faces ----------------------------------------------------


def test_just_cases_replays_the_example_through_every_face_and_shows_what_changed_since_a_run(
    example_pipeline: LoadedPipeline[Any, Any, Any], tmp_path: Path
) -> None:
    cases = read_cases(LIBRARY)
    right = sum(
        1
        for c in cases
        if not wrong_fields(c, example_pipeline.run([c.input], c.flags).outputs[0].model_dump())
    )
    kept = tmp_path / "run.json"
    done = _cases_command("--save", str(kept))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"right: {right} of {len(cases)}" in done.stdout
    assert "faces disagree on 0; must-pass cases wrong: 0" in done.stdout
    assert done.stdout.count("all 4 agree") == len(cases)
    saved = json.loads(kept.read_text())
    assert saved["version"] == example_pipeline.version and set(saved["cases"]) == {c.id for c in cases}
    # pretend the kept run answered one right case otherwise: the next run shows it fixed
    fixed = next(c for c in cases if not wrong_fields(c, saved["cases"][c.id]["output"]))
    saved["cases"][fixed.id]["output"]["label"] = "wrong-before"
    saved["cases"][fixed.id]["right"] = False
    kept.write_text(json.dumps(saved))
    again = _cases_command("--against", str(kept))
    assert again.returncode == 0, again.stdout[-3000:]
    assert f"since {kept}: 1 fixed, 0 broken, 0 other changes" in again.stdout
    assert fixed.id in again.stdout and "wrong-before ->" in again.stdout


def test_just_cases_fails_on_a_wrong_must_pass_case_of_the_tiny_pipeline(
    tiny_artifacts: Path, tmp_path: Path
) -> None:
    library = tmp_path / "tiny.jsonl"
    shipped = read_cases(TINY_LIBRARY)
    broken = Case(
        input={"values": [1], "unit": "kg"}, expected={"value": 1.0}, source="engineer", must_pass=True
    )
    write_cases(library, [*shipped, broken])
    env = {"MODEL_PIPELINE": TINY, "MODEL_ARTIFACTS_DIR": str(tiny_artifacts.parent)}
    done = _cases_command("--file", str(library), env=env)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("all 4 agree") == len(shipped) + 1
    assert "must-pass cases wrong: 1" in done.stdout and "WRONG (must pass)" in done.stdout
    # the shipped library alone passes
    alone = _cases_command("--file", str(TINY_LIBRARY), env=env)
    assert alone.returncode == 0, alone.stdout[-3000:]
    assert f"right: {len(shipped) - 1} of {len(shipped)}" in alone.stdout  # one is wrong on purpose


def test_just_case_add_checks_the_case_and_keeps_no_duplicate(tmp_path: Path) -> None:
    library = tmp_path / "cases.jsonl"
    add = ["add", "--file", str(library), "--input", '{"text": "Dull."}', "--expect", "label=rotten"]
    first = _cases_command(*add, "--note", "one word", "--must-pass")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "1 added" in first.stdout
    again = _cases_command(*add)
    assert "0 added" in again.stdout and "1 already there" in again.stdout
    other = _cases_command(*add[:-1], "label=fresh")
    assert "1 in conflict" in other.stdout and "the library expects" in other.stdout
    (kept,) = read_cases(library)
    assert (kept.expected, kept.note, kept.must_pass, kept.source) == (
        {"label": "rotten"},
        "one word",
        True,
        "engineer",
    )
    bad = _cases_command("add", "--file", str(library), "--input", '{"text": " "}', "--expect", "label=meh")
    assert bad.returncode == 2
    assert (
        "expected.label" in bad.stdout
        and "'meh' is not one of" in bad.stdout
        and "inputs[0].text" in bad.stdout
    )
    extra = '{"text": "Dull.", "colour": "red"}'
    unknown = _cases_command("add", "--file", str(library), "--input", extra, "--expect", "label=rotten")
    assert unknown.returncode == 2, unknown.stdout + unknown.stderr
    assert "input.colour: not an input field; fields: text" in unknown.stdout
    assert read_cases(library) == [kept]  # nothing added


# -- cases reported to the gateway, pulled into the library ---------------------------------


@pytest.fixture(scope="module")
def cases_stack(
    example_service: ServiceProcess, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with stack(example_service.url, tmp_path_factory.mktemp("cases"), redis_server.url(12)) as started:
        yield started


def _report(stack_: Stack, body: dict[str, Any], key: str = "reviewer") -> httpx.Response:
    return httpx.post(stack_.gateway.url + "/v1/cases", json=body, headers=as_key(key), timeout=60)


def test_the_gateway_keeps_a_reported_case_with_what_the_pipeline_answered(
    cases_stack: Stack, example_pipeline: LoadedPipeline[Any, Any, Any], tmp_path: Path
) -> None:
    text = "A jaded critic is forced to review his daughter's first film."
    answer = example_pipeline.run([{"text": text}]).outputs[0].model_dump(mode="json")
    body = {"input": {"text": text}, "expected": {"label": "plot"}, "note": "a summary", "source": "app"}
    kept = _report(cases_stack, body)
    assert kept.status_code == 201, kept.text
    shown = kept.json()
    assert shown["id"] == case_id({"text": text}, {}) and shown["reported_by"] == "reviewer"
    assert shown["answer"] == answer and shown["version"] == example_pipeline.version
    assert shown["wrong"] == ([] if answer["label"] == "plot" else ["label"])
    listed = httpx.get(cases_stack.gateway.url + "/v1/cases", headers=as_key("reviewer")).json()
    assert [c["key"] for c in listed["cases"]] == [shown["key"]] and listed["total"] == 1
    # kept under the reporting key's id (never the key), with its name in the case
    key_id = hash_key(KEYS["reviewer"])[:16]
    folder = cases_stack.storage / "cases" / "review-triage" / key_id
    assert [p.name for p in folder.iterdir()] == [f"{shown['key']}.json"]
    # refused: no feedback scope, an expected field the output lacks, an input the pipeline refuses
    assert _report(cases_stack, body, key="app").status_code == 403
    wrong = _report(cases_stack, {**body, "expected": {"label": "meh", "nope": 1}})
    assert wrong.status_code == 422 and wrong.headers["content-type"] == PROBLEM
    assert {e["loc"] for e in wrong.json()["errors"]} == {"expected.label", "expected.nope"}
    blank = _report(cases_stack, {**body, "input": {"text": "   "}, "flags": {"neighbours": 99}})
    assert blank.status_code == 422
    assert [e["loc"] for e in blank.json()["errors"]] == ["flags.neighbours"]
    blank = _report(cases_stack, {**body, "input": {"text": "   "}})
    assert blank.status_code == 422 and [e["loc"] for e in blank.json()["errors"]] == ["input.text"]
    # pulled into a library: merged once, then gone from storage
    library = tmp_path / "cases.jsonl"
    pulled = _cases_command("pull", "--storage", str(cases_stack.storage), "--file", str(library))
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert "1 reported cases" in pulled.stdout and "1 added" in pulled.stdout
    (merged,) = read_cases(library)
    assert (merged.expected, merged.note, merged.source, merged.reported_by) == (
        {"label": "plot"},
        "a summary",
        "app",
        "reviewer",
    )
    assert key_id not in library.read_text(encoding="utf-8")  # the key's id stays in storage
    assert CaseStore(str(cases_stack.storage)).cases("review-triage") == []


def test_a_scored_jobs_wrong_rows_become_cases(
    cases_stack: Stack, example_pipeline: LoadedPipeline[Any, Any, Any], tmp_path: Path
) -> None:
    rows = [{"review": text, "truth": "plot"} for text in ("Dull.", "Masterpiece.", "A boy finds a dragon.")]
    submitted = cases_stack.submit(
        "scored.csv", csv_bytes(rows), mapping={"text": "review"}, truth={"label": "truth"}
    )
    assert submitted.status_code == 202, submitted.text
    job = cases_stack.wait(submitted.json()["id"])
    assert job["state"] == "succeeded" and job["mapping"] == {"text": "review"}
    answers = [o.label for o in example_pipeline.run([{"text": r["review"]} for r in rows]).outputs]
    library = tmp_path / "cases.jsonl"
    done = _cases_command(
        "add",
        "--file",
        str(library),
        "--from-job",
        job["id"],
        "--url",
        cases_stack.gateway.url,
        "--api-key",
        as_key("reviewer")["X-API-Key"],
    )
    assert done.returncode == 0, done.stdout + done.stderr
    added = read_cases(library)
    wrong_rows = [n for n, label in enumerate(answers, start=1) if label != "plot"]
    assert sorted(int(c.note.split("row ")[1].split(":")[0]) for c in added) == wrong_rows
    assert all(c.expected == {"label": "plot"} and c.source == "reviewer" for c in added)
    assert {c.input["text"] for c in added} == {rows[n - 1]["review"] for n in wrong_rows}


def test_a_text_with_every_line_break_survives_report_pull_and_replay_through_every_face(
    cases_stack: Stack,
    example_service: ServiceProcess,
    example_pipeline: LoadedPipeline[Any, Any, Any],
    tmp_path: Path,
) -> None:
    url = cases_stack.gateway.url
    body = {"input": {"text": BREAKS}, "expected": {"label": "rotten"}, "note": "breaks\u2028everywhere"}
    kept = _report(cases_stack, body)
    assert kept.status_code == 201, kept.text
    listed = httpx.get(url + "/v1/cases", headers=as_key("reviewer")).json()
    assert [(c["input"]["text"], c["note"]) for c in listed["cases"]] == [(BREAKS, body["note"])]
    # a library that cannot be written: the report stays in storage
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    failed = _cases_command("pull", "--storage", str(cases_stack.storage), "--file", str(blocked / "x.jsonl"))
    assert failed.returncode == 2, failed.stdout + failed.stderr
    assert "no report was removed" in " ".join(failed.stdout.split())  # however the console wraps
    assert len(CaseStore(str(cases_stack.storage)).cases("review-triage")) == 1
    # pulled: one line of the library, whoever splits it
    library = tmp_path / "cases.jsonl"
    pulled = _cases_command("pull", "--storage", str(cases_stack.storage), "--file", str(library))
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    assert "1 added" in pulled.stdout
    assert len(library.read_text(encoding="utf-8").splitlines()) == 1
    (case,) = read_cases(library)
    assert (case.input["text"], case.note, case.id) == (BREAKS, body["note"], kept.json()["id"])
    assert CaseStore(str(cases_stack.storage)).cases("review-triage") == []
    # replayed as `just cases` does, through the four faces: every one answers the same
    headers = as_key("reviewer")
    faces = {
        "in-process": in_process(example_pipeline),
        "model service": over_http(example_service.url),
        "gateway": over_http(url, headers),
        "batch job": as_batch_job(url, headers, over_http(example_service.url)),
    }
    (run,) = replay(read_cases(library), faces)
    assert list(run.answers) == list(FACES) and run.disagreeing == []
    assert run.output == example_pipeline.run([{"text": BREAKS}]).outputs[0].model_dump(mode="json")
    # and the batch job read the text exactly as reported: its JSONL report holds it unchanged
    job = cases_stack.wait(cases_stack.submit("breaks.jsonl", json_line(case.input).encode()).json()["id"])
    assert job["state"] == "succeeded", job
    (record,) = read_values(cases_stack.report(job, "jsonl").decode())
    assert record["text"] == BREAKS
    assert record["output.label"] == run.output["label"]


def test_a_key_lists_its_own_reported_cases_and_cases_admin_lists_every_keys(cases_stack: Stack) -> None:
    url = cases_stack.gateway.url
    mine = {"input": {"text": "Mine: a dull film."}, "expected": {"label": "rotten"}, "note": "mine"}
    theirs = {"input": {"text": "Theirs: a fine film."}, "expected": {"label": "fresh"}, "note": "theirs"}
    assert _report(cases_stack, mine).status_code == 201
    assert _report(cases_stack, theirs, key="critic").status_code == 201

    def notes(key: str) -> list[str]:
        answer = httpx.get(url + "/v1/cases", headers=as_key(key), params={"limit": 100})
        assert answer.status_code == 200, answer.text
        return sorted(c["note"] for c in answer.json()["cases"])

    assert notes("reviewer") == ["mine"] and notes("critic") == ["theirs"]
    assert notes("curator") == notes("admin") == ["mine", "theirs"]
    refused = httpx.get(url + "/v1/cases", headers=as_key("other"))
    assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
    assert "lacks the 'feedback' or 'cases:admin' scope" in refused.json()["detail"]
    # seeing every key's reports is not reporting: cases:admin alone cannot report
    assert _report(cases_stack, mine, key="curator").status_code == 403
    for stored in CaseStore(str(cases_stack.storage)).stored("review-triage"):
        CaseStore(str(cases_stack.storage)).remove("review-triage", stored.key, stored.owner)
