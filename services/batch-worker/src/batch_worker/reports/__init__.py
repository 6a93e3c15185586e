"""A finished job's reports: HTML for people; CSV, JSONL and Parquet for machines.

Nothing here names a pipeline's fields. The columns, their kinds and the fields the HTML
report summarises come from the description of the outputs (onepipe.platform.schema.outputs), read once from
the output JSON Schema and its `x-role` marks (`label`, `confidence`, `review`, `reasons`,
`known`); every role is optional and the report shows less without it. Rows are streamed
once: machine formats are written as they arrive and the HTML report keeps only bounded
aggregates.

The parts: `columns` (schema -> columns, flat records), `statistics` (the aggregates),
`charts` (SVG), `html` (template and sections), `files` (CSV, JSONL, Parquet).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from typing import IO

from batch_worker.reports.columns import flatten, nested_keys, output_columns
from batch_worker.reports.files import FORMULA_STARTS, MachineWriters, arrow_schema
from batch_worker.reports.html import render_html
from batch_worker.reports.scoring import Scoring
from batch_worker.reports.statistics import Summary, histogram_range
from onepipe import PipelineInfo
from onepipe.platform.jobs.types import REPORT_FORMATS, JobMeta, RowResult, input_key
from onepipe.platform.jobs.variants import job_variants
from onepipe.platform.schema.outputs import Outputs

__all__ = ["FORMULA_STARTS", "flatten", "histogram_range", "output_columns", "write_reports"]


def write_reports(
    rows: Callable[[], Iterator[RowResult]],
    meta: JobMeta,
    info: PipelineInfo,
    input_columns: list[str],
    open_file: Callable[[str], AbstractContextManager[IO[bytes]]],
) -> list[str]:
    """Write report.csv, report.jsonl, report.parquet and report.html; returns the formats written.

    `rows()` streams the job's results in row order. One pass feeds all four reports: the
    machine formats are written a batch at a time and the HTML report keeps bounded
    aggregates, so memory stays flat in the number of rows.
    """
    outputs = Outputs.of(info)
    columns = outputs.columns()
    comparing = meta.spec.comparing  # under compare flags, or with a compared version
    named = job_variants(meta, info)  # the two answers named by what differs between them
    summary = Summary(outputs, list(input_columns), comparing, named)
    variants = {named.first: "output"} | ({named.second: "compare_output"} if comparing else {})
    scoring = Scoring(
        meta.spec.truth,
        outputs,
        variants,
        summary.confidence_field,
        summary.shown_inputs,
        summary.label_field,
        summary.known_field,
    )
    schema = arrow_schema(outputs, input_columns, comparing, scoring.arrow_fields())
    if comparing:  # what each column group holds, for a reader of the Parquet file's schema
        schema = schema.with_metadata({"output": named.first, "compare": named.second})
    with ExitStack() as stack:
        handles = {
            fmt: stack.enter_context(open_file(f"report.{fmt}")) for fmt in ("csv", "jsonl", "parquet")
        }
        inputs = {input_key(column) for column in input_columns}
        writers = MachineWriters(handles, schema, inputs, nested_keys(columns, comparing))
        for result in rows():
            scores = scoring.add(result)
            writers.add(flatten(result, columns, input_columns, comparing, scores, nested_as_json=False))
            summary.add(result)
        writers.close()
    html = render_html(summary, scoring, meta, info)
    with open_file("report.html") as handle:
        handle.write(html.encode())
    return list(REPORT_FORMATS)
