"""Batch job types shared by the gateway (submits, reads), the worker (runs) and the UI (shows)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

# paused: stopped by the worker because the version it is pinned to cannot be had; it waits for a resume
JobState = Literal["queued", "running", "paused", "succeeded", "failed", "cancelled"]
FileFormat = Literal["csv", "jsonl", "parquet"]
ReportFormat = Literal["html", "csv", "jsonl", "parquet"]
REPORT_FORMATS: tuple[ReportFormat, ...] = ("html", "csv", "jsonl", "parquet")
FINISHED: tuple[JobState, ...] = ("succeeded", "failed", "cancelled")
# no worker (nor the workers' sweep) takes these up until a person resumes them: finished, or paused
AT_REST: tuple[JobState, ...] = (*FINISHED, "paused")
# what JobStore.new_id (onepipe.platform.jobs.storage) makes: its creation time to the microsecond,
# then 8 hex digits
JOB_ID = re.compile(r"\d{20}-[0-9a-f]{8}")
JOB_ID_EXAMPLE = "20261206154755123456-1a2b3c4d"


def is_job_id(text: str) -> bool:
    """Whether `text` has a job id's form (checked before any storage call: no path is built from it)."""
    return JOB_ID.fullmatch(text) is not None


def utc_now() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


class JobSpec(BaseModel):
    """What a reviewer asked for: the file, how its columns map to the input, the flag sets."""

    file_name: str = Field(description="The uploaded file's name, as given.")
    file_format: FileFormat
    mapping: dict[str, str] = Field(description="Input field -> file column.")
    flags: dict[str, Any] = Field(default_factory=dict, description="The flag set the job runs with.")
    compare_flags: dict[str, Any] | None = Field(None, description="A second flag set to compare against.")
    version: str | None = Field(
        None,
        description="The version asked for (alias, vN or hash); unset: the champion when the job starts.",
    )
    compare_version: str | None = Field(
        None,
        description="A second version to compare against, on the same file, with the same flags "
        "(its outputs are the job's compare outputs, as under compare_flags).",
    )
    truth: dict[str, str] = Field(
        default_factory=dict, description="Output field -> the file's column holding its right answer."
    )

    @property
    def comparing(self) -> bool:
        """Whether every row runs twice: under the compare flags, or by the compared version."""
        return self.compare_flags is not None or self.compare_version is not None


class JobMeta(BaseModel):
    """A job's durable state, stored as job.json next to its files."""

    id: str
    spec: JobSpec
    owner: str = Field(description="Id of the API key that submitted the job (not the key).")
    owner_name: str
    state: JobState = "queued"
    rows_total: int | None = None
    rows_done: int = Field(0, description="Rows with a result written (succeeded or failed).")
    rows_failed: int = 0
    created_at: datetime = Field(default_factory=utc_now)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    pipeline: str | None = None
    pipeline_version: str | None = Field(
        None,
        description="The version hash that answered the job's first call (pinned): every later call asks "
        "for it, so every row is answered by it.",
    )
    compare_pipeline_version: str | None = Field(
        None, description="The hash of the compared version (compare_version), pinned the same way."
    )
    error: str | None = Field(None, description="Why the job failed or was stopped.")
    reports: list[ReportFormat] = Field(default_factory=list, description="Report formats ready to download.")
    report_policy: str | None = Field(
        None,
        description="The Content-Security-Policy the HTML report was written for (its own inline style "
        "and script, by hash): the gateway serves the report with it.",
    )
    runner: str | None = Field(None, description="The worker currently holding the job's lease.")
    lease_until: datetime | None = Field(
        None, description="Until when a worker (or, after a hand-over, the next task) is answerable for it."
    )
    worked_at: datetime | None = Field(None, description="When a worker last worked on the job.")
    queued_at: datetime | None = Field(None, description="When a task to run the job was last sent.")
    ticket: str | None = Field(
        None, description="The ticket of the task sent last: a task carrying another one is stale."
    )

    @property
    def finished(self) -> bool:
        """Whether the job will not change any more (unless resumed)."""
        return self.state in FINISHED

    @property
    def at_rest(self) -> bool:
        """Whether no worker is to work on the job until it is resumed: finished, or paused."""
        return self.state in AT_REST

    def issue_ticket(self) -> str:
        """A fresh ticket for the task about to be sent; every task sent before becomes stale."""
        self.ticket, self.queued_at = uuid.uuid4().hex, utc_now()
        return self.ticket


class RowResult(BaseModel):
    """One input row's result, as the worker writes it in a chunk file (one JSON line per row)."""

    row: int = Field(description="The row's number in the file, counting data rows from 1.")
    input: dict[str, Any] = Field(description="The row's columns, as read from the file.")
    output: dict[str, Any] | None = None
    compare_output: dict[str, Any] | None = None
    error: str | None = Field(None, description="Why the row has no output.")


# A report's own columns start with these; an input column that does too is renamed input.<name>.
REPORT_PREFIXES: tuple[str, ...] = (
    "output.",
    "compare.",
    "input.",
    "truth.",
    "correct.",
    "compare_correct.",
    "abs_error.",
    "compare_abs_error.",
)


def input_key(column: str) -> str:
    """A report record's key for an input column; prefixed only when it would clash with the report's own."""
    if column in ("row", "error") or column.startswith(REPORT_PREFIXES):
        return f"input.{column}"
    return column


# The Celery task the gateway sends by name and the worker runs (the gateway never imports the worker).
RUN_JOB_TASK = "onepipe.run_job"
JOBS_QUEUE = "jobs"
