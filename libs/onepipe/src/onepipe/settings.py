"""Settings fields every service declares the same way: its peers, found by env URL.

Each service has one pydantic-settings class with its own prefix; the peer URLs
are shared names (MODEL_URL, REDIS_URL, STORAGE_URL, GATEWAY_URL) that compose
sets to service names and local runs to 127.0.0.1.
"""

from __future__ import annotations

from typing import Any

from pydantic import AliasChoices, Field

# The gateway's built-in key: it works only with GATEWAY_ENVIRONMENT=development (`just up`),
# and the UI and `just batch` use it by default there.
DEVELOPMENT_KEY = "onepipe-local-development-key"


def _peer(env: str, default: str, description: str) -> Any:
    return Field(default, validation_alias=AliasChoices(env), description=f"{description} (env {env}).")


def model_url() -> Any:
    """MODEL_URL: the model service."""
    return _peer("MODEL_URL", "http://127.0.0.1:8001", "Base URL of the model service")


def gateway_url() -> Any:
    """GATEWAY_URL: the public gateway."""
    return _peer("GATEWAY_URL", "http://127.0.0.1:8000", "Base URL of the gateway")


def redis_url() -> Any:
    """REDIS_URL: the Celery broker and rate-limit counters."""
    return _peer(
        "REDIS_URL",
        "redis://127.0.0.1:6379/0",
        "Job queue and rate-limit counters: redis://..., or sqla+sqlite:///file for the embedded mode",
    )


def uses_redis(url: str) -> bool:
    """Whether a broker URL is Redis (else: the embedded SQLite queue, and counters in the process)."""
    return url.startswith(("redis://", "rediss://"))


def storage_url() -> Any:
    """STORAGE_URL: the root of job files, shared by the gateway and the workers."""
    return _peer(
        "STORAGE_URL", "data/storage", "Root of job files: a folder or an fsspec URL like s3://bucket/jobs"
    )
