"""The Celery app and its tasks, thin: one builds a JobRunner and calls it, one runs the scheduled check.

Start a worker with
`celery -A batch_worker.celery_app worker --queues jobs --concurrency 1`, and the one beat process
that sends the scheduled checks with `celery -A batch_worker.celery_app beat`.
"""

from __future__ import annotations

import logging
import tempfile
import threading
from functools import cache
from pathlib import Path

from celery import Celery, signals
from celery.beat import PersistentScheduler

from batch_worker.checks import CHECK_VERSIONS_TASK, check_versions
from batch_worker.runner import JobRunner
from batch_worker.settings import Settings
from onepipe.platform.http.client import ModelServiceClient, RetryPolicy
from onepipe.platform.jobs.storage import CheckStore, JobStore
from onepipe.platform.jobs.types import JOBS_QUEUE, RUN_JOB_TASK
from onepipe.platform.logs import configure_logging
from onepipe.platform.settings import load_settings, uses_redis

settings = load_settings(Settings)  # a malformed value: one line on stderr, exit 1
app = Celery("batch_worker", broker=settings.redis_url)
app.conf.update(
    task_default_queue=JOBS_QUEUE,
    task_acks_late=True,  # a task is acknowledged when it ends: a killed worker's task is delivered again
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    worker_concurrency=settings.concurrency,
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
    # beat's record of when each check last ran: the image's app folder is read-only (`beat -s` overrides)
    beat_schedule_filename=str(Path(tempfile.gettempdir()) / "onepipe-beat-schedule"),
    beat_scheduler="batch_worker.celery_app:HeartbeatScheduler",
    beat_max_loop_interval=60,  # a tick, and so a heartbeat, at least once a minute
    beat_schedule={}
    if not settings.check_interval
    else {
        "check-versions": {
            "task": CHECK_VERSIONS_TASK,
            "schedule": settings.check_interval,
            # a check waiting longer than an interval (no worker up) is dropped: the next one replaces it
            "options": {"expires": settings.check_interval},
        }
    },
)
if uses_redis(settings.redis_url):
    app.conf.broker_transport_options = {
        "visibility_timeout": settings.visibility_timeout,
        # look for tasks of dead workers every few seconds, not every ~100 s
        "unacked_restore_interval": max(1, settings.visibility_timeout // 10),
        "unacked_restore_throttle": 1,
        # a Redis that accepts but never answers must not hang a send (a continuation, the sweep's);
        # well above the consumer's 1 s BRPOP, so waiting for tasks never trips it
        "socket_timeout": 10,
        "socket_connect_timeout": 5,
    }


class HeartbeatScheduler(PersistentScheduler):  # type: ignore[misc]  # celery ships no types
    """Celery's scheduler, touching `<schedule file>.alive` at each tick: beat's healthcheck reads its age."""

    def tick(self, *args: object, **kwargs: object) -> float:
        Path(f"{self.schedule_filename}.alive").touch()
        return float(super().tick(*args, **kwargs))


@signals.setup_logging.connect
def _logging(**_: object) -> None:
    configure_logging("worker", settings.log_level)


@cache
def _runner() -> JobRunner:
    client = ModelServiceClient(
        settings.model_url, timeout=settings.model_timeout, retry=RetryPolicy(attempts=3, backoff_min=0.5)
    )
    return JobRunner(JobStore(settings.storage_url), client, settings, send=_send)


def _send(job_id: str, ticket: str, countdown: float) -> None:
    run_job.apply_async((job_id,), {"ticket": ticket}, countdown=countdown or None)


@app.task(name=RUN_JOB_TASK)
def run_job(job_id: str, ticket: str | None = None) -> str:
    """Work on a job for one time budget (the runner queues what comes next)."""
    outcome = _runner().run(job_id, ticket)
    logging.getLogger("batch_worker").info("job %s: %s", job_id, outcome)
    return outcome


@app.task(name=CHECK_VERSIONS_TASK)
def check_versions_task() -> str:
    """Replay the edge-case library on the live champion and challenger; keep the result."""
    client = ModelServiceClient(
        settings.model_url, timeout=settings.model_timeout, retry=RetryPolicy(attempts=3, backoff_min=0.5)
    )
    with client:
        run = check_versions(client, CheckStore(settings.storage_url))
    return run.error or run.changes


_sweeping = threading.Event()


def _sweep_forever() -> None:
    """Sweep at start, then every sweep_interval seconds, until the worker stops."""
    log = logging.getLogger("batch_worker.sweep")
    while True:
        try:
            _runner().sweep()
        except OSError as error:  # the storage is down or read-only: try again at the next sweep
            log.warning(
                "the sweep could not use the job storage (%s); again in %g s", error, settings.sweep_interval
            )
        except Exception:
            log.exception(
                "the sweep for abandoned jobs failed; trying again in %g s", settings.sweep_interval
            )
        if _sweeping.wait(settings.sweep_interval):
            return


@signals.worker_ready.connect
def _start_sweeping(**_: object) -> None:
    # in the worker's main process: it outlives any pool child the kernel kills
    threading.Thread(target=_sweep_forever, name="sweep", daemon=True).start()


@signals.worker_shutdown.connect
def _stop_sweeping(**_: object) -> None:
    _sweeping.set()
