"""Running a job: stream the input in chunks, call the model service, write each chunk once, then the reports.

The Celery task only calls `JobRunner.run`. A run works for a time budget, then
queues a fresh task to continue, so no task outlives the broker's visibility
timeout; a worker killed at any moment loses at most the chunk in flight.

No job is left behind by any crash, whatever the queue: each task carries the
job's current ticket (a task with an older one is stale and does nothing), and
every worker sweeps the store at start and periodically, queueing again each job
nobody is answerable for: a running job whose lease lapsed (its worker died, or
its continuation was lost with the broker), or a queued job left waiting while no
worker is busy (its task was lost).

Every row of a job is answered by one version (`batch_worker.pinning`): the first
answer pins it, and a job whose version cannot be had pauses until it is resumed.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timedelta
from itertools import islice
from typing import Any, Literal

from batch_worker.calling import Caller
from batch_worker.pinning import PausedError
from batch_worker.reports import write_reports
from batch_worker.reports.html import POLICY as REPORT_POLICY
from batch_worker.sending import CallRefusedError, InputLimits, rejection
from batch_worker.settings import Settings
from onepipe.platform.http.client import (
    ModelServiceClient,
    ServiceRejectedError,
    ServiceUnavailableError,
)
from onepipe.platform.jobs.datasets import Row, count_rows, iter_rows, read_header, resolve_mapping
from onepipe.platform.jobs.storage import JobStore
from onepipe.platform.jobs.types import JobMeta, RowResult, utc_now

log = logging.getLogger("batch_worker")
# "held": another worker holds the job's lease (asked again once it could have lapsed);
# "stale": the job was queued again since this task was sent, so the newer task runs it
Outcome = Literal["done", "continue", "skipped", "held", "stale"]
# sends the task that runs a job: (job id, ticket, countdown in seconds)
Send = Callable[[str, str, float], None]
# a chunk's number and its results, still being computed
InFlight = tuple[int, "Future[list[RowResult]]"]


class JobFailedError(Exception):
    """The job cannot go on; the message says why (it is shown to the reviewer)."""


class _LostJobError(Exception):
    """The job is no longer this task's (another took it up, or it ended): the task stops as it is."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__(outcome)
        self.outcome: Outcome = outcome


def chunked(rows: Iterable[Row], size: int) -> Iterator[list[Row]]:
    """Rows in lists of `size` (the last may be shorter)."""
    iterator = iter(rows)
    while chunk := list(islice(iterator, size)):
        yield chunk


class JobRunner:
    """Runs jobs from a store through the model service."""

    def __init__(
        self,
        store: JobStore,
        client: ModelServiceClient,
        settings: Settings,
        send: Send,
        worker_id: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.store = store
        self.client = client
        self.settings = settings
        self.send = send
        self.worker_id = worker_id or f"worker-{uuid.uuid4().hex[:8]}"
        self.sleep = sleep
        # the job's metadata is saved from two threads (a chunk written, a lease renewed while the
        # next chunk waits out an outage): one save at a time
        self._saving = threading.Lock()
        # a chunk's rows through the model service; a version pinned on a chunk's thread, under a lock
        self.caller = Caller(
            client, settings.model_max_body_bytes, self._wait_for, self._keep_pin, threading.Lock()
        )

    # -- the run ---------------------------------------------------------------------------

    def run(self, job_id: str, ticket: str | None = None) -> Outcome:
        """Work on a job for one time budget; the outcome says what became of it."""
        meta = self.store.load(job_id)
        if meta is None:
            log.warning("no job %s in storage; nothing to do", job_id)
            return "skipped"
        if meta.at_rest:  # finished, or paused until a person resumes it
            return "skipped"
        if ticket is not None and meta.ticket not in (None, ticket):
            log.info("job %s was queued again since this task was sent; the newer task runs it", job_id)
            return "stale"
        if not self._take_lease(meta):
            # never acknowledged away: asked again once the holder's lease could have lapsed
            self._send(meta, ticket or meta.ticket or "", self.settings.lease_seconds + 1)
            return "held"
        try:
            return self._work(meta)
        except _LostJobError as lost:
            return lost.outcome
        except JobFailedError as failure:
            self._finish(meta, "failed", str(failure))
        except PausedError as paused:  # its version cannot be had: nothing of another version was written
            self._finish(meta, "paused", str(paused))
        except OSError as error:
            # the storage refused a read or write (full, read-only, gone): written chunks stay, and
            # the job fails saying so, to be resumed once the storage is fixed
            self._finish(meta, "failed", f"the job storage failed: {error}; fix it, then resume the job")
        return "done"

    def _send(self, meta: JobMeta, ticket: str, countdown: float) -> None:
        try:
            self.send(meta.id, ticket, countdown)
        except Exception as error:  # the broker is down: the sweep queues the job once its lease lapses
            log.warning(
                "job %s: could not queue its next task (%s); a worker's sweep queues it again once its "
                "lease lapses at %s",
                meta.id,
                error,
                meta.lease_until,
            )

    # -- the sweep -------------------------------------------------------------------------

    def sweep(self) -> list[str]:
        """Queue again every unfinished job that no worker is answerable for; returns their ids."""
        now = utc_now()
        jobs = [meta for meta in self.store.iter_jobs() if not meta.at_rest]
        # a queued job's task may wait behind others; only while no worker is busy is a long wait a lost task
        busy = any(meta.lease_until is not None and meta.lease_until > now for meta in jobs)
        requeued = []
        for meta in jobs:
            if not self._orphaned(meta, busy):
                continue
            current = self.store.load(meta.id)  # again, just before acting: a worker may have just taken it
            if current is None or not self._orphaned(current, busy):
                continue
            since = current.worked_at or current.queued_at or current.created_at
            current.state, current.runner, current.lease_until = "queued", None, None
            ticket = current.issue_ticket()
            self.store.save(current)
            log.warning("job %s: nothing had worked on it since %s; queued again", current.id, since)
            self._send(current, ticket, 0)
            requeued.append(current.id)
        return requeued

    def _orphaned(self, meta: JobMeta, busy: bool) -> bool:
        now = utc_now()
        if meta.at_rest:  # a paused job waits for a person to resume it
            return False
        if meta.state == "running":
            return meta.lease_until is None or meta.lease_until <= now
        waiting = now - (meta.queued_at or meta.created_at)
        return not busy and waiting > timedelta(seconds=self.settings.lease_seconds)

    def _take_lease(self, meta: JobMeta) -> bool:
        now = utc_now()
        if meta.runner not in (None, self.worker_id) and meta.lease_until and meta.lease_until > now:
            log.info("job %s is held by %s until %s", meta.id, meta.runner, meta.lease_until)
            return False
        meta.runner, meta.state = self.worker_id, "running"
        meta.started_at = meta.started_at or now
        self._renew(meta)
        return True

    def _hand_over(self, meta: JobMeta) -> None:
        """Let the job go to a fresh task (on any worker, at once), answerable for it meanwhile."""
        meta.runner = None
        meta.lease_until = utc_now() + timedelta(seconds=self.settings.lease_seconds)
        ticket = meta.issue_ticket()
        self.store.save(meta)
        self._send(meta, ticket, 0)

    def _renew(self, meta: JobMeta) -> None:
        with self._saving:
            meta.worked_at = utc_now()
            meta.lease_until = meta.worked_at + timedelta(seconds=self.settings.lease_seconds)
            self.store.save(meta)

    def _write(self, meta: JobMeta, in_flight: deque[InFlight], count: int | None = None) -> None:
        """Write the oldest `count` chunks in flight (all by default) once their results are in.

        A call's error (an outage past the patience, a refused request) rises here.
        """
        for _ in range(len(in_flight) if count is None else count):
            number, future = in_flight.popleft()
            results = future.result()
            self.store.write_chunk(meta.id, number, results)
            # one line per chunk: which worker did which part of a job shows in the logs
            log.info("job %s: chunk %d written, %d rows", meta.id, number, len(results))
            with self._saving:
                meta.rows_done += len(results)
                meta.rows_failed += sum(1 for r in results if r.error)
            # saved only while the job is still this task's: a task that lost it (its lease lapsed
            # while it waited on the model service) must not write its stale state over the new one's
            lost = self._lost(meta)
            if lost is not None:
                raise _LostJobError(lost)
            self._renew(meta)

    def _lost(self, meta: JobMeta) -> Outcome | None:
        """Why the job is no longer this task's (None: it still is)."""
        current = self.store.load(meta.id)
        if current is None or current.at_rest:
            log.info("job %s has ended meanwhile (%s); this task stops", meta.id, current and current.state)
            return "skipped"
        if current.ticket != meta.ticket or current.runner not in (None, self.worker_id):
            log.warning("job %s was taken up by another task meanwhile; this task stops", meta.id)
            return "stale"
        return None

    def _work(self, meta: JobMeta) -> Outcome:
        deadline = time.monotonic() + self.settings.task_budget
        info = self._wait_for(meta, self.client.pipeline)
        meta.pipeline = info.name  # its version is the one pinned by the job's first answer (pinning.py)
        input_name = self.store.input_name(meta)
        file_format = meta.spec.file_format
        with self.store.open(meta.id, input_name) as handle:
            header = read_header(file_format, handle)
        try:
            mapping = resolve_mapping(info.input_schema, header, meta.spec.mapping, file_format)
        except ValueError as error:
            raise JobFailedError(str(error)) from None
        if meta.rows_total is None:
            with self.store.open(meta.id, input_name) as handle:
                meta.rows_total = count_rows(file_format, handle)
        self._recount(meta)
        self._renew(meta)
        limits = InputLimits(info.input_schema)

        # up to `calls_in_flight` chunks are with the model service while the oldest is written:
        # neither side waits for the other's reading, parsing and writing
        in_flight: deque[InFlight] = deque()
        with (
            self.store.open(meta.id, input_name) as handle,
            ThreadPoolExecutor(self.settings.calls_in_flight, thread_name_prefix="chunk") as calls,
        ):
            for number, rows in enumerate(chunked(iter_rows(file_format, handle), self.settings.chunk_size)):
                if self.store.chunk_done(meta.id, number):
                    continue  # written before: never redone
                if time.monotonic() > deadline:
                    self._write(meta, in_flight)
                    self._hand_over(meta)
                    return "continue"
                current = self.store.load(meta.id)
                if current is None or current.state == "cancelled":
                    log.info("job %s was cancelled; stopping", meta.id)
                    return "skipped"
                if current.ticket != meta.ticket:
                    log.warning("job %s was queued again while this worker held it; stopping", meta.id)
                    return "stale"
                in_flight.append(
                    (number, calls.submit(self.caller.chunk_results, meta, info, limits, mapping, rows))
                )
                # one chunk at a time until its answers pinned the job's version(s): no two calls
                # may ask for the champion while a promotion changes it
                if len(in_flight) == self.settings.calls_in_flight or not self._pinned(meta):
                    self._write(meta, in_flight, 1)
            self._write(meta, in_flight)

        # every chunk is written, by this worker or an earlier one; another may have finished the job,
        # or taken it over, while this one waited on its last chunks: then the reports are theirs
        stop = self._lost(meta)
        if stop is not None:
            return stop
        # the report describes the job as it ends; the lease is kept while it is written (a large
        # job's reports take longer than a lease, and another worker must not write them too)
        ending = meta.model_copy(update={"state": "succeeded", "finished_at": utc_now()})
        with self._lease_kept(meta):
            formats = write_reports(
                lambda: self.store.iter_results(meta.id),
                ending,
                info,
                header,
                lambda name: self.store.open_whole(meta.id, name),
            )
        meta.reports = formats  # type: ignore[assignment]
        meta.report_policy = REPORT_POLICY if "html" in formats else None
        self._finish(meta, "succeeded", None, finished_at=ending.finished_at)
        return "done"

    @contextmanager
    def _lease_kept(self, meta: JobMeta) -> Iterator[None]:
        """Renew the job's lease every third of it until the block ends."""
        done = threading.Event()

        def keep() -> None:
            while not done.wait(self.settings.lease_seconds / 3):
                self._renew(meta)

        keeper = threading.Thread(target=keep, name=f"lease-{meta.id}", daemon=True)
        keeper.start()
        try:
            yield
        finally:
            done.set()
            keeper.join()

    def _recount(self, meta: JobMeta) -> None:
        """Counts from the chunk files themselves: right even after a crash between a chunk and its count."""
        done = failed = 0
        for result in self.store.iter_results(meta.id):
            done += 1
            failed += result.error is not None
        meta.rows_done, meta.rows_failed = done, failed

    def _finish(
        self,
        meta: JobMeta,
        state: Literal["succeeded", "failed", "paused"],
        error: str | None,
        finished_at: datetime | None = None,
    ) -> None:
        """End the task's work on the job: finished, or paused (not finished: resumed later)."""
        meta.state, meta.error = state, error
        meta.finished_at = None if state == "paused" else finished_at or utc_now()
        meta.runner, meta.lease_until = None, None
        try:
            current = self.store.load(meta.id)
            if current is not None and current.state == "cancelled":
                return
            self.store.save(meta)
        except OSError as failure:  # read-only storage: the sweep takes the job up again once it is fixed
            log.error("job %s %s (%s), but its state could not be saved: %s", meta.id, state, error, failure)
            return
        log.info("job %s %s: %d rows, %d failed", meta.id, state, meta.rows_done, meta.rows_failed)
        if state == "paused":
            log.warning("job %s: %s", meta.id, error)

    # -- the version a job is pinned to ----------------------------------------------------------

    def _pinned(self, meta: JobMeta) -> bool:
        """Whether the job's version (and its compared version) have been pinned by an answer."""
        compared = meta.spec.compare_version is None or meta.compare_pipeline_version is not None
        return meta.pipeline_version is not None and compared

    def _keep_pin(self, meta: JobMeta) -> None:
        """Save a version just pinned, before any row it answered is written (a task that lost the job
        stops instead: the job's new task pins its own)."""
        lost = self._lost(meta)
        if lost is not None:
            raise _LostJobError(lost)
        self._renew(meta)

    def _wait_for(self, meta: JobMeta, call: Callable[[], Any]) -> Any:
        """Call the model service, riding out outages up to the configured patience."""
        started = time.monotonic()
        pause = 1.0
        while True:
            try:
                return call()
            except ServiceRejectedError as error:
                refusal = rejection(error)
                if isinstance(refusal, CallRefusedError):
                    raise JobFailedError(str(refusal)) from None
                raise refusal from None
            except ServiceUnavailableError as error:
                waited = time.monotonic() - started
                if waited + pause > self.settings.model_patience:
                    raise JobFailedError(
                        f"the model service was unavailable for {waited:.0f} s, longer than the patience "
                        f"of {self.settings.model_patience:g} s ({error}); resume the job when it is back"
                    ) from None
                log.warning(
                    "model service unavailable for job %s, retrying in %.0f s: %s", meta.id, pause, error
                )
                self.sleep(pause)
                self._renew(meta)
                pause = min(pause * 2, 30.0)
