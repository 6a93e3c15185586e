"""The job queue as the gateway sees it: a Celery producer whose every Redis call is bounded, and its probe.

A Redis that accepts connections but never answers must not hang a request: each
socket call has a timeout, and the whole enqueue has a deadline (GATEWAY_QUEUE_TIMEOUT)
after which the submission answers 503 and keeps nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import Any, cast

from celery import Celery
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from onepipe.platform.jobs.types import JOBS_QUEUE, RUN_JOB_TASK
from onepipe.platform.settings import uses_redis

log = logging.getLogger("gateway.queue")
PROBE_SECONDS = 1.0  # /readyz asks Redis for at most this long
EMBEDDED = "embedded"  # the queue's state in the embedded (SQLite) mode: always usable
# sends waiting or stuck at once; more wait their turn and time out at the deadline like the others,
# so a silent Redis never holds more threads than this
SENDERS = 4


class QueueUnavailableError(Exception):
    """The job could not be queued within the deadline, or the broker refused it; the message says why."""


def socket_seconds(deadline: float) -> float:
    """Each Redis socket call's timeout: a third of the deadline (connect, send, one retry), at most 1 s."""
    return min(1.0, deadline / 3)


def producer(broker_url: str, deadline: float) -> Celery:
    """The Celery app the gateway sends tasks with (it never consumes)."""
    broker = Celery("gateway", broker=broker_url)
    broker.conf.broker_connection_retry_on_startup = True
    broker.conf.broker_connection_timeout = socket_seconds(deadline)
    options: dict[str, Any] = {"max_retries": 1}
    if uses_redis(broker_url):
        seconds = socket_seconds(deadline)
        options |= {"socket_timeout": seconds, "socket_connect_timeout": seconds}
    broker.conf.broker_transport_options = options
    return broker


class Enqueuer:
    """Sends the task that runs a job, or raises QueueUnavailableError within `deadline` seconds."""

    def __init__(self, broker: Celery, deadline: float) -> None:
        self.broker = broker
        self.deadline = deadline
        # its own few threads: a stuck send never takes one of the threads the routes run in
        self.senders = ThreadPoolExecutor(max_workers=SENDERS, thread_name_prefix="enqueue")

    def send(self, job_id: str, ticket: str) -> None:
        """The task carrying `ticket`; the socket timeouts end a stuck send soon after the deadline."""
        self.broker.send_task(
            RUN_JOB_TASK,
            args=[job_id],
            kwargs={"ticket": ticket},
            queue=JOBS_QUEUE,
            retry=True,
            retry_policy={"max_retries": 1, "interval_start": 0.2},
        )

    def __call__(self, job_id: str, ticket: str) -> None:
        future = self.senders.submit(self.send, job_id, ticket)
        try:
            future.result(timeout=self.deadline)
        except FutureTimeoutError:
            future.cancel()  # not started yet (every sender busy): it never will
            raise QueueUnavailableError(f"no answer from the queue within {self.deadline:g} s") from None
        except Exception as error:
            raise QueueUnavailableError(_reason(error)) from None

    def close(self) -> None:
        """Drop the sends not started; those under way end at their socket timeouts."""
        self.senders.shutdown(wait=False, cancel_futures=True)


def _reason(error: BaseException) -> str:
    """Why the queue failed, in a few words, with no internal address."""
    text = str(error).lower()
    if isinstance(error, RedisTimeoutError | TimeoutError) or "timeout" in text or "timed out" in text:
        return "no answer from the queue in time"
    if isinstance(error, RedisConnectionError | ConnectionError) or "refused" in text or "connect" in text:
        return "cannot connect to the queue"
    return f"the queue failed ({type(error).__name__})"


async def queue_state(broker_url: str, timeout: float = PROBE_SECONDS) -> str:
    """'ready', 'embedded' (the SQLite queue), or 'unavailable: why'; answers within about `timeout`."""
    if not uses_redis(broker_url):
        return EMBEDDED
    client = Redis.from_url(
        # no retries: one try, bounded, is the answer
        broker_url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )
    try:
        await asyncio.wait_for(cast("Awaitable[bool]", client.ping()), timeout)  # typed sync|async
    except Exception as error:  # any failure is the queue's state, shown on /readyz
        return f"unavailable: {_reason(error)}"
    finally:
        try:
            await asyncio.wait_for(client.aclose(), timeout)
        except Exception as error:  # closing a dead connection is no news
            log.debug("closing the probe's connection: %s", error)
    return "ready"
