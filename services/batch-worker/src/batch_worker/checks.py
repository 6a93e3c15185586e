"""The scheduled check, a plain function: the edge-case library replayed through the live model service.

The beat process sends the task every WORKER_CHECK_INTERVAL seconds; a worker runs it. The check asks
the model service over HTTP, as any caller would, for its versions and its case library
(GET /v1/cases/library, the file a promotion replays, so no face reads another's files), then for each
case's answer from the champion and the challenger, each asked for by its hash so that a promotion
during the check cannot mix two versions into one side. The result is kept in the storage root.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any

from onepipe.platform.http.client import ModelServiceClient, ServiceError, ServiceUnavailableError
from onepipe.platform.jobs.storage import CheckStore
from onepipe.platform.versions.checks import failed_check, run_check
from onepipe.platform.versions.evidence import Candidate
from onepipe.platform.versions.types import CHALLENGER, CHAMPION, CheckRun, VersionInfo

CHECK_VERSIONS_TASK = "onepipe.check_versions"
UNNAMED = "unknown-pipeline"  # where a check that never reached the model service is kept, if none ran before
log = logging.getLogger("batch_worker.checks")


def check_versions(client: ModelServiceClient, store: CheckStore) -> CheckRun:
    """Replay the library on the live champion and challenger, keep the result, and return it.

    A model service that does not answer is a failed check with the reason in one sentence, kept like
    any other: it never raises for it.
    """
    started, clock = datetime.now(UTC), time.monotonic()
    try:
        listed = client.versions()
        library = client.case_library()
    except ServiceError as error:
        pipeline = store.last_pipeline() or UNNAMED
        return _kept(store, failed_check(pipeline, _sentence(error), started, time.monotonic() - clock))
    outages: list[ServiceUnavailableError] = []
    served = {alias: info for info in listed.versions for alias in info.aliases}
    candidates = [
        _candidate(client, label, served[label], library.pipeline, outages)
        for label in (CHAMPION, CHALLENGER)
        if label in served
    ]
    run = run_check(library.pipeline, candidates, library.cases, store.latest(library.pipeline, ran=True))
    if outages:  # the answers missing for it say nothing about the versions
        run = failed_check(library.pipeline, _sentence(outages[0]), started, time.monotonic() - clock)
    return _kept(store, run)


def _candidate(
    client: ModelServiceClient,
    label: str,
    info: VersionInfo,
    pipeline: str,
    outages: list[ServiceUnavailableError],
) -> Candidate:
    """A version as the check runs it: over HTTP, asked for by its hash."""

    def run(inputs: list[dict[str, Any]], flags: dict[str, Any]) -> list[dict[str, Any]]:
        try:
            return client.predict(inputs, flags, version=info.version).outputs
        except ServiceUnavailableError as error:
            outages.append(error)
            raise

    return Candidate(label, pipeline, info.version, info.number, run)


def _sentence(error: ServiceError) -> str:
    return f"the {error}"


def _kept(store: CheckStore, run: CheckRun) -> CheckRun:
    store.save(run)
    counts = ", ".join(f"{v.label} {v.passed} passed, {v.failed} failed" for v in run.versions)
    log.info("check %s: %s", run.id, counts or run.error, extra={"pipeline": run.pipeline, "ok": run.ok})
    return run
