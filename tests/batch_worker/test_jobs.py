"""Batch jobs end to end: a real Redis, real Celery worker processes, a real model service and gateway."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import accuracy_score

from onepipe import LoadedPipeline
from onepipe_harness.processes import ROOT, RedisServer, ServiceProcess, free_port, model_service, worker
from review_triage.data import load_snippets
from tests.conftest import EXAMPLE_ARTIFACTS
from tests.stacks import KEYS, PROBLEM, Stack, as_key, csv_bytes, stack


@pytest.fixture(scope="module")
def jobs_stack(
    redis_server: RedisServer, example_service: ServiceProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with stack(example_service.url, tmp_path_factory.mktemp("jobs"), redis=redis_server.url(11)) as started:
        yield started


@pytest.fixture(scope="module")
def snippets() -> list[str]:
    found = [s.text for s in load_snippets() if s.text.strip()][::19]
    assert len(found) >= 700
    return found


def _single_predicts(model_url: str, texts: list[str], flags: dict[str, Any]) -> list[dict[str, Any]]:
    outputs: list[dict[str, Any]] = []
    for start in range(0, len(texts), 100):
        body = {"inputs": [{"text": t} for t in texts[start : start + 100]], "flags": flags}
        outputs += httpx.post(model_url + "/v1/predict", json=body, timeout=120).json()["outputs"]
    return outputs


def test_a_job_end_to_end_writes_every_report(jobs_stack: Stack, snippets: list[str]) -> None:
    texts = snippets[:300]
    rows = [{"id": f"r{i}", "review": text} for i, text in enumerate(texts)]
    answer = jobs_stack.submit(
        "reviews.csv", csv_bytes(rows), mapping={"text": "review"}, flags={"neighbours": 2}
    )
    assert answer.status_code == 202, answer.text
    assert answer.headers["Location"] == answer.json()["url"]
    job = jobs_stack.wait(answer.json()["id"])
    assert job["state"] == "succeeded", job
    assert (job["rows_total"], job["rows_done"], job["rows_failed"]) == (300, 300, 0)
    assert job["pipeline_version"] and job["flags"] == {"neighbours": 2} and job["owner"] == "reviewer"
    assert set(job["reports"]) == {"html", "csv", "jsonl", "parquet"}

    expected = _single_predicts(jobs_stack.model_url, texts, {"neighbours": 2})
    lines = [json.loads(line) for line in jobs_stack.report(job, "jsonl").splitlines()]
    assert [line["row"] for line in lines] == list(range(1, 301))
    assert [line["id"] for line in lines] == [r["id"] for r in rows]
    assert [line["review"] for line in lines] == texts
    label_column = next(k for k in lines[0] if k.startswith("output.") and k.endswith("label"))
    assert [line[label_column] for line in lines] == [e["label"] for e in expected]
    confidence = [float(line["output.confidence"]) for line in lines]
    assert confidence == pytest.approx([e["confidence"] for e in expected])

    table = list(csv.DictReader(io.StringIO(jobs_stack.report(job, "csv").decode())))
    assert len(table) == 300 and list(table[0])[:3] == ["row", "id", "review"]
    assert [r["output.label"] for r in table] == [e["label"] for e in expected]
    parquet = pq.read_table(io.BytesIO(jobs_stack.report(job, "parquet")))
    assert parquet.num_rows == 300
    assert parquet.column("output.label").to_pylist() == [e["label"] for e in expected]
    html = jobs_stack.report(job, "html").decode()
    assert "reviews.csv" in html and "<svg" in html and job["pipeline_version"] in html
    assert "https://" not in html.split("<body", 1)[0]  # no CDN in the head: it opens offline


def test_a_comparison_job_reports_both_variants(jobs_stack: Stack, snippets: list[str]) -> None:
    texts = snippets[300:400]
    answer = jobs_stack.submit(
        "compare.jsonl",
        "\n".join(json.dumps({"text": t}) for t in texts).encode(),
        flags={},
        compare_flags={"classifier": "minilm"},
    )
    job = jobs_stack.wait(answer.json()["id"])
    assert job["state"] == "succeeded" and job["compare_flags"] == {"classifier": "minilm"}
    lines = [json.loads(line) for line in jobs_stack.report(job, "jsonl").splitlines()]
    default = _single_predicts(jobs_stack.model_url, texts, {})
    variant = _single_predicts(jobs_stack.model_url, texts, {"classifier": "minilm"})
    assert [line["output.label"] for line in lines] == [d["label"] for d in default]
    assert [line["compare.label"] for line in lines] == [v["label"] for v in variant]
    agreement = sum(d["label"] == v["label"] for d, v in zip(default, variant, strict=True)) / len(texts)
    html = jobs_stack.report(job, "html").decode()
    assert f"{agreement:.1%}" in html or f"{agreement * 100:.1f}%" in html


def test_bad_rows_are_reported_by_row_number_and_the_rest_finishes(
    jobs_stack: Stack, snippets: list[str]
) -> None:
    good = [{"text": t} for t in snippets[400:440]]
    bad = {
        3: {"text": ""},  # missing text
        7: {"text": 12345},  # wrong type
        11: {"text": "x" * 6000},  # over the limit
        15: {"review": "no text field"},
    }
    lines = []
    for number in range(1, 45):
        lines.append(json.dumps(bad.get(number, good.pop() if good else {"text": "fine"})))
    lines.insert(19, "{not json")  # row 20 cannot be read at all
    job = jobs_stack.wait(jobs_stack.submit("mixed.jsonl", "\n".join(lines).encode()).json()["id"])
    assert job["state"] == "succeeded", job
    assert (job["rows_total"], job["rows_done"], job["rows_failed"]) == (45, 45, 5)
    records = [json.loads(line) for line in jobs_stack.report(job, "jsonl").splitlines()]
    errors = {r["row"]: r["error"] for r in records if r["error"]}
    assert sorted(errors) == [3, 7, 11, 15, 20]
    assert "text" in errors[3] and "at least 1 character" in errors[3]
    assert "valid string" in errors[7]
    assert "at most 5000 characters" in errors[11]
    assert "Field required" in errors[15]
    assert "not valid JSON" in errors[20]
    assert all(r["output.label"] for r in records if not r["error"])
    html = jobs_stack.report(job, "html").decode()
    assert "at most 5000 characters" in html


@pytest.mark.parametrize(
    ("name", "content", "form", "status", "words"),
    [
        ("r.csv", b"id,body\n1,great\n", {}, 422, "required input field(s) text"),
        ("r.csv", b"id,body\n1,great\n", {"mapping": {"text": "comment"}}, 422, "text (column 'comment')"),
        ("r.csv", b"", {}, 422, "the file is empty"),
        ("r.csv", b"id,text\n", {}, 422, "file: the file has a header but no data rows"),
        ("r.jsonl", b"\n\n", {}, 422, "file:"),
        ("r.csv", "text\ncaf\u00e9 cr\u00e8me\n".encode("latin-1"), {}, 422, "not UTF-8"),
        ("r.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", {}, 422, "not"),
        ("r.jsonl", b"[1, 2, 3]\n", {}, 422, "not a JSON object"),
        ("r.parquet", b"PAR1 but not really", {}, 422, "not a valid Parquet file"),
        ("r.txt", b"text\nhello\n", {}, 422, "name it .csv, .jsonl or .parquet"),
        ("r.csv", b"text\nhello\n", {"flags": {"neighbours": 99}}, 422, "flags.neighbours"),
        (
            "r.csv",
            b"text\nhello\n",
            {"compare_flags": {"colour": "red"}},
            422,
            "compare_flags.colour: unknown flag",
        ),
        ("r.csv", b"text\nhello\n", {"mapping": {"title": "text"}}, 422, "unknown input field(s) title"),
        ("r.csv", b"text,cat\nhi,plot\n", {"truth": {"verdict": "cat"}}, 422, "truth.verdict: not an output"),
        (
            "r.csv",
            b"text,cat\nhi,plot\n",
            {"truth": {"similar": "cat"}},
            422,
            "truth.similar: a list or object output field cannot be scored",
        ),
        (
            "r.csv",
            b"text\nhi\n",
            {"truth": {"label": "cat"}},
            422,
            "truth.label: the file has no column 'cat'",
        ),
        ("r.csv", b"text,cat\nhi,plot\n", {"truth": ["label"]}, 422, "truth: must be a JSON object"),
    ],
)
def test_malformed_submissions_are_refused_before_queueing(
    jobs_stack: Stack, name: str, content: bytes, form: dict[str, Any], status: int, words: str
) -> None:
    answer = jobs_stack.submit(name, content, **form)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM
    assert words in answer.json()["detail"]


def test_uploads_over_the_limit_are_413(jobs_stack: Stack) -> None:
    big = b"text\n" + b"a fine film\n" * 200_000  # 2.4 MB, over the 2 MB limit of this gateway
    answer = jobs_stack.submit("big.csv", big)
    assert answer.status_code == 413 and "2000000" in answer.json()["detail"]

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit is counted as the body streams
        boundary = "b0undary"
        disposition = 'Content-Disposition: form-data; name="file"; filename="big.csv"'
        yield f"--{boundary}\r\n{disposition}\r\n\r\n".encode()
        yield from (big[i : i + 65536] for i in range(0, len(big), 65536))
        yield f"\r\n--{boundary}--\r\n".encode()

    streamed = httpx.post(
        jobs_stack.gateway.url + "/v1/jobs",
        content=chunked(),
        headers={**as_key("reviewer"), "Content-Type": "multipart/form-data; boundary=b0undary"},
    )
    assert streamed.status_code == 413 and streamed.headers["content-type"] == PROBLEM


def test_keys_see_their_own_jobs_and_admin_sees_all(jobs_stack: Stack) -> None:
    mine = jobs_stack.submit("mine.csv", b"text\nA good film.\n").json()
    theirs = jobs_stack.submit("theirs.csv", b"text\nA bad film.\n", key="other").json()
    assert httpx.get(mine["url"], headers=as_key("other")).status_code == 404
    assert httpx.get(theirs["url"], headers=as_key("admin")).json()["owner"] == "other"
    listed = httpx.get(
        jobs_stack.gateway.url + "/v1/jobs", headers=as_key("reviewer"), params={"limit": 2}
    ).json()
    assert listed["limit"] == 2 and listed["jobs"][0]["id"] == mine["id"]
    assert all(j["owner"] == "reviewer" for j in listed["jobs"])
    everyone = httpx.get(
        jobs_stack.gateway.url + "/v1/jobs", headers=as_key("admin"), params={"limit": 100}
    ).json()
    ids = [j["id"] for j in everyone["jobs"]]
    assert ids[:2] == [theirs["id"], mine["id"]] and ids == sorted(ids, reverse=True)
    refused = jobs_stack.submit("x.csv", b"text\nhi\n", key="app")
    assert refused.status_code == 403 and "lacks the 'jobs' scope" in refused.json()["detail"]


def test_cancel_stops_a_job_and_a_finished_job_cannot_be_cancelled(
    jobs_stack: Stack, snippets: list[str]
) -> None:
    rows = csv_bytes([{"text": t} for t in snippets[:400]])
    job = jobs_stack.submit("long.csv", rows).json()
    cancelled = httpx.delete(job["url"], headers=as_key("reviewer")).json()
    assert cancelled["state"] == "cancelled" and cancelled["error"] == "cancelled by reviewer"
    time.sleep(2)
    after = httpx.get(job["url"], headers=as_key("reviewer")).json()
    assert after["state"] == "cancelled" and after["rows_done"] < 400
    again = httpx.delete(job["url"], headers=as_key("reviewer"))
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]


def test_just_batch_shows_progress_and_saves_the_reports(
    jobs_stack: Stack, snippets: list[str], tmp_path: Path
) -> None:
    data = tmp_path / "reviews.csv"
    data.write_bytes(csv_bytes([{"text": t} for t in snippets[:60]]))
    done = subprocess.run(
        [
            "just",
            "batch",
            str(data),
            "--flag",
            "neighbours=1",
            "--compare",
            "classifier=minilm",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "GATEWAY_URL": jobs_stack.gateway.url,
            "ONEPIPE_API_KEY": KEYS["reviewer"],
            "COLUMNS": "120",
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "done: 60 rows, 0 failed" in done.stdout
    saved = sorted(p.suffix for p in tmp_path.glob("*-*.*"))
    assert saved == [".csv", ".html", ".jsonl", ".parquet"]
    html = next(tmp_path.glob("*.html")).read_text()
    assert "classifier" in html and "minilm" in html


def test_just_batch_scores_a_labelled_file_like_scikit_learn(jobs_stack: Stack, tmp_path: Path) -> None:
    labelled = [s for s in load_snippets() if s.text.strip()][5::97][:80]
    data = tmp_path / "labelled.csv"
    data.write_bytes(csv_bytes([{"text": s.text, "category": s.label} for s in labelled]))
    done = subprocess.run(
        [
            *("just", "batch", str(data), "--truth", "label=category"),
            *("--compare", "classifier=minilm", "--out", str(tmp_path)),
        ],
        cwd=ROOT,
        env={**os.environ, "GATEWAY_URL": jobs_stack.gateway.url, "ONEPIPE_API_KEY": KEYS["reviewer"]},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = [json.loads(line) for line in next(tmp_path.glob("*.jsonl")).read_text().splitlines()]
    assert [line["truth.label"] for line in lines] == [s.label for s in labelled]
    html = next(tmp_path.glob("*.html")).read_text()
    for prefix, output in (("", "output.label"), ("compare_", "compare.label")):
        truth, predicted = [s.label for s in labelled], [line[output] for line in lines]
        assert [line[f"{prefix}correct.label"] for line in lines] == [
            t == p for t, p in zip(truth, predicted, strict=True)
        ]
        assert f"<b>{accuracy_score(truth, predicted):.3f}</b>" in html


def test_just_batch_with_the_gateway_down_says_so_in_one_sentence(tmp_path: Path) -> None:
    data = tmp_path / "reviews.csv"
    data.write_bytes(b"text\nA fine film.\n")
    down = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run(
        ["uv", "run", "--frozen", "--no-sync", "gateway", "batch", str(data), "--url", down],
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    lines = (done.stdout + done.stderr).strip().splitlines()
    assert lines == [f"error: gateway: unavailable at {down}: ConnectError: [Errno 111] Connection refused"]


def test_two_workers_hand_a_job_over_and_both_write_chunks(
    redis_server: RedisServer, example_service: ServiceProcess, tmp_path: Path, snippets: list[str]
) -> None:
    # a hand-over releases the lease: the continuation may land on the other worker at once
    budget = {"WORKER_CHUNK_SIZE": "10", "WORKER_TASK_BUDGET": "0.2"}  # many hand-overs
    # rows enough that the job outlasts many task budgets, however fast the pipeline
    texts = [snippets[i % len(snippets)] for i in range(1500)]
    with stack(example_service.url, tmp_path, redis=redis_server.url(12), **budget) as started:
        with worker(**started.worker.env) as second:
            job = started.submit("two.csv", csv_bytes([{"text": t} for t in texts])).json()
            finished = started.wait(job["id"])
            logs = {"first": started.worker.log(), "second": second.log()}
        assert finished["state"] == "succeeded" and finished["rows_done"] == 1500, (finished, logs)
        rows = [json.loads(line)["row"] for line in started.report(finished, "jsonl").splitlines()]
        assert rows == list(range(1, 1501))
    chunks = {name: log.count(f"job {job['id']}: chunk") for name, log in logs.items()}
    assert chunks["first"] > 0 and chunks["second"] > 0 and sum(chunks.values()) == 150, chunks


def test_a_running_job_whose_worker_died_can_be_resumed_once_its_lease_lapses(
    redis_server: RedisServer, example_service: ServiceProcess, tmp_path: Path, snippets: list[str]
) -> None:
    # one long task run (no hand-over), and no redelivery of the dead worker's task to help
    slow = {"WORKER_CHUNK_SIZE": "10", "WORKER_TASK_BUDGET": "120", "WORKER_VISIBILITY_TIMEOUT": "600"}
    with stack(example_service.url, tmp_path, redis=redis_server.url(12), **slow) as started:
        job = started.submit("abandoned.csv", csv_bytes([{"text": t} for t in snippets[:300]])).json()
        while httpx.get(job["url"], headers=as_key("reviewer")).json()["rows_done"] < 30:
            time.sleep(0.05)
        refused = httpx.post(job["url"] + "/resume", headers=as_key("reviewer"))
        assert refused.status_code == 409 and "a worker holds it until" in refused.json()["detail"]
        started.worker.kill()  # SIGKILL: its lease is never released
        time.sleep(float(started.worker.env["WORKER_LEASE_SECONDS"]) + 1)
        resumed = httpx.post(job["url"] + "/resume", headers=as_key("reviewer"))
        assert resumed.status_code == 202 and resumed.json()["state"] == "queued", resumed.text
        started.worker.start()
        started.worker.wait_ready()
        finished = started.wait(job["id"])
        assert finished["state"] == "succeeded" and finished["rows_done"] == 300
        rows = [json.loads(line)["row"] for line in started.report(finished, "jsonl").splitlines()]
        assert rows == list(range(1, 301))


def test_an_outage_past_the_patience_fails_the_job_which_can_be_resumed(
    redis_server: RedisServer,
    example_pipeline: LoadedPipeline[Any, Any, Any],
    tmp_path: Path,
    snippets: list[str],
) -> None:
    total = 1000
    model = model_service(free_port(), MODEL_ARTIFACTS_DIR=str(EXAMPLE_ARTIFACTS.parent))
    with (
        model,
        stack(
            model.url, tmp_path, redis=redis_server.url(13), WORKER_CHUNK_SIZE="10", WORKER_MODEL_PATIENCE="3"
        ) as started,
    ):
        # Enough rows that the job cannot finish in the moment it takes to stop the model service.
        texts = [snippets[i % len(snippets)] for i in range(total)]
        job = started.submit("patience.csv", csv_bytes([{"text": t} for t in texts])).json()
        while httpx.get(job["url"], headers=as_key("reviewer")).json()["rows_done"] < 20:
            time.sleep(0.05)
        model.stop()
        failed = started.wait(job["id"])
        assert failed["state"] == "failed"
        assert "the model service was unavailable" in failed["error"] and "resume the job" in failed["error"]
        done_before = failed["rows_done"]
        assert 0 < done_before < total
        model.start()
        model.wait_ready()
        resumed = httpx.post(job["url"] + "/resume", headers=as_key("reviewer"))
        assert resumed.status_code == 202 and resumed.json()["state"] == "queued"
        finished = started.wait(job["id"])
        assert finished["state"] == "succeeded" and finished["rows_done"] == total
        rows = [json.loads(line)["row"] for line in started.report(finished, "jsonl").splitlines()]
        assert rows == list(range(1, total + 1))


def test_a_job_end_to_end_on_the_embedded_queue(
    example_service: ServiceProcess, tmp_path: Path, snippets: list[str]
) -> None:
    """Without Redis: Celery on its SQLite transport, rate limits in the gateway's process."""
    with stack(example_service.url, tmp_path, redis=None) as started:
        texts = snippets[:120]
        job = started.submit("embedded.csv", csv_bytes([{"text": t} for t in texts])).json()
        finished = started.wait(job["id"])
        assert finished["state"] == "succeeded" and finished["rows_done"] == 120
        lines = [json.loads(line) for line in started.report(finished, "jsonl").splitlines()]
        expected = _single_predicts(started.model_url, texts, {})
        assert [line["output.label"] for line in lines] == [e["label"] for e in expected]
        assert (tmp_path / "queue.sqlite").stat().st_size > 0  # the queue was SQLite, not Redis


def test_stack_env_picks_redis_when_it_answers_and_the_embedded_queue_otherwise(
    redis_server: RedisServer,
) -> None:
    def choose(url: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["uv", "run", "--frozen", "--no-sync", "python", "-m", "scripts.stack_env"],
            cwd=ROOT,
            env={**os.environ, "REDIS_URL": url},
            capture_output=True,
            text=True,
            timeout=60,
        )

    live = choose(redis_server.url())
    assert f"export REDIS_URL={redis_server.url()}" in live.stdout.splitlines()
    assert f"Redis at {redis_server.url()}" in live.stderr
    dead = choose(f"redis://127.0.0.1:{free_port()}/0")
    assert f"export REDIS_URL=sqla+sqlite:///{ROOT / 'data' / 'queue.sqlite'}" in dead.stdout.splitlines()
    assert "embedded: no Redis" in dead.stderr and "rate limits in the gateway's process" in dead.stderr
    # the embedded queue named by a file of the user's: that file, not data/queue.sqlite
    named = choose("sqla+sqlite:////tmp/onepipe-queue-of-mine.sqlite")
    assert "export REDIS_URL=sqla+sqlite:////tmp/onepipe-queue-of-mine.sqlite" in named.stdout.splitlines()
    assert "embedded: Celery on sqla+sqlite:////tmp/onepipe-queue-of-mine.sqlite" in named.stderr
