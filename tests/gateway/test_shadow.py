"""Shadow traffic: the gateway answers from the champion, then calls the challenger and records both answers.

A real model service on an embedded registry (v1 the example, v2 the same artifacts with
classifier=minilm as challenger) and a real gateway with GATEWAY_SHADOW_RATE=1, for each store:
the run's Redis (a capped stream) and files under the storage root (the embedded SQLite broker).
The faults a real model service will not give on demand (a 500, a slow answer, a connection cut
mid-answer) come from a stand-in in front of the real one that answers the challenger's calls so.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from onepipe.platform.schema.outputs import Outputs, differing_fields
from onepipe.platform.versions.evidence import held_out_of
from onepipe.platform.versions.registry import Registry
from onepipe.platform.versions.shadow import (
    FileShadowStore,
    RedisShadowStore,
    ShadowRecord,
    ShadowStore,
    input_hash,
)
from onepipe_harness.processes import (
    RedisServer,
    ServiceProcess,
    ThreadedServer,
    free_port,
    gateway,
    model_service,
)
from review_triage.pipeline import pipeline as example
from tests.conftest import registry_env
from tests.stacks import as_key, keys_env

RELEASE = as_key("release")  # the versions scope: the record shows other callers' inputs


def _texts() -> list[str]:
    """Held-out snippets of varied lengths: the shortest, the longest and some between."""
    texts = sorted({str(row["text"]) for row, _ in (held_out_of(example) or [])}, key=len)
    step = max(1, len(texts) // 12)
    return [*texts[::step][:12], texts[-1]]


def _requests() -> list[dict[str, Any]]:
    """Predict bodies: one input or several, some with flags of the caller's."""
    texts = _texts()
    bodies: list[dict[str, Any]] = [{"inputs": {"text": text}} for text in texts[:8]]
    bodies.append({"inputs": [{"text": text} for text in texts[8:11]]})
    bodies.append({"inputs": {"text": texts[11]}, "flags": {"neighbours": 1}})
    bodies.append({"inputs": [{"text": texts[-1]}, {"text": texts[0]}], "flags": {"review_below": 0.9}})
    return bodies


def _listed(body: dict[str, Any]) -> dict[str, Any]:
    """A body as the model service takes it: its inputs a list."""
    inputs = body["inputs"]
    return {**body, "inputs": inputs if isinstance(inputs, list) else [inputs]}


def _gateway_env(store: str, tmp_path: Path, redis_server: RedisServer, **extra: str) -> dict[str, str]:
    broker = redis_server.url(9) if store == "redis" else f"sqla+sqlite:///{tmp_path / 'queue.sqlite'}"
    if store == "redis":
        redis_server_flush(broker)
    return {
        "GATEWAY_API_KEYS": keys_env(),
        "GATEWAY_RATE_LIMIT": "100000/minute",
        "GATEWAY_SHADOW_RATE": "1",
        "REDIS_URL": broker,
        "STORAGE_URL": str(tmp_path / "storage"),
        **extra,
    }


def redis_server_flush(url: str) -> None:
    """Empty one database of the run's own Redis (the `redis_server` fixture's, never another's), so the
    stream holds only this test's shadow records: other tests' would change its counts."""
    Redis.from_url(url).flushdb()


def _summary(front: ServiceProcess, **params: str) -> dict[str, Any]:
    answer = httpx.get(f"{front.url}/v1/versions/shadow", params=params, headers=RELEASE, timeout=30)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _until(front: ServiceProcess, done: Any, timeout: float = 60) -> dict[str, Any]:
    """The summary, asked again until `done(summary)` holds."""
    deadline = time.monotonic() + timeout
    while not done(summary := _summary(front)):
        assert time.monotonic() < deadline, (summary, front.log()[-3000:])
        time.sleep(0.2)
    return summary


def _records(store: ShadowStore) -> list[ShadowRecord]:
    async def read() -> list[ShadowRecord]:
        try:
            return await store.records()
        finally:
            await store.aclose()

    return asyncio.run(read())


def _store(kind: str, front_env: dict[str, str], record_max: int = 1000) -> ShadowStore:
    if kind == "redis":
        return RedisShadowStore(front_env["REDIS_URL"], example.name, record_max)
    return FileShadowStore(front_env["STORAGE_URL"], example.name, record_max, 24)


@pytest.mark.parametrize("store", ["redis", "files"])
def test_every_shadowed_request_is_recorded_with_both_outputs_and_the_differences_where_they_are(
    store: str, two_versions: Registry, tmp_path: Path, redis_server: RedisServer
) -> None:
    # one request per batch at the model service: the challenger's answers to the shadow calls and to
    # the direct calls below are the same computation, to the last digit
    service_env = {**registry_env(two_versions, tmp_path), "MODEL_BATCHING": "false"}
    env = _gateway_env(store, tmp_path, redis_server)
    v1, v2 = (two_versions.resolve(example.name, ref).version for ref in ("v1", "v2"))
    bodies = _requests()
    with (
        model_service(free_port(), **service_env) as service,
        gateway(free_port(), service.url, **env) as front,
    ):
        started = datetime.now(UTC)
        answers = [
            httpx.post(f"{front.url}/v1/predict", json=b, headers=as_key("app"), timeout=60) for b in bodies
        ]
        summary = _until(front, lambda s: s["requests"] == len(bodies))
        # both versions asked directly, the same requests
        champion = [
            httpx.post(f"{service.url}/v1/predict", json=_listed(b), timeout=60).json() for b in bodies
        ]
        challenger = [
            httpx.post(
                f"{service.url}/v1/predict", json={**_listed(b), "version": "challenger"}, timeout=60
            ).json()
            for b in bodies
        ]
        output_schema = httpx.get(f"{service.url}/v1/pipeline").json()["output_schema"]
        assert httpx.get(f"{front.url}/v1/versions/shadow", headers=as_key("app")).status_code == 403
        bad = httpx.get(f"{front.url}/v1/versions/shadow", params={"since": "yesterday"}, headers=RELEASE)
        assert bad.status_code == 422 and "since" in bad.json()["errors"][0]["loc"]
        # not RFC 3339 date-times, found by the fuzzer: a number (pydantic would read it as seconds since
        # 1970), nothing, a date alone, a time without its offset
        for text in ("0.5", "", "2026-12-06", "2026-12-06T21:00:00"):
            refused = httpx.get(f"{front.url}/v1/versions/shadow", params={"since": text}, headers=RELEASE)
            assert refused.status_code == 422 and refused.json()["errors"][0]["loc"] == "since", text
        # a time before 1970 asks for the whole record (the stream's ids start there), not a 503
        ancient = _summary(front, since="0699-08-19T15:43:03Z")
        assert ancient["requests"] == _summary(front)["requests"]
        later = _summary(front, since=(datetime.now(UTC) + timedelta(hours=1)).isoformat())
        assert later["requests"] == 0 and later["rows"] == 0
        before = _summary(front, since=(started - timedelta(minutes=1)).isoformat())
        assert before["requests"] == len(bodies)
    # the callers got the champion's answers, as the champion gives them
    assert [a.status_code for a in answers] == [200] * len(bodies)
    assert [a.json()["outputs"] for a in answers] == [c["outputs"] for c in champion]
    assert {a.json()["version"] for a in answers} == {v1}
    # every shadowed request is in the record, with both outputs as each version gives them
    records = _records(_store(store, env))
    assert len(records) == len(bodies)
    by_inputs = {tuple(r.input_hashes): r for r in records}
    outputs = Outputs.from_schema(output_schema)
    fields = outputs.compared()
    decisions = [name for name in fields if outputs.fields[name].compared_as == "decision"]
    changed, decided, differ = 0, 0, dict.fromkeys(fields, 0)
    listed: dict[tuple[str, str], list[str]] = {}
    for body, first, second in zip(bodies, champion, challenger, strict=True):
        inputs = body["inputs"] if isinstance(body["inputs"], list) else [body["inputs"]]
        record = by_inputs[tuple(input_hash(item) for item in inputs)]
        assert (record.champion, record.challenger, record.error) == (v1, v2, None)
        assert record.flags == body.get("flags", {})
        assert record.champion_outputs == first["outputs"]
        assert record.challenger_outputs == second["outputs"]
        assert record.champion_ms > 0 and (record.challenger_ms or 0) > 0
        for item, a, b in zip(inputs, first["outputs"], second["outputs"], strict=True):
            differing = differing_fields(fields, a, b, outputs)
            changed += bool(differing)
            decided += any(a.get(name) != b.get(name) for name in decisions)
            for name in differing:
                differ[name] += 1
            if differing:
                listed[(input_hash(item), json.dumps(body.get("flags", {}), sort_keys=True))] = differing
    rows = sum(len(b["inputs"]) if isinstance(b["inputs"], list) else 1 for b in bodies)
    assert changed > 0  # MiniLM answers some of these differently: the test sees real disagreements
    assert (summary["champion"], summary["challenger"]) == (v1, v2)
    assert (summary["rows"], summary["failed"], summary["skipped"]) == (rows, 0, 0)
    assert summary["rows_changed"] == changed
    assert summary["decisions_changed"] == decided  # a decision changes with its value
    assert summary["headline"].startswith(
        ("Label changed on", "Label the same on all", "No decision changed")
    )
    assert {a["field"]: a["compared"] - a["agreeing"] for a in summary["agreement"]} == differ
    assert summary["agreement"][0]["field"] == "label"  # the label first, as the job comparison shows it
    assert {
        (c["input_hash"], json.dumps(c["flags"], sort_keys=True)): c["fields"] for c in summary["changed"]
    } == listed
    assert all(c["input"] and c["champion"] != c["challenger"] for c in summary["changed"])
    assert [c["at"] for c in summary["changed"]] == sorted(
        (c["at"] for c in summary["changed"]), reverse=True
    )
    latency = summary["latency"]
    assert latency["champion"]["calls"] == latency["challenger"]["calls"] == len(bodies)
    assert 0 < latency["champion"]["p50_ms"] <= latency["champion"]["p95_ms"]


def test_a_promotion_through_the_gateway_carries_the_shadow_record(
    two_versions: Registry, tmp_path: Path, redis_server: RedisServer
) -> None:
    env = _gateway_env("files", tmp_path, redis_server)
    with (
        model_service(free_port(), **registry_env(two_versions, tmp_path)) as service,
        gateway(free_port(), service.url, **env) as front,
    ):
        for body in _requests()[:4]:
            assert httpx.post(
                f"{front.url}/v1/predict", json=body, headers=as_key("app"), timeout=60
            ).is_success
        _until(front, lambda s: s["requests"] == 4)
        promoted = httpx.post(
            f"{front.url}/v1/versions/promote", json={"held_out_rows": 20}, headers=RELEASE, timeout=600
        )
    # the repository's case library has a must-pass case MiniLM breaks: refused, the evidence in the 409
    evidence = promoted.json()["evidence"]
    assert (
        evidence["shadow"]["requests"] == 4
        and evidence["shadow"]["challenger"] == evidence["challenger"]["version"]
    )


# -- faults: the challenger cut off, slow, failing ---------------------------------------------------


class StandIn:
    """The model service as the gateway sees it, with a challenger that fails as `mode` says.

    Everything is passed to the real model service, which serves one version; /readyz names a
    challenger, and a predict for it is answered by `mode`: "500" a problem with status 500, "slow"
    the champion's answer after SLOW_S, "cut" the answer's start then the connection closed (a
    challenger process that dies mid-answer), "ok" the champion's answer at once.
    """

    SLOW_S = 6.0

    def __init__(self, target: str, mode: str) -> None:
        self.target, self.mode = target, mode
        self.challenger_calls = 0
        self.challenger_inputs: list[int] = []  # inputs per challenger call
        self.priorities: set[str | None] = set()  # the Priority headers of the challenger calls
        self.app = Starlette(routes=[Route("/{path:path}", self.forward, methods=["GET", "POST"])])

    async def forward(self, request: Request) -> Response:
        body = await request.body()
        sent = json.loads(body) if body else None
        if (
            request.url.path == "/v1/predict"
            and isinstance(sent, dict)
            and sent.get("version") == "challenger"
        ):
            self.challenger_calls += 1
            self.challenger_inputs.append(len(sent["inputs"]))
            self.priorities.add(request.headers.get("priority"))
            if self.mode == "500":
                return JSONResponse({"title": "Internal error", "status": 500}, status_code=500)
            if self.mode == "cut":
                return StreamingResponse(self._cut(), media_type="application/json")
            await asyncio.sleep(self.SLOW_S if self.mode == "slow" else 0)
            body = json.dumps({k: v for k, v in sent.items() if k != "version"}).encode()
        async with httpx.AsyncClient(timeout=60) as client:
            answer = await client.request(
                request.method,
                self.target + request.url.path,
                content=body,
                headers={"content-type": "application/json"} if body else {},
            )
        content = answer.content
        if request.url.path == "/readyz" and answer.status_code == 200:
            content = json.dumps({**answer.json(), "challenger": "stand-in-challenger"}).encode()
        headers = {
            k: v
            for k, v in answer.headers.items()
            if k.lower() in ("x-pipeline-version", "content-type", "server-timing")
        }
        if isinstance(sent, dict) and sent.get("version") == "challenger":  # answered as the challenger
            content = json.dumps({**answer.json(), "version": "stand-in-challenger"}).encode()
            headers["x-pipeline-version"] = "stand-in-challenger"
        return Response(content, status_code=answer.status_code, headers=headers)

    @staticmethod
    async def _cut() -> AsyncIterator[bytes]:
        yield b'{"outputs": ['
        raise ConnectionResetError("the challenger died mid-answer")


@contextmanager
def fronted(
    example_service: ServiceProcess, mode: str, tmp_path: Path, **extra: str
) -> Iterator[tuple[StandIn, ServiceProcess]]:
    stand_in = StandIn(example_service.url, mode)
    env = {
        "GATEWAY_API_KEYS": keys_env(),
        "GATEWAY_RATE_LIMIT": "100000/minute",
        "GATEWAY_SHADOW_RATE": "1",
        "GATEWAY_SHADOW_TIMEOUT": "2",
        "REDIS_URL": f"sqla+sqlite:///{tmp_path / 'queue.sqlite'}",
        "STORAGE_URL": str(tmp_path / "storage"),
        **extra,
    }
    with ThreadedServer(stand_in.app) as server, gateway(free_port(), server.url, **env) as front:
        yield stand_in, front


@pytest.mark.parametrize(
    ("mode", "error"), [("500", "failed (500)"), ("cut", "unavailable (503)"), ("slow", "timeout (504)")]
)
def test_a_failing_challenger_changes_no_callers_answer_and_the_record_counts_it(
    example_service: ServiceProcess, tmp_path: Path, mode: str, error: str
) -> None:
    bodies = _requests()[:6]
    direct = [
        httpx.post(f"{example_service.url}/v1/predict", json=_listed(b), timeout=60).json() for b in bodies
    ]
    with fronted(example_service, mode, tmp_path) as (stand_in, front):
        answers, seconds = [], []
        for body in bodies:
            started = time.monotonic()
            answers.append(
                httpx.post(f"{front.url}/v1/predict", json=body, headers=as_key("app"), timeout=60)
            )
            seconds.append(time.monotonic() - started)
        summary = _until(front, lambda s: s["failed"] == len(bodies), timeout=60)
    assert [a.status_code for a in answers] == [200] * len(bodies)
    assert [a.json() for a in answers] == direct
    # nobody waited for the challenger: its slow answer takes SLOW_S, a timeout GATEWAY_SHADOW_TIMEOUT
    assert max(seconds) < 1.5, seconds
    # every input was sent (requests close together share a call), each marked background
    assert sum(stand_in.challenger_inputs) == sum(len(_listed(b)["inputs"]) for b in bodies)
    assert stand_in.priorities == {"u=7"}
    assert (summary["requests"], summary["rows"], summary["skipped"]) == (len(bodies), 0, 0)
    assert summary["errors"] == {error: len(bodies)}
    assert summary["latency"]["challenger"]["calls"] == 0


def test_shadow_calls_over_the_bound_are_skipped_and_counted(
    example_service: ServiceProcess, tmp_path: Path
) -> None:
    bodies = _requests()[:6]
    # a call per request (no gathering), at most 2 under way
    limits = {"GATEWAY_SHADOW_MAX_IN_FLIGHT": "2", "GATEWAY_SHADOW_BATCH_MS": "0"}
    with fronted(example_service, "slow", tmp_path, **limits) as (stand_in, front):
        for body in bodies:
            assert httpx.post(
                f"{front.url}/v1/predict", json=body, headers=as_key("app"), timeout=60
            ).is_success
        summary = _until(front, lambda s: s["failed"] == 2, timeout=60)
    assert stand_in.challenger_calls == 2
    assert (summary["requests"], summary["failed"], summary["skipped"]) == (2, 2, 4)


def test_requests_close_together_share_one_shadow_call_and_keep_a_record_each(
    example_service: ServiceProcess, tmp_path: Path
) -> None:
    bodies = [b for b in _requests() if "flags" not in b]  # one flag set: one call
    direct = [
        httpx.post(f"{example_service.url}/v1/predict", json=_listed(b), timeout=60).json() for b in bodies
    ]
    with fronted(example_service, "ok", tmp_path, GATEWAY_SHADOW_BATCH_MS="5000") as (stand_in, front):
        for body in bodies:
            assert httpx.post(
                f"{front.url}/v1/predict", json=body, headers=as_key("app"), timeout=60
            ).is_success
        summary = _until(front, lambda s: s["requests"] == len(bodies), timeout=60)
        records = _records(FileShadowStore(str(tmp_path / "storage"), example.name, 1000, 24))
    inputs = sum(len(_listed(b)["inputs"]) for b in bodies)
    assert stand_in.challenger_inputs == [inputs] and stand_in.priorities == {"u=7"}
    assert (summary["requests"], summary["rows"], summary["failed"]) == (len(bodies), inputs, 0)
    # each request's record holds its own inputs and both answers to them
    by_inputs = {json.dumps(r.inputs): r for r in records}
    for body, answer in zip(bodies, direct, strict=True):
        record = by_inputs[json.dumps(_listed(body)["inputs"])]
        assert record.champion_outputs == record.challenger_outputs == answer["outputs"]
        assert record.challenger == "stand-in-challenger"
        assert record.champion_ms > 0 and (record.challenger_ms or 0) > 0  # both pipeline times


# -- the record's bounds --------------------------------------------------------------------------


def _record(at: datetime, n: int) -> ShadowRecord:
    item = {"text": f"snippet {n}"}
    return ShadowRecord(
        at=at,
        champion="a",
        challenger="b",
        inputs=[item],
        input_hashes=[input_hash(item)],
        champion_outputs=[{"label": "fresh"}],
        challenger_outputs=[{"label": "fresh" if n % 2 else "rotten"}],
        champion_ms=1.0,
        challenger_ms=2.0,
    )


def _add(store: ShadowStore, records: list[ShadowRecord]) -> list[ShadowRecord]:
    async def write() -> list[ShadowRecord]:
        for start in range(0, len(records), 7):  # several records per write, as the gateway writes them
            await store.add(records[start : start + 7])
        try:
            return await store.records()
        finally:
            await store.aclose()

    return asyncio.run(write())


def test_the_redis_stream_drops_its_oldest_records_past_the_cap(redis_server: RedisServer) -> None:
    url = redis_server.url(8)
    redis_server_flush(url)
    now = datetime.now(UTC)
    kept = _add(RedisShadowStore(url, "capped", 10), [_record(now, n) for n in range(400)])
    # MAXLEN ~: trimmed by whole stream nodes (100 entries), never below the cap
    assert 10 <= len(kept) <= 110
    assert kept[-1].inputs == [{"text": "snippet 399"}] and kept[0].inputs != [{"text": "snippet 0"}]


def test_the_file_store_drops_its_oldest_records_past_the_cap_and_hours(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    store = FileShadowStore(str(tmp_path), "capped", 20, 24)
    old = _record(now - timedelta(hours=30), -1)
    kept = _add(store, [old, *(_record(now, n) for n in range(50))])
    assert 18 <= len(kept) <= 20
    assert kept[-1].inputs == [{"text": "snippet 49"}] and old.inputs not in [r.inputs for r in kept]
    files = list((tmp_path / "shadow" / "capped").iterdir())
    assert all(f.name.startswith(now.strftime("%Y%m%d%H")) for f in files)
