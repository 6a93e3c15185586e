"""The report's overview: what ran, the known inputs among the rows, the failed rows."""

from __future__ import annotations

from typing import Any, Final

from batch_worker.reports.html.formatting import MISSING, count, duration, flag_list, percent, timestamp
from batch_worker.reports.statistics import Summary
from onepipe import PipelineInfo
from onepipe.platform.jobs.types import JobMeta, utc_now

KNOWN_WARNING: Final = 0.5  # above this share of known inputs the report warns that scores say little


def what_ran(summary: Summary, meta: JobMeta, info: PipelineInfo) -> dict[str, Any]:
    """The job as it ran: file, rows, pipeline, flags, times and throughput."""
    finished = meta.finished_at
    finished_label = "Finished"
    if finished is None and meta.started_at is not None:
        # the worker writes the reports just before it marks the job finished
        finished, finished_label = utc_now(), "Report written"
    seconds = (finished - meta.started_at).total_seconds() if finished and meta.started_at else None
    done = meta.rows_done or summary.rows
    throughput = f"{done / seconds:,.1f} rows/s" if seconds else MISSING
    compare = meta.spec.compare_flags
    return {
        "file": meta.spec.file_name,
        "format": meta.spec.file_format,
        "job": meta.id,
        "state": meta.state,
        "owner": meta.owner_name,
        "rows_total": count(meta.rows_total if meta.rows_total is not None else summary.rows),
        "rows": count(summary.rows),
        "failed": count(summary.failed),
        "failed_share": percent(summary.failed, summary.rows),
        "pipeline": info.name,
        "version": meta.pipeline_version or info.version,
        "version_asked": _asked(meta.spec.version, meta.pipeline_version),
        "compare_version": _compared_version(meta),
        "flags": flag_list(meta.spec.flags),
        "compare_flags": None if compare is None else flag_list(compare),
        "started": timestamp(meta.started_at),
        "finished": timestamp(finished),
        "finished_label": finished_label,
        "duration": duration(seconds),
        "throughput": throughput,
    }


def _asked(asked: str | None, answered: str | None) -> str:
    """How the version that answered was asked for, beside its hash."""
    if asked is None:
        return "the champion when the job started"
    return "" if asked == answered else f"asked as {asked}"


def _compared_version(meta: JobMeta) -> dict[str, str] | None:
    """The compared version of a job comparing versions: its hash, and how it was asked for."""
    asked = meta.spec.compare_version
    if asked is None:
        return None
    answered = meta.compare_pipeline_version
    return {"hash": answered or MISSING, "asked": _asked(asked, answered)}


def known_inputs(summary: Summary) -> dict[str, Any] | None:
    """How many rows hold an input the pipeline knows (the `known` role), and whether that is most."""
    if summary.known_field is None:
        return None
    answered = summary.rows - summary.failed
    return {
        "field": summary.known_field,
        "rows": count(summary.known),
        "share": percent(summary.known, answered),
        "most": answered > 0 and summary.known / answered > KNOWN_WARNING,
    }


def failed_rows(summary: Summary) -> dict[str, Any]:
    """The rows that failed, with their reasons (the first LISTED_ROWS)."""
    return {
        "rows": summary.failed_rows,
        "total": count(summary.failed),
        "shown": len(summary.failed_rows),
        "more": summary.failed > len(summary.failed_rows),
    }
