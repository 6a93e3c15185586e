"""The library's two audiences apart: a pipeline imports the author's API only, which imports no platform."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from onepipe_harness.processes import ROOT

LIBRARY = ROOT / "libs" / "onepipe" / "src" / "onepipe"
# the author's API (docs/pipeline-contract.md, "What a pipeline imports")
AUTHOR_MODULES = {
    "onepipe",
    *(f"onepipe.{path.stem}" for path in LIBRARY.glob("*.py") if path.stem != "__init__"),
}
PIPELINE_SOURCES = [
    *sorted((ROOT / "pipelines").glob("*/src/**/*.py")),
    *sorted((ROOT / "scripts" / "pipeline_template").glob("*.py.tmpl")),
    ROOT / "tests" / "tiny_pipeline" / "__init__.py",
    ROOT / "tests" / "rich_pipeline" / "__init__.py",
]


def _onepipe_imports(path: Path) -> set[str]:
    """The onepipe modules a file imports (`from onepipe.x import y` names onepipe.x)."""
    text = path.read_text()
    if path.suffix == ".tmpl":  # new-pipeline's templates: $name placeholders stand for identifiers
        text = re.sub(r"\$\{?(\w+)\}?", r"\1", text)
    tree = ast.parse(text)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "onepipe":
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "onepipe"}
    return found


def test_the_author_modules_are_the_library_top_level_and_few() -> None:
    assert {"onepipe", "onepipe.contract", "onepipe.recorder", "onepipe.trace"} <= AUTHOR_MODULES
    lines = sum(len(path.read_text().splitlines()) for path in LIBRARY.glob("*.py"))
    assert lines < 1000, f"the author's API is {lines} lines; keep it small (docs/pipeline-contract.md)"


@pytest.mark.parametrize("path", PIPELINE_SOURCES, ids=lambda path: str(path.relative_to(ROOT)))
def test_a_pipeline_imports_only_the_authors_api(path: Path) -> None:
    beyond = _onepipe_imports(path) - AUTHOR_MODULES
    assert not beyond, (
        f"{path.relative_to(ROOT)} imports {sorted(beyond)}: a pipeline uses the author's API only"
    )


@pytest.mark.parametrize("path", sorted(LIBRARY.glob("*.py")), ids=lambda path: path.name)
def test_the_authors_api_imports_no_platform_module(path: Path) -> None:
    beyond = {module for module in _onepipe_imports(path) if module.startswith("onepipe.platform")}
    assert not beyond, f"onepipe/{path.name} imports {sorted(beyond)}: the layering goes one way"
