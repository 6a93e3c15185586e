"""Batch reports: the four formats, read back from real files, for a schema with roles and one without."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import IO, Any, Literal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from markupsafe import escape
from pydantic import BaseModel, Field

from batch_worker.reports import flatten, output_columns, statistics, write_reports
from onepipe import PipelineInfo
from onepipe.platform.jobs.types import JobMeta, JobSpec, RowResult
from onepipe.platform.schema import sample
from onepipe.platform.schema.schemas import output_roles as roles
from review_triage.pipeline import KnownSnippet, Triage
from tests import rich_pipeline
from tests.tiny_pipeline import Summary

LABELS = ("fresh", "rotten", "plot")
START = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
FILES = ("report.csv", "report.jsonl", "report.parquet", "report.html")
TRIAGE_INPUTS = ["id", "text", "tags"]
TINY_INPUTS = ["values", "unit"]


# -- synthetic data ----------------------------------------------------------------------


def _snippet(n: int) -> KnownSnippet:
    return KnownSnippet(id=n, label=LABELS[n % 3], movie=f"Movie {n}", text=f"known snippet {n}", score=0.5)


def _triage(i: int, shift: int = 0) -> dict[str, Any]:
    label = LABELS[(i + shift) % 3]
    confidence = ((i * 7919) % 1000) / 1000  # distinct for every row under 1000
    flagged = confidence < 0.1 or i % 50 == 0
    return Triage(
        label=label,
        confidence=confidence,
        kind="plot" if label == "plot" else "review",
        kind_confidence=0.9,
        sentiment=None if label == "plot" else label,
        sentiment_confidence=None if label == "plot" else confidence,
        needs_review=flagged,
        review_reasons=["low confidence"] if flagged else [],
        duplicate_of=_snippet(i) if i % 10 == 0 else None,
        similar=[_snippet(i + 1), _snippet(i + 2)],
    ).model_dump(mode="json")


def _triage_rows(n: int, comparing: bool) -> list[RowResult]:
    """Every 37th row fails; every 4th row gets another label under the compare flags."""
    rows = []
    for i in range(1, n + 1):
        text = f"snippet {i} <b>bold</b> & more" + (" long" * 60 if i % 5 == 0 else "")
        item = {"id": i, "text": text, "tags": ["a", i]}
        if i % 37 == 0:
            rows.append(RowResult(row=i, input=item, error=f"row {i}: the model service refused it"))
            continue
        compare = _triage(i, shift=1 if i % 4 == 0 else 0) if comparing else None
        rows.append(RowResult(row=i, input=item, output=_triage(i), compare_output=compare))
    return rows


def _tiny_rows(n: int, failing: set[int]) -> list[RowResult]:
    rows = []
    for i in range(1, n + 1):
        item = {"values": [i, 2.5], "unit": "kg" if i % 2 else "m"}
        if i in failing:
            rows.append(RowResult(row=i, input=item, error=f"bad reading {i}"))
            continue
        spread = None if i % 3 == 0 else i - 2.5
        output = Summary(value=i * 1.5, unit=item["unit"], spread=spread).model_dump(mode="json")
        rows.append(RowResult(row=i, input=item, output=output))
    return rows


def _info(name: str, schema: dict[str, Any]) -> PipelineInfo:
    return PipelineInfo(
        name=name,
        version="0123456789ab",
        steps=[],
        input_schema={},
        output_schema=schema,
        flags_schema={},
        examples={},
    )


def _meta(
    rows: list[RowResult], compare_flags: dict[str, Any] | None, truth: dict[str, str] | None = None
) -> JobMeta:
    failed = sum(r.error is not None for r in rows)
    return JobMeta(
        id="job-1",
        spec=JobSpec(
            file_name="snippets.csv",
            file_format="csv",
            mapping={},
            flags={"classifier": "tfidf"},
            compare_flags=compare_flags,
            truth=truth or {},
        ),
        owner="key-1",
        owner_name="Reviewer <One>",
        state="running",
        rows_total=len(rows),
        rows_done=len(rows),
        rows_failed=failed,
        started_at=START,
        finished_at=START + timedelta(seconds=80),
        pipeline="review-triage",
        pipeline_version="0123456789ab",
    )


# -- reading the reports back -------------------------------------------------------------


def _opener(folder: Path) -> Callable[[str], AbstractContextManager[IO[bytes]]]:
    folder.mkdir(parents=True, exist_ok=True)

    def open_file(name: str) -> AbstractContextManager[IO[bytes]]:
        return (folder / name).open("wb")

    return open_file


def _write(
    folder: Path, rows: list[RowResult], info: PipelineInfo, meta: JobMeta, inputs: list[str]
) -> list[str]:
    return write_reports(lambda: iter(rows), meta, info, inputs, _opener(folder))


def _csv(folder: Path) -> tuple[list[str], list[dict[str, str]]]:
    with (folder / "report.csv").open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def _jsonl(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "report.jsonl").read_text(encoding="utf-8").splitlines()]


class _Tables(HTMLParser):
    """The text of every table cell, by section id: {section: [table: [row: [cell]]]}."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, list[list[list[str]]]] = {}
        self.section = ""
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br" and self.cell is not None:
            self.cell.append("\n")
        elif tag == "section":
            self.section = dict(attrs).get("id") or ""
        elif tag == "table":
            self.sections.setdefault(self.section, []).append([])
        elif tag == "tr":
            self.sections[self.section][-1].append([])
        elif tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self.cell is not None:
            self.sections[self.section][-1][-1].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.cell is not None:
            self.cell.append(data)


def _tables(html: str) -> dict[str, list[list[list[str]]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.sections


def _spanned(table: list[list[str]], columns: int) -> list[list[str]]:
    """A table's body with the cells of a `rowspan` header repeated: every line `columns` wide."""
    lines: list[list[str]] = []
    for line in table[1:]:
        lines.append(line if len(line) == columns else lines[-1][: columns - len(line)] + line)
    return lines


def _numeric(html: str) -> dict[tuple[str, str], list[str]]:
    """The numeric outputs' table: (field, variant) -> rows, mean, min, 25%, median, 75%, max."""
    table = next(t for t in _tables(html)["distribution"] if "median" in t[0])
    comparing = table[0][1] == "variant"
    lines = _spanned(table, len(table[0]))
    if comparing:
        return {(line[0], line[1]): line[2:] for line in lines}
    return {(line[0], "flags"): line[1:] for line in lines}


def _captions(html: str) -> dict[str, str]:
    """Each histogram's caption, by field, on one line."""
    found = re.findall(r"<figcaption><b>(.*?)</b>: (.*?)</figcaption>", _section(html, "histograms"), re.S)
    return {name: " ".join(unescape(text).split()) for name, text in found}


def _shown(value: Any) -> str:
    return "(none)" if value is None else str(value)


def _section(html: str, name: str) -> str:
    match = re.search(rf'<section id="{name}">(.*?)</section>', html, re.S)
    assert match, f"no section {name}"
    return match.group(1)


def _assert_offline(html: str) -> None:
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", html, re.I)
    # at most the review list's filter, inline: no script is loaded from anywhere
    assert re.findall(r"<script\b[^>]*>", html, re.I) in ([], ["<script>"])
    assert "<link" not in html.lower()


# -- the schema ---------------------------------------------------------------------------


def test_output_columns_and_roles_of_the_example() -> None:
    schema = Triage.model_json_schema()
    assert output_columns(schema) == [
        ("label", "string"),
        ("confidence", "number"),
        ("kind", "string"),
        ("kind_confidence", "number"),
        ("sentiment", "string"),
        ("sentiment_confidence", "number"),
        ("needs_review", "boolean"),
        ("review_reasons", "json"),
        ("duplicate_of", "json"),
        ("similar", "json"),
    ]
    assert roles(schema) == {
        "label": "label",
        "confidence": "confidence",
        "review": "needs_review",
        "reasons": "review_reasons",
        "known": "duplicate_of",
    }


def test_output_columns_and_roles_of_the_tiny_pipeline() -> None:
    schema = Summary.model_json_schema()
    assert output_columns(schema) == [("value", "number"), ("unit", "string"), ("spread", "number")]
    assert roles(schema) == {}


def test_output_columns_of_other_schema_shapes() -> None:
    schema = {
        "$defs": {
            "Colour": {"enum": ["red", "blue"], "type": "string"},
            "Box": {"type": "object", "properties": {"a": {"type": "integer"}}},
        },
        "properties": {
            "colour": {"$ref": "#/$defs/Colour"},
            "maybe_colour": {"anyOf": [{"$ref": "#/$defs/Colour"}, {"type": "null"}]},
            "box": {"$ref": "#/$defs/Box"},
            "count": {"type": ["integer", "null"]},
            "amount": {"anyOf": [{"type": "integer"}, {"type": "number"}]},
            "mixed": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            "anything": {},
            "mapping": {"type": "object", "additionalProperties": {"type": "number"}},
            "flag": {"const": True},
            "wrapped": {"allOf": [{"$ref": "#/$defs/Colour"}], "x-role": "label"},
        },
    }
    assert output_columns(schema) == [
        ("colour", "string"),
        ("maybe_colour", "string"),
        ("box", "json"),
        ("count", "integer"),
        ("amount", "number"),
        ("mixed", "json"),
        ("anything", "json"),
        ("mapping", "json"),
        ("flag", "boolean"),
        ("wrapped", "string"),
    ]
    assert roles(schema) == {"label": "wrapped"}


def test_flatten_orders_keys_and_turns_nested_values_into_json() -> None:
    columns = output_columns(Triage.model_json_schema())
    result = _triage_rows(10, comparing=True)[9]
    assert result.output is not None and result.compare_output is not None
    record = flatten(result, columns, TRIAGE_INPUTS, comparing=True)
    names = [name for name, _ in columns]
    assert list(record) == [
        "row",
        *TRIAGE_INPUTS,
        *(f"output.{n}" for n in names),
        *(f"compare.{n}" for n in names),
        "error",
    ]
    assert record["row"] == 10
    assert record["id"] == 10
    assert json.loads(record["tags"]) == ["a", 10]
    assert record["output.label"] == result.output["label"]
    assert json.loads(record["output.duplicate_of"]) == result.output["duplicate_of"]
    assert json.loads(record["output.similar"])[0]["id"] == 11
    assert record["compare.label"] == result.compare_output["label"]
    assert record["error"] is None

    plain = flatten(_triage_rows(11, comparing=False)[10], columns, TRIAGE_INPUTS, comparing=False)
    assert plain["output.duplicate_of"] is None  # a null object stays null, not "null"
    assert not any(key.startswith("compare.") for key in plain)

    failed = flatten(_triage_rows(37, comparing=True)[36], columns, TRIAGE_INPUTS, comparing=True)
    assert all(failed[f"{p}.{n}"] is None for p in ("output", "compare") for n in names)
    assert failed["error"] == "row 37: the model service refused it"


# -- the four reports -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def compared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[RowResult]]:
    """The example's schema, 300 rows, with compare flags."""
    folder = tmp_path_factory.mktemp("compared")
    rows = _triage_rows(300, comparing=True)
    formats = _write(
        folder,
        rows,
        _info("review-triage", Triage.model_json_schema()),
        _meta(rows, {"classifier": "minilm"}),
        TRIAGE_INPUTS,
    )
    assert formats == ["html", "csv", "jsonl", "parquet"]
    return folder, rows


def test_machine_formats_hold_every_row_in_order(compared: tuple[Path, list[RowResult]]) -> None:
    folder, rows = compared
    names = [name for name, _ in output_columns(Triage.model_json_schema())]
    expected = [
        "row",
        *TRIAGE_INPUTS,
        *(f"output.{n}" for n in names),
        *(f"compare.{n}" for n in names),
        "error",
    ]

    header, csv_rows = _csv(folder)
    lines = _jsonl(folder)
    table = pq.read_table(folder / "report.parquet")
    assert header == expected
    assert list(lines[0]) == expected
    assert table.column_names == expected
    assert len(csv_rows) == len(lines) == table.num_rows == len(rows) == 300
    assert [int(r["row"]) for r in csv_rows] == [r["row"] for r in lines] == list(range(1, 301))
    assert table.column("row").to_pylist() == list(range(1, 301))

    assert table.schema.field("row").type == pa.int64()
    assert table.schema.field("id").type == pa.string()  # inputs are text in Parquet
    assert table.schema.field("output.confidence").type == pa.float64()
    assert table.schema.field("output.needs_review").type == pa.bool_()
    snippet = pa.struct(
        [
            ("id", pa.int64()),
            ("label", pa.string()),
            ("movie", pa.string()),
            ("text", pa.string()),
            ("score", pa.float64()),
        ]
    )
    assert table.schema.field("compare.similar").type == pa.list_(snippet)  # nested outputs stay nested
    assert table.schema.field("output.duplicate_of").type == snippet
    assert table.schema.field("output.review_reasons").type == pa.list_(pa.string())
    assert table.column("id").to_pylist()[:3] == ["1", "2", "3"]

    first = rows[0].output
    assert first is not None
    assert csv_rows[0]["output.label"] == lines[0]["output.label"] == first["label"]
    assert float(csv_rows[0]["output.confidence"]) == lines[0]["output.confidence"] == first["confidence"]
    assert csv_rows[0]["output.needs_review"] == ("true" if first["needs_review"] else "false")
    assert table.column("output.confidence").to_pylist()[0] == first["confidence"]
    assert csv_rows[0]["text"] == lines[0]["text"] == rows[0].input["text"]

    # every 4th row changed label under the compare flags, in all three formats
    changed = [r for r in lines if r["error"] is None and r["output.label"] != r["compare.label"]]
    assert [r["row"] for r in changed] == [i for i in range(4, 301, 4) if i % 37]


def test_a_failed_row_has_empty_outputs_and_its_error(compared: tuple[Path, list[RowResult]]) -> None:
    folder, _ = compared
    _, csv_rows = _csv(folder)
    lines = _jsonl(folder)
    table = pq.read_table(folder / "report.parquet").to_pylist()
    failed_rows = [i for i in range(1, 301) if i % 37 == 0]
    assert [int(r["row"]) for r in csv_rows if r["error"]] == failed_rows
    for record in (csv_rows[36], lines[36], table[36]):
        assert str(record["row"]) == "37"
        assert record["error"] == "row 37: the model service refused it"
        for key, value in record.items():
            if key.startswith(("output.", "compare.")):
                assert value in ("", None), key
    assert csv_rows[35]["error"] == "" and lines[35]["error"] is None and table[35]["error"] is None


HOSTILE = [
    "first line\rsecond line",
    "a\r\nb",
    '=HYPERLINK("http://example.com","click")',
    "+1+2",
    "-2+3",
    "@SUM(A1:A2)",
    "\t=1",
    "plain text",
    "next\x85line\u2028separator\u2029paragraph",
]


def test_csv_cells_are_quoted_and_formulas_neutralised(tmp_path: Path) -> None:
    rows = [
        RowResult(row=i, input={"id": i, "text": text, "tags": []}, output=_triage(i))
        for i, text in enumerate(HOSTILE, start=1)
    ]
    _write(
        tmp_path, rows, _info("review-triage", Triage.model_json_schema()), _meta(rows, None), TRIAGE_INPUTS
    )
    _, csv_rows = _csv(tmp_path)
    # a carriage return inside a cell stays inside it: one CSV record per row
    assert [int(r["row"]) for r in csv_rows] == list(range(1, len(HOSTILE) + 1))
    texts = [r["text"] for r in csv_rows]
    assert texts[0] == "first line\rsecond line" and texts[1] == "a\r\nb"
    # what a spreadsheet would run starts with a quote: shown as text, not evaluated
    assert texts[2:7] == ["'" + text for text in HOSTILE[2:7]]
    assert texts[7:] == HOSTILE[7:]
    # numbers keep their sign; the other reports keep the original text
    assert all(float(r["output.confidence"]) >= 0 for r in csv_rows)
    assert [line["text"] for line in _jsonl(tmp_path)] == HOSTILE
    # NEL, LINE and PARAGRAPH SEPARATOR are escaped: str.splitlines() too sees one line per row
    assert len((tmp_path / "report.jsonl").read_text().splitlines()) == len(HOSTILE)
    assert pq.read_table(tmp_path / "report.parquet").column("text").to_pylist() == HOSTILE


def test_json_columns_hold_valid_json(compared: tuple[Path, list[RowResult]]) -> None:
    """CSV and JSONL cells of nested outputs are JSON text; the Parquet holds the values themselves."""
    folder, rows = compared
    _, csv_rows = _csv(folder)
    lines = _jsonl(folder)
    table = pq.read_table(folder / "report.parquet").to_pylist()
    for result, csv_row, line, record in zip(rows, csv_rows, lines, table, strict=True):
        assert json.loads(csv_row["tags"]) == json.loads(line["tags"]) == json.loads(record["tags"])
        if result.output is None:
            continue
        for column in ("output.similar", "compare.similar", "output.review_reasons"):
            assert json.loads(csv_row[column]) == json.loads(line[column]) == record[column]
        assert json.loads(line["output.similar"]) == result.output["similar"]
        duplicate = result.output["duplicate_of"]
        assert (csv_row["output.duplicate_of"] == "") == (duplicate is None)
        assert (line["output.duplicate_of"] is None) == (duplicate is None)
        assert record["output.duplicate_of"] == duplicate


# -- nested outputs in the Parquet report ----------------------------------------------------


def _read_parquet(folder: Path) -> list[dict[str, Any]]:
    """The Parquet report as Python values; maps as dicts (pyarrow's to_pylist gives pairs otherwise)."""
    records: list[dict[str, Any]] = pq.read_table(folder / "report.parquet").to_pylist(
        maps_as_pydicts="strict"
    )
    return records


def _assert_outputs_read_back(folder: Path, rows: list[RowResult], fields: list[str]) -> None:
    """Every output (and compare output) read back from the Parquet report equals the one written."""
    records = _read_parquet(folder)
    assert [record["row"] for record in records] == [result.row for result in rows]
    for result, record in zip(rows, records, strict=True):
        for prefix, output in (("output", result.output), ("compare", result.compare_output)):
            if f"{prefix}.{fields[0]}" not in record:
                continue
            read = {name: record[f"{prefix}.{name}"] for name in fields}
            assert read == (output or dict.fromkeys(fields)), (result.row, prefix)


def test_parquet_keeps_the_examples_nested_outputs_as_lists_and_structs(tmp_path: Path) -> None:
    schema = Triage.model_json_schema()
    rows = _triage_rows(120, comparing=True)  # every 10th row a duplicate, flagged rows with reasons
    first = rows[0].output
    assert first is not None
    # an empty list, and a nested optional left empty
    rows[0] = rows[0].model_copy(
        update={"output": {**first, "similar": [], "duplicate_of": {**first["similar"][0], "score": None}}}
    )
    _write(tmp_path, rows, _info("review-triage", schema), _meta(rows, {"x": 1}), TRIAGE_INPUTS)
    fields = list(schema["properties"])
    _assert_outputs_read_back(tmp_path, rows, fields)
    records = _read_parquet(tmp_path)
    assert records[0]["output.similar"] == [] and records[0]["output.duplicate_of"]["score"] is None
    assert records[1]["output.duplicate_of"] is None  # a missing optional object is None, not {}
    assert records[9]["output.duplicate_of"]["id"] == 10
    assert records[36]["output.similar"] is None and records[36]["error"]  # a failed row: no outputs
    # the CSV and the JSONL keep JSON text for them
    _, csv_rows = _csv(tmp_path)
    assert json.loads(csv_rows[2]["output.similar"]) == json.loads(_jsonl(tmp_path)[2]["output.similar"])
    assert json.loads(_jsonl(tmp_path)[2]["output.similar"]) == records[2]["output.similar"]


def test_parquet_keeps_the_rich_pipelines_nested_and_dict_outputs(
    tmp_path: Path, rich_artifacts: Path
) -> None:
    loaded = rich_pipeline.pipeline.load(rich_artifacts)
    info = loaded.describe()
    tickets: list[dict[str, Any]] = [
        example.model_dump(mode="json") for example in rich_pipeline.pipeline.examples.values()
    ]
    tickets += [
        {
            "subject": f"ticket {i}",
            "body": " ".join(["refund", "login", "crash down"][: i % 4]),
            "tags": ["x"],
        }
        for i in range(1, 40)
    ]
    outputs = loaded.run(tickets).outputs
    compared = loaded.run(tickets, {"scorer": "weighted"}).outputs
    rows = [
        RowResult(
            row=i,
            input={"subject": ticket["subject"]},
            output=output.model_dump(mode="json"),
            compare_output=compare.model_dump(mode="json"),
        )
        for i, (ticket, output, compare) in enumerate(zip(tickets, outputs, compared, strict=True), start=1)
    ]
    rows.append(RowResult(row=len(rows) + 1, input={"subject": "x"}, error="refused"))
    _write(tmp_path, rows, info, _meta(rows, {"scorer": "weighted"}), ["subject"])
    fields = list(info.output_schema["properties"])
    _assert_outputs_read_back(tmp_path, rows, fields)

    types = pq.read_table(tmp_path / "report.parquet").schema
    match = pa.struct([("keyword", pa.string()), ("team", pa.string()), ("count", pa.int64())])
    assert types.field("output.matches").type == pa.list_(match)
    assert types.field("compare.escalation").type == pa.struct(
        [("level", pa.string()), ("reason", pa.string())]
    )
    assert types.field("output.scores").type == pa.map_(pa.string(), pa.float64())  # keys vary: a map
    # what the rows cover: lists empty and not, escalations set and not
    produced = [r.output for r in rows if r.output is not None]
    assert {bool(o["matches"]) for o in produced} == {True, False}
    assert {o["escalation"] is None for o in produced} == {True, False}


class _Node(BaseModel):
    """A recursive model: Arrow has no type for it."""

    name: str
    children: list[_Node] = []


class _Odd(BaseModel):
    """Nested shapes Arrow cannot hold as they are, and some it can."""

    anything: dict[str, Any]
    either: int | list[int]
    pair: tuple[int, str]
    tree: _Node
    free: list[Any]
    grid: list[list[float | None]]
    counts: dict[str, int] | None


def test_parquet_keeps_json_text_for_what_arrow_cannot_hold(tmp_path: Path) -> None:
    schema = _Odd.model_json_schema()
    outputs = [
        _Odd(
            anything={"a": [1, "b"], str(n): None},
            either=n if n % 2 else [n, n],
            pair=(n, "x"),
            tree=_Node(name="root", children=[_Node(name=f"leaf {n}")]),
            free=[1, "two", None],
            grid=[[1.0, None], []],
            counts=None if n % 3 == 0 else {f"k{n}": n},
        ).model_dump(mode="json")
        for n in range(1, 7)
    ]
    rows = [RowResult(row=n, input={"text": "t"}, output=o) for n, o in enumerate(outputs, start=1)]
    _write(tmp_path, rows, _info("odd", schema), _meta(rows, None), ["text"])
    types = pq.read_table(tmp_path / "report.parquet").schema
    for name in ("anything", "either", "pair", "tree", "free"):
        assert types.field(f"output.{name}").type == pa.string(), name
    assert types.field("output.grid").type == pa.list_(pa.list_(pa.float64()))
    assert types.field("output.counts").type == pa.map_(pa.string(), pa.int64())
    for output, record in zip(outputs, _read_parquet(tmp_path), strict=True):
        for name, value in output.items():
            stored = record[f"output.{name}"]
            assert (
                json.loads(stored) if types.field(f"output.{name}").type == pa.string() else stored
            ) == value


def test_html_report_is_self_contained_and_says_what_ran(compared: tuple[Path, list[RowResult]]) -> None:
    folder, _ = compared
    html = (folder / "report.html").read_text(encoding="utf-8")
    _assert_offline(html)
    assert html.count("<svg") >= 5  # label, kind, sentiment and review-flag counts, and the histogram
    assert "<svg" in _section(html, "histograms")
    # a field whose every value is the same (and whose schema gives no range) has nothing to bin
    # the two variants are named by what differs between their flag sets, everywhere
    assert _captions(html)["kind_confidence"] == (
        "292 rows (classifier=tfidf), 292 rows (classifier=minilm), every one 0.900."
    )
    facts = {row[0]: row[1] for row in _tables(html)["ran"][0]}
    assert facts["File"] == "snippets.csv (csv)"
    assert facts["Rows in file"] == "300"
    assert facts["Rows failed"] == "8 (2.7%)"
    assert facts["Pipeline"] == "review-triage 0123456789ab"
    assert facts["Flags of classifier=tfidf"] == "classifier=tfidf"
    assert facts["Flags of classifier=minilm"] == "classifier=minilm"
    assert facts["Report columns"] == (
        "output.<field>: classifier=tfidf; compare.<field>: classifier=minilm (in the CSV, JSONL and Parquet)"
    )
    metadata = pq.read_schema(folder / "report.parquet").metadata
    assert (metadata[b"output"], metadata[b"compare"]) == (b"classifier=tfidf", b"classifier=minilm")
    assert facts["Duration"] == "1 min 20 s"
    assert facts["Throughput"] == "3.8 rows/s"
    assert facts["Submitted by"] == "Reviewer <One>"
    assert "Reviewer &lt;One&gt;" in html  # user text is escaped
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html


def test_html_lists_failed_rows_with_their_reasons(compared: tuple[Path, list[RowResult]]) -> None:
    folder, rows = compared
    html = (folder / "report.html").read_text(encoding="utf-8")
    failed = [(r.row, r.error) for r in rows if r.error]
    table = _tables(html)["failed"][0]
    assert table[1:] == [[str(row), error] for row, error in failed]
    assert f"{len(failed)}</span> rows failed" in _section(html, "failed")


def test_html_review_rows_flagged_first_then_by_confidence(compared: tuple[Path, list[RowResult]]) -> None:
    folder, rows = compared
    html = (folder / "report.html").read_text(encoding="utf-8")
    ok = [(r.row, r.output) for r in rows if r.output is not None]
    expected = sorted(ok, key=lambda item: (not item[1]["needs_review"], item[1]["confidence"], item[0]))[:50]
    reasons, table = _tables(html)["review"]
    flagged_total = sum(out["needs_review"] for _, out in ok)
    # why rows need review (the `reasons` role), counted over the flagged rows
    assert reasons == [["why (review_reasons)", "rows"], ["low confidence", f"{flagged_total:,}"]]
    header, body = table[0], table[1:]
    assert header == ["row", *TRIAGE_INPUTS, "label", "confidence", "needs_review", "review_reasons"]
    assert [int(line[0]) for line in body] == [row for row, _ in expected]
    flagged = [line for line in body if line[-2] == "yes"]
    rest = [line for line in body if line[-2] == "no"]
    assert flagged and rest and body == flagged + rest
    assert {line[-1] for line in flagged} == {"low confidence"} and {line[-1] for line in rest} == {""}
    for group in (flagged, rest):
        confidences = [float(line[-3]) for line in group]
        assert confidences == sorted(confidences)
    assert float(rest[0][-3]) == min(out["confidence"] for _, out in ok if not out["needs_review"])
    long_text = body[[int(line[0]) % 5 for line in body].index(0)][2]
    assert len(long_text) == 200 and long_text.endswith("…")
    assert f"{flagged_total}</span> rows flagged for review" in html


class _Reviewed(BaseModel):
    """Roles under names unlike the example's: a verdict, its certainty, a review mark and why."""

    verdict: Literal["yes", "no"] = Field(json_schema_extra={"x-role": "label"})
    certainty: float = Field(ge=0, le=1, json_schema_extra={"x-role": "confidence"})
    check: bool = Field(json_schema_extra={"x-role": "review"})
    why: list[str] = Field(json_schema_extra={"x-role": "reasons"})


REVIEW_REASONS = {0: ["disagrees with the index", "low certainty"], 1: ["low certainty"], 2: ["new <word>"]}


def _reviewed_rows(count: int) -> list[RowResult]:
    rows = []
    for n in range(1, count + 1):
        why = REVIEW_REASONS.get(n % 5, [])
        output = {"verdict": "yes", "certainty": (n * 37 % 100) / 100, "check": bool(why), "why": why}
        rows.append(RowResult(row=n, input={"text": f"t{n}"}, output=output))
    return rows


def test_html_review_list_is_ranked_by_need_and_can_be_filtered(tmp_path: Path) -> None:
    rows = _reviewed_rows(40)
    _write(tmp_path, rows, _info("reviewed", _Reviewed.model_json_schema()), _meta(rows, None), ["text"])
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    _assert_offline(html)
    section = " ".join(_section(html, "review").split())
    # flagged first, then more reasons, then the least certain: and the page says so
    assert (
        "ranked by need: flagged (check) before the rest; then by the number of reasons (why), most first;"
        " then by certainty, lowest first; ties in row order." in section
    )
    outputs = {r.row: r.output or {} for r in rows}
    expected = sorted(
        outputs, key=lambda n: (not outputs[n]["check"], -len(outputs[n]["why"]), outputs[n]["certainty"], n)
    )
    listed = re.findall(r'<tr data-reasons="([^"]*)"><td class="num">(\d+)</td>', html)
    assert [int(row) for _, row in listed] == expected

    # the filter: hidden until its script shows it (with script off every row stays listed), a text box,
    # and one tick box per reason in the list, the commonest first
    assert '<form id="review-filter" class="filter" hidden>' in html
    assert '<input type="search" id="review-text"' in html
    options = re.findall(r'name="reason" value="(\d+)">\s*(.*?) <span class="muted">\((\d+) listed\)', html)
    assert [(value, unescape(text)) for value, text, _ in options] == [
        ("0", "low certainty"),
        ("1", "disagrees with the index"),
        ("2", "new <word>"),
    ]
    assert [int(n) for *_, n in options] == [16, 8, 8]
    assert "new &lt;word&gt;" in html  # reasons are escaped like every other value
    names = {value: unescape(text) for value, text, _ in options}
    for indices, row in listed:
        assert sorted(names[i] for i in indices.split()) == sorted(outputs[int(row)]["why"]), row
    assert html.count("<script>") == 1 and "#review-rows tr[data-reasons]" in html

    # without a reasons role: the text box, no tick boxes; without review rows: no filter and no script
    scored = _scored_rows(10)
    _write(tmp_path, scored, _info("scored", _Scored.model_json_schema()), _meta(scored, None), ["text"])
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'id="review-text"' in html and 'name="reason"' not in html
    assert "ranked by need: by score, lowest first; ties in row order." in " ".join(html.split())
    tiny = _tiny_rows(5, set())
    _write(tmp_path, tiny, _info("tiny", Summary.model_json_schema()), _meta(tiny, None), TINY_INPUTS)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "review-filter" not in html and "<script" not in html


def test_the_most_confident_wrong_rows_say_how_to_keep_them_as_edge_cases(tmp_path: Path) -> None:
    rows = [
        r.model_copy(update={"input": {**r.input, "truth": LABELS[r.row % 2]}})
        for r in _triage_rows(60, comparing=True)
    ]
    schema = Triage.model_json_schema()
    meta = _meta(rows, {"x": 1}, truth={"label": "truth"})
    _write(tmp_path, rows, _info("review-triage", schema), meta, [*TRIAGE_INPUTS, "truth"])
    scores = " ".join(_section((tmp_path / "report.html").read_text(encoding="utf-8"), "scores").split())
    hint = "wrong rows as edge cases: <code>just case add --from-job job-1</code>"
    # one line under each list of the most confident wrong rows, one list per flag set
    assert scores.count("the most confident wrong rows") == 2 and scores.count(hint) == 2
    # a job with no truth column has no wrong rows, and no hint
    _write(tmp_path, rows, _info("review-triage", schema), _meta(rows, {"x": 1}), [*TRIAGE_INPUTS, "truth"])
    assert "just case add" not in (tmp_path / "report.html").read_text(encoding="utf-8")


def test_html_comparison_agreement_confusion_and_changed_rows(compared: tuple[Path, list[RowResult]]) -> None:
    folder, rows = compared
    html = (folder / "report.html").read_text(encoding="utf-8")
    pairs = [(r.output["label"], r.compare_output["label"], r) for r in rows if r.output and r.compare_output]
    agreed = sum(a == b for a, b, _ in pairs)
    rate = f"{100 * agreed / len(pairs):.1f}%"
    section = _section(html, "comparison")
    assert f"{rate}</span> ({agreed} of {len(pairs)} rows" in section

    tables = _tables(html)["comparison"]
    fields, confusion, changed = tables[0], tables[1], tables[-1]
    both = [r for _, _, r in pairs if r.output and r.compare_output]
    for line in fields[1:]:  # every output field: rows where it changed, and the agreement
        changes = sum((r.output or {})[line[0]] != (r.compare_output or {})[line[0]] for r in both)
        assert int(line[2]) == changes, line
        assert line[3] == f"{100 * (len(both) - changes) / len(both):.1f}%"
    kinds = {line[0]: line[1] for line in fields[1:]}
    assert kinds == {
        "label": "categorical (decision)",
        "confidence": "numeric",
        "kind": "categorical (decision)",
        "kind_confidence": "numeric",
        "sentiment": "categorical (decision)",
        "sentiment_confidence": "numeric",
        "needs_review": "categorical (decision)",
        "review_reasons": "list",
        "duplicate_of": "object (decision)",
        "similar": "list",
    }
    # the confidence never moved: its drift is all zeros, against the tolerance the schema declares
    assert {line[0]: line[4:] for line in fields[1:]}["confidence"] == ["0", "0", "0", "0.05"]
    # the headline leads with the decisions, counted by hand
    moved = {
        name: sum((r.output or {})[name] != (r.compare_output or {})[name] for r in both)
        for name in ("label", "kind", "sentiment")
    }
    assert section.split('<p class="headline">')[1].startswith(
        f"Label changed on {moved['label']} of {len(both)} rows, kind on {moved['kind']}, "
        f"sentiment on {moved['sentiment']}; confidence did not move; kind_confidence did not move"
    )
    # a table of what became what for the label, and for each other categorical field that changed
    titles = re.findall(r"<h3>(\w+): classifier=tfidf \(rows\) against classifier=minilm", section)
    assert titles == ["label", "kind", "sentiment"]
    columns = confusion[0][1:-1]
    assert set(columns) == set(LABELS)
    for line in confusion[1:]:
        expected = [sum(1 for a, b, _ in pairs if a == line[0] and b == column) for column in columns]
        assert [int(cell) for cell in line[1:-1]] == expected
        assert int(line[-1]) == sum(expected)

    # a row changed when any output field did, not only the label
    differing = [r for r in both if r.output != r.compare_output]
    assert [int(line[0]) for line in changed[1:]] == [r.row for r in differing]
    first = differing[0]
    assert first.output and first.compare_output
    assert changed[1][-5:] == [
        first.output["label"],
        f"{first.output['confidence']:.3f}",
        first.compare_output["label"],
        f"{first.compare_output['confidence']:.3f}",
        "\n".join(
            f"{k}: {_shown(first.output[k])} \u2192 {_shown(first.compare_output[k])}"
            for k in first.output
            if first.output[k] != first.compare_output[k]
        ),
    ]


def test_without_compare_flags_there_are_no_comparison_columns(tmp_path: Path) -> None:
    rows = _triage_rows(120, comparing=False)
    _write(
        tmp_path, rows, _info("review-triage", Triage.model_json_schema()), _meta(rows, None), TRIAGE_INPUTS
    )
    header, csv_rows = _csv(tmp_path)
    assert not any(name.startswith("compare.") for name in header)
    assert not any(
        name.startswith("compare.") for name in pq.read_table(tmp_path / "report.parquet").column_names
    )
    assert not any(key.startswith("compare.") for key in _jsonl(tmp_path)[0])
    assert len(csv_rows) == 120
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert 'id="comparison"' not in html
    assert "Compare flags" not in html


def test_a_schema_without_roles_still_gets_all_four_reports(tmp_path: Path) -> None:
    failing = set(range(40, 301))  # more failures than the HTML lists
    rows = _tiny_rows(300, failing)
    formats = _write(
        tmp_path, rows, _info("tiny", Summary.model_json_schema()), _meta(rows, None), TINY_INPUTS
    )
    assert formats == ["html", "csv", "jsonl", "parquet"]
    assert all((tmp_path / name).stat().st_size > 0 for name in FILES)

    expected = ["row", "values", "unit", "output.value", "output.unit", "output.spread", "error"]
    header, csv_rows = _csv(tmp_path)
    table = pq.read_table(tmp_path / "report.parquet")
    lines = _jsonl(tmp_path)
    assert header == table.column_names == list(lines[0]) == expected
    assert len(csv_rows) == len(lines) == table.num_rows == 300
    assert table.schema.field("output.value").type == pa.float64()
    assert table.schema.field("output.spread").type == pa.float64()
    assert table.column("output.value").to_pylist()[:3] == [1.5, 3.0, 4.5]
    assert table.column("output.spread").to_pylist()[:3] == [-1.5, -0.5, None]
    assert json.loads(csv_rows[0]["values"]) == [1, 2.5]
    assert lines[39]["error"] == "bad reading 40" and lines[39]["output.value"] is None

    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    _assert_offline(html)
    assert "no review or confidence field" in _section(html, "review")
    # a short text field (unit) is counted like an enum; every numeric field gets a histogram
    assert "no categorical fields" not in _section(html, "distribution")
    assert "<svg" in _section(html, "distribution") and ">unit</text>" in _section(html, "distribution")
    assert _numeric(html)[("value", "flags")] == ["39", "30", "1.5", "15.75", "30", "44.25", "58.5"]
    assert _captions(html) == {
        "value": "39 rows from 1.5 to 58.5 (the data's range), in bins of 2.85.",
        "spread": "26 rows from -1.5 to 35.5 (the data's range), in bins of 1.85.",
    }
    failed_table = _tables(html)["failed"][0][1:]
    assert len(failed_table) == 200
    assert failed_table[0] == ["40", "bad reading 40"]
    assert "261</span> rows failed; the first 200" in " ".join(html.split())


def test_a_schema_without_roles_can_be_compared(tmp_path: Path) -> None:
    rows = [r.model_copy(update={"compare_output": r.output}) for r in _tiny_rows(30, {7})]
    rows[4] = rows[4].model_copy(update={"compare_output": {**(rows[4].output or {}), "value": -1.0}})
    _write(tmp_path, rows, _info("tiny", Summary.model_json_schema()), _meta(rows, {"scale": 2}), TINY_INPUTS)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    section = " ".join(_section(html, "comparison").split())
    assert "on the whole output" in section and "96.6%</span> (28 of 29 rows" in section
    assert (
        "1</span> of 29 rows with both outputs changed in at least one field, a number counting only past"
        in section
    )
    tables = _tables(html)["comparison"]
    fields, changed = tables[0], tables[-1]
    assert [line[0] for line in changed[1:]] == ["5"] and changed[1][-1] == "value: 7.5 \u2192 -1.0"
    gap = abs((rows[4].output or {})["value"] - -1.0)  # the one changed value, of 29 compared rows
    by_field = {line[0]: line[1:] for line in fields[1:]}
    # an unbounded number counts as changed past 5% of the larger of its two values
    assert by_field["value"] == ["numeric", "1", "96.6%", "0", "0", f"{gap:g}", "5% of the larger value"]
    assert by_field["unit"] == ["categorical", "0", "100.0%", "", "", "", ""]
    headline = section.split('<p class="headline">')[1].split("</p>")[0]
    assert headline == (
        f"Value moved by median 0, 95th percentile 0, largest {gap:g} "
        "(1 row past its tolerance of 5% of the larger value); spread did not move."
    )
    assert pq.read_table(tmp_path / "report.parquet").column("compare.value").to_pylist()[4] == -1.0


def test_rows_are_streamed_and_reports_are_deterministic(tmp_path: Path) -> None:
    """The machine formats are written while rows arrive, and two runs give the same bytes."""
    total = 2500
    info = _info("review-triage", Triage.model_json_schema())
    source = _triage_rows(total, comparing=True)
    meta = _meta(source, {"classifier": "minilm"})
    handles: dict[str, IO[bytes]] = {}
    written_midway: list[int] = []
    calls: list[int] = []

    def open_file(name: str) -> AbstractContextManager[IO[bytes]]:
        handle = (tmp_path / "first" / name).open("wb")
        handles[name] = handle
        return handle

    def rows() -> Iterator[RowResult]:
        calls.append(1)
        for result in source:
            if result.row == 1500:  # the first batch of 1000 must already be in the files
                written_midway.append(handles["report.csv"].tell())
                written_midway.append(handles["report.jsonl"].tell())
            yield result

    (tmp_path / "first").mkdir()
    write_reports(rows, meta, info, TRIAGE_INPUTS, open_file)
    assert calls and len(written_midway) == 2 * len(calls)
    assert all(size > 100_000 for size in written_midway)
    assert len(_jsonl(tmp_path / "first")) == total

    write_reports(lambda: iter(source), meta, info, TRIAGE_INPUTS, _opener(tmp_path / "second"))
    for name in FILES:
        assert (tmp_path / "first" / name).read_bytes() == (tmp_path / "second" / name).read_bytes(), name
    assert pq.ParquetFile(tmp_path / "first" / "report.parquet").metadata.num_row_groups == 3


def test_html_escapes_input_that_looks_like_markup(tmp_path: Path) -> None:
    rows = _triage_rows(3, comparing=False)
    rows[0] = rows[0].model_copy(update={"input": {**rows[0].input, "text": '<script src="https://x">'}})
    _write(
        tmp_path, rows, _info("review-triage", Triage.model_json_schema()), _meta(rows, None), TRIAGE_INPUTS
    )
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    _assert_offline(html)
    assert str(escape('<script src="https://x">')) in html


class _Scored(BaseModel):
    """An output whose confidence runs 0-100, a priority and an urgency a flag may change, and a list."""

    verdict: Literal["yes", "no"] = Field(json_schema_extra={"x-role": "label"})
    score: float = Field(ge=0, le=100, json_schema_extra={"x-role": "confidence"})
    priority: int
    urgency: Literal["low", "high"]
    notes: list[str]


class _Unbounded(BaseModel):
    """An output whose confidence has no bounds in its schema."""

    verdict: str = Field(json_schema_extra={"x-role": "label"})
    score: float = Field(json_schema_extra={"x-role": "confidence"})


def _scored(n: int, compare: bool) -> dict[str, Any]:
    """The compare flags raise the priority of every third row and make every sixth row's urgency high."""
    raised = compare and n % 3 == 0
    return {
        "verdict": "yes" if n % 2 else "no",
        "score": float(n % 100),
        "priority": n % 4 + raised,
        "urgency": "high" if compare and n % 6 == 0 else "low",
        "notes": ["raised"] if raised else [],
    }


def _scored_rows(count: int) -> list[RowResult]:
    return [
        RowResult(row=n, input={"text": f"t{n}"}, output=_scored(n, False), compare_output=_scored(n, True))
        for n in range(1, count + 1)
    ]


def test_a_second_flag_set_that_changes_only_other_fields_is_counted(tmp_path: Path) -> None:
    """The finding: a flag changed the priority of 32 of 98 rows, and the report said 1 row changed."""
    rows = _scored_rows(98)
    _write(tmp_path, rows, _info("scored", _Scored.model_json_schema()), _meta(rows, {"x": 1}), ["text"])
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    section = " ".join(_section(html, "comparison").split())
    assert "100.0%</span> (98 of 98 rows" in section  # the verdict never changed...
    # ...but the priority (and with it the notes) of every third row did, the urgency of every sixth
    assert "16</span> of 98 rows with both outputs changed a decision (16.3%)" in section
    assert "32 rows (32.7%) changed in any field" in section
    tables = _tables(html)["comparison"]
    fields = {line[0]: line[1:] for line in tables[0][1:]}
    # an integer without bounds changes by any step; the score's tolerance is 5% of its 0-100 range
    assert fields == {
        "verdict": ["categorical (decision)", "0", "100.0%", "", "", "", ""],
        "score": ["numeric", "0", "100.0%", "0", "0", "0", "5"],
        "priority": ["numeric", "32", "67.3%", "0", "1", "1", "0"],
        "urgency": ["categorical (decision)", "16", "83.7%", "", "", "", ""],
        "notes": ["list", "32", "67.3%", "", "", "", ""],
    }
    assert section.split('<p class="headline">')[1].split("</p>")[0] == (
        "Verdict the same on all 98, urgency changed on 16 of 98 rows; score did not move; priority moved by "
        "median 0, 95th percentile 1, largest 1 (changed on 32 rows); notes changed on 32 rows."
    )
    # the verdict's table and the urgency's: what became what
    titles = re.findall(r"<h3>(\w+): classifier=tfidf \(rows\) against x=1", section)
    assert titles == ["verdict", "urgency"]
    urgency = tables[2]
    assert urgency[0] == ["", "low", "high", "total"]
    assert urgency[1:] == [["low", "82", "16", "98"], ["high", "0", "0", "0"]]
    # every changed row is listed with what changed in it
    changed = tables[-1]
    assert [int(line[0]) for line in changed[1:]] == list(range(3, 99, 3))
    assert changed[1][-1] == 'priority: 3 \u2192 4\nnotes: [] \u2192 ["raised"]'
    assert changed[2][-1] == 'priority: 2 \u2192 3\nurgency: low \u2192 high\nnotes: [] \u2192 ["raised"]'


def test_numeric_summaries_cover_both_flag_sets_side_by_side(tmp_path: Path) -> None:
    rows = _scored_rows(40)
    _write(tmp_path, rows, _info("scored", _Scored.model_json_schema()), _meta(rows, {"x": 1}), ["text"])
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    numeric = _numeric(html)
    assert list(numeric) == [
        ("score", "classifier=tfidf"),
        ("score", "x=1"),
        ("priority", "classifier=tfidf"),
        ("priority", "x=1"),
    ]
    # rows, mean, min, 25%, median, 75%, max: priorities 1, 2, 3, 0, ...; 13 of them raised by one
    assert numeric[("priority", "classifier=tfidf")] == ["40", "1.5", "0", "0.750", "1.5", "2.25", "3"]
    assert numeric[("priority", "x=1")] == ["40", "1.825", "0", "1", "2", "3", "4"]
    assert numeric[("score", "classifier=tfidf")] == numeric[("score", "x=1")]
    assert numeric[("score", "classifier=tfidf")] == ["40", "20.5", "1", "10.75", "20.5", "30.25", "40"]
    # lists: rows with a value, empty ones, none, and their mean size, for each flag set
    shapes = _spanned(_tables(html)["distribution"][1], 7)
    assert shapes == [
        ["notes", "list", "classifier=tfidf", "40", "40", "0", "0"],
        ["notes", "list", "x=1", "40", "27", "0", "0.325"],
    ]


def test_histograms_span_the_schemas_range_or_else_the_datas(tmp_path: Path) -> None:
    rows = _scored_rows(40)
    _write(tmp_path, rows, _info("scored", _Scored.model_json_schema()), _meta(rows, None), ["text"])
    captions = _captions((tmp_path / "report.html").read_text(encoding="utf-8"))
    assert captions == {
        "score": "40 rows from 0 to 100 (the schema's range), in bins of 5.",
        "priority": "40 rows from 0 to 3 (the data's range), one bin per value.",
    }

    loose = [r.model_copy(update={"output": {"verdict": "a", "score": 10.0 + r.row}}) for r in rows]
    _write(tmp_path, loose, _info("loose", _Unbounded.model_json_schema()), _meta(loose, None), ["text"])
    captions = _captions((tmp_path / "report.html").read_text(encoding="utf-8"))
    assert captions == {"score": "40 rows from 11 to 50 (the data's range), in bins of 1.95."}


def test_histogram_bounds_are_read_through_refs_and_any_of(tmp_path: Path) -> None:
    schema = {
        "$defs": {"Percent": {"type": "number", "minimum": 0, "maximum": 100}},
        "properties": {
            "score": {"anyOf": [{"$ref": "#/$defs/Percent"}, {"type": "null"}], "x-role": "confidence"},
            "load": {"allOf": [{"$ref": "#/$defs/Percent"}]},
            "ratio": {"type": "number", "exclusiveMinimum": 0},
        },
    }
    rows = [
        RowResult(row=n, input={"text": "t"}, output={"score": n / 2, "load": n, "ratio": n / 4})
        for n in range(1, 41)
    ]
    _write(tmp_path, rows, _info("percent", schema), _meta(rows, None), ["text"])
    assert _captions((tmp_path / "report.html").read_text(encoding="utf-8")) == {
        "score": "40 rows from 0 to 100 (the schema's range), in bins of 5.",
        "load": "40 rows from 0 to 100 (the schema's range), in bins of 5.",
        "ratio": "40 rows from 0 to 10 (the schema's bound and the data's), in bins of 0.500.",
    }


def test_quantiles_come_from_a_bounded_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sample, "SAMPLE_SIZE", 500)
    numbers, again = statistics.Numbers(), statistics.Numbers()
    for value in range(10_000):
        numbers.add(float(value))
        again.add(float(value))
    assert len(numbers.values) == 500 and numbers.sampled
    assert (numbers.count, numbers.mean, numbers.low, numbers.high) == (10_000, 4999.5, 0, 9999)
    median = numbers.quantile(0.5)
    assert median is not None and abs(median - 4999.5) < 600  # a uniform sample's median
    assert list(numbers.values) == list(again.values)  # the same sample every run


def test_a_field_of_many_values_gets_its_commonest_changes_not_a_matrix(tmp_path: Path) -> None:
    letters = [chr(ord("a") + i) for i in range(15)]
    schema = {"properties": {"code": {"enum": letters, "type": "string"}, "note": {"type": "string"}}}
    rows = [
        RowResult(
            row=n,
            input={"text": "t"},
            output={"code": letters[n % 15], "note": "x" * 80},  # a long text: counted, not charted
            compare_output={"code": letters[(n + (n % 2)) % 15], "note": "x" * 80},
        )
        for n in range(1, 61)
    ]
    _write(tmp_path, rows, _info("codes", schema), _meta(rows, {"x": 1}), ["text"])
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    section = " ".join(_section(html, "comparison").split())
    assert "<h3>code: what it became</h3>" in section  # 15 kinds of change, all listed
    changes = _tables(html)["comparison"][1]
    assert changes[0] == ["classifier=tfidf", "x=1", "rows", "share"]
    assert len(changes) == 16 and changes[1] == ["a", "b", "2", "3.3%"]
    assert {line[0]: line[1] for line in _tables(html)["comparison"][0][1:]} == {
        "code": "categorical (decision)",
        "note": "text",
    }
    assert ">note</text>" not in _section(html, "distribution")
    shapes = _tables(html)["distribution"][-1]
    assert shapes[1:] == [
        ["note", "text", "classifier=tfidf", "60", "0", "0", ""],
        ["x=1", "60", "0", "0", ""],
    ]
