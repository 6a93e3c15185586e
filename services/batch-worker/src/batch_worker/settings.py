"""The worker's settings: env variables prefixed WORKER_; peers MODEL_URL, REDIS_URL, STORAGE_URL."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from onepipe.platform import settings as peers
from onepipe.platform.settings import ServiceSettings


class Settings(ServiceSettings):
    """Every setting of the batch worker; each is the env variable WORKER_<NAME> unless noted."""

    model_config = SettingsConfigDict(env_prefix="WORKER_")

    model_url: str = peers.model_url()
    redis_url: str = peers.redis_url()
    storage_url: str = peers.storage_url()
    chunk_size: int = Field(
        100,
        ge=1,
        le=1000,
        description="Rows per chunk file, and the most per model-service call (fewer when their bodies "
        "would pass WORKER_MODEL_MAX_BODY_BYTES).",
    )
    model_max_body_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024,
        description="Largest request body the worker sends the model service (its MODEL_MAX_BODY_BYTES); "
        "a row alone over it fails with its size.",
    )
    calls_in_flight: int = Field(
        2,
        ge=1,
        le=16,
        description="Chunks of one job at the model service at once, while the worker writes the oldest.",
    )
    model_timeout: float = Field(120.0, gt=0, description="Seconds to wait for the model service per chunk.")
    model_patience: float = Field(
        300.0,
        gt=0,
        description="Seconds a model-service outage may last before the job fails (it can be resumed).",
    )
    task_budget: float = Field(
        20.0, gt=0, description="Seconds one task run works before it hands the job to a fresh task."
    )
    lease_seconds: float = Field(
        45.0, gt=0, description="How long a worker's hold on a job lasts without renewal."
    )
    visibility_timeout: int = Field(
        120, ge=1, description="Seconds before a task of a dead worker is given to another (Redis broker)."
    )
    sweep_interval: float = Field(
        15.0,
        gt=0,
        description="Seconds between the worker's sweeps for jobs nobody is answerable for (queued again).",
    )
    check_interval: float = Field(
        3600.0,
        ge=0,
        description="Seconds between the scheduled checks of champion and challenger against the edge-case "
        "library (sent by the beat process); 0 turns them off.",
    )
    concurrency: int = Field(1, ge=1, description="Jobs one worker process runs at once.")
    log_level: str = Field("INFO", description="Log level: DEBUG, INFO, WARNING or ERROR.")
