"""Peak resident memory of a service's processes while something runs (Linux /proc, sampled)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any

PROC = Path("/proc")
PAGE = os.sysconf("SC_PAGE_SIZE")


def session_rss(session: int) -> int:
    """Bytes resident in every process of a session (a service started in a session of its own)."""
    total = 0
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # /proc/PID/stat: the command sits in parentheses and may hold spaces; fields follow it
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
            if int(fields[3]) != session:  # field 6 of stat, the session id
                continue
            total += int((entry / "statm").read_text().split()[1]) * PAGE
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue  # the process ended while it was read
    return total


class PeakMemory:
    """The highest summed RSS of each named session seen while the block runs, sampled every `interval`."""

    def __init__(self, sessions: dict[str, int], interval: float = 0.1) -> None:
        self.sessions = sessions
        self.interval = interval
        self.peaks = dict.fromkeys(sessions, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            for name, session in self.sessions.items():
                self.peaks[name] = max(self.peaks[name], session_rss(session))
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        self._thread.join()

    def megabytes(self, names: Iterable[str] | None = None) -> dict[str, float]:
        """The peaks in MiB."""
        return {name: self.peaks[name] / 2**20 for name in names or self.peaks}


def session_processes(session: int) -> list[dict[str, Any]]:
    """Each process of a session: pid, parent, command, and its resident and proportional memory (bytes).

    PSS (/proc/PID/smaps_rollup) charges a page shared by n processes 1/n to each, so the PSS of a
    session's processes adds up to what they hold together, where RSS counts a shared page in each.
    """
    found: list[dict[str, Any]] = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rpartition(")")[2].split()
            if int(fields[3]) != session:
                continue
            rollup = dict(
                (line.split()[0].rstrip(":"), int(line.split()[1]) * 1024)
                for line in (entry / "smaps_rollup").read_text().splitlines()[1:]
            )
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
        found.append(
            {"pid": int(entry.name), "parent": int(fields[1]), "command": command}
            | {"rss": rollup["Rss"], "pss": rollup["Pss"]}
        )
    return sorted(found, key=lambda process: int(process["pid"]))
