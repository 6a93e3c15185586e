"""Long rows (issue 20, item 2): a row too long or too large to send fails alone, and the job goes on.

First the worker's parts as plain functions (the length check, the body measure, the packing, the
runner's calls against a fake model service); then real stacks (a gateway, a Celery worker and the
example's model service) over CSV, JSONL and Parquet files, asserting row by row in every report.
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from batch_worker.runner import JobRunner
from batch_worker.sending import InputLimits, envelope_size, json_size, pack
from batch_worker.settings import Settings
from onepipe import PipelineInfo
from onepipe.errors import PipelineInputError
from onepipe.platform.http.client import ServiceFailedError, ServiceRejectedError
from onepipe.platform.http.envelopes import PredictResponse
from onepipe.platform.jobs.datasets import Row
from onepipe.platform.jobs.storage import JobStore
from onepipe.platform.jobs.types import JobMeta, JobSpec
from onepipe_harness.processes import RedisServer, ServiceProcess
from review_triage.pipeline import pipeline as example
from tests import rich_pipeline
from tests.stacks import Stack, csv_bytes, stack

FINE = "A sharp and funny film with a warm heart"
TOO_LONG = "text: String should have at most 5000 characters"  # the model service's words
MODEL_LIMIT = 4 * 1024 * 1024  # the model service's MODEL_MAX_BODY_BYTES, by default


PINNED = "0123456789ab"  # the version hash the chunks' job is pinned to, as for every chunk after its first


def _body(
    inputs: Sequence[Mapping[str, Any]], flags: Mapping[str, Any], version: str | None = PINNED
) -> bytes:
    """A predict body exactly as the model-service client sends it (httpx encodes it)."""
    body = {"inputs": list(inputs), "flags": dict(flags), "debug": False}
    body |= {"version": version} if version is not None else {}
    return httpx.Request("POST", "http://model/v1/predict", json=body).content


# -- the parts, without a server ------------------------------------------------------------------------


def _service_says(definition: Any, value: dict[str, Any]) -> str:
    """The reason the worker reports when the model service refuses this input (its 422, as read)."""
    with pytest.raises(PipelineInputError) as refused:
        definition.validate_inputs([value], strict=True)
    return "; ".join(f"{p.loc.removeprefix('inputs[0].')}: {p.message}" for p in refused.value.problems)


@pytest.mark.parametrize(
    ("definition", "value"),
    [
        pytest.param(example, {"text": "x" * 5001}, id="text-5001"),
        pytest.param(example, {"text": "x" * 60_000}, id="text-60000"),
        pytest.param(rich_pipeline.pipeline, {"subject": "s" * 201}, id="subject"),
        pytest.param(rich_pipeline.pipeline, {"subject": "s", "body": "b" * 2001}, id="body"),
        pytest.param(rich_pipeline.pipeline, {"subject": "s", "tags": ["billing"] * 6}, id="tags"),
        pytest.param(rich_pipeline.pipeline, {"subject": "s", "tags": ["ok", "t" * 31]}, id="a-tag"),
        pytest.param(rich_pipeline.pipeline, {"subject": "s" * 300, "body": "b" * 3000}, id="both"),
    ],
)
def test_a_row_over_a_length_limit_is_refused_in_the_model_services_words(
    definition: Any, value: dict[str, Any]
) -> None:
    limits = InputLimits(definition.describe("v").input_schema)
    assert limits.refusal(value) == _service_says(definition, value)


def test_rows_within_the_length_limits_are_left_to_the_model_service() -> None:
    limits = InputLimits(example.describe("v").input_schema)
    assert limits.refusal({"text": "x" * 5000}) is None
    assert limits.refusal({"text": "\U0001f3ac" * 5000}) is None  # characters, not bytes
    # other problems are the model service's to judge, in its own words
    assert limits.refusal({"text": "   "}) is None
    assert limits.refusal({"text": 12345}) is None
    assert limits.refusal({}) is None


@pytest.mark.parametrize(
    "text", [FINE, "caf\u00e9 \u00fcber \U0001f3ac", 'tab\tnew\nline \x01 quote" back\\slash', "</script>"]
)
def test_the_body_is_measured_as_the_client_encodes_it(text: str) -> None:
    inputs = [{"text": text}, {"text": text * 3}]
    flags = {"neighbours": 2, "classifier": "minilm"}
    measured = envelope_size(flags, PINNED) + sum(json_size(i) for i in inputs) + len(inputs) - 1
    assert measured == len(_body(inputs, flags))
    assert envelope_size(flags, PINNED) == len(_body([], flags))
    assert envelope_size(flags) == len(_body([], flags, None))  # the champion: no version sent


def test_pack_fills_each_call_to_the_limit_and_sets_aside_the_rows_too_large_alone() -> None:
    packing = pack({0: 10, 1: 10, 2: 100, 3: 10, 4: 10, 5: 24}, envelope=20, limit=45)
    # [0, 1]: 20 + 10 + 10 + a comma = 41; [3, 4] the same; 5 alone: 44; 2 alone would be 120
    assert packing.calls == [[0, 1], [3, 4], [5]]
    assert packing.too_large == {2: 120}
    assert pack({}, envelope=20, limit=45).calls == []
    assert pack({7: 25}, envelope=20, limit=45).calls == [[7]]  # exactly at the limit: sent


def test_packed_calls_never_pass_the_limit_and_each_is_as_full_as_it_can_be() -> None:
    generator = random.Random(20)
    flags = {"neighbours": 5}
    inputs = {i: {"text": "\u00e9" * generator.choice([1, 40, 900, 3000, 5000])} for i in range(300)}
    limit = 20_000
    packing = pack({i: json_size(v) for i, v in inputs.items()}, envelope_size(flags, PINNED), limit)
    sent = [i for call in packing.calls for i in call]
    assert sent == sorted(set(inputs) - set(packing.too_large))  # every row once, in order
    assert packing.too_large == {}  # the largest, 10,000 bytes, fits alone
    for call, following in zip(packing.calls, packing.calls[1:], strict=False):
        assert len(_body([inputs[i] for i in call], flags)) <= limit
        # the next row would not have fitted: no call is cut short
        assert len(_body([inputs[i] for i in [*call, following[0]]], flags)) > limit
    assert len(_body([inputs[i] for i in packing.calls[-1]], flags)) <= limit


class FakeModelService:
    """Answers like the model service: 413 over its body limit, a label per input otherwise."""

    def __init__(self, limit: int, fails_on: str | None = None) -> None:
        self.limit = limit
        self.fails_on = fails_on  # a text the pipeline crashes on (500)
        self.calls: list[tuple[int, int]] = []  # (inputs, body bytes) of each call answered or refused

    def predict(
        self, inputs: Sequence[Mapping[str, Any]], flags: Mapping[str, Any], version: str | None = None
    ) -> PredictResponse:
        assert version == PINNED
        size = len(_body(inputs, flags, version))
        self.calls.append((len(inputs), size))
        if size > self.limit:
            detail = f"the request body is {size} bytes; the limit is {self.limit} bytes"
            raise ServiceRejectedError("model service", 413, {"status": 413, "detail": detail})
        if any(i["text"] == self.fails_on for i in inputs):
            raise ServiceFailedError("model service", "failed with 500: Internal Server Error", 500)
        label = "plot" if flags.get("neighbours") else "fresh"
        return PredictResponse(
            version=PINNED, outputs=[{"label": label, "chars": len(i["text"])} for i in inputs]
        )


def _runner(tmp_path: Path, service: FakeModelService, worker_limit: int) -> JobRunner:
    settings = Settings(_env_file=None, model_max_body_bytes=worker_limit)
    return JobRunner(JobStore(str(tmp_path)), service, settings, send=lambda *_: None)  # type: ignore[arg-type]


def _chunk(tmp_path: Path, service: FakeModelService, worker_limit: int, texts: list[str]) -> list[Any]:
    meta = JobMeta(
        id="j1",
        owner="o",
        owner_name="o",
        spec=JobSpec(
            file_name="f.csv",
            file_format="csv",
            mapping={"text": "text"},
            compare_flags={"neighbours": 1, "review_below": 0.25},
        ),
        pipeline_version=PINNED,
    )
    info: PipelineInfo = example.describe("v")
    rows = [Row(number, {"text": text}) for number, text in enumerate(texts, start=1)]
    runner = _runner(tmp_path, service, worker_limit)
    return runner.caller.chunk_results(meta, info, InputLimits(info.input_schema), {"text": "text"}, rows)


CLAPPER = "\U0001f3ac"  # four bytes in UTF-8, one character
# a row of 5,000 four-byte characters: within the schema, 20,000 bytes as JSON
WIDE = CLAPPER * 5000
LONG_ROWS = [FINE, "w" * 6000, *(FINE + f" {i}" for i in range(8)), WIDE, FINE, "x" * 300_000, FINE]


def test_a_chunk_sends_only_rows_that_fit_and_each_row_fails_alone_with_its_reason(tmp_path: Path) -> None:
    service = FakeModelService(limit=20_000)
    results = _chunk(tmp_path, service, 20_000, LONG_ROWS)
    assert [r.row for r in results] == list(range(1, 15))
    wide_body = len(_body([{"text": WIDE}], {}))
    assert {r.row: r.error for r in results if r.error} == {
        2: TOO_LONG,
        11: f"too large to send to the model service: the request body is {wide_body} bytes; "
        "the limit is 20000 bytes",
        13: TOO_LONG,
    }
    good = [r for r in results if r.error is None]
    assert [r.output["label"] for r in good] == ["fresh"] * 11
    assert [r.compare_output["label"] for r in good] == ["plot"] * 11  # the compare flags' call too
    assert [r.output["chars"] for r in good] == [len(r.input["text"]) for r in good]
    assert all(size <= 20_000 for _, size in service.calls)  # never a 413: nothing over the limit sent


def test_a_413_from_the_model_service_splits_the_call_down_to_the_row_too_large(tmp_path: Path) -> None:
    # the worker thinks the limit is 64 MiB; the service takes 30,000 bytes
    service = FakeModelService(limit=30_000)
    texts = [FINE, "\u00e9" * 4000, WIDE, "\u00e9" * 4000, FINE, "\u00e9" * 5000, WIDE, FINE]
    results = _chunk(tmp_path, service, 64 * 1024 * 1024, texts)
    errors = {r.row: r.error for r in results if r.error}
    assert errors == {}, errors  # each call is split until it fits; every row fits alone
    assert [r.output["chars"] for r in results] == [len(t) for t in texts]
    assert any(size > 30_000 for _, size in service.calls)  # refused first, then split
    refused = [(n, size) for n, size in service.calls if size > 30_000]
    assert all(n > 1 for n, _ in refused)

    tight = FakeModelService(limit=19_000)  # now a WIDE row is over the service's limit alone
    results = _chunk(tmp_path, tight, 64 * 1024 * 1024, [FINE, WIDE, FINE, FINE])
    wide_body = len(_body([{"text": WIDE}], {}))
    assert {r.row: r.error for r in results if r.error} == {
        2: f"too large to send to the model service: the request body is {wide_body} bytes; "
        "the limit is 19000 bytes"
    }
    assert [r.output["label"] for r in results if r.error is None] == ["fresh"] * 3


def test_a_413_and_a_500_in_one_chunk_each_fail_only_their_row(tmp_path: Path) -> None:
    service = FakeModelService(limit=19_000, fails_on="crash")
    texts = [FINE, WIDE, "crash", *(FINE + f" {i}" for i in range(5)), "\u00e9" * 4000]
    results = _chunk(tmp_path, service, 64 * 1024 * 1024, texts)
    assert {r.row: r.error for r in results if r.error} == {
        2: f"too large to send to the model service: the request body is {len(_body([{'text': WIDE}], {}))} "
        "bytes; the limit is 19000 bytes",
        3: "the pipeline failed on this row (the model service answered 500)",
    }
    assert [r.output["chars"] for r in results if r.error is None] == [len(FINE), *[len(FINE) + 2] * 5, 4000]


def test_a_row_that_fits_with_the_flags_but_not_with_the_compare_flags_fails_with_them(
    tmp_path: Path,
) -> None:
    wide_body = len(_body([{"text": WIDE}], {}))
    compare_body = len(_body([{"text": WIDE}], {"neighbours": 1, "review_below": 0.25}))
    service = FakeModelService(limit=wide_body)
    results = _chunk(tmp_path, service, wide_body, [FINE, WIDE, FINE])
    assert results[1].output == {"label": "fresh", "chars": 5000}
    assert results[1].error == (
        "with the compare flags: too large to send to the model service: "
        f"the request body is {compare_body} bytes; the limit is {wide_body} bytes"
    )
    assert [r.compare_output for r in (results[0], results[2])] == [{"label": "plot", "chars": len(FINE)}] * 2


# -- real stacks ----------------------------------------------------------------------------------------

HUGE = "x" * 5_000_000  # over the model service's real body limit (4 MiB) on its own


def _texts() -> list[str]:
    """Rows 2 and 5 too long for the schema (5 over the model service's body limit), row 4 too large."""
    return [FINE, "word " * 1200, FINE + " 3", WIDE, HUGE, *(f"{FINE} {i}" for i in range(6, 46))]


def _file(file_format: str, texts: list[str]) -> bytes:
    if file_format == "csv":
        return csv_bytes([{"id": i, "text": t} for i, t in enumerate(texts, start=1)])
    if file_format == "jsonl":
        return "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(texts, start=1)).encode()
    sink = io.BytesIO()
    pq.write_table(pa.table({"id": list(range(1, len(texts) + 1)), "text": texts}), sink)
    return sink.getvalue()


def _body_alone(text: str) -> int:
    return len(_body([{"text": text}], {}, None))  # in a job's first chunk: no version pinned yet


def _expected(file_format: str) -> dict[int, str]:
    huge = (
        # the CSV reader stops at its field limit first; JSONL and Parquet rows are read whole
        "not valid CSV (line 6): a value is longer than the limit of 131072 characters"
        if file_format == "csv"
        else TOO_LONG
    )
    return {
        2: TOO_LONG,
        4: f"too large to send to the model service: the request body is {_body_alone(WIDE)} bytes; "
        "the limit is 20000 bytes",
        5: huge,
    }


@pytest.fixture(scope="module")
def small_limit(
    redis_server: RedisServer, example_service: ServiceProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """A worker that sends the model service at most 20,000 bytes a call."""
    with stack(
        example_service.url,
        tmp_path_factory.mktemp("long-rows"),
        redis=redis_server.url(5),
        WORKER_MODEL_MAX_BODY_BYTES="20000",
        GATEWAY_MAX_UPLOAD_BYTES="12000000",
    ) as started:
        yield started


def _csv_table(content: bytes) -> list[dict[str, str]]:
    previous = csv.field_size_limit(sys.maxsize)  # the report holds the 5 MB text
    try:
        return list(csv.DictReader(io.StringIO(content.decode(), newline="")))
    finally:
        csv.field_size_limit(previous)


def _html_failed(html: str) -> dict[int, str]:
    section = html.split("rows failed", 1)[1].split("</table>", 1)[0]
    found = re.findall(r'<tr><td class="num">(\d+)</td><td class="wrap">(.*?)</td></tr>', section)
    return {int(row): reason for row, reason in found}


@pytest.mark.parametrize("file_format", ["csv", "jsonl", "parquet"])
def test_long_rows_fail_alone_and_every_other_row_is_answered_in_every_report(
    small_limit: Stack, file_format: str
) -> None:
    texts = _texts()
    compare = {"neighbours": 1}
    answer = small_limit.submit(f"long.{file_format}", _file(file_format, texts), compare_flags=compare)
    assert answer.status_code == 202, answer.text
    job = small_limit.wait(answer.json()["id"])
    expected = _expected(file_format)
    assert job["state"] == "succeeded", job
    assert (job["rows_total"], job["rows_done"], job["rows_failed"]) == (45, 45, 3)
    numbers = list(range(1, 46))
    good = [n for n in numbers if n not in expected]

    records = [json.loads(line) for line in small_limit.report(job, "jsonl").splitlines()]
    assert [r["row"] for r in records] == numbers
    assert {r["row"]: r["error"] for r in records if r["error"]} == expected
    assert all(records[n - 1]["output.label"] in ("fresh", "rotten", "plot") for n in good)
    assert all(records[n - 1]["compare.label"] in ("fresh", "rotten", "plot") for n in good)
    assert [records[n - 1]["text"] for n in good] == [texts[n - 1] for n in good]
    if file_format != "csv":  # the long input is kept whole in the report
        assert records[4]["text"] == HUGE

    table = _csv_table(small_limit.report(job, "csv"))
    assert [int(r["row"]) for r in table] == numbers
    assert {int(r["row"]): r["error"] for r in table if r["error"]} == expected
    assert all(table[n - 1]["output.label"] for n in good)

    parquet = pq.read_table(io.BytesIO(small_limit.report(job, "parquet"))).to_pylist()
    assert [r["row"] for r in parquet] == numbers
    assert {r["row"]: r["error"] for r in parquet if r["error"]} == expected
    assert all(parquet[n - 1]["output.label"] for n in good)

    assert _html_failed(small_limit.report(job, "html").decode()) == expected


def test_a_model_service_limit_below_the_workers_splits_the_calls_instead_of_failing_the_job(
    redis_server: RedisServer, example_service: ServiceProcess, tmp_path: Path
) -> None:
    # 250 rows of 4,400 four-byte characters: 4.4 MB in one call of 256, over the service's 4 MiB;
    # the worker is told 64 MiB, so the model service's own 413 is what it meets
    wide = [CLAPPER * 4400 + f" {i}" for i in range(250)]
    texts = [FINE, *wide, HUGE, FINE]
    with stack(
        example_service.url,
        tmp_path,
        redis=redis_server.url(6),
        WORKER_MODEL_MAX_BODY_BYTES=str(64 * 1024 * 1024),
        WORKER_CHUNK_SIZE="256",
    ) as started:
        answer = started.submit("wide.parquet", _file("parquet", texts))
        assert answer.status_code == 202, answer.text
        job = started.wait(answer.json()["id"])
        assert job["state"] == "succeeded", job
        assert (job["rows_total"], job["rows_done"], job["rows_failed"]) == (253, 253, 1)
        records = [json.loads(line) for line in started.report(job, "jsonl").splitlines()]
        assert [r["row"] for r in records] == list(range(1, 254))
        assert {r["row"]: r["error"] for r in records if r["error"]} == {252: TOO_LONG}
        assert all(r["output.label"] for r in records if r["row"] != 252)
        log = started.worker.log()
        assert "the model service refused a call of 252 rows as too large" in log, log[-3000:]
        assert f"the limit is {MODEL_LIMIT} bytes" in log


def test_ninety_nine_rows_too_long_and_one_good_row_finish_with_the_good_row_answered(
    redis_server: RedisServer, example_service: ServiceProcess, tmp_path: Path
) -> None:
    # the audit's file: 5.9 MB of rows over the schema's maxLength failed the whole job, resume too
    texts = [f"{i:05d}" + "y" * 59_995 for i in range(99)] + [FINE]
    with stack(
        example_service.url,
        tmp_path,
        redis=redis_server.url(6),
        WORKER_CHUNK_SIZE="100",
        GATEWAY_MAX_UPLOAD_BYTES="8000000",
    ) as started:
        answer = started.submit("long.csv", _file("csv", texts))
        assert answer.status_code == 202, answer.text
        job = started.wait(answer.json()["id"])
        assert job["state"] == "succeeded", job
        assert (job["rows_total"], job["rows_done"], job["rows_failed"]) == (100, 100, 99)
        table = _csv_table(started.report(job, "csv"))
        assert [int(r["row"]) for r in table] == list(range(1, 101))
        assert [r["error"] for r in table[:99]] == [TOO_LONG] * 99
        assert table[99]["error"] == "" and table[99]["output.label"] in ("fresh", "rotten", "plot")
