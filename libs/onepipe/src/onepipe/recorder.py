"""The debug recorder a step takes to report detail about what it did."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Recorder:
    """Collects a step's debug detail for each input of a batch.

    With debug off the recorder is disabled: `enabled` is false, every method does
    nothing, and a step should skip computing detail it would only record.
    """

    def __init__(self, batch_size: int, enabled: bool) -> None:
        self.enabled = enabled
        self.details: list[dict[str, Any]] = [{} for _ in range(batch_size)] if enabled else []

    def add(self, index: int, **detail: Any) -> None:
        """Record detail for the input at `index` of the batch."""
        if self.enabled:
            self.details[index].update(detail)

    def add_all(self, **detail: Any) -> None:
        """Record the same detail for every input of the batch."""
        if self.enabled:
            for item in self.details:
                item.update(detail)

    @contextmanager
    def timed(self, part: str) -> Iterator[None]:
        """Time a part of the step, recorded as `<part>_ms` for every input."""
        if not self.enabled:
            yield
            return
        start = time.perf_counter()
        try:
            yield
        finally:
            self.add_all(**{f"{part}_ms": round((time.perf_counter() - start) * 1000, 3)})


DISABLED = Recorder(0, enabled=False)
