"""Callers at a fixed concurrency: the load a promotion or a rollback must not fail a request of."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Load:
    """Callers posting bodies over and over (caller i sends bodies[i % len(bodies)]); each answer's time,
    status and version (or its text when not a 200) recorded. A context manager: the callers run inside."""

    url: str
    headers: dict[str, str]
    bodies: list[dict[str, Any]]
    callers: int = 8
    answers: list[tuple[float, int, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def _call(self, index: int) -> None:
        body = self.bodies[index % len(self.bodies)]
        with httpx.Client(headers=self.headers, timeout=60) as client:
            while not self._stop.is_set():
                try:
                    answer = client.post(self.url, json=body)
                except httpx.TransportError as error:  # counted as a failure, not raised in a thread
                    self.answers.append((time.monotonic(), 0, f"{type(error).__name__}: {error}"))
                    continue
                ok = answer.status_code == 200
                self.answers.append(
                    (time.monotonic(), answer.status_code, answer.json()["version"] if ok else answer.text)
                )

    def __enter__(self) -> Load:
        self._threads = [threading.Thread(target=self._call, args=(i,)) for i in range(self.callers)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def between(self, start: float, end: float = float("inf")) -> set[str]:
        """The versions that answered between two moments (time.monotonic())."""
        return {version for at, _, version in self.answers if start < at < end}

    def since(self, moment: float) -> set[str]:
        """The versions that answered after a moment."""
        return self.between(moment)
