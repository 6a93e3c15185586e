"""`just soak`: the stack under steady load for a bounded time, then its jobs checked and its memory compared.

Starts the model service, the gateway and a Celery worker as local processes on loopback, on a
redis-server of its own on a free port (the same launches as the tests, `onepipe_harness.processes`). Then,
for `--minutes`, at the same time: predicts at a steady `--rate` through the gateway (real snippets,
1 to 3 inputs, one in five with the MiniLM classifier); one request a second from a second key
whose limit is 30 a minute (its 429s are intended, every other refusal is an error); a batch job of
`--job-rows` rows every `--job-every` seconds, polled until done. Every few seconds it samples the
resident memory (VmRSS) of each service's whole process tree. After the load it waits for every job,
checks each report has every row once, in order, and compares each service's mean RSS in the first
minute with the last.

Prints tables and writes test-output/soak.json. Exits 1 when a request failed (any status or
transport error but the intended 429s), a job lost or failed a row, or a service's RSS grew by more
than 20% + 10 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from gateway.auth import hash_key, new_key
from onepipe_harness.processes import (
    OUTPUT,
    RedisServer,
    ServiceProcess,
    free_port,
    gateway,
    model_service,
    worker,
)
from review_triage.data import load_snippets

ROOT = Path(__file__).resolve().parent.parent

# what each kind of request may answer; anything else is an error
EXPECTED = {"predict": {200}, "throttled": {200, 429}, "submit": {202}, "poll": {200}, "report": {200}}
THROTTLED_LIMIT = "30/minute"
FINISHED = ("succeeded", "failed", "cancelled")


def _parents() -> dict[int, list[int]]:
    """Children of every process, from /proc/<pid>/stat (Linux)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone meanwhile
            continue
        ppid = int(text.rsplit(")", 1)[1].split()[1])  # the name in parentheses may hold spaces
        children.setdefault(ppid, []).append(int(stat.parent.name))
    return children


def tree_rss_mb(root: int, children: dict[int, list[int]]) -> float:
    """The resident memory of a process and all its descendants, in MB (VmRSS from /proc/<pid>/status)."""
    total_kb, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        total_kb += next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0
        )
    return total_kb / 1024


@dataclass
class Job:
    """A submitted job: its rows' ids, what the gateway said, and when."""

    id: str
    url: str
    ids: list[str]
    submitted: float
    state: str = "queued"
    finished: float | None = None
    view: dict[str, Any] = field(default_factory=dict)
    report_rows_ok: bool | None = None


@dataclass
class Soak:
    """The load, its counts, the jobs and the memory samples."""

    gateway_url: str
    keys: dict[str, str]
    texts: list[str]
    statuses: Counter[tuple[str, str]] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)
    samples: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(11))

    async def call(
        self, client: httpx.AsyncClient, kind: str, key: str, method: str, url: str, **kwargs: Any
    ) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            answer = await client.request(method, url, headers={"X-API-Key": self.keys[key]}, **kwargs)
        except httpx.HTTPError as error:
            self.statuses[kind, type(error).__name__] += 1
            return None
        self.statuses[kind, str(answer.status_code)] += 1
        if kind == "predict" and answer.status_code == 200:
            self.latencies.append(time.perf_counter() - started)
        return answer

    def predict_body(self) -> dict[str, Any]:
        inputs = [{"text": t} for t in self.rng.sample(self.texts, self.rng.randint(1, 3))]
        flags = {"classifier": "minilm"} if self.rng.random() < 0.2 else {}
        return {"inputs": inputs, "flags": flags}

    def job_file(self, rows: int) -> tuple[bytes, list[str]]:
        number = len(self.jobs)
        ids = [f"j{number}-r{i}" for i in range(rows)]
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["id", "text"])
        writer.writerows(zip(ids, self.rng.choices(self.texts, k=rows), strict=True))
        return out.getvalue().encode(), ids

    async def submit(self, client: httpx.AsyncClient, rows: int) -> None:
        content, ids = self.job_file(rows)
        name = f"soak-{len(self.jobs)}.csv"
        answer = await self.call(
            client, "submit", "reviewer", "POST", "/v1/jobs", files={"file": (name, content)}
        )
        if answer is not None and answer.status_code == 202:
            self.jobs.append(Job(answer.json()["id"], answer.json()["url"], ids, time.monotonic()))

    async def poll(self, client: httpx.AsyncClient) -> None:
        for job in [j for j in self.jobs if j.state not in FINISHED]:
            answer = await self.call(client, "poll", "reviewer", "GET", job.url)
            if answer is not None and answer.status_code == 200:
                job.view, job.state = answer.json(), answer.json()["state"]
                if job.state in FINISHED:
                    job.finished = time.monotonic()

    async def check_report(self, client: httpx.AsyncClient, job: Job) -> None:
        """Every row once, in order, with its own id, and no row in error."""
        if job.state != "succeeded":
            job.report_rows_ok = False
            return
        answer = await self.call(client, "report", "reviewer", "GET", job.view["reports"]["jsonl"])
        if answer is None or answer.status_code != 200:
            job.report_rows_ok = False
            return
        try:  # bytes: str.splitlines would also split at the U+2028 and U+0085 a snippet may hold
            lines = [json.loads(line) for line in answer.content.splitlines() if line.strip()]
        except ValueError:
            job.report_rows_ok = False
            return
        job.report_rows_ok = (
            [line["row"] for line in lines] == list(range(1, len(job.ids) + 1))
            and [line["id"] for line in lines] == job.ids
            and not any(line.get("error") for line in lines)
        )


async def _every(period: float, until: float, action: Callable[[], Any]) -> None:
    """Call `action` at a steady rate (by the clock, not after the previous one ends) until `until`."""
    start, tick = time.monotonic(), 0
    while (due := start + tick * period) < until:
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        action()
        tick += 1


async def run_load(soak: Soak, services: dict[str, int], args: argparse.Namespace) -> None:
    """The load for args.minutes, then the jobs waited for and their reports checked."""
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=50)
    async with httpx.AsyncClient(base_url=soak.gateway_url, timeout=60, limits=limits) as client:
        tasks: set[asyncio.Task[Any]] = set()

        def launch(work: Any) -> None:
            task = asyncio.ensure_future(work)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        def sample() -> None:
            children = _parents()
            rss = {name: tree_rss_mb(pid, children) for name, pid in services.items()}
            soak.samples.append((time.monotonic() - start, rss))

        start = time.monotonic()
        end = start + args.minutes * 60
        await asyncio.gather(
            _every(
                1 / args.rate,
                end,
                lambda: launch(
                    soak.call(client, "predict", "app", "POST", "/v1/predict", json=soak.predict_body())
                ),
            ),
            _every(
                1.0,
                end,
                lambda: launch(
                    soak.call(client, "throttled", "greedy", "POST", "/v1/predict", json=soak.predict_body())
                ),
            ),
            _every(args.job_every, end, lambda: launch(soak.submit(client, args.job_rows))),
            _every(2.0, end, lambda: launch(soak.poll(client))),
            _every(args.sample_every, end + 0.001, sample),
        )
        if tasks:
            await asyncio.gather(*tasks)
        stopped = time.monotonic()
        drain_until = stopped + args.drain_minutes * 60
        while any(j.state not in FINISHED for j in soak.jobs) and time.monotonic() < drain_until:
            await soak.poll(client)
            await asyncio.sleep(1)
        for job in soak.jobs:
            await soak.check_report(client, job)


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def summarise(soak: Soak, args: argparse.Namespace, logs: dict[str, str]) -> dict[str, Any]:
    """The figures as a dict (soak.json), with the verdicts."""
    seconds = args.minutes * 60
    errors = {
        f"{kind} {status}": n
        for (kind, status), n in soak.statuses.items()
        if status not in {str(s) for s in EXPECTED[kind]}
    }
    memory = {}
    for name in soak.samples[0][1] if soak.samples else []:
        first = _mean([rss[name] for t, rss in soak.samples if t < 60])
        last = _mean([rss[name] for t, rss in soak.samples if t >= seconds - 60])
        limit = first * 1.2 + 10
        memory[name] = {
            "first_minute_mb": round(first, 1),
            "last_minute_mb": round(last, 1),
            "growth_mb": round(last - first, 1),
            "limit_mb": round(limit, 1),
            "ok": last <= limit,
        }
    jobs = [
        {
            "id": j.id,
            "rows": len(j.ids),
            "state": j.state,
            "rows_done": j.view.get("rows_done"),
            "rows_failed": j.view.get("rows_failed"),
            "seconds": round(j.finished - j.submitted, 1) if j.finished else None,
            "report_every_row_once": j.report_rows_ok,
            "ok": j.state == "succeeded"
            and j.view.get("rows_done") == len(j.ids)
            and j.view.get("rows_failed") == 0
            and bool(j.report_rows_ok),
        }
        for j in soak.jobs
    ]
    latencies = sorted(soak.latencies)

    def quantile(q: float) -> float | None:
        return (
            round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 1)
            if latencies
            else None
        )

    predicts = sum(n for (kind, _), n in soak.statuses.items() if kind == "predict")
    return {
        "settings": vars(args),
        "cores": os.cpu_count(),
        "requests": sum(soak.statuses.values()),
        "statuses": {f"{kind} {status}": n for (kind, status), n in sorted(soak.statuses.items())},
        "intended_429": soak.statuses["throttled", "429"],
        "errors": sum(errors.values()),
        "error_statuses": errors,
        "predicts_per_second": round(predicts / seconds, 2),
        "predict_latency_ms": {"p50": quantile(0.5), "p95": quantile(0.95), "p99": quantile(0.99)},
        "jobs_submitted": len(soak.jobs),
        "jobs_ok": sum(j["ok"] for j in jobs),
        "jobs": jobs,
        "rss": memory,
        "rss_samples": [
            {"t": round(t, 1), **{k: round(v, 1) for k, v in rss.items()}} for t, rss in soak.samples
        ],
        "logs": logs,
        "ok": not errors
        and all(j["ok"] for j in jobs)
        and bool(jobs)
        and all(m["ok"] for m in memory.values()),
    }


def show(figures: dict[str, Any], console: Console) -> None:
    requests = Table(title=f"soak: {figures['settings']['minutes']} min, {figures['requests']} requests")
    for column in ("request", "status", "count"):
        requests.add_column(column, justify="right" if column == "count" else "left")
    for name, count in figures["statuses"].items():
        kind, status = name.split(" ", 1)
        intended = " (intended)" if kind == "throttled" and status == "429" else ""
        requests.add_row(kind, status + intended, str(count))
    console.print(requests)
    latency = figures["predict_latency_ms"]
    console.print(
        f"predicts {figures['predicts_per_second']}/s; latency p50 {latency['p50']} ms, "
        f"p95 {latency['p95']} ms, p99 {latency['p99']} ms; "
        f"errors (other than intended 429s): {figures['errors']}"
    )
    jobs = Table(title=f"jobs: {figures['jobs_ok']} of {figures['jobs_submitted']} with every row")
    for column in ("job", "rows", "state", "done", "failed", "seconds", "report rows", "ok"):
        jobs.add_column(column)
    for j in figures["jobs"]:
        jobs.add_row(
            j["id"].rsplit("-", 1)[-1],  # the whole id is in soak.json
            str(j["rows"]),
            j["state"],
            str(j["rows_done"]),
            str(j["rows_failed"]),
            str(j["seconds"]),
            str(j["report_every_row_once"]),
            "yes" if j["ok"] else "NO",
        )
    console.print(jobs)
    memory = Table(title="RSS of each service's process tree (MB, mean of the samples)")
    for column in ("service", "first minute", "last minute", "growth", "limit (+20% +10 MB)", "ok"):
        memory.add_column(column, justify="left" if column == "service" else "right")
    for name, m in figures["rss"].items():
        memory.add_row(
            name,
            f"{m['first_minute_mb']:.1f}",
            f"{m['last_minute_mb']:.1f}",
            f"{m['growth_mb']:+.1f}",
            f"{m['limit_mb']:.1f}",
            "yes" if m["ok"] else "NO",
        )
    console.print(memory)
    console.print("[bold green]soak passed[/]" if figures["ok"] else "[bold red]soak FAILED[/]")


def warm_up(url: str, keys: dict[str, str], texts: list[str]) -> None:
    """Not counted: each classifier run a few times and one small job done, so every lazy import is made."""
    with httpx.Client(base_url=url, timeout=60) as client:
        for _ in range(5):
            for flags in ({}, {"classifier": "minilm"}):
                body = {"inputs": [{"text": texts[0]}], "flags": flags}
                client.post("/v1/predict", json=body, headers={"X-API-Key": keys["app"]}).raise_for_status()
        out = io.StringIO()
        csv.writer(out).writerows([["text"], *([t] for t in texts[:50])])
        rows = out.getvalue()
        reviewer = {"X-API-Key": keys["reviewer"]}
        job = client.post("/v1/jobs", files={"file": ("warm-up.csv", rows.encode())}, headers=reviewer)
        job.raise_for_status()
        deadline = time.monotonic() + 120
        while client.get(job.json()["url"], headers=reviewer).json()["state"] not in FINISHED:
            if time.monotonic() > deadline:
                raise TimeoutError("the warm-up job did not finish in 120 s")
            time.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="how long the load lasts (default 3)")
    parser.add_argument(
        "--rate", type=float, default=10.0, help="predicts per second from the main key (default 10)"
    )
    parser.add_argument(
        "--job-every", type=float, default=20.0, help="seconds between job submissions (default 20)"
    )
    parser.add_argument("--job-rows", type=int, default=500, help="rows in each job (default 500)")
    parser.add_argument(
        "--sample-every", type=float, default=5.0, help="seconds between RSS samples (default 5)"
    )
    parser.add_argument(
        "--drain-minutes", type=float, default=5.0, help="most minutes to wait for jobs after the load"
    )
    args = parser.parse_args()
    if args.minutes <= 0 or args.rate <= 0 or args.job_every <= 0 or args.job_rows < 1:
        parser.error("--minutes, --rate and --job-every must be positive, --job-rows at least 1")

    console = Console()
    keys = {"app": new_key(), "greedy": new_key(), "reviewer": new_key()}
    entries = [
        {
            "name": "app",
            "sha256": hash_key(keys["app"]),
            "scopes": ["predict"],
            "rate_limit": "100000/minute",
        },
        {
            "name": "greedy",
            "sha256": hash_key(keys["greedy"]),
            "scopes": ["predict"],
            "rate_limit": THROTTLED_LIMIT,
        },
        {
            "name": "reviewer",
            "sha256": hash_key(keys["reviewer"]),
            "scopes": ["jobs"],
            "rate_limit": "100000/minute",
        },
    ]
    texts = [s.text for s in load_snippets() if s.text.strip()]
    with tempfile.TemporaryDirectory(prefix="soak-") as folder:
        redis = RedisServer(Path(folder))
        shared = {"REDIS_URL": redis.url(0), "STORAGE_URL": str(Path(folder) / "storage")}
        started: list[ServiceProcess] = []
        try:
            model = model_service(free_port(), MODEL_ARTIFACTS_DIR=str(ROOT / "artifacts"))
            started.append(model.start())
            model.wait_ready()
            front = gateway(free_port(), model.url, GATEWAY_API_KEYS=json.dumps(entries), **shared)
            back = worker(MODEL_URL=model.url, **shared)
            started += [front.start(), back.start()]
            front.wait_ready()
            back.wait_ready()
            services = {"model": model, "gateway": front, "worker": back}
            pids = {name: p.process.pid for name, p in services.items() if p.process is not None}
            pids["redis"] = redis.process.pid
            console.print(
                f"soak for {args.minutes} min: model {model.url}, gateway {front.url}, worker, "
                f"redis :{redis.port}; logs in {OUTPUT}"
            )
            soak = Soak(front.url, keys, texts)
            warm_up(front.url, keys, texts)
            asyncio.run(run_load(soak, pids, args))
            logs = {name: str(p.log_path.relative_to(ROOT)) for name, p in services.items()}
            figures = summarise(soak, args, logs)
        finally:
            for process in reversed(started):
                process.stop()
            redis.stop()
    show(figures, console)
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "soak.json").write_text(json.dumps(figures, indent=2) + "\n")
    console.print(f"figures in {(OUTPUT / 'soak.json').relative_to(ROOT)}")
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
