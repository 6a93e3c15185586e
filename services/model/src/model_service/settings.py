"""The model service's configuration: env variables prefixed MODEL_ (then .env, then the defaults)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from onepipe.contract import cpu_threads
from onepipe.platform.settings import ServiceSettings


class Settings(ServiceSettings):
    """Every setting of the model service; each is the env variable MODEL_<NAME>."""

    model_config = SettingsConfigDict(env_prefix="MODEL_")

    pipeline: str = Field(
        "review_triage.pipeline:pipeline",
        description="Import path of the pipeline to serve: package.module:attribute.",
    )
    artifacts_dir: Path = Field(
        Path("artifacts"), description="Folder of trained artifacts, one subfolder per pipeline."
    )
    registry: str = Field(
        "data/registry",
        description=(
            "Where versions are registered: a folder for the embedded MLflow registry (an SQLite store and "
            "the artifacts inside), an MLflow server's URL (http://mlflow:5000), or none to serve the "
            "artifacts folder alone."
        ),
    )
    registry_poll_seconds: float = Field(
        2.0,
        gt=0,
        le=300,
        description="How often each process reads the aliases: a promotion is served within it.",
    )
    versions_cache: Path = Field(
        Path("data/versions"), description="Folder where the versions fetched from the registry are kept."
    )
    max_versions: int = Field(
        3,
        ge=2,
        le=16,
        description=(
            "Versions a process keeps loaded at most: champion, challenger, and the ones asked for by "
            "version (a pinned job's, the previous champion), least recently asked let go first."
        ),
    )
    cases_dir: Path = Field(
        Path("cases"),
        description="Folder of the edge-case libraries (<pipeline>.jsonl) that a promotion and the "
        "scheduled checks replay.",
    )
    host: str = Field("127.0.0.1", description="Address to listen on (0.0.0.0 in a container).")
    port: int = Field(8001, ge=1, le=65535, description="Port to listen on.")
    workers: int = Field(
        2,
        ge=1,
        le=64,
        description=(
            "Server processes sharing the port, each with its own models (memory x workers): one runs "
            "the pipeline while another reads requests."
        ),
    )
    threads: int = Field(
        0,
        ge=0,
        le=256,
        description=(
            "CPU threads each process gives a model that can use several (the example's MiniLM); 0: the "
            "cores divided among the processes (at least 1), so that their models do not contend."
        ),
    )
    max_inputs: int = Field(256, ge=1, description="Most inputs in one predict request (413 above).")
    max_body_bytes: int = Field(
        4 * 1024 * 1024, ge=1024, description="Largest request body in bytes (413 above)."
    )
    batching: bool = Field(True, description="Gather concurrent requests into one pipeline call.")
    batch_max_size: int = Field(32, ge=1, description="Inputs at which a micro-batch is run without waiting.")
    batch_max_wait_ms: float = Field(
        2.0,
        ge=0,
        le=1000,
        description="Longest wait for a micro-batch to fill, under load only (none when idle).",
    )
    log_level: str = Field("INFO", description="Log level: DEBUG, INFO, WARNING or ERROR.")

    def threads_per_process(self) -> int:
        """The threads each process's models get: MODEL_THREADS, or the cores shared by the processes."""
        return self.threads or max(1, cpu_threads() // self.workers)

    def artifacts_for(self, pipeline_name: str) -> Path:
        """The artifacts folder of one pipeline."""
        return self.artifacts_dir / pipeline_name
