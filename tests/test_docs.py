"""The docs match the code: configuration tables and .env.example against the settings classes."""

from __future__ import annotations

import json
import re

import pytest
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from batch_worker.settings import Settings as WorkerSettings
from gateway.settings import Settings as GatewaySettings
from model_service.settings import Settings as ModelSettings
from tests.processes import ROOT
from ui_service.settings import Settings as UiSettings

SETTINGS: list[type[BaseSettings]] = [ModelSettings, GatewaySettings, WorkerSettings, UiSettings]


def _variables(settings: type[BaseSettings]) -> dict[str, str]:
    """Each setting's env variable and its default, as the docs write them."""
    prefix = settings.model_config.get("env_prefix", "")
    found = {}
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        variable = alias.choices[0] if isinstance(alias, AliasChoices) else f"{prefix}{name}"
        default = field.get_default(call_default_factory=True)
        if isinstance(default, bool):
            text = str(default).lower()
        elif isinstance(default, list):
            text = json.dumps(default)
        else:
            text = str(default)
        found[str(variable).upper()] = text
    return found


SHARED = {"MODEL_URL", "REDIS_URL", "STORAGE_URL", "GATEWAY_URL"}


def configuration_rows() -> list[str]:
    """The README's configuration table rows, as the settings classes say they should be."""
    rows: dict[str, tuple[str, str, list[str]]] = {}
    for settings in SETTINGS:
        service = {"model_service": "model service", "batch_worker": "worker", "ui_service": "ui"}.get(
            settings.__module__.split(".")[0], settings.__module__.split(".")[0]
        )
        for (variable, default), field in zip(
            _variables(settings).items(), settings.model_fields.values(), strict=True
        ):
            rows.setdefault(variable, (default, str(field.description), []))[2].append(service)
    return [f"| `{v}` | `{d}` | {desc} | {', '.join(who)} |" for v, (d, desc, who) in rows.items()]


def test_readme_configuration_rows_are_generated_from_the_settings() -> None:
    readme = (ROOT / "README.md").read_text().splitlines()
    table = [line for line in readme if re.match(r"^\| `[A-Z_]+` \| `", line)]
    assert table == configuration_rows()


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: s.__module__)
def test_readme_configuration_table_matches_the_settings(settings: type[BaseSettings]) -> None:
    readme = (ROOT / "README.md").read_text()
    for variable, default in _variables(settings).items():
        row = re.search(rf"^\| `{variable}` \| `([^`]*)` \|", readme, re.MULTILINE)
        assert row, f"README's configuration table has no row for {variable}"
        assert row.group(1) == default, (
            f"README says {variable} defaults to {row.group(1)}, the code {default}"
        )


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: s.__module__)
def test_env_example_lists_every_variable(settings: type[BaseSettings]) -> None:
    example = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    )
    for variable, default in _variables(settings).items():
        assert example.get(variable) == default, f".env.example: {variable} should be {default}"


def test_every_just_recipe_the_readme_mentions_exists() -> None:
    import subprocess

    recipes = set(
        subprocess.run(
            ["just", "--summary"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
    )
    mentioned = set(re.findall(r"`just ([a-z-]+)", (ROOT / "README.md").read_text()))
    assert mentioned and mentioned <= recipes, f"README mentions missing recipes: {mentioned - recipes}"
