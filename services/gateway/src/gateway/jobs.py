"""Batch jobs at the gateway: check, store and queue a submission; show, list, cancel, resume, reports."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import IO, Any

from jsonschema import Draft202012Validator
from pydantic import BaseModel, Field

from gateway.auth import Caller, KeyRing
from gateway.compare import DifferentFilesError, JobComparison, NotFinishedError, compare_jobs
from onepipe import PipelineInfo, Problem
from onepipe.platform.http.envelopes import VERSION_REF_PATTERN
from onepipe.platform.http.html_policy import CSP_HEADER
from onepipe.platform.http.server import ProblemError
from onepipe.platform.jobs.datasets import (
    DatasetError,
    check_parquet_types,
    detect_format,
    has_rows,
    read_header,
    resolve_mapping,
    truth_problems,
)
from onepipe.platform.jobs.storage import JobStore, UploadTooLargeError
from onepipe.platform.jobs.types import (
    JOB_ID_EXAMPLE,
    REPORT_FORMATS,
    FileFormat,
    JobMeta,
    JobSpec,
    JobState,
    ReportFormat,
    is_job_id,
    utc_now,
)

log = logging.getLogger("gateway.jobs")
QUEUE_RETRY_AFTER = "10"
REPORT_MEDIA_TYPES: dict[str, str] = {
    "html": "text/html; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "parquet": "application/vnd.apache.parquet",
}

# a report written before reports carried their own policy: its style only, no script (its filters
# stay hidden and every row shows)
FALLBACK_REPORT_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'"
# nobody frames a report or a comparison (clickjacking): a header-only directive
NOT_FRAMED = "frame-ancestors 'none'"


def report_headers(file_format: str, meta: JobMeta) -> dict[str, str]:
    """The headers a report is served with; an HTML report's policy is the one the worker wrote it for."""
    disposition = "inline" if file_format == "html" else "attachment"
    headers = {"Content-Disposition": f'{disposition}; filename="{meta.id}.{file_format}"'}
    if file_format == "html":
        headers[CSP_HEADER] = f"{meta.report_policy or FALLBACK_REPORT_POLICY}; {NOT_FRAMED}"
    return headers


class JobView(BaseModel):
    """A job as the API shows it."""

    id: str
    url: str
    state: JobState
    file_name: str
    rows_total: int | None
    rows_done: int
    rows_failed: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    last_worked_at: datetime | None = Field(
        description="When a worker last worked on the job (it renews this at least every chunk). A job "
        "left by a dead worker is queued again by the workers' sweep once its lease lapses."
    )
    version: str | None = Field(
        description="The version asked for: an alias (`champion`, `challenger`), a registered version's "
        "number (`v3`) or a version hash; null: the champion when the job started."
    )
    pipeline_version: str | None = Field(
        description="The version hash that answered the job's first rows; every row is answered by it "
        "(the job is pinned to it: a later promotion does not change it). Null until the first answer."
    )
    compare_version: str | None = Field(
        description="A second version every row also runs on, with the same flags, compared in the reports."
    )
    compare_pipeline_version: str | None = Field(
        description="The version hash that answered for compare_version, pinned the same way."
    )
    mapping: dict[str, str] = Field(description="Input field -> the file's column it was read from.")
    flags: dict[str, Any]
    compare_flags: dict[str, Any] | None
    truth: dict[str, str] = Field(description="Output field -> the file's column of right answers, scored.")
    owner: str = Field(description="Name of the key that submitted the job.")
    error: str | None
    reports: dict[str, str] = Field(description="Report format -> URL, once the job has succeeded.")


class JobPage(BaseModel):
    """One page of jobs, newest first."""

    jobs: list[JobView]
    total: int
    offset: int
    limit: int


def view(meta: JobMeta, base_url: str) -> JobView:
    """The API's view of a job's metadata."""
    url = f"{base_url.rstrip('/')}/v1/jobs/{meta.id}"
    return JobView(
        id=meta.id,
        url=url,
        state=meta.state,
        file_name=meta.spec.file_name,
        rows_total=meta.rows_total,
        rows_done=meta.rows_done,
        rows_failed=meta.rows_failed,
        created_at=meta.created_at,
        started_at=meta.started_at,
        finished_at=meta.finished_at,
        last_worked_at=meta.worked_at,
        version=meta.spec.version,
        pipeline_version=meta.pipeline_version,
        compare_version=meta.spec.compare_version,
        compare_pipeline_version=meta.compare_pipeline_version,
        mapping=meta.spec.mapping,
        flags=meta.spec.flags,
        compare_flags=meta.spec.compare_flags,
        truth=meta.spec.truth,
        owner=meta.owner_name,
        error=meta.error,
        reports={fmt: f"{url}/report.{fmt}" for fmt in meta.reports},
    )


def parse_json_field(name: str, text: str | None, default: Any) -> Any:
    """A JSON form field, or a 422 naming it."""
    if text is None or not text.strip():
        return default
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise _invalid(name, f"not valid JSON ({error.msg})") from None
    if not isinstance(value, dict):
        raise _invalid(name, "must be a JSON object")
    return value


def _invalid(loc: str, message: str) -> ProblemError:
    return ProblemError(422, "Invalid job", f"{loc}: {message}", errors=[Problem(loc=loc, message=message)])


def check_flags(
    name: str, flags: Mapping[str, Any], schema: dict[str, Any], title: str = "Invalid job"
) -> None:
    """A 422 naming every flag that the pipeline's flags schema refuses."""
    problems = []
    for error in Draft202012Validator(schema).iter_errors(dict(flags)):
        where = ".".join(str(p) for p in error.absolute_path)
        if error.validator == "additionalProperties":
            unknown = sorted(set(flags) - set(schema.get("properties", {})))
            for flag in unknown:
                problems.append(
                    Problem(
                        loc=f"{name}.{flag}",
                        message="unknown flag; known flags: " + ", ".join(schema.get("properties", {})),
                    )
                )
            continue
        problems.append(Problem(loc=f"{name}.{where}" if where else name, message=error.message))
    if problems:
        raise ProblemError(422, title, "; ".join(str(p) for p in problems), errors=problems)


def _checked_request(
    info: PipelineInfo,
    file_name: str,
    mapping: Mapping[str, Any],
    flags: dict[str, Any],
    compare_flags: dict[str, Any] | None,
    truth: Mapping[str, Any],
) -> FileFormat:
    """The file's format, once the flags, the mapping and the truth are of the right shapes (else a 422)."""
    check_flags("flags", flags, info.flags_schema)
    if compare_flags is not None:
        check_flags("compare_flags", compare_flags, info.flags_schema)
    if any(not isinstance(v, str) for v in mapping.values()):
        raise _invalid("mapping", "maps input fields to column names (strings)")
    if any(not isinstance(v, str) for v in truth.values()):
        raise _invalid("truth", "maps output fields to column names (strings)")
    try:
        return detect_format(file_name)
    except DatasetError as error:
        raise _invalid("file", str(error)) from None


def check_versions(
    caller: Caller, version: str | None, compare_version: str | None, compare_flags: dict[str, Any] | None
) -> None:
    """Choosing a version needs the `versions` scope (403); each is a version reference (422 naming it),
    and a job compares two flag sets or two versions, not both at once (422 naming compare_version)."""
    asked = {"version": version, "compare_version": compare_version}
    if all(ref is None for ref in asked.values()):
        return
    KeyRing.require(caller, "versions")
    for name, ref in asked.items():
        if ref is not None and re.fullmatch(VERSION_REF_PATTERN, ref) is None:
            raise _invalid(
                name,
                f"{ref[:80]!r} is not a version: an alias (champion, challenger), a registered version's "
                "number (v3) or a version hash; letters, digits, '.', '_' and '-', at most 64",
            )
    if compare_version is not None and compare_flags is not None:
        raise _invalid(
            "compare_version",
            "a job compares two flag sets (compare_flags) or two versions (compare_version), not both: "
            "a difference could not be told apart; compare two jobs instead (GET /v1/jobs/{a}/compare/{b})",
        )


class JobService:
    """The gateway's side of batch jobs; `enqueue(job_id, ticket)` hands a job to the workers."""

    def __init__(self, store: JobStore, enqueue: Callable[[str, str], None], max_upload_bytes: int) -> None:
        self.store = store
        self.enqueue = enqueue
        self.max_upload_bytes = max_upload_bytes

    def submit(
        self,
        caller: Caller,
        info: PipelineInfo,
        file_name: str,
        upload: IO[bytes],
        mapping: dict[str, str],
        flags: dict[str, Any],
        compare_flags: dict[str, Any] | None,
        truth: dict[str, str] | None = None,
        job_id: str | None = None,
        *,
        version: str | None = None,
        compare_version: str | None = None,
    ) -> JobMeta:
        """Check everything that can be checked before queueing; store and queue the job (as `job_id`).

        The job's version is pinned by the worker, to the hash of its first answer: not here."""
        truth = truth or {}
        check_versions(caller, version, compare_version, compare_flags)
        file_format = _checked_request(info, file_name, mapping, flags, compare_flags, truth)
        meta = JobMeta(
            id=job_id or self.store.new_id(),
            spec=JobSpec(
                file_name=file_name,
                file_format=file_format,
                mapping=mapping,
                flags=flags,
                compare_flags=compare_flags,
                version=version,
                compare_version=compare_version,
                truth=truth,
            ),
            owner=caller.key_id,
            owner_name=caller.name,
            pipeline=info.name,
        )
        self._store_checked(meta, upload, info)
        try:
            self._send(meta)
        except ProblemError:
            # Why the sweep can never run a job refused here: it queues a "queued" job again only
            # once it has waited WORKER_LEASE_SECONDS (45 s) since queued_at, and `_send` gives up
            # within GATEWAY_QUEUE_TIMEOUT (3 s, at most 30), so the job is gone long before. A task
            # that still reaches the queue after the deadline finds no job and does nothing.
            self.store.delete(meta.id)
            raise
        log.info("job %s queued by %s", meta.id, caller.name)
        return meta

    def _store_checked(self, meta: JobMeta, upload: IO[bytes], info: PipelineInfo) -> None:
        """Store the upload and check it against the pipeline: its header, mapping, truth, rows, types.

        Refused (422, or 413 over the upload limit), the stored file is deleted again.
        """
        spec = meta.spec
        try:
            size = self.store.store_input(meta, upload, self.max_upload_bytes)
            if size == 0:
                raise DatasetError("the file is empty")
            with self.store.open(meta.id, self.store.input_name(meta)) as handle:
                header = read_header(spec.file_format, handle)
            columns = resolve_mapping(info.input_schema, header, spec.mapping, spec.file_format)
            spec.mapping = columns  # every field's column, as the job reads it (shown in JobView)
            wrong_truth = [
                Problem(loc=f"truth.{name}", message=message)
                for name, message in truth_problems(info.output_schema, header, spec.truth, spec.file_format)
            ]
            if wrong_truth:
                self.store.delete(meta.id)
                raise ProblemError(
                    422, "Invalid job", "; ".join(str(p) for p in wrong_truth), errors=wrong_truth
                )
            with self.store.open(meta.id, self.store.input_name(meta)) as handle:
                if not has_rows(spec.file_format, handle):
                    raise DatasetError("the file has a header but no data rows")
                if spec.file_format == "parquet":  # a column of the wrong type: refused before any row runs
                    check_parquet_types(handle, info.input_schema, columns)
        except ValueError as error:  # DatasetError, or the upload over its limit
            self.store.delete(meta.id)
            status = 413 if isinstance(error, UploadTooLargeError) else 422
            raise ProblemError(
                status,
                "Invalid job" if status == 422 else "File too large",
                f"file: {error}",
                errors=[Problem(loc="file", message=str(error))],
            ) from None

    def _send(self, meta: JobMeta) -> None:
        """Save the job with a fresh ticket, then queue the task carrying it (503: the queue is down)."""
        ticket = meta.issue_ticket()
        self.store.save(meta)  # before the task: a worker that takes it at once must see its ticket
        try:
            self.enqueue(meta.id, ticket)  # bounded in time (gateway.queue.Enqueuer)
        except Exception as error:
            # one line per request, no traceback: a queue outage is an expected state, not a bug
            log.warning("could not queue job %s: %s", meta.id, error)
            raise ProblemError(
                503,
                "Job queue unavailable",
                f"the job queue is unavailable ({error}); nothing was queued, retry later",
                headers={"Retry-After": QUEUE_RETRY_AFTER},
            ) from None

    def get(self, caller: Caller, job_id: str) -> JobMeta:
        """A job the caller may see, or 404 (other keys' jobs are invisible, not forbidden)."""
        if not is_job_id(job_id):
            raise ProblemError(
                404,
                "Job not found",
                f"there is no job {job_id[:64]!r} for this key (job ids look like {JOB_ID_EXAMPLE})",
            )
        try:
            meta = self.store.load(job_id)
        except ValueError:
            meta = None
        if meta is None or (meta.owner != caller.key_id and not caller.can("admin")):
            raise ProblemError(404, "Job not found", f"there is no job {job_id!r} for this key")
        return meta

    def page(self, caller: Caller, offset: int, limit: int) -> tuple[list[JobMeta], int]:
        """The caller's jobs (every job for admin), newest first."""
        return self.store.list_jobs(
            None if caller.can("admin") else caller.key_id, limit=limit, offset=offset
        )

    def cancel(self, caller: Caller, job_id: str) -> JobMeta:
        """Stop a queued, running or paused job; a finished one is a 409."""
        meta = self.get(caller, job_id)
        if meta.finished:
            raise ProblemError(
                409, "Job finished", f"job {job_id} has already {meta.state}; nothing to cancel"
            )
        meta.state, meta.finished_at, meta.error = "cancelled", utc_now(), f"cancelled by {caller.name}"
        self.store.mark_cancelled(meta.id, meta.error)
        self.store.save(meta)
        return meta

    def resume(self, caller: Caller, job_id: str) -> JobMeta:
        """Queue a paused, failed, cancelled, stuck queued or abandoned running job again; written chunks
        (and the version the job is pinned to) are kept."""
        meta = self.get(caller, job_id)
        # a running job whose worker's lease has lapsed is abandoned (its worker died)
        held = meta.state == "running" and meta.lease_until is not None and meta.lease_until > utc_now()
        if meta.state == "succeeded" or held:
            until = f" (a worker holds it until {meta.lease_until:%H:%M:%S} UTC)" if held else ""
            raise ProblemError(
                409,
                "Job not resumable",
                f"job {job_id} is {meta.state}{until}; only paused, failed, cancelled, queued or abandoned "
                "jobs can be resumed",
            )
        before = meta.model_copy()
        meta.state, meta.error, meta.finished_at = "queued", None, None
        meta.runner, meta.lease_until = None, None
        self.store.clear_cancelled(meta.id)
        try:
            self._send(meta)
        except ProblemError:
            self.store.save(before)  # nothing changed: the job stays as it was
            if before.state == "cancelled":
                self.store.mark_cancelled(before.id, before.error or "cancelled")
            raise
        return meta

    def report(self, caller: Caller, job_id: str, file_format: str) -> tuple[JobMeta, str]:
        """The job and the name of its report in `file_format`, or a 404 saying why not."""
        if file_format not in REPORT_FORMATS:
            raise ProblemError(404, "No such report", f"reports come as {', '.join(REPORT_FORMATS)}")
        meta = self.get(caller, job_id)
        fmt: ReportFormat = file_format
        if fmt not in meta.reports:
            raise ProblemError(
                404, "Report not ready", f"job {job_id} is {meta.state}; reports come when it succeeds"
            )
        return meta, f"report.{fmt}"

    def compare(self, caller: Caller, job_id: str, other_id: str, info: PipelineInfo) -> JobComparison:
        """Job `job_id` (A) against `other_id` (B): 404 unknown, 409 not succeeded, 422 not the same file."""
        first, second = self.get(caller, job_id), self.get(caller, other_id)
        try:
            return compare_jobs(self.store, first, second, info)
        except NotFinishedError as error:
            raise ProblemError(409, "Job not finished", str(error)) from None
        except DifferentFilesError as error:
            problem = Problem(loc=f"row {error.row}", message=f"{error.why} (not the same file)")
            raise ProblemError(422, "Not the same file", str(error), errors=[problem]) from None
