"""Per-key rate limits with the limits library; counters in Redis (or memory:// in one process).

The async strategy and storage (redis.asyncio): a counter update never blocks the event
loop, which a blocking Redis call inside an async route did for every request.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.strategies import MovingWindowRateLimiter
from limits.storage import storage_from_string

from gateway.auth import Caller
from onepipe.platform.http.server import ProblemError

log = logging.getLogger("gateway.ratelimit")
NAMESPACE = "onepipe-gateway"
# a Redis that hangs must not hang the API: the request is let through after a second, and the
# next ones without asking for STORE_PAUSE_SECONDS (a silent Redis would add a second to each)
STORE_PAUSE_SECONDS = 5.0
REDIS_OPTIONS: dict[str, Any] = {
    "implementation": "redispy",
    "socket_connect_timeout": 1,
    "socket_timeout": 1,
}


class RateLimiter:
    """A moving window per key; 429 with Retry-After when a key is over its limit."""

    def __init__(self, storage_url: str, default_limit: str) -> None:
        self.storage_url = storage_url
        options = REDIS_OPTIONS if storage_url.startswith("redis") else {}
        self.limiter = MovingWindowRateLimiter(storage_from_string(f"async+{storage_url}", **options))
        self.default = _parse(default_limit, "GATEWAY_RATE_LIMIT")
        self.paused_until = 0.0  # time.monotonic() until which the store is not asked (it just failed)

    async def check(self, caller: Caller) -> None:
        """Count one request for the caller; raise a 429 problem when over the limit."""
        limit = (
            _parse(caller.rate_limit, f"rate_limit of key {caller.name}")
            if caller.rate_limit
            else self.default
        )
        if time.monotonic() < self.paused_until:
            return
        try:
            allowed = await self.limiter.hit(limit, NAMESPACE, caller.key_id)
            if allowed:
                return
            reset = (await self.limiter.get_window_stats(limit, NAMESPACE, caller.key_id)).reset_time
        except Exception as error:  # the store being down must not take the API down with it
            self.paused_until = time.monotonic() + STORE_PAUSE_SECONDS
            log.warning(
                "rate-limit store unavailable (%s); requests allowed uncounted for %g s",
                error,
                STORE_PAUSE_SECONDS,
            )
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
