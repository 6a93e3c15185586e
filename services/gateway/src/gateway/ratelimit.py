"""Per-key rate limits with the limits library; counters in Redis (or memory:// in one process)."""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

from gateway.auth import Caller
from onepipe.server import ProblemError

log = logging.getLogger("gateway.ratelimit")
NAMESPACE = "onepipe-gateway"


class RateLimiter:
    """A moving window per key; 429 with Retry-After when a key is over its limit."""

    def __init__(self, storage_url: str, default_limit: str) -> None:
        self.storage_url = storage_url
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage_url))
        self.default = _parse(default_limit, "GATEWAY_RATE_LIMIT")

    def check(self, caller: Caller) -> None:
        """Count one request for the caller; raise a 429 problem when over the limit."""
        limit = (
            _parse(caller.rate_limit, f"rate_limit of key {caller.name}")
            if caller.rate_limit
            else self.default
        )
        try:
            allowed = self.limiter.hit(limit, NAMESPACE, caller.key_id)
            if allowed:
                return
            reset = self.limiter.get_window_stats(limit, NAMESPACE, caller.key_id).reset_time
        except Exception as error:  # the store being down must not take the API down with it
            log.warning("rate-limit store unavailable, request allowed: %s", error)
            return
        retry_after = max(1, math.ceil(reset - time.time()))
        raise ProblemError(
            429,
            "Too many requests",
            f"the key '{caller.name}' is over its rate limit of {limit}; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )


def _parse(text: str, what: str) -> RateLimitItem:
    try:
        return parse(text)
    except ValueError:
        raise ValueError(f"{what}: {text!r} is not a rate limit like '120/minute'") from None
