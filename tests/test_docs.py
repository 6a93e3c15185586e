"""The docs match the code: configuration tables and .env.example against the settings classes."""

from __future__ import annotations

import re

import pytest
from pydantic_settings import BaseSettings

from model_service.settings import Settings as ModelSettings
from tests.conftest import ROOT

SETTINGS: list[type[BaseSettings]] = [ModelSettings]


def _variables(settings: type[BaseSettings]) -> dict[str, str]:
    prefix = settings.model_config.get("env_prefix", "")
    return {
        f"{prefix}{name}".upper(): str(field.default).lower()
        if isinstance(field.default, bool)
        else str(field.default)
        for name, field in settings.model_fields.items()
    }


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
