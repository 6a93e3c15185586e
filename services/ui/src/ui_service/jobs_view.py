"""Batch jobs as people follow them: states in words, progress, rows per second, time left, what can be done.

Plain functions over the gateway's job views (GET /v1/jobs), no Streamlit.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal

from ui_service import wording

ACTIVE: Final = ("queued", "running")
# stopped, to be resumed by a person: paused (its version cannot be had now), failed, cancelled
RESUMABLE: Final = ("paused", "failed", "cancelled")
STATES: Final = {  # words, not emoji: a table cell shows no icon font
    "queued": "queued (waiting for a worker)",
    "running": "running",
    "paused": "paused (its version is not served; resume it once it is)",
    "succeeded": "succeeded",
    "failed": "failed",
    "cancelled": "cancelled",
}
# a queued or running job nobody has worked on for this long may have lost its worker: offer to resume it
# (the gateway refuses with a sentence while a worker still holds it)
STUCK_SECONDS: Final = 120
Action = Literal["cancel", "resume"]


def when(text: Any) -> datetime | None:
    """A time the gateway wrote (ISO 8601), as an aware datetime; None when unset or unreadable."""
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def active(job: Mapping[str, Any]) -> bool:
    """Whether the job is still to finish (queued or running)."""
    return job["state"] in ACTIVE


def progress(job: Mapping[str, Any]) -> float:
    """The share of rows done, 0 to 1 (1 for a succeeded job)."""
    if job["state"] == "succeeded":
        return 1.0
    total = job.get("rows_total") or 0
    return min(1.0, job["rows_done"] / total) if total else 0.0


def rate(job: Mapping[str, Any], now: datetime) -> float | None:
    """Rows per second since the job started (to its end, or now); None before there is anything to count."""
    started = when(job.get("started_at"))
    ended = when(job.get("finished_at")) or now
    done = int(job["rows_done"])
    if started is None or not done:
        return None
    elapsed = (ended - started).total_seconds()
    return done / elapsed if elapsed > 0 else None


def seconds_left(job: Mapping[str, Any], now: datetime) -> float | None:
    """The time a running job still needs at its rate so far; None when it cannot be told."""
    speed = rate(job, now)
    total = job.get("rows_total")
    if not active(job) or not speed or not total:
        return None
    return max(0.0, (int(total) - int(job["rows_done"])) / speed)


def took(job: Mapping[str, Any]) -> float | None:
    """How long a finished job ran, in seconds."""
    started, ended = when(job.get("started_at")), when(job.get("finished_at"))
    return (ended - started).total_seconds() if started and ended else None


def stuck(job: Mapping[str, Any], now: datetime) -> bool:
    """Whether a queued or running job has had no worker on it for a while."""
    if not active(job):
        return False
    last = when(job.get("last_worked_at")) or when(job.get("started_at")) or when(job.get("created_at"))
    return last is not None and (now - last).total_seconds() > STUCK_SECONDS


def actions(job: Mapping[str, Any], now: datetime) -> list[Action]:
    """What a person can do with the job: cancel it while it is to finish (or paused), resume it once it
    stopped."""
    found: list[Action] = []
    if active(job) or job["state"] == "paused":
        found.append("cancel")
    if job["state"] in RESUMABLE or stuck(job, now):
        found.append("resume")
    return found


def rows_text(job: Mapping[str, Any]) -> str:
    """ "40 of 100" (or "40 of ?" while the file is still being counted)."""
    total = job.get("rows_total")
    return f"{job['rows_done']:,} of {total:,}" if total is not None else f"{job['rows_done']:,} of ?"


def timing_text(job: Mapping[str, Any], now: datetime) -> str:
    """Time left for a running job, the time a finished one took."""
    if active(job):
        left = seconds_left(job, now)
        return "—" if left is None else f"about {wording.seconds(left)} left"
    spent = took(job)
    return "—" if spent is None else f"took {wording.seconds(spent)}"


def status_line(job: Mapping[str, Any], now: datetime) -> str:
    """One line on a job: its state, rows, failures, speed and time left or taken."""
    speed = rate(job, now)
    parts = [
        f"{job['state']}: {rows_text(job)} rows",
        f"{wording.plural(job['rows_failed'], 'row')} failed" if job["rows_failed"] else "none failed",
    ]
    if speed:
        parts.append(f"{speed:,.1f} rows/s")
    timing = timing_text(job, now)
    if timing != "—":
        parts.append(timing)
    return ", ".join(parts)


def ending_text(job: Mapping[str, Any]) -> str:
    """Why a job stopped before its end, and what can be done about it, in one sentence."""
    done = f"after {rows_text(job)} rows"
    if job["state"] == "cancelled":
        why = job.get("error") or "cancelled"
        return f"Job {job['id']} was {why} {done}; resume it to go on from the rows done."
    if job["state"] == "paused":  # the worker's sentence says which version, why, and when to resume
        why = str(job.get("error") or "its version is not served now").removeprefix("Paused: ")
        return f"Job {job['id']} paused {done}: {why}"
    reason = str(job.get("error") or "no reason given").rstrip(".")
    return f"Job {job['id']} {job['state']} {done}: {reason}. Resume it to go on from the rows done."


def job_rows(jobs: Iterable[Mapping[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """The jobs table: one row per job, newest first as the gateway lists them."""
    rows = []
    for job in jobs:
        speed = rate(job, now)
        created = when(job.get("created_at"))
        rows.append(
            {
                "Job": job["id"],
                "File": job["file_name"],
                "State": STATES.get(job["state"], job["state"]),
                "Progress": progress(job),
                "Rows": rows_text(job),
                "Failed": job["rows_failed"],
                "Rows/s": "—" if speed is None else f"{speed:,.1f}",
                "Time": timing_text(job, now),
                "Created": "" if created is None else created.strftime("%Y-%m-%d %H:%M"),
            }
        )
    return rows


def job_label(job: Mapping[str, Any]) -> str:
    """A job in one line, to pick it from a list."""
    flags = ", ".join(f"{k}={wording.value(v)}" for k, v in job["flags"].items()) or "default flags"
    compared = f" against {job['compare_pipeline_version']}" if job.get("compare_pipeline_version") else ""
    return f"{job['id']}: {job['file_name']}, {flags}, version {job['pipeline_version']}{compared}"


def _plain(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


def matching_column(name: str, header: list[str]) -> str | None:
    """The file's column named like a field (same name, or the same letters and digits: "Customer days"
    for `customer_days`); None when no column matches, so that nothing is guessed."""
    if name in header:
        return name
    plain = [column for column in header if _plain(column) == _plain(name)]
    return plain[0] if len(plain) == 1 else None
