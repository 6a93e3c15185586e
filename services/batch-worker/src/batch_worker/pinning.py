"""A job pinned to a version: every row of a job is answered by the one version its first answer came from.

The job's first call asks for the version the job was submitted with (`spec.version`; none: the
champion). The hash it was answered with is kept on the job (`pipeline_version`, saved before
any row of that chunk is written), and every later call, in any task continuation, on any
worker, after any promotion, asks the model service for that hash. The compared version of a
job submitted with `compare_version` is pinned the same way (`compare_pipeline_version`).

A job never mixes versions: when its version cannot be had any more (the model service answers
422 on `version`, or answers with another version than the one asked for, as a model service
that does not know versions would), the chunk in flight is dropped, no row is counted failed,
and the job pauses with a sentence saying which version, why, and how to resume it.
"""

from __future__ import annotations

import re
import threading
from typing import Final

from onepipe.platform.jobs.types import JobMeta

# what a version hash looks like (onepipe's LoadedPipeline.version: the first 12 hex digits of a sha256);
# aliases (champion, challenger) and registered numbers (v3) resolve to one, so their answer may be any
VERSION_HASH: Final = re.compile(r"[0-9a-f]{12}")


class PausedError(Exception):
    """The job must pause: its version cannot be had. The message says which, why, and how to resume."""


def names_a_hash(ref: str | None) -> bool:
    """Whether a version reference is a version hash (not an alias or a registered number)."""
    return ref is not None and VERSION_HASH.fullmatch(ref) is not None


class Pin:
    """One variant's version on a job: the reference asked for, then the hash that answered first.

    `compared`: the pin of the compared version (`compare_version`), else the job's own. Calls of a
    chunk run on threads: the pin is recorded under the runner's lock.
    """

    def __init__(self, meta: JobMeta, compared: bool, lock: threading.Lock) -> None:
        self.meta, self.compared, self.lock = meta, compared, lock

    @property
    def asked(self) -> str | None:
        """The version the job was submitted with (None: the champion)."""
        return self.meta.spec.compare_version if self.compared else self.meta.spec.version

    @property
    def pinned(self) -> str | None:
        """The hash that answered first (None before any answer)."""
        return self.meta.compare_pipeline_version if self.compared else self.meta.pipeline_version

    def ref(self) -> str | None:
        """What to ask the model service for: the pinned hash once there is one, else what was asked."""
        return self.pinned or self.asked

    def record(self, answered: str) -> bool:
        """Check an answer's version against the pin; the first one pins it (then True).

        Raises PausedError when the answer came from another version than the one asked for.
        """
        with self.lock:
            pinned = self.pinned
            expected = pinned or (self.asked if names_a_hash(self.asked) else None)
            if expected is not None and answered != expected:
                raise PausedError(self.pause_reason(f"it answered with version {answered} instead"))
            if pinned is not None:
                return False
            if self.compared:
                self.meta.compare_pipeline_version = answered
            else:
                self.meta.pipeline_version = answered
            return True

    def pause_reason(self, why: str) -> str:
        """The paused job's error: which version, why it cannot be had, how to resume."""
        which = "compared version" if self.compared else "version"
        ref = self.ref() or "champion"
        if self.pinned is None:
            held = f"asks for {which} {ref}"
        else:
            alias = f" (asked as {self.asked})" if self.asked not in (None, self.pinned) else ""
            held = f"is pinned to {which} {ref}{alias}"
        return (
            f"Paused: the job {held}, which the model service does not serve now ({why}). "
            "So that every row comes from one version, no row was sent to another and none counts as "
            f"failed. Resume the job (POST /v1/jobs/{self.meta.id}/resume) once version {ref} is "
            "served again."
        )
