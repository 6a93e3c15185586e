"""The gateway's configuration: env variables prefixed GATEWAY_, peers by URL (MODEL_URL, REDIS_URL)."""

from __future__ import annotations

from typing import Annotated, Literal

from limits import parse
from pydantic import AfterValidator, BaseModel, Field
from pydantic_settings import SettingsConfigDict

from onepipe.platform import settings as peers
from onepipe.platform.settings import ServiceSettings

Scope = Literal["predict", "debug", "jobs", "versions", "feedback", "cases:admin", "admin"]
SCOPES: tuple[Scope, ...] = ("predict", "debug", "jobs", "versions", "feedback", "cases:admin", "admin")


def _readable_limit(text: str) -> str:
    """`text` if the limits library reads it as a rate limit: checked at start, not on a request."""
    try:
        parse(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a rate limit like '120/minute' or '10/second'") from None
    return text


RateLimit = Annotated[str, AfterValidator(_readable_limit)]


class ApiKeyEntry(BaseModel):
    """One API key as configured: a name, the sha256 of the key (never the key), its scopes."""

    name: str = Field(min_length=1)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    scopes: list[Scope] = ["predict"]
    rate_limit: RateLimit | None = Field(
        None, description="Overrides GATEWAY_RATE_LIMIT for this key, e.g. '600/minute'."
    )


class Settings(ServiceSettings):
    """Every setting of the gateway; each is the env variable GATEWAY_<NAME> unless noted."""

    model_config = SettingsConfigDict(env_prefix="GATEWAY_")

    environment: Literal["development", "production"] = Field(
        "production",
        description="development allows the built-in local key; production refuses to start without keys.",
    )
    host: str = Field("127.0.0.1", description="Address to listen on (0.0.0.0 in a container).")
    port: int = Field(8000, ge=1, le=65535, description="Port to listen on.")
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description=(
            "Server processes sharing the port, each with its own copy of the app; "
            "more than one needs Redis (shared rate limits)."
        ),
    )
    model_url: str = peers.model_url()
    redis_url: str = peers.redis_url()
    storage_url: str = peers.storage_url()
    max_upload_bytes: int = Field(
        200 * 1024 * 1024, ge=1024, description="Largest batch-job upload in bytes (413 above)."
    )
    max_pending_cases: int = Field(
        1000,
        ge=1,
        description="Most reported cases one key may have waiting for `just cases pull` (429 above).",
    )
    api_keys: list[ApiKeyEntry] = Field(
        default_factory=list,
        description=(
            "JSON list of key entries, each {name, sha256, scopes}; "
            "`uv run gateway new-key` prints a GATEWAY_API_KEYS line to paste."
        ),
    )
    rate_limit: RateLimit = Field(
        "120/minute", description="Requests per key, e.g. '120/minute' or '10/second'."
    )
    max_inputs: int = Field(64, ge=1, description="Most inputs in one predict request (413 above).")
    max_body_bytes: int = Field(
        1024 * 1024, ge=1024, description="Largest request body in bytes (413 above)."
    )
    model_timeout: float = Field(30.0, gt=0, description="Seconds to wait for the model service per call.")
    model_attempts: int = Field(
        2, ge=1, le=10, description="Tries per call when the model service is unreachable."
    )
    queue_timeout: float = Field(
        10.0,
        gt=0,
        le=30,
        description=(
            "Seconds a job submission waits for the queue before it answers 503 and keeps nothing (a "
            "silent Redis fails sooner, at its 1 s socket timeouts; the embedded SQLite queue may wait "
            "seconds for its lock under load); keep it below WORKER_LEASE_SECONDS, after which the "
            "workers' sweep would run a queued job."
        ),
    )
    shadow_rate: float = Field(
        0.0,
        ge=0.0,
        le=1.0,
        description=(
            "Share of champion predict requests (those naming no version) sent again to the challenger after "
            "the caller is answered, and recorded (docs/versions.md#shadow-traffic); 0: none."
        ),
    )
    shadow_max_in_flight: int = Field(
        8,
        ge=1,
        description=(
            "Shadow calls under way at once per gateway process; a sampled request over it is skipped "
            "and counted."
        ),
    )
    shadow_batch_ms: float = Field(
        100.0,
        ge=0,
        le=10000,
        description=(
            "Milliseconds sampled requests gather before one shadow call carries them (up to "
            "GATEWAY_MAX_INPUTS inputs per call and flag set); 0: a call per request."
        ),
    )
    shadow_timeout: float = Field(
        10.0, gt=0, description="Seconds a shadow call waits for the challenger before it counts as failed."
    )
    shadow_record_max: int = Field(
        10000,
        ge=10,
        description="Shadow records kept (about; the oldest drop): a capped Redis stream, or per gateway "
        "process in files under the storage root without Redis.",
    )
    shadow_hours: int = Field(
        24, ge=1, description="Hours of shadow record files kept under the storage root (without Redis)."
    )
    cors_origins: list[str] = Field(default_factory=list, description="JSON list of origins allowed by CORS.")
    log_level: str = Field("INFO", description="Log level: DEBUG, INFO, WARNING or ERROR.")
