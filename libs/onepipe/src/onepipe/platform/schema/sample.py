"""A bounded, reproducible sample of numbers for quantiles: report fields, comparison drift.

Up to SAMPLE_SIZE values are kept exactly; beyond that a uniform sample of that size (reservoir
sampling with a fixed seed, so two runs over the same rows give the same figures).
"""

from __future__ import annotations

import math
import random
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

SAMPLE_SIZE: Final = 100_000  # values kept per sample (8 bytes each)


def linear_quantile(ordered: Sequence[float], q: float) -> float:
    """The q-quantile of sorted, non-empty values: linear between the closest ranks, as numpy's default."""
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


@dataclass
class Reservoir:
    """The values kept for quantiles; whoever counts the values seen says how many with each `keep`."""

    values: array[float] = field(default_factory=lambda: array("d"))
    _random: random.Random = field(default_factory=lambda: random.Random(0), repr=False)
    _sorted: list[float] | None = field(default=None, repr=False)

    def keep(self, value: float, seen: int) -> None:
        """Keep `value`, the `seen`-th value (counting from 1), or not, as the uniform sample says."""
        self._sorted = None
        if len(self.values) < SAMPLE_SIZE:
            self.values.append(value)
        elif (slot := self._random.randrange(seen)) < SAMPLE_SIZE:
            self.values[slot] = value

    def quantile(self, q: float) -> float | None:
        """The q-quantile of the values kept (linear between the closest ranks, as numpy's default)."""
        if not self.values:
            return None
        if self._sorted is None:
            self._sorted = sorted(self.values)
        return linear_quantile(self._sorted, q)
