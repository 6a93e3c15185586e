"""Checks on a schedule: a real beat process sends them, a real worker replays the edge-case library through
a real model service serving two versions of the example from an embedded registry, and a real gateway
shows the result (GET /v1/versions/checks, /metrics). The challenger (classifier=minilm) breaks a
must-pass case and fixes another. Then a model service that does not answer: a failed check, one sentence.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from onepipe.platform.versions.registry import Registry
from onepipe_harness.processes import RedisServer, ServiceProcess, beat, free_port, model_service, worker
from review_triage.pipeline import pipeline as example
from tests.case_library import FIXED, MINILM, MUST_PASS, two_case_library
from tests.conftest import EXAMPLE_ARTIFACTS
from tests.stacks import Stack, as_key, stack

INTERVAL = "2"  # seconds between checks


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory, example_pipeline: Any) -> Iterator[ServiceProcess]:
    """v1 the example as trained (champion), v2 with classifier=minilm (challenger), and the two cases."""
    folder = tmp_path_factory.mktemp("checks")
    registry = Registry(str(folder / "registry"), folder / "cache")
    registry.register(example, EXAMPLE_ARTIFACTS, {})
    registry.register(example, EXAMPLE_ARTIFACTS, MINILM, alias="challenger")
    env = {
        "MODEL_ARTIFACTS_DIR": str(EXAMPLE_ARTIFACTS.parent),
        "MODEL_REGISTRY": registry.location,
        "MODEL_VERSIONS_CACHE": str(folder / "service-cache"),
        "MODEL_CASES_DIR": str(two_case_library(folder / "cases")),
    }
    with model_service(free_port(), **env) as process:
        yield process


@pytest.fixture(scope="module")
def checked(
    service: ServiceProcess, redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Stack, list[dict[str, Any]], str]]:
    """A gateway, a worker and a beat every 2 s: the first two checks seen through the gateway, and
    /metrics after them. The gateway stays up for the tests after."""
    folder = tmp_path_factory.mktemp("checks-stack")
    with stack(service.url, folder, redis=redis_server.url(7)) as started:
        env = {"REDIS_URL": redis_server.url(7), "WORKER_CHECK_INTERVAL": INTERVAL}
        with beat(folder / "beat-schedule", **env) as sender:
            first = _next_check(started, None)
            second = _next_check(started, first["latest"]["id"])
            metrics = httpx.get(f"{started.gateway.url}/metrics", timeout=10).text
            assert (folder / "beat-schedule.alive").stat().st_mtime > time.time() - 60  # its healthcheck's
            assert sender.process is not None and sender.process.poll() is None
        yield started, [first, second], metrics


def _next_check(stack: Stack, after: str | None, timeout: float = 120) -> dict[str, Any]:
    """The checks as the gateway lists them, once the latest is another than `after`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        # any key may read them: `app` has the predict scope alone
        answer = httpx.get(f"{stack.gateway.url}/v1/versions/checks", headers=as_key("app"), timeout=10)
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        if found["latest"] is not None and found["latest"]["id"] != after:
            return found
        time.sleep(0.3)
    raise TimeoutError(f"no check after {after}:\n{stack.worker.log()[-3000:]}")


def test_the_model_service_hands_out_its_case_library(service: ServiceProcess) -> None:
    library = httpx.get(f"{service.url}/v1/cases/library", timeout=10).json()
    assert library["pipeline"] == example.name
    assert sorted((case["id"], case["must_pass"]) for case in library["cases"]) == [
        (FIXED, False),
        (MUST_PASS, True),
    ]


def test_a_check_counts_each_version_and_names_the_must_pass_case_the_challenger_breaks(
    checked: tuple[Stack, list[dict[str, Any]], str], service: ServiceProcess
) -> None:
    _, (first, _), _ = checked
    run = first["latest"]
    assert first["pipeline"] == example.name and run["ok"] and run["error"] is None and run["cases"] == 2
    versions = {v["label"]: v for v in run["versions"]}
    assert list(versions) == ["champion", "challenger"]
    assert (versions["champion"]["number"], versions["challenger"]["number"]) == (1, 2)
    ready = httpx.get(f"{service.url}/readyz").json()
    assert (versions["champion"]["version"], versions["challenger"]["version"]) == (
        ready["version"],
        ready["challenger"],
    )
    assert (versions["champion"]["passed"], versions["champion"]["failed"]) == (1, 1)
    assert versions["champion"]["failing"] == [FIXED] and versions["champion"]["must_pass_failing"] == []
    assert versions["challenger"]["failing"] == [MUST_PASS]
    assert versions["challenger"]["must_pass_failing"] == [MUST_PASS]
    assert run["must_pass_broken"] == [MUST_PASS]
    assert run["outcomes"] == {
        "total": 2,
        "fixed": 1,
        "broken": 1,
        "must_pass_broken": 1,
        "still_wrong": 0,
        "still_right": 0,
    }
    failing = {case["id"]: case for case in run["failing"]}
    assert failing[MUST_PASS]["failing_on"] == ["challenger"]
    assert failing[MUST_PASS]["answers"] == {
        "champion": {"label": "fresh"},
        "challenger": {"label": "rotten"},
    }
    assert failing[MUST_PASS]["expected"] == {"label": "fresh"} and failing[MUST_PASS]["must_pass"]


def test_the_next_check_says_nothing_changed_and_the_first_is_history(
    checked: tuple[Stack, list[dict[str, Any]], str],
) -> None:
    _, (first, second), _ = checked
    if first["latest"]["compared_with"] is None:  # the first check the stack ran
        assert first["latest"]["changes"] == "The first check: nothing to compare with yet."
    run = second["latest"]
    assert run["compared_with"] == first["latest"]["id"]
    assert re.fullmatch(
        r"Nothing changed since the last run \(\d{4}-\d\d-\d\d \d\d:\d\d UTC\)\.", run["changes"]
    )
    assert run["newly_failing"] == [] and run["newly_passing"] == []
    assert second["history"][0]["id"] == first["latest"]["id"]
    assert "failing" not in second["history"][0]  # history is in brief


def test_metrics_show_the_checks_and_readiness_is_left_alone(
    checked: tuple[Stack, list[dict[str, Any]], str], service: ServiceProcess
) -> None:
    started, _, metrics = checked
    gauges = dict(line.rsplit(" ", 1) for line in metrics.splitlines() if line.startswith("onepipe_check_"))
    assert gauges['onepipe_check_cases{outcome="passed",version="champion"}'] == "1.0"
    assert gauges['onepipe_check_cases{outcome="failed",version="challenger"}'] == "1.0"
    assert gauges['onepipe_check_must_pass_broken{version="challenger"}'] == "1.0"
    assert gauges['onepipe_check_must_pass_broken{version="champion"}'] == "0.0"
    assert gauges["onepipe_check_last_run_ok"] == "1.0"
    assert time.time() - 120 < float(gauges["onepipe_check_last_run_timestamp_seconds"]) <= time.time()
    assert "pipeline_calls_total" not in metrics and "http_requests_total" in metrics  # the gateway's own
    for url in (service.url, started.gateway.url):
        assert httpx.get(f"{url}/readyz").status_code == 200  # a broken must-pass case is no outage


def test_a_model_service_that_does_not_answer_is_a_failed_check_in_one_sentence(
    checked: tuple[Stack, list[dict[str, Any]], str], redis_server: RedisServer, tmp_path: Path
) -> None:
    """A worker and a beat whose model service is gone, on the same storage: each check fails, is kept, and
    neither process falls over; the cases' gauges keep the last check that ran."""
    started, (_, second), _ = checked
    dead = f"http://127.0.0.1:{free_port()}"
    broker = redis_server.url(8)
    env = {"MODEL_URL": dead, "REDIS_URL": broker, "STORAGE_URL": str(started.storage)}
    with (
        worker(**env) as runner,
        beat(tmp_path / "beat-schedule", REDIS_URL=broker, WORKER_CHECK_INTERVAL="1") as sender,
    ):
        failed = _next_check(started, second["latest"]["id"])
        again = _next_check(started, failed["latest"]["id"])
        metrics = httpx.get(f"{started.gateway.url}/metrics", timeout=10).text
        assert runner.process is not None and runner.process.poll() is None
        assert sender.process is not None and sender.process.poll() is None
    run = failed["latest"]
    assert not run["ok"] and run["versions"] == [] and run["pipeline"] == example.name
    assert run["error"].startswith(
        f"The check could not run: the model service: unavailable at {dead} after 3 attempts: ConnectError"
    )
    assert run["error"].endswith(".") and "\n" not in run["error"]
    assert not again["latest"]["ok"]
    assert "Traceback" not in runner.log()
    assert "onepipe_check_last_run_ok 0.0" in metrics
    assert 'onepipe_check_must_pass_broken{version="challenger"} 1.0' in metrics
