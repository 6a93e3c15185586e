"""The docs match the code: the configuration table, .env.example, and the just recipes the README names."""

from __future__ import annotations

import re
import subprocess

import pytest
from pydantic_settings import BaseSettings

from onepipe_harness.processes import ROOT
from scripts.settings_docs import SECRETS, SETTINGS, env_example, readme_with_table


def test_readme_configuration_table_is_the_one_the_settings_give() -> None:
    readme = (ROOT / "README.md").read_text()
    assert readme == readme_with_table(readme), "run `uv run python scripts/settings_docs.py`"


def test_env_example_lists_every_variable_with_its_default() -> None:
    assert (ROOT / ".env.example").read_text() == env_example(), (
        "run `uv run python scripts/settings_docs.py`"
    )


@pytest.mark.parametrize("settings", list(SETTINGS.values()), ids=list(SETTINGS))
def test_copying_env_example_to_env_changes_no_setting(settings: type[BaseSettings]) -> None:
    example = settings(_env_file=ROOT / ".env.example")
    assert example.model_dump() == settings(_env_file=None).model_dump()


def test_env_example_sets_only_the_secrets_and_leaves_them_empty() -> None:
    lines = (ROOT / ".env.example").read_text().splitlines()
    assigned = [line for line in lines if line and not line.startswith("#")]
    assert assigned == [f"{name}=" for name in SECRETS]  # compose refuses both while they are empty
    assert "#   uv run gateway new-key --name app --scope predict --scope jobs" in lines


def test_every_just_recipe_the_readme_mentions_exists() -> None:
    summary = subprocess.run(
        ["just", "--summary"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    mentioned = set(re.findall(r"`just ([a-z-]+)", (ROOT / "README.md").read_text()))
    assert mentioned and mentioned <= set(summary.split()), (
        f"missing recipes: {mentioned - set(summary.split())}"
    )


def test_every_test_the_docs_name_exists() -> None:
    """A test named in the docs (`tests/<file>.py::<name>`) is a test function of that file."""
    named = {
        (path, test)
        for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
        for path, test in re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", doc.read_text())
    }
    assert named, "docs/reliability.md names its tests"
    missing = [
        f"{path}::{test}"
        for path, test in sorted(named)
        if not re.search(rf"^(async )?def {test}\(", (ROOT / path).read_text(), re.MULTILINE)
    ]
    assert not missing, missing


def test_every_test_path_the_docs_and_recipes_name_exists() -> None:
    """A path under tests/ named in the README, the docs, the Justfile or a workflow is there."""
    files = [ROOT / "README.md", ROOT / "Justfile", *sorted((ROOT / "docs").glob("*.md"))]
    files += sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    named = {
        path.rstrip("/.")
        for file in files
        for path in re.findall(r"(?<![\w/.-])tests/[\w/.-]*", file.read_text())
    }
    assert "tests/stack/test_fuzz.py" in named, "the paths are found: the fuzz recipe names this one"
    missing = [path for path in sorted(named) if not (ROOT / path).exists()]
    assert not missing, missing
