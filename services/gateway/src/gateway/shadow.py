"""Shadow traffic: a sampled share of champion predicts sent again to the challenger after answering.

Only predicts that name no version (the champion's callers) are shadowed, and only while a challenger
is set: learnt from the model service's /readyz (`challenger`), read by the gateway's own /readyz and
again in the background when older than CHALLENGER_TTL_S, never once per request. After the
response is sent, a BackgroundTask only queues the request (the connection is not held); queued
requests gather for GATEWAY_SHADOW_BATCH_MS and go in one call per flag set: the gateway's work per
shadowed request was what cost its callers (docs/versions.md#what-it-costs-the-caller). The calls are
marked background (RFC 9218 `Priority: u=7`: the model service runs them between its callers'
requests), have their own client (one attempt, GATEWAY_SHADOW_TIMEOUT) and at most
GATEWAY_SHADOW_MAX_IN_FLIGHT under way; a batch over that is skipped and its requests counted.
Whatever the challenger does (refuses connections, times out, answers 500), the record says so and
nobody else sees it. The record: onepipe.platform.versions.shadow.
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
from dataclasses import dataclass
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
        self._pending: list[Sampled] = []  # sampled, waiting for the next shadow call
        self._pending_inputs = 0
        self._timer: asyncio.TimerHandle | None = None

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
        """Queue a sampled request for the next shadow call and return at once (after the response)."""
        sampled = Sampled(inputs, flags, answer, answer.pipeline_ms or champion_ms, datetime.now(UTC))
        self._pending.append(sampled)
        self._pending_inputs += len(inputs)
        if self._pending_inputs >= self.settings.max_inputs or self.settings.shadow_batch_ms <= 0:
            self._send()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(
                self.settings.shadow_batch_ms / 1000, self._send
            )

    def _send(self) -> None:
        """Send what is queued to the challenger: one call per flag set, each up to max_inputs inputs."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending, self._pending_inputs = self._pending, [], 0
        for call in calls(pending, self.settings.max_inputs):
            if len(self.in_flight) >= self.settings.shadow_max_in_flight:
                self.skipped += len(call)
                continue
            task = asyncio.create_task(self._shadow(call))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)

    async def _shadow(self, call: list[Sampled]) -> None:
        challenger, outputs, error, took = self.challenger, None, None, None
        inputs = [item for sampled in call for item in sampled.inputs]
        try:
            found = await self.client.predict_raw(inputs, call[0].flags, version=CHALLENGER, background=True)
            body = json.loads(found.body)
            challenger, outputs, took = (
                found.version or body.get("version"),
                body["outputs"],
                found.pipeline_ms,
            )
        except ServiceError as failure:
            error = why(failure)
        except Exception as failure:  # a shadow call never fails a caller: anything else is recorded too
            log.exception("shadow call failed")
            error = f"{type(failure).__name__}: {failure}"[:200]
        skipped, self.skipped = self.skipped, 0
        records: list[ShadowRecord] = []
        start = 0
        for sampled in call:
            end = start + len(sampled.inputs)
            records.append(
                ShadowRecord(
                    at=sampled.at,
                    champion=sampled.answer.version,
                    challenger=challenger,
                    inputs=sampled.inputs,
                    input_hashes=[input_hash(item) for item in sampled.inputs],
                    flags=sampled.flags,
                    champion_outputs=json.loads(sampled.answer.body)["outputs"],
                    challenger_outputs=None if outputs is None else outputs[start:end],
                    champion_ms=sampled.champion_ms,
                    # the call's pipeline time, this request's share of it
                    challenger_ms=None if took is None else took * len(sampled.inputs) / len(inputs),
                    error=error,
                    skipped_before=skipped if not records else 0,
                )
            )
            start = end
        store = self.store()
        if store is None:
            return
        try:
            await store.add(records)
        except Exception as failure:  # the record is lost, the callers are not
            log.warning("could not keep %d shadow records: %s", len(records), failure)

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
        """Send what is queued, let the shadow calls under way finish (briefly), close client and store."""
        if self._pending:
            self._send()
        if self.in_flight:
            await asyncio.wait(self.in_flight, timeout=2.0)
        await self.client.aclose()
        if self._store is not None:
            await self._store.aclose()


@dataclass(frozen=True)
class Sampled:
    """A sampled request, answered by the champion, waiting for its shadow call."""

    inputs: list[dict[str, Any]]
    flags: dict[str, Any]
    answer: RawPredictAnswer
    champion_ms: float  # the champion's pipeline time for these inputs (else the call's, as timed here)
    at: datetime


def calls(pending: list[Sampled], max_inputs: int) -> list[list[Sampled]]:
    """The shadow calls for these requests: one per flag set, each up to `max_inputs` inputs, in order."""
    by_flags: dict[str, list[list[Sampled]]] = {}
    for sampled in pending:
        group = by_flags.setdefault(json.dumps(sampled.flags, sort_keys=True), [[]])
        if group[-1] and sum(len(s.inputs) for s in group[-1]) + len(sampled.inputs) > max_inputs:
            group.append([])
        group[-1].append(sampled)
    return [call for group in by_flags.values() for call in group]


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
