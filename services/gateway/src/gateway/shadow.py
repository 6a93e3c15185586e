"""Shadow traffic: a sampled share of champion predicts sent again to the challenger after answering.

Only predicts that name no version (the champion's callers) are shadowed, and only while a challenger
is set: learnt from the model service's /readyz (`challenger`), read by the gateway's own /readyz and
again in the background when older than CHALLENGER_TTL_S, never once per request. The shadow call
starts after the response is sent (a BackgroundTask that only spawns an asyncio task, so the
connection is not held), has its own client (one attempt, GATEWAY_SHADOW_TIMEOUT) and at most
GATEWAY_SHADOW_MAX_IN_FLIGHT under way; a sampled request over that is skipped and counted. Whatever
the challenger does (refuses connections, times out, answers 500), the record says so and nobody else
sees it. The record: onepipe.platform.versions.shadow.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import time
from collections.abc import Mapping
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any, Final

from gateway.settings import Settings
from onepipe import Problem
from onepipe.platform.http.client import AsyncModelServiceClient, RawPredictAnswer, RetryPolicy, ServiceError
from onepipe.platform.http.server import ProblemError
from onepipe.platform.versions.shadow import (
    ShadowRecord,
    ShadowStore,
    input_hash,
    pair_of,
    shadow_store,
    summarize,
)
from onepipe.platform.versions.types import CHALLENGER, ShadowSummary

RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
log = logging.getLogger("gateway.shadow")
CHALLENGER_TTL_S: Final = 5.0  # how stale the known challenger may be before it is asked again


class Shadow:
    """Samples champion predicts, calls the challenger with them in the background, records each pair."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rate = settings.shadow_rate
        self.client = AsyncModelServiceClient(
            settings.model_url, timeout=settings.shadow_timeout, retry=RetryPolicy(attempts=1)
        )
        self.pipeline: str | None = None
        self.champion: str | None = None
        self.challenger: str | None = None
        self._learnt_at = -CHALLENGER_TTL_S
        self._asking: asyncio.Task[None] | None = None
        self._store: ShadowStore | None = None
        self.in_flight: set[asyncio.Task[None]] = set()  # held here: a task nobody holds may be collected
        self.skipped = 0  # since this process's last record, which carries the count

    def learn(self, ready: Mapping[str, Any]) -> None:
        """Note the pipeline, champion and challenger from a model service /readyz answer."""
        self.pipeline = str(ready.get("pipeline") or "") or self.pipeline
        self.champion = ready.get("version")
        self.challenger = ready.get("challenger")
        self._learnt_at = time.monotonic()

    def forget(self) -> None:
        """Drop the known challenger (the aliases moved): it is asked for again with the next predict."""
        self.challenger = None
        self._learnt_at = -CHALLENGER_TTL_S

    def store(self) -> ShadowStore | None:
        """The record's store, once the pipeline's name is known."""
        if self._store is None and self.pipeline:
            s = self.settings
            self._store = shadow_store(
                s.redis_url, s.storage_url, self.pipeline, s.shadow_record_max, s.shadow_hours
            )
        return self._store

    def sampled(self, version: str | None) -> bool:
        """Whether to shadow this predict: it names no version, a challenger is set, and it is drawn."""
        if self.rate <= 0 or version is not None:
            return False
        if time.monotonic() - self._learnt_at > CHALLENGER_TTL_S and self._asking is None:
            self._asking = asyncio.create_task(self._ask())
        return self.challenger is not None and random.random() < self.rate

    async def _ask(self) -> None:
        try:
            self.learn(await self.client.ready())
        except ServiceError:
            self.challenger = None  # not known: shadow nothing until the model service answers
            self._learnt_at = time.monotonic()
        finally:
            self._asking = None

    async def start(
        self,
        inputs: list[dict[str, Any]],
        flags: dict[str, Any],
        answer: RawPredictAnswer,
        champion_ms: float,
    ) -> None:
        """Start the shadow call and return at once (run after the response is sent); skip it when full."""
        if len(self.in_flight) >= self.settings.shadow_max_in_flight:
            self.skipped += 1
            return
        task = asyncio.create_task(self._shadow(inputs, flags, answer, champion_ms, datetime.now(UTC)))
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    async def _shadow(
        self,
        inputs: list[dict[str, Any]],
        flags: dict[str, Any],
        answer: RawPredictAnswer,
        champion_ms: float,
        at: datetime,
    ) -> None:
        challenger, outputs, error = self.challenger, None, None
        started = time.perf_counter()
        try:
            found = await self.client.predict_raw(inputs, flags, version=CHALLENGER)
            body = json.loads(found.body)
            challenger, outputs = found.version or body.get("version"), body["outputs"]
        except ServiceError as failure:
            error = why(failure)
        except Exception as failure:  # a shadow call never fails a caller: anything else is recorded too
            log.exception("shadow call failed")
            error = f"{type(failure).__name__}: {failure}"[:200]
        challenger_ms = (time.perf_counter() - started) * 1000
        skipped, self.skipped = self.skipped, 0
        record = ShadowRecord(
            at=at,
            champion=answer.version,
            challenger=challenger,
            inputs=inputs,
            input_hashes=[input_hash(item) for item in inputs],
            flags=flags,
            champion_outputs=json.loads(answer.body)["outputs"],
            challenger_outputs=outputs,
            champion_ms=champion_ms,
            challenger_ms=None if error else challenger_ms,
            error=error,
            skipped_before=skipped,
        )
        store = self.store()
        if store is None:
            return
        try:
            await store.add(record)
        except Exception as failure:  # the record is lost, the callers are not
            log.warning("could not keep a shadow record: %s", failure)

    async def summary(self, output_schema: Mapping[str, Any], since: datetime | None) -> ShadowSummary:
        """The record of the current champion and challenger (else the newest pair recorded) from `since`."""
        with suppress(ServiceError):  # the record is still worth reading: the pair last known
            self.learn(await self.client.ready())
        store = self.store()
        records = [] if store is None else await store.records(since)
        champion, challenger = (
            (self.champion, self.challenger) if self.challenger is not None else pair_of(records)
        )
        return summarize(
            records,
            output_schema,
            champion=champion,
            challenger=challenger,
            since=since,
            kept="" if store is None else store.kept,
        )

    async def close(self) -> None:
        """Let the shadow calls under way finish (briefly), then close the client and the store."""
        if self.in_flight:
            await asyncio.wait(self.in_flight, timeout=2.0)
        await self.client.aclose()
        if self._store is not None:
            await self._store.aclose()


def why(failure: ServiceError) -> str:
    """A failure in a few words, the same for every call of its kind (the record counts them by it)."""
    status = f" ({failure.status})" if failure.status else ""
    return f"{type(failure).__name__.removesuffix('Error').replace('Service', '').lower()}{status}"


def parse_since(text: str | None) -> datetime | None:
    """A `since` query as an aware time, or a 422 naming it.

    Only an RFC 3339 date-time, as the OpenAPI format says (a date, a time and its offset): pydantic
    would also read a number as seconds since 1970, and Python's ISO parser a date alone."""
    if text is None:
        return None
    try:
        if not RFC3339.fullmatch(text):
            raise ValueError(text)
        return datetime.fromisoformat(text)
    except ValueError:
        message = f"{text!r} is not an RFC 3339 time with its offset (for example 2026-12-06T21:00:00Z)"
        raise ProblemError(
            422, "Invalid query", f"since: {message}", errors=[Problem(loc="since", message=message)]
        ) from None
