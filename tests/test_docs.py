"""The docs match the code: the configuration table, .env.example, and the just recipes the README names."""

from __future__ import annotations

import re
import subprocess

from scripts.settings_docs import env_example, readme_with_table
from tests.processes import ROOT


def test_readme_configuration_table_is_the_one_the_settings_give() -> None:
    readme = (ROOT / "README.md").read_text()
    assert readme == readme_with_table(readme), "run `uv run python scripts/settings_docs.py`"


def test_env_example_lists_every_variable_with_its_default() -> None:
    assert (ROOT / ".env.example").read_text() == env_example(), (
        "run `uv run python scripts/settings_docs.py`"
    )


def test_every_just_recipe_the_readme_mentions_exists() -> None:
    summary = subprocess.run(
        ["just", "--summary"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    mentioned = set(re.findall(r"`just ([a-z-]+)", (ROOT / "README.md").read_text()))
    assert mentioned and mentioned <= set(summary.split()), (
        f"missing recipes: {mentioned - set(summary.split())}"
    )
