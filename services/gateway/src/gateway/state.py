"""What every request shares, built once per app from its settings: the services the routes use."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

from gateway.auth import Access, ConfigurationError, KeyRing
from gateway.idempotency import IdempotencyStore
from gateway.jobs import JobService
from gateway.queue import Enqueuer, producer
from gateway.ratelimit import RateLimiter
from gateway.service import Gateway
from gateway.settings import Settings
from onepipe.platform.jobs.storage import CaseStore, CheckStore, JobStore
from onepipe.platform.settings import uses_redis


@dataclass(frozen=True)
class Services:
    """The gateway's parts, one each per app; routes reach them through `gateway.deps`."""

    settings: Settings
    access: Access
    gateway: Gateway
    enqueue: Enqueuer
    jobs: JobService
    cases: CaseStore
    checks: CheckStore
    claims: IdempotencyStore


def build_services(settings: Settings) -> Services:
    """The parts for these settings; refuses unsafe key or worker configuration (ConfigurationError)."""
    keys = KeyRing(settings.api_keys, settings.environment)
    # without Redis (the embedded mode) the counters live in this process
    counters = settings.redis_url if uses_redis(settings.redis_url) else "memory://"
    if settings.workers > 1 and counters == "memory://":
        raise ConfigurationError(
            f"GATEWAY_WORKERS={settings.workers} needs Redis (REDIS_URL): without it each worker would "
            "count rate limits on its own; set REDIS_URL, or GATEWAY_WORKERS=1"
        )
    access = Access(keys, RateLimiter(counters, settings.rate_limit))
    gateway = Gateway(settings)
    # every Redis call bounded, the whole enqueue within GATEWAY_QUEUE_TIMEOUT (a silent Redis: 503)
    enqueue = Enqueuer(producer(settings.redis_url, settings.queue_timeout), settings.queue_timeout)
    jobs = JobService(JobStore(settings.storage_url), enqueue, settings.max_upload_bytes)
    return Services(
        settings=settings,
        access=access,
        gateway=gateway,
        enqueue=enqueue,
        jobs=jobs,
        cases=CaseStore(settings.storage_url),
        checks=CheckStore(settings.storage_url),
        claims=IdempotencyStore(jobs.store),
    )


def services_of(app: FastAPI) -> Services:
    """The app's services (set by create_app)."""
    found: Services = app.state.services
    return found
