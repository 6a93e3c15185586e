"""Per-key rate limits with the limits library; counters in Redis (or memory:// in one process).

The async strategy and storage (redis.asyncio): a counter update never blocks the event
loop, which a blocking Redis call inside an async route did for every request.

A key far from its limit is counted in batches (docs/gateway.md#rate-limits): each process may
admit on its own, between two settlements with the store, LOCAL_SHARE of what the store last said
the key had left; a settlement, SETTLE_SECONDS after the first such request, counts them in the
store in one hit and reads what is left. Near the limit (under 1/LOCAL_SHARE left) every request
asks the store first, as each one did before: the busy keys skip a Redis round trip per request,
and the 429 of a key near its limit stays exact. The error: processes sharing a key that reaches its
limit within a settlement may each admit up to LOCAL_SHARE of it uncounted.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Final

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
# share of a key's remaining requests one process may admit between settlements: the most a
# process can admit past the limit, should other processes take the rest meanwhile
LOCAL_SHARE: Final = 0.01
SETTLE_SECONDS: Final = 0.05  # how long requests admitted locally wait to be counted in the store


@dataclass
class _Tally:
    """One key's requests admitted by this process and not yet counted in the store."""

    allowance: int = 0  # how many more this process may admit before the next settlement
    admitted: int = 0  # admitted since the last settlement, to be counted then
    settling: asyncio.Task[None] | None = None


class RateLimiter:
    """A moving window per key; 429 with Retry-After when a key is over its limit."""

    def __init__(self, storage_url: str, default_limit: str) -> None:
        self.storage_url = storage_url
        options = REDIS_OPTIONS if storage_url.startswith("redis") else {}
        self.limiter = MovingWindowRateLimiter(storage_from_string(f"async+{storage_url}", **options))
        self.default = _parsed(default_limit)
        self.paused_until = 0.0  # time.monotonic() until which the store is not asked (it just failed)
        self.tallies: dict[tuple[str, RateLimitItem], _Tally] = {}

    async def check(self, caller: Caller) -> None:
        """Count one request for the caller; raise a 429 problem when over the limit."""
        limit = _parsed(caller.rate_limit) if caller.rate_limit else self.default
        if time.monotonic() < self.paused_until:
            return
        tally = self.tallies.setdefault((caller.key_id, limit), _Tally())
        if tally.allowance > 0:  # far from the limit: admitted here, counted at the settlement
            tally.allowance -= 1
            tally.admitted += 1
            self._settle_soon(caller.key_id, limit, tally)
            return
        try:
            allowed = await self.limiter.hit(limit, NAMESPACE, caller.key_id)
            if allowed:
                self._settle_soon(caller.key_id, limit, tally)  # reads what is left, for the next ones
                return
            reset = (await self.limiter.get_window_stats(limit, NAMESPACE, caller.key_id)).reset_time
        except Exception as error:  # the store being down must not take the API down with it
            self._pause(error)
            return
        retry_after = max(1, math.ceil(reset - time.time()))
        raise ProblemError(
            429,
            "Too many requests",
            f"the key '{caller.name}' is over its rate limit of {limit}; retry in {retry_after} s",
            headers={"Retry-After": str(retry_after)},
        )

    async def close(self) -> None:
        """Count what was admitted here and not yet settled, before the process ends."""
        for (key_id, limit), tally in list(self.tallies.items()):
            if tally.settling is not None:
                tally.settling.cancel()
            if tally.admitted and time.monotonic() >= self.paused_until:  # one hit each, no read
                admitted, tally.admitted = tally.admitted, 0
                try:
                    await self.limiter.hit(limit, NAMESPACE, key_id, cost=admitted)
                except Exception as error:  # a store gone at shutdown: these stay uncounted
                    self._pause(error)

    def _settle_soon(self, key_id: str, limit: RateLimitItem, tally: _Tally) -> None:
        if tally.settling is None:
            tally.settling = asyncio.get_running_loop().create_task(self._settle_later(key_id, limit, tally))

    async def _settle_later(self, key_id: str, limit: RateLimitItem, tally: _Tally) -> None:
        await asyncio.sleep(SETTLE_SECONDS)
        tally.settling = None
        await self._settle(key_id, limit, tally)

    async def _settle(self, key_id: str, limit: RateLimitItem, tally: _Tally) -> None:
        """Count the requests admitted here in one hit, then grant the next allowance from what is left."""
        # requests go on being admitted under the old allowance while the store answers
        admitted, tally.admitted = tally.admitted, 0
        try:
            if admitted and not await self.limiter.hit(limit, NAMESPACE, key_id, cost=admitted):
                # other processes took what was left meanwhile: these few went through uncounted
                tally.allowance = 0
                log.info(
                    "rate limit of key %s reached while %d requests were being counted", key_id, admitted
                )
                return
            left = (await self.limiter.get_window_stats(limit, NAMESPACE, key_id)).remaining
        except Exception as error:
            tally.allowance = 0
            self._pause(error)
            return
        # less what was admitted while the store answered: those are not in `left`
        tally.allowance = max(0, math.floor(left * LOCAL_SHARE) - tally.admitted)

    def _pause(self, error: Exception) -> None:
        self.paused_until = time.monotonic() + STORE_PAUSE_SECONDS
        log.warning(
            "rate-limit store unavailable (%s); requests allowed uncounted for %g s",
            error,
            STORE_PAUSE_SECONDS,
        )


@functools.lru_cache(maxsize=256)
def _parsed(text: str) -> RateLimitItem:
    """A rate limit as the settings hold it (checked there), read once rather than on each request."""
    return parse(text)
