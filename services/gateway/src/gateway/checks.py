"""The scheduled checks of the versions, as the gateway shows them: GET /v1/versions/checks and /metrics.

The worker's beat runs the checks and keeps them in the storage root (batch_worker.checks); the gateway
reads them there, so what it shows and what an alert fires on is the stored result.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from onepipe.platform.jobs.storage import CheckStore
from onepipe.platform.versions.types import CheckList, CheckRun, CheckSummary

HISTORY = 10  # the checks before the latest that GET /v1/versions/checks lists in brief


def check_list(store: CheckStore, pipeline: str) -> CheckList:
    """The latest check of the pipeline and the ones before it, in brief."""
    runs = store.runs(pipeline, HISTORY + 1)
    brief = set(CheckSummary.model_fields)
    return CheckList(
        pipeline=pipeline,
        latest=runs[0] if runs else None,
        history=[CheckSummary.model_validate(run.model_dump(include=brief)) for run in runs[1:]],
    )


def check_metrics(store: CheckStore, pipeline: str) -> bytes:
    """The checks' gauges in Prometheus' text format: none before the first check."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Gauges(store.latest(pipeline), store.latest(pipeline, ran=True)))
    return generate_latest(registry)


class _Gauges(Collector):
    """Gauges made from stored checks at each scrape (no process keeps a value that could go stale)."""

    def __init__(self, latest: CheckRun | None, ran: CheckRun | None) -> None:
        self.latest, self.ran = latest, ran

    def collect(self) -> Iterator[GaugeMetricFamily]:
        if self.latest is None:
            return
        yield GaugeMetricFamily(
            "onepipe_check_last_run_timestamp_seconds",
            "When the latest scheduled check of the versions started (Unix time).",
            value=self.latest.started_at.timestamp(),
        )
        yield GaugeMetricFamily(
            "onepipe_check_last_run_ok",
            "1 if the latest scheduled check ran, 0 if it could not.",
            value=float(self.latest.ok),
        )
        if self.ran is None:
            return
        # from the latest check that ran: one that could not run leaves the cases' last known state
        cases = GaugeMetricFamily(
            "onepipe_check_cases",
            "Edge cases each version answered as expected (passed) or not (failed), at the latest check "
            "that ran.",
            labels=["version", "outcome"],
        )
        broken = GaugeMetricFamily(
            "onepipe_check_must_pass_broken",
            "Must-pass edge cases each version fails at the latest check that ran: alert on any.",
            labels=["version"],
        )
        for version in self.ran.versions:
            cases.add_metric([version.label, "passed"], version.passed)
            cases.add_metric([version.label, "failed"], version.failed)
            broken.add_metric([version.label], len(version.must_pass_failing))
        yield cases
        yield broken
