"""Idempotency-Key on POST /v1/jobs: a retried submission gets the first job back, never a second one.

Before a job is stored, its (API key, Idempotency-Key) claims a file under the storage root:

    <root>/idempotency/<key id>/<sha256 of the Idempotency-Key>.json   {job_id, fingerprint, claimed_at, done}

What holds:
- A retry by the same API key with the same Idempotency-Key, once the first submission
  answered 202, gets that job: 202 again, the same id and Location, the job as it is now.
- Another API key's same Idempotency-Key is another claim (the key id is in the path).
- A submission that failed (422, 503, ...) releases its claim: a retry runs afresh.
- Two submissions at once with the same key: the claim file is created exclusively on a
  local or network folder (O_EXCL), so one job at most; the other answers 409 (retry).
  On object storage (no exclusive create) a narrow race between two simultaneous first
  submissions remains; within one gateway process a lock closes it.
- The same Idempotency-Key with another file name, size or form fields is a client error: 422.
- A claim whose submission never finished (the gateway died mid-submission) is taken over
  after STALE_SECONDS. Claims are kept as long as the storage root, like the jobs: no expiry.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import IO, Annotated, Any

from fastapi import Header, Request
from fsspec.implementations.local import LocalFileSystem
from pydantic import BaseModel, ValidationError

from gateway.auth import Caller
from onepipe import Problem
from onepipe.platform.http.server import ProblemError
from onepipe.platform.jobs.storage import JobStore
from onepipe.platform.jobs.types import JobMeta, utc_now

HEADER = "Idempotency-Key"
LOC = "header.idempotency-key"
MAX_LENGTH = 255  # as Stripe's; a UUID is 36
# longer than any submission takes (storing a large upload on object storage, then the queue)
STALE_SECONDS = 600.0
RETRY_AFTER = "1"


class Claim(BaseModel):
    """What an Idempotency-Key names: the job, the submission it was for, and whether it was queued."""

    job_id: str
    fingerprint: str
    claimed_at: datetime
    done: bool = False


def parse(value: str | None) -> str | None:
    """The header's value, or a 422 naming it: 1 to 255 printable ASCII characters."""
    if value is None:
        return None
    why = None
    if not value or len(value) > MAX_LENGTH:
        why = f"must be 1 to {MAX_LENGTH} characters, not {len(value)}"
    elif not all(" " <= c <= "~" for c in value):
        why = "must be printable ASCII (letters, digits, punctuation, spaces), e.g. a UUID"
    if why is None:
        return value
    raise ProblemError(422, "Invalid request", f"{LOC}: {why}", errors=[Problem(loc=LOC, message=why)])


class IdempotencyHeader:
    """The route's dependency on the header; checked before the body is read (see AdmittedRoute)."""

    def before_body(self, request: Request) -> None:
        parse(request.headers.get(HEADER))

    def __call__(
        self,
        idempotency_key: Annotated[
            str | None,
            Header(
                alias=HEADER,
                description="Any unique text of yours (e.g. a UUID), 1 to 255 printable characters: "
                "a retry with the same key gets the first job back (202, same id and Location) "
                "instead of a second job.",
            ),
        ] = None,
    ) -> str | None:
        return parse(idempotency_key)


def fingerprint(file_name: str, upload: IO[bytes], fields: Mapping[str, Any]) -> str:
    """What tells one submission from another: the file's name and size, and the form fields."""
    upload.seek(0, 2)
    size = upload.tell()
    upload.seek(0)
    text = json.dumps({"file": file_name, "size": size, "fields": fields}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class IdempotencyStore:
    """The claims, one file per (API key, Idempotency-Key), next to the jobs."""

    def __init__(self, jobs: JobStore) -> None:
        self.jobs = jobs
        self.fs = jobs.fs
        self.folder = f"{jobs.root}/idempotency"
        self.exclusive = isinstance(self.fs, LocalFileSystem)  # O_EXCL: object stores have no such create
        self._lock = threading.Lock()

    def path(self, key_id: str, key: str) -> str:
        """The claim's file (the key hashed: any printable text makes a safe name)."""
        return f"{self.folder}/{key_id}/{hashlib.sha256(key.encode()).hexdigest()}.json"

    def claim(self, key_id: str, key: str, wanted: Claim) -> Claim | None:
        """Claim the key for `wanted`; None when claimed, else the claim already there."""
        path = self.path(key_id, key)
        with self._lock:
            self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            if self.exclusive:
                try:
                    with self.fs.open(path, "xb") as handle:
                        handle.write(wanted.model_dump_json().encode())
                    return None
                except FileExistsError:
                    return self._read(path)
            if self.fs.exists(path):
                return self._read(path)
            self.write(key_id, key, wanted)
            return None

    def write(self, key_id: str, key: str, claim: Claim) -> None:
        """Replace the claim (done, or taken over): written aside, then moved into place whole."""
        path = self.path(key_id, key)
        temporary = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
        self.fs.pipe_file(temporary, claim.model_dump_json().encode())
        self.fs.mv(temporary, path)

    def release(self, key_id: str, key: str) -> None:
        """Forget the claim: its submission failed, and a retry runs afresh."""
        path = self.path(key_id, key)
        if self.fs.exists(path):
            self.fs.rm(path)

    def _read(self, path: str) -> Claim:
        try:
            return Claim.model_validate_json(self.fs.cat_file(path))
        except (FileNotFoundError, ValidationError):
            # being written (exclusive create, then the bytes) or just released: in progress
            return Claim(job_id="", fingerprint="", claimed_at=utc_now())


def submit_once(
    claims: IdempotencyStore,
    caller: Caller,
    key: str,
    print_: str,
    submit: Callable[[str], JobMeta],
) -> tuple[JobMeta, bool]:
    """The job for (caller, key): submitted now with a fresh id, or the one submitted before (True)."""
    wanted = Claim(job_id=claims.jobs.new_id(), fingerprint=print_, claimed_at=utc_now())
    found = claims.claim(caller.key_id, key, wanted)
    if found is not None:
        if found.fingerprint and found.fingerprint != print_:
            why = "was used for another submission (another file, size or form fields); use a new key"
            raise ProblemError(
                422, "Invalid request", f"{LOC}: {why}", errors=[Problem(loc=LOC, message=why)]
            )
        if found.done and (meta := claims.jobs.load(found.job_id)) is not None:
            return meta, True
        if not found.done and utc_now() - found.claimed_at < timedelta(seconds=STALE_SECONDS):
            raise ProblemError(
                409,
                "Submission in progress",
                f"a submission with this {HEADER} is still in progress; retry in a moment to get its job",
                headers={"Retry-After": RETRY_AFTER},
            )
        claims.write(caller.key_id, key, wanted)  # abandoned, or its job is gone: taken over
    try:
        meta = submit(wanted.job_id)
    except BaseException:
        claims.release(caller.key_id, key)
        raise
    claims.write(caller.key_id, key, wanted.model_copy(update={"done": True}))
    return meta, False


def submit_keyed(
    claims: IdempotencyStore,
    caller: Caller,
    key: str | None,
    file_name: str,
    upload: IO[bytes],
    fields: Mapping[str, Any],
    submit: Callable[[str | None], JobMeta],
) -> JobMeta:
    """The job: submitted now, or with an Idempotency-Key, the one that key's submission made before."""
    if key is None:
        return submit(None)
    return submit_once(claims, caller, key, fingerprint(file_name, upload, fields), submit)[0]
