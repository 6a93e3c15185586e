"""A job's reports are written once, by the task that holds it, and a reader never gets half of one.

Seen in the compose test under load: with three workers, a task that had waited on its last
chunks went on to write the reports after another task had taken the job up (its lease had
lapsed), and a reviewer downloaded the JSONL while it was being written again: 1,000 of
2,000 rows. Here the other task's moves are made for real in the job's storage, between two
calls of a real model service.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from batch_worker.runner import JobRunner
from batch_worker.settings import Settings
from onepipe.platform.http.client import ModelServiceClient
from onepipe.platform.http.envelopes import PredictResponse
from onepipe.platform.jobs.storage import JobStore
from onepipe.platform.jobs.types import JobMeta, JobSpec
from onepipe_harness.processes import ServiceProcess

ROWS = 12
CHUNK = 4


class OtherTaskMeanwhile(ModelServiceClient):
    """The real model service; after its `after`-th predict call, `meanwhile` changes the job's storage."""

    def __init__(self, url: str, store: JobStore, job_id: str, after: int, meanwhile: str) -> None:
        super().__init__(url, timeout=60)
        self.store, self.job_id, self.after, self.meanwhile = store, job_id, after, meanwhile
        self.calls = 0

    def predict(
        self,
        inputs: Sequence[Mapping[str, Any]],
        flags: Mapping[str, Any] | None = None,
        debug: bool = False,
        request_id: str | None = None,
        version: str | None = None,
    ) -> PredictResponse:
        answer = super().predict(inputs, flags, debug, request_id, version)
        self.calls += 1
        if self.calls == self.after:
            meta = self.store.load(self.job_id)
            assert meta is not None
            if self.meanwhile == "taken up":  # its lease lapsed: another task took the job
                meta.runner = "worker-other"
                meta.issue_ticket()
            else:  # another task finished it and wrote its reports
                meta.state, meta.reports = "succeeded", ["html", "csv", "jsonl", "parquet"]
            self.store.save(meta)
        return answer


def _job(store: JobStore, tmp_path: Path) -> tuple[JobMeta, str]:
    texts = [f"A film numbered {n} and what a reviewer made of it." for n in range(ROWS)]
    meta = JobMeta(
        id=store.new_id(),
        owner="o",
        owner_name="reviewer",
        spec=JobSpec(file_name="f.csv", file_format="csv", mapping={"text": "text"}),
    )
    ticket = meta.issue_ticket()
    source = tmp_path / "f.csv"
    source.write_text("text\n" + "\n".join(texts) + "\n")
    with source.open("rb") as upload:
        store.store_input(meta, upload, 1 << 20)
    store.save(meta)
    return meta, ticket


@pytest.mark.parametrize(("meanwhile", "outcome"), [("taken up", "stale"), ("finished", "skipped")])
def test_a_task_that_lost_its_job_on_the_last_chunk_writes_no_report(
    example_service: ServiceProcess, tmp_path: Path, meanwhile: str, outcome: str
) -> None:
    store = JobStore(str(tmp_path / "storage"))
    meta, ticket = _job(store, tmp_path)
    last_call = ROWS // CHUNK  # one call a chunk: the other task moves as the last chunk comes back
    client = OtherTaskMeanwhile(example_service.url, store, meta.id, last_call, meanwhile)
    settings = Settings(_env_file=None, chunk_size=CHUNK, calls_in_flight=1, task_budget=600)
    runner = JobRunner(store, client, settings, send=lambda *_: None)
    assert runner.run(meta.id, ticket) == outcome
    assert client.calls == last_call
    assert store.chunk_numbers(meta.id) == [0, 1, 2]  # every chunk was written once
    assert not any(store.exists(meta.id, f"report.{fmt}") for fmt in ("html", "csv", "jsonl", "parquet"))


def test_a_task_holding_its_job_writes_every_report_and_keeps_its_lease(
    example_service: ServiceProcess, tmp_path: Path
) -> None:
    store = JobStore(str(tmp_path / "storage"))
    meta, ticket = _job(store, tmp_path)
    client = ModelServiceClient(example_service.url, timeout=60)
    # a lease of 0.3 s: renewed while the reports are written, or another task could take the job
    settings = Settings(_env_file=None, chunk_size=CHUNK, lease_seconds=0.3, task_budget=600)
    runner = JobRunner(store, client, settings, send=lambda *_: None)
    assert runner.run(meta.id, ticket) == "done"
    done = store.load(meta.id)
    assert done is not None and done.state == "succeeded"
    assert (done.rows_done, done.rows_failed) == (ROWS, 0)
    with store.open(meta.id, "report.jsonl") as handle:
        assert len(handle.read().splitlines()) == ROWS
    leftovers = [p.name for p in (tmp_path / "storage" / "jobs" / meta.id).iterdir() if ".tmp-" in p.name]
    assert leftovers == []


def test_a_file_written_whole_is_not_there_until_it_is_complete(tmp_path: Path) -> None:
    store = JobStore(str(tmp_path))
    job_id = store.new_id()
    store.fs.makedirs(store.path(job_id), exist_ok=True)
    with store.open_whole(job_id, "report.jsonl") as handle:
        handle.write(b"first\n")
        assert not store.exists(job_id, "report.jsonl")
    with store.open_whole(job_id, "report.jsonl") as handle:
        handle.write(b"sec")
        with store.open(job_id, "report.jsonl") as reader:  # a reader meanwhile: the whole old file
            assert reader.read() == b"first\n"
        handle.write(b"ond\n")
    with store.open(job_id, "report.jsonl") as reader:
        assert reader.read() == b"second\n"
    with pytest.raises(RuntimeError), store.open_whole(job_id, "report.jsonl") as handle:
        handle.write(b"half")
        raise RuntimeError("the worker died mid-write")
    with store.open(job_id, "report.jsonl") as reader:
        assert reader.read() == b"second\n"
    assert sorted(p.name for p in (tmp_path / "jobs" / job_id).iterdir()) == ["report.jsonl"]
