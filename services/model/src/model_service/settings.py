"""The model service's configuration, read from the environment (and .env)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every setting of the model service; env variables of the same name, upper case."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    pipeline: str = Field(
        "review_triage.pipeline:pipeline",
        description="Import path of the pipeline to serve: package.module:attribute.",
    )
    artifacts_dir: Path = Field(
        Path("artifacts"), description="Folder of trained artifacts; one subfolder per pipeline."
    )

    def artifacts_for(self, pipeline_name: str) -> Path:
        """The artifacts folder of one pipeline."""
        return self.artifacts_dir / pipeline_name
