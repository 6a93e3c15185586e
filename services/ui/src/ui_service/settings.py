"""The UI's configuration: env variables prefixed UI_, peers MODEL_URL and GATEWAY_URL."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from onepipe.platform import settings as peers
from onepipe.platform.settings import DEVELOPMENT_KEY, ServiceSettings


class Settings(ServiceSettings):
    """Every setting of the UI; each is the env variable UI_<NAME> unless noted."""

    model_config = SettingsConfigDict(env_prefix="UI_")

    model_url: str = peers.model_url()
    gateway_url: str = peers.gateway_url()
    api_key: str = Field(
        DEVELOPMENT_KEY,
        description="API key the UI uses at the gateway for batch jobs and reported cases (jobs and "
        "feedback scopes; versions too for a job on a chosen version and the Versions page's shadow "
        "traffic).",
    )
    timeout: float = Field(30.0, gt=0, description="Seconds to wait for the model service or the gateway.")
    poll_seconds: float = Field(1.0, gt=0, description="Seconds between progress checks of a running job.")
