"""What every service's settings share: how they are read, their peers, and one-line errors.

Each service has one pydantic-settings class, a `ServiceSettings` with its own prefix;
the peer URLs are shared names (MODEL_URL, REDIS_URL, STORAGE_URL, GATEWAY_URL) that
compose sets to service names and local runs to 127.0.0.1. Precedence, the same under
`just up` and for a bare command: the process environment, then `.env`, then the
defaults; an empty value means the default. Entry points read them with
`load_settings`, so a malformed value is one line on stderr, not a traceback.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any, TypeVar

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

S = TypeVar("S", bound=BaseSettings)

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


class ServiceSettings(BaseSettings):
    """The base of every service's settings class; each subclass sets its `env_prefix`."""

    # The environment wins over `.env`, which wins over the defaults. An empty value means
    # the default: `.env.example` leaves the secrets empty, and `VAR=` in a shell or
    # compose file should not be a parse error.
    model_config = SettingsConfigDict(env_file=".env", env_ignore_empty=True, extra="ignore")


class InvalidSettingsError(ValueError):
    """A setting's value is malformed; the message is one line: the variable, what is wrong, what to do."""


def env_variable(settings: type[BaseSettings], field: str) -> str:
    """The env variable a settings field is read from (its alias, else the prefix and its name)."""
    alias = settings.model_fields[field].validation_alias
    if isinstance(alias, AliasChoices):
        return str(alias.choices[0]).upper()
    return f"{settings.model_config.get('env_prefix', '')}{field}".upper()


def read_settings(settings: type[S]) -> S:
    """The settings from the environment and `.env`, or an `InvalidSettingsError` naming what is wrong."""
    try:
        return settings()
    except ValidationError as error:
        problems = [
            (str(e["loc"][0]) if e["loc"] else "", "".join(_path(part) for part in e["loc"][1:]), e["msg"])
            for e in error.errors(include_url=False)
        ]
    except ValueError as error:  # pydantic-settings' SettingsError: a list or object field is not JSON
        found = re.search(r'field "(\w+)"', str(error))
        cause = error.__cause__
        reason = (
            f"not valid JSON ({cause.msg} at character {cause.pos})"
            if isinstance(cause, json.JSONDecodeError)
            else str(cause or error)
        )
        problems = [(found.group(1) if found else "", "", reason)]
    raise InvalidSettingsError(_one_line(settings, problems)) from None


def load_settings(settings: type[S]) -> S:
    """For entry points: the settings, or one line on stderr and exit status 1 when a value is malformed."""
    try:
        return read_settings(settings)
    except InvalidSettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(1) from None


def _one_line(settings: type[BaseSettings], problems: list[tuple[str, str, str]]) -> str:
    """Each variable at fault with its problems and what it expects, then what to do."""
    by_variable: dict[str, list[str]] = {}
    expected: dict[str, str] = {}
    for name, path, reason in problems:
        field = _field(settings, name)
        variable = env_variable(settings, field) if field else settings.__name__
        by_variable.setdefault(variable, []).append(f"{variable}{path}: {reason}")
        if field and settings.model_fields[field].description:
            expected[variable] = str(settings.model_fields[field].description).rstrip(".")
    parts = [
        "; ".join(found) + "." + (f" Expected: {expected[variable]}." if variable in expected else "")
        for variable, found in by_variable.items()
    ]
    fix = " Fix it" if len(by_variable) == 1 else " Fix them"
    return re.sub(r"\s*\n\s*", " ", " ".join(parts)) + fix + " in the environment or in .env."


def _field(settings: type[BaseSettings], name: str) -> str | None:
    """The field an error location names: by its name, or by its env alias (MODEL_URL and the like)."""
    if name in settings.model_fields:
        return name
    for field, info in settings.model_fields.items():
        alias = info.validation_alias
        if isinstance(alias, AliasChoices) and name.upper() in (str(c).upper() for c in alias.choices):
            return field
    return None


def _path(part: int | str) -> str:
    return f"[{part}]" if isinstance(part, int) else f".{part}"
