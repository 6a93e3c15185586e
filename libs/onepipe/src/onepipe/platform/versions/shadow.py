"""The shadow record: live requests answered by the champion and sent again to the challenger, kept bounded.

The gateway answers its caller from the champion, then sends a sampled share of predict requests to
the challenger in the background and records each pair here: per input row its hash, both outputs,
both versions' hashes, and each call's latency as the gateway measured it. Two stores keep it:

- `RedisShadowStore` (REDIS_URL is redis://): one capped stream per pipeline (`XADD ... MAXLEN ~ n`),
  so the oldest records drop once it holds about n;
- `FileShadowStore` (the embedded mode): JSON Lines files under the storage root,
  `<root>/shadow/<pipeline>/<YYYYMMDDHH>-<writer>-<n>.jsonl`, files older than the hours kept deleted,
  and each writer's oldest file deleted once its files hold more than n records.

`summarize` turns records into what GET /v1/versions/shadow, the UI and a promotion's evidence show,
comparing outputs by the rule of every comparison (onepipe.platform.schema.changes.ChangeTally: decisions
on any change, numbers past their tolerance, their drift apart).
Needs the `shadow` extra (redis, fsspec; object storage needs the `storage` extra too).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import math
import threading
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Protocol

from pydantic import BaseModel, Field

from onepipe.platform import settings as peers
from onepipe.platform.schema.changes import ChangeTally
from onepipe.platform.schema.outputs import Outputs
from onepipe.platform.settings import ServiceSettings, uses_redis
from onepipe.platform.versions.types import ChangedAnswer, FieldAgreement, Latency, ShadowSummary

log = logging.getLogger("onepipe.shadow")
LISTED: Final = 50  # changed rows a summary lists, newest first
SEGMENTS: Final = 10  # a file writer's records are split over about this many files, dropped oldest first
HOUR: Final = "%Y%m%d%H"


def input_hash(item: Mapping[str, Any]) -> str:
    """sha256 of an input as canonical JSON: sorted keys, no spaces, UTF-8."""
    text = json.dumps(item, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


class ShadowRecord(BaseModel):
    """One shadowed request: inputs, both versions' outputs and latencies, or why the challenger failed."""

    at: datetime = Field(description="When the caller was answered.")
    champion: str = Field(description="The version hash the caller's answer carries.")
    challenger: str | None = Field(description="The challenger's hash (as known when it failed).")
    inputs: list[dict[str, Any]]
    input_hashes: list[str]
    flags: dict[str, Any] = Field(default_factory=dict)
    champion_outputs: list[dict[str, Any]]
    challenger_outputs: list[dict[str, Any]] | None = Field(None, description="None when it failed.")
    champion_ms: float = Field(description="The champion's pipeline time for these inputs (Server-Timing).")
    challenger_ms: float | None = Field(None, description="The challenger's, likewise; None when it failed.")
    error: str | None = Field(None, description="Why the challenger gave no answer.")
    skipped_before: int = Field(0, description="Sampled requests this writer skipped since its last record.")


class ShadowStore(Protocol):
    """Where shadow records are kept, bounded; `kept` says how, in one sentence."""

    kept: str

    async def add(self, records: Sequence[ShadowRecord]) -> None: ...

    async def records(self, since: datetime | None = None) -> list[ShadowRecord]: ...

    async def aclose(self) -> None: ...


def shadow_store(redis_url: str, storage_url: str, pipeline: str, record_max: int, hours: int) -> ShadowStore:
    """The Redis stream when REDIS_URL is Redis, else files under the storage root (the embedded mode)."""
    if uses_redis(redis_url):
        return RedisShadowStore(redis_url, pipeline, record_max)
    return FileShadowStore(storage_url, pipeline, record_max, hours)


class RedisShadowStore:
    """One capped stream per pipeline: `XADD MAXLEN ~ record_max`, so the oldest records drop."""

    def __init__(self, url: str, pipeline: str, record_max: int) -> None:
        from redis.asyncio import Redis

        # every call bounded: a silent Redis costs a shadow record, never a caller's time
        self.redis = Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self.key = f"onepipe:shadow:{pipeline}"
        self.record_max = record_max
        self.kept = f"the newest {record_max} records or a few more (a capped Redis stream, {self.key})"

    async def add(self, records: Sequence[ShadowRecord]) -> None:
        """Append records (one round trip); the stream trims its oldest beyond about record_max."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for record in records:
                pipe.xadd(self.key, {"r": record.model_dump_json()}, maxlen=self.record_max, approximate=True)
            await pipe.execute()

    async def records(self, since: datetime | None = None) -> list[ShadowRecord]:
        """The records kept, oldest first, from `since` on (stream ids are milliseconds)."""
        # a stream id is milliseconds since 1970: a time before that asks for the whole stream
        start = "-" if since is None or since.timestamp() <= 0 else f"{int(since.timestamp() * 1000)}-0"
        found = await self.redis.xrange(self.key, min=start, max="+")
        return [ShadowRecord.model_validate_json(fields[b"r"]) for _, fields in found]

    async def aclose(self) -> None:
        """Close the connections."""
        await self.redis.aclose()


class FileShadowStore:
    """JSON Lines files per hour under the storage root: old hours deleted, each writer's files capped.

    Appends need a file system that appends (a local or network folder): the embedded mode's. With
    object storage, use Redis (compose has it).
    """

    def __init__(self, root_url: str, pipeline: str, record_max: int, hours: int) -> None:
        import fsspec

        self.fs: Any
        self.fs, root = fsspec.core.url_to_fs(root_url, use_listings_cache=False)
        self.folder = f"{root.rstrip('/')}/shadow/{pipeline}"
        self.fs.makedirs(self.folder, exist_ok=True)
        self.record_max, self.hours = record_max, hours
        self.segment = max(1, record_max // SEGMENTS)
        self.writer = uuid.uuid4().hex[:8]  # one per process: no two processes append to one file
        self.files: list[tuple[str, int]] = []  # this writer's files, oldest first, with their records
        self.written = 0  # files this writer started
        self._lock = threading.Lock()
        self.kept = (
            f"the last {hours} hours, at most {record_max} records per gateway process "
            f"(JSON Lines files under {self.folder})"
        )

    async def add(self, records: Sequence[ShadowRecord]) -> None:
        """Append records (off the event loop)."""
        lines = [(record.model_dump_json() + "\n", record.at) for record in records]

        def append_all() -> None:
            for line, at in lines:
                self._add(line, at)

        await asyncio.to_thread(append_all)

    def _add(self, line: str, at: datetime) -> None:
        with self._lock:
            hour = at.astimezone(UTC).strftime(HOUR)
            if (
                not self.files
                or self.files[-1][1] >= self.segment
                or not _name(self.files[-1][0]).startswith(hour)
            ):
                self.written += 1  # never reused: a dropped file's name would take new records
                self.files.append((f"{self.folder}/{hour}-{self.writer}-{self.written:06d}.jsonl", 0))
                self._drop_old_hours(at)
            path, count = self.files[-1]
            with self.fs.open(path, "ab") as handle:
                handle.write(line.encode())
            self.files[-1] = (path, count + 1)
            while sum(count for _, count in self.files) > self.record_max:
                self._remove(self.files.pop(0)[0])

    def _drop_old_hours(self, now: datetime) -> None:
        oldest = (now.astimezone(UTC) - timedelta(hours=self.hours)).strftime(HOUR)
        for path in self.fs.ls(self.folder, detail=False):
            if _name(path)[: len(oldest)] < oldest:
                self._remove(path)
        self.files = [(path, count) for path, count in self.files if _name(path)[: len(oldest)] >= oldest]

    def _remove(self, path: str) -> None:
        with suppress(FileNotFoundError):  # another process's sweep was first
            self.fs.rm(path)

    async def records(self, since: datetime | None = None) -> list[ShadowRecord]:
        """The records kept, oldest first, from `since` on."""
        return await asyncio.to_thread(self._records, since)

    def _records(self, since: datetime | None) -> list[ShadowRecord]:
        # file names start with the hour (YYYYMMDDHH): a time before year 1000 would not compare as one
        first = "" if since is None or since.year < 1970 else since.astimezone(UTC).strftime(HOUR)
        found = []
        for path in sorted(self.fs.ls(self.folder, detail=False), key=_name):
            if not _name(path).endswith(".jsonl") or _name(path)[: len(first)] < first:
                continue
            try:
                text = bytes(self.fs.cat_file(path)).decode()
            except FileNotFoundError:  # dropped while we listed
                continue
            for line in text.splitlines():
                try:
                    record = ShadowRecord.model_validate_json(line)
                except ValueError:  # a line being written as we read
                    continue
                if since is None or record.at >= since:
                    found.append(record)
        return sorted(found, key=lambda record: record.at)

    async def aclose(self) -> None:
        """Nothing held open."""


def _name(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def pair_of(records: Sequence[ShadowRecord]) -> tuple[str | None, str | None]:
    """The champion and challenger of the newest record that has both (what to summarize by default)."""
    for record in reversed(records):
        if record.challenger is not None:
            return record.champion, record.challenger
    return None, None


def summarize(
    records: Sequence[ShadowRecord],
    output_schema: Mapping[str, Any],
    *,
    champion: str | None,
    challenger: str | None,
    since: datetime | None = None,
    kept: str = "",
    listed: int = LISTED,
) -> ShadowSummary:
    """What the records of this champion and challenger say from `since` on: counts, agreement per output
    field, the changed rows (newest first), each version's latency. Other pairs' records are left out:
    a summary is the evidence on one challenger against one champion."""
    mine = [
        r
        for r in records
        if r.champion == champion and r.challenger == challenger and (since is None or r.at >= since)
    ]
    tally = ChangeTally(Outputs.from_schema(output_schema))
    changed: list[ChangedAnswer] = []
    answered = [r for r in mine if r.challenger_outputs is not None]
    for record in reversed(answered):  # newest first, for the listed rows
        assert record.challenger_outputs is not None
        for item, digest, first, second in zip(
            record.inputs,
            record.input_hashes,
            record.champion_outputs,
            record.challenger_outputs,
            strict=False,
        ):
            differing = tally.add(first, second)
            if differing and len(changed) < listed:
                changed.append(
                    ChangedAnswer(
                        at=record.at,
                        input_hash=digest,
                        input=item,
                        flags=record.flags,
                        champion=first,
                        challenger=second,
                        fields=differing,
                    )
                )
    failed = [r for r in mine if r.challenger_outputs is None]
    return ShadowSummary(
        champion=champion,
        challenger=challenger,
        since=since or (mine[0].at if mine else None),
        until=mine[-1].at if mine else None,
        requests=len(mine),
        rows=tally.rows,
        failed=len(failed),
        skipped=sum(r.skipped_before for r in mine),
        errors=dict(Counter(r.error or "no answer" for r in failed).most_common()),
        agreement=[_agreement(tally, name) for name in tally.fields],
        headline=tally.headline() if tally.rows else "",
        decisions_changed=tally.decisions_changed,
        rows_changed=tally.rows_changed,
        changed=changed,
        listed=listed,
        latency={
            "champion": _latency([r.champion_ms for r in mine]),
            "challenger": _latency([r.challenger_ms for r in answered if r.challenger_ms is not None]),
        },
        kept=kept,
    )


def _agreement(tally: ChangeTally, name: str) -> FieldAgreement:
    """One field over the rows both versions answered: agreeing rows, and for a number how far it moved."""
    rows, agreeing = tally.rows, tally.rows - tally.changed[name]
    drift, described = tally.drift.get(name), tally.outputs.fields.get(name)
    moved = drift if drift is not None and drift.count else None
    return FieldAgreement(
        field=name,
        agreeing=agreeing,
        compared=rows,
        share=agreeing / rows if rows else None,
        compared_as=tally.compared_as(name),
        tolerance=described.tolerance if drift is not None and described is not None else None,
        median_difference=moved.median if moved else None,
        p95_difference=moved.p95 if moved else None,
        largest_difference=moved.largest if moved else None,
    )


def _latency(values: list[float]) -> Latency:
    ordered = sorted(values)
    return Latency(calls=len(ordered), p50_ms=_quantile(ordered, 0.5), p95_ms=_quantile(ordered, 0.95))


def _quantile(ordered: list[float], q: float) -> float | None:
    """The nearest-rank quantile of sorted values; None for none."""
    if not ordered:
        return None
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class ShadowSource(ServiceSettings):
    """Where a process that is not the gateway (`just promote`) finds the record: REDIS_URL, STORAGE_URL."""

    redis_url: str = peers.redis_url()
    storage_url: str = peers.storage_url()


def read_summary(
    pipeline: str, output_schema: Mapping[str, Any], champion: str, challenger: str, source: ShadowSource
) -> ShadowSummary | None:
    """The record of these two versions as the gateway keeps it, or None when it holds none of them.

    Raises OSError or redis' RedisError when the store does not answer."""

    async def read() -> ShadowSummary:
        # the bounds only matter to writers
        store = shadow_store(source.redis_url, source.storage_url, pipeline, record_max=10, hours=1)
        try:
            records = await store.records()
        finally:
            await store.aclose()
        kept = "as the gateway keeps it (GATEWAY_SHADOW_RECORD_MAX, GATEWAY_SHADOW_HOURS)"
        return summarize(records, output_schema, champion=champion, challenger=challenger, kept=kept)

    found = asyncio.run(read())
    return found if found.requests else None
