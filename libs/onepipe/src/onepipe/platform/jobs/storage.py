"""Job files under one storage root (any fsspec URL: a local folder, s3://bucket/prefix, ...).

    <root>/jobs/<job id>/job.json          the job's metadata (durable; survives a Redis restart)
    <root>/jobs/<job id>/input.<format>    the uploaded file
    <root>/jobs/<job id>/chunks/NNNNNN.jsonl  each chunk's row results, written once
    <root>/jobs/<job id>/report.<format>   the reports
    <root>/cases/<pipeline>/<key id>/<key>.json  each case reported to a running service, in a
                                           folder per reporting API key (CaseStore)
    <root>/idempotency/<key id>/<sha256>.json  the job an Idempotency-Key names (gateway.idempotency)
    <root>/checks/<pipeline>/<check id>.json   each scheduled check of the versions, the last
                                           CHECKS_KEPT kept (CheckStore)

Needs the `storage` extra. Writes of metadata and chunks go to a temporary name
first and are then moved into place, so a reader never sees half a file.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

import fsspec

from onepipe.platform.cases import Case
from onepipe.platform.jobs.types import JobMeta, RowResult
from onepipe.platform.versions.types import CheckRun

CHUNKS = "chunks"
CANCELLED = "cancelled"
CHECKS_KEPT = 48  # two days of hourly checks


class UploadTooLargeError(ValueError):
    """An upload over its size limit (`limit`, in bytes); a ValueError like any other refused file."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        super().__init__(f"the file is over the upload limit of {limit} bytes")


def _atomic_write(fs: Any, path: str, data: bytes) -> None:
    """Write to a temporary name, then move it into place: a reader never sees half a file."""
    temporary = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with fs.open(temporary, "wb") as handle:
            handle.write(data)
        fs.mv(temporary, path)
    except OSError:
        # a full disk: the half-written file would hold the space the job's failure needs
        with suppress(OSError):
            fs.rm(temporary)
        raise


class JobStore:
    """Reads and writes jobs under a storage root URL."""

    def __init__(self, root_url: str) -> None:
        self.url = root_url
        self.fs: Any
        # no cached listings: other processes (the gateway, every worker) change these folders,
        # and a stale listing of object storage makes a file that is there look missing
        self.fs, root = fsspec.core.url_to_fs(root_url, use_listings_cache=False)
        self.root = root.rstrip("/")  # the gateway keeps its Idempotency-Key claims next to the jobs
        self.jobs = f"{self.root}/jobs"
        self.fs.makedirs(self.jobs, exist_ok=True)

    @staticmethod
    def new_id() -> str:
        """A job id that sorts by creation time."""
        return f"{datetime.now(UTC):%Y%m%d%H%M%S%f}-{uuid.uuid4().hex[:8]}"

    def path(self, job_id: str, name: str = "") -> str:
        """Where a job's file lives."""
        if "/" in job_id or job_id.startswith("."):
            raise ValueError(f"invalid job id {job_id!r}")
        return f"{self.jobs}/{job_id}/{name}".rstrip("/")

    def _atomic_write(self, path: str, data: bytes) -> None:
        _atomic_write(self.fs, path, data)

    def save(self, meta: JobMeta) -> None:
        """Write a job's metadata."""
        self.fs.makedirs(self.path(meta.id), exist_ok=True)
        self._atomic_write(self.path(meta.id, "job.json"), meta.model_dump_json(indent=2).encode())

    def load(self, job_id: str) -> JobMeta | None:
        """A job's metadata, or None when there is no such job."""
        try:
            # one whole read: on object storage an open file that another process replaces
            # between its first and next request is "expired" (s3fs), a whole read never is
            meta = JobMeta.model_validate_json(self.fs.cat_file(self.path(job_id, "job.json")))
        except (FileNotFoundError, ValueError):
            return None
        if meta.state != "cancelled" and self.exists(job_id, CANCELLED):
            # a worker may have saved its copy after the cancel: the marker wins
            meta.state, meta.error = "cancelled", self._read_text(job_id, CANCELLED)
        return meta

    def _read_text(self, job_id: str, name: str) -> str:
        return bytes(self.fs.cat_file(self.path(job_id, name))).decode()

    def mark_cancelled(self, job_id: str, reason: str) -> None:
        """Cancel a job for good: a marker no worker overwrites (until the job is resumed)."""
        with self.open(job_id, CANCELLED, "wb") as handle:
            handle.write(reason.encode())

    def clear_cancelled(self, job_id: str) -> None:
        """Remove the cancel marker (the job is resumed)."""
        if self.exists(job_id, CANCELLED):
            self.fs.rm(self.path(job_id, CANCELLED))

    def list_jobs(
        self, owner: str | None = None, limit: int = 20, offset: int = 0
    ) -> tuple[list[JobMeta], int]:
        """Jobs newest first (only `owner`'s when given), one page, and how many there are in all."""
        jobs = [meta for meta in self.iter_jobs() if owner is None or meta.owner == owner]
        return jobs[offset : offset + limit], len(jobs)

    def iter_jobs(self) -> Iterator[JobMeta]:
        """Every job's metadata, newest first."""
        try:
            ids = sorted((p.rsplit("/", 1)[-1] for p in self.fs.ls(self.jobs, detail=False)), reverse=True)
        except FileNotFoundError:
            ids = []
        for job_id in ids:
            if (meta := self.load(job_id)) is not None:
                yield meta

    def input_name(self, meta: JobMeta) -> str:
        """The stored input file's name."""
        return f"input.{meta.spec.file_format}"

    def store_input(self, meta: JobMeta, upload: IO[bytes], max_bytes: int) -> int:
        """Copy an upload into the job's folder; its size, or UploadTooLargeError past `max_bytes`."""
        self.fs.makedirs(self.path(meta.id), exist_ok=True)
        size = 0
        with self.fs.open(self.path(meta.id, self.input_name(meta)), "wb") as target:
            while block := upload.read(1 << 20):
                size += len(block)
                if size > max_bytes:
                    raise UploadTooLargeError(max_bytes)
                target.write(block)
        return size

    @contextmanager
    def open(self, job_id: str, name: str, mode: str = "rb") -> Iterator[IO[bytes]]:
        """A job file, opened for binary reading or writing."""
        with self.fs.open(self.path(job_id, name), mode) as handle:
            yield handle

    @contextmanager
    def open_whole(self, job_id: str, name: str) -> Iterator[IO[bytes]]:
        """A job file written whole or not at all: to a temporary name, moved into place once closed.

        A reader (a reviewer downloading a report) never gets half of one, even while another
        worker writes it again.
        """
        path = self.path(job_id, name)
        temporary = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            with self.fs.open(temporary, "wb") as handle:
                yield handle
            self.fs.mv(temporary, path)
        except BaseException:
            with suppress(OSError):
                self.fs.rm(temporary)
            raise

    def exists(self, job_id: str, name: str) -> bool:
        """Whether a job file exists."""
        return bool(self.fs.exists(self.path(job_id, name)))

    def delete(self, job_id: str) -> None:
        """Remove a job and its files."""
        if self.fs.exists(self.path(job_id)):
            self.fs.rm(self.path(job_id), recursive=True)

    # -- chunks ---------------------------------------------------------------------------

    @staticmethod
    def chunk_name(number: int) -> str:
        """The file of chunk `number`."""
        return f"{CHUNKS}/{number:06d}.jsonl"

    def chunk_done(self, job_id: str, number: int) -> bool:
        """Whether chunk `number` was written (and so is never redone)."""
        return self.exists(job_id, self.chunk_name(number))

    def write_chunk(self, job_id: str, number: int, results: list[RowResult]) -> None:
        """Write one chunk's results, whole or not at all."""
        self.fs.makedirs(self.path(job_id, CHUNKS), exist_ok=True)
        data = "".join(result.model_dump_json() + "\n" for result in results).encode()
        self._atomic_write(self.path(job_id, self.chunk_name(number)), data)

    def chunk_numbers(self, job_id: str) -> list[int]:
        """The numbers of the chunks written so far, in order."""
        try:
            names = self.fs.ls(self.path(job_id, CHUNKS), detail=False)
        except FileNotFoundError:
            return []
        return sorted(int(n.rsplit("/", 1)[-1][:6]) for n in names if n.endswith(".jsonl"))

    def read_chunk(self, job_id: str, number: int) -> list[RowResult]:
        """One chunk's results."""
        with self.open(job_id, self.chunk_name(number)) as handle:
            return [RowResult.model_validate_json(line) for line in handle if line.strip()]

    def iter_results(self, job_id: str) -> Iterator[RowResult]:
        """Every row result written, chunk by chunk, in row order."""
        for number in self.chunk_numbers(job_id):
            yield from self.read_chunk(job_id, number)


@dataclass(frozen=True)
class StoredCase:
    """A reported case as kept: its key (sorts by arrival), the case, and who reported it."""

    key: str
    case: Case
    owner: str | None  # the reporting API key's stable id; None: kept before reports were kept per key


def _safe_name(name: str, what: str) -> str:
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"invalid {what} {name!r}")
    return name


class CaseStore:
    """Cases reported to running services (the UI, the gateway), one file each, until `just cases pull`.

    Each report is kept in a folder named for the API key that reported it (its stable id, never
    the key): listing or counting one key's reports reads that folder alone. A report kept before
    that layout lies in the pipeline's folder itself; it is read as one with no owner.
    """

    def __init__(self, root_url: str) -> None:
        self.fs: Any
        self.fs, root = fsspec.core.url_to_fs(root_url, use_listings_cache=False)
        self.root = f"{root.rstrip('/')}/cases"

    def folder(self, pipeline: str, owner: str | None = None) -> str:
        """Where a pipeline's reported cases live (those of one reporting key, when given)."""
        folder = f"{self.root}/{_safe_name(pipeline, 'pipeline name')}"
        return folder if owner is None else f"{folder}/{_safe_name(owner, 'key id')}"

    def add(self, pipeline: str, case: Case, owner: str) -> str:
        """Keep a case reported by the key `owner`; its key sorts by arrival, and no report overwrites
        another."""
        key = f"{datetime.now(UTC):%Y%m%d%H%M%S%f}-{case.id}-{uuid.uuid4().hex[:6]}"
        folder = self.folder(pipeline, owner)
        self.fs.makedirs(folder, exist_ok=True)
        _atomic_write(self.fs, f"{folder}/{key}.json", case.model_dump_json().encode())
        return key

    def _names(self, folder: str) -> list[tuple[str, str]]:
        """The (path, type) of each entry of a folder; none when it does not exist."""
        try:
            return [(entry["name"], entry["type"]) for entry in self.fs.ls(folder, detail=True)]
        except FileNotFoundError:
            return []

    def count(self, pipeline: str, owner: str) -> int:
        """How many reports of the key `owner` wait for `just cases pull` (one folder listed)."""
        return sum(1 for path, kind in self._names(self.folder(pipeline, owner)) if _is_report(path, kind))

    def stored(self, pipeline: str, owner: str | None = None) -> list[StoredCase]:
        """The reported cases of a pipeline, oldest first: every key's, or only those of `owner`."""
        places: list[tuple[str, str | None]]
        if owner is not None:
            places = [(self.folder(pipeline, owner), owner)]
        else:
            entries = self._names(self.folder(pipeline))
            places = [
                (path, path.rstrip("/").rsplit("/", 1)[-1]) for path, kind in entries if kind == "directory"
            ]
            places.append((self.folder(pipeline), None))  # the layout before folders per key
        found = []
        for folder, who in places:
            for path, kind in self._names(folder):
                if _is_report(path, kind):
                    # one whole read: on object storage a file replaced mid-read is "expired" (s3fs)
                    case = Case.model_validate_json(self.fs.cat_file(path))
                    found.append(StoredCase(path.rsplit("/", 1)[-1].removesuffix(".json"), case, who))
        return sorted(found, key=lambda stored: stored.key)

    def cases(self, pipeline: str, owner: str | None = None) -> list[tuple[str, Case]]:
        """The reported cases of a pipeline with their keys, oldest first (see `stored`)."""
        return [(stored.key, stored.case) for stored in self.stored(pipeline, owner)]

    def remove(self, pipeline: str, key: str, owner: str | None = None) -> None:
        """Forget a reported case (once merged into the library)."""
        path = f"{self.folder(pipeline, owner)}/{_safe_name(key, 'case key')}.json"
        with suppress(FileNotFoundError):
            self.fs.rm(path)


def _is_report(path: str, kind: str) -> bool:
    # a half-written report is `<key>.json.tmp-<random>`: never read
    return kind == "file" and path.endswith(".json")


class CheckStore:
    """The scheduled checks of the versions (onepipe.platform.versions.checks), the last CHECKS_KEPT of each
    pipeline, one file each, named by the check's id (which sorts by time)."""

    def __init__(self, root_url: str, kept: int = CHECKS_KEPT) -> None:
        self.fs: Any
        self.fs, root = fsspec.core.url_to_fs(root_url, use_listings_cache=False)
        self.root = f"{root.rstrip('/')}/checks"
        self.kept = kept

    def folder(self, pipeline: str) -> str:
        """Where a pipeline's checks live."""
        return f"{self.root}/{_safe_name(pipeline, 'pipeline name')}"

    def save(self, run: CheckRun) -> None:
        """Keep a check, then let go of the oldest beyond the last `kept`."""
        folder = self.folder(run.pipeline)
        self.fs.makedirs(folder, exist_ok=True)
        _atomic_write(
            self.fs, f"{folder}/{_safe_name(run.id, 'check id')}.json", run.model_dump_json().encode()
        )
        for path in self._paths(run.pipeline)[: -self.kept]:
            with suppress(FileNotFoundError):
                self.fs.rm(path)

    def runs(self, pipeline: str, limit: int | None = None) -> list[CheckRun]:
        """A pipeline's checks, newest first (at most `limit`)."""
        paths = self._paths(pipeline)[::-1][:limit]
        # one whole read each: on object storage a file replaced mid-read is "expired" (s3fs)
        return [CheckRun.model_validate_json(self.fs.cat_file(path)) for path in paths]

    def latest(self, pipeline: str, ran: bool = False) -> CheckRun | None:
        """The newest check (the newest that ran, with `ran`), or None."""
        for path in self._paths(pipeline)[::-1]:
            run = CheckRun.model_validate_json(self.fs.cat_file(path))
            if run.ok or not ran:
                return run
        return None

    def last_pipeline(self) -> str | None:
        """The pipeline checked most recently: where a check that could not even name it is kept."""
        folders = [entry["name"] for entry in self._entries(self.root) if entry["type"] == "directory"]
        names = [str(folder).rstrip("/").rsplit("/", 1)[-1] for folder in folders]
        newest = {name: max((p.rsplit("/", 1)[-1] for p in self._paths(name)), default="") for name in names}
        return max(newest, key=newest.__getitem__, default=None)

    def _entries(self, folder: str) -> list[dict[str, Any]]:
        try:
            return list(self.fs.ls(folder, detail=True))
        except FileNotFoundError:
            return []

    def _paths(self, pipeline: str) -> list[str]:
        """The pipeline's check files, oldest first (half-written ones, `*.json.tmp-*`, left out)."""
        entries = self._entries(self.folder(pipeline))
        return sorted(entry["name"] for entry in entries if _is_report(entry["name"], entry["type"]))
