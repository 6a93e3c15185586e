"""Every module outside tests holds one concern a reader can take in: at most 500 lines, no function over 80.

Read with `ast` (a function's lines run from its decorators to its last statement); benchmarks are
measuring scripts, held to the same rule.
"""

from __future__ import annotations

import ast
from pathlib import Path

from onepipe_harness.processes import ROOT

MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80
CHECKED = ("libs", "services", "pipelines", "scripts", "benchmarks")
SKIPPED = {"tests", ".venv", "node_modules", "__pycache__"}


def _modules() -> list[Path]:
    return sorted(
        path
        for folder in CHECKED
        for path in (ROOT / folder).rglob("*.py")
        if not SKIPPED.intersection(path.relative_to(ROOT).parts)
    )


def _function_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
    return (node.end_lineno or node.lineno) - first + 1


def too_long(path: Path, root: Path = ROOT) -> list[str]:
    """The module itself when it is over the limit, and each function or method that is, in words."""
    text = path.read_text(encoding="utf-8")
    where = path.relative_to(root).as_posix()
    found = []
    lines = len(text.splitlines())
    if lines > MAX_MODULE_LINES:
        found.append(f"{where}: {lines} lines (at most {MAX_MODULE_LINES})")
    for node in ast.walk(ast.parse(text, filename=where)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = _function_lines(node)
            if length > MAX_FUNCTION_LINES:
                limit = f"at most {MAX_FUNCTION_LINES}"
                found.append(f"{where}:{node.lineno} {node.name}: {length} lines ({limit})")
    return found


def test_the_check_reads_every_package() -> None:
    modules = {path.relative_to(ROOT).parts[0] for path in _modules()}
    assert modules == set(CHECKED)
    assert not [path for path in _modules() if "tests" in path.relative_to(ROOT).parts]


def test_the_check_names_a_long_module_and_a_long_function(tmp_path: Path) -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    text = "@staticmethod\ndef long():\n" + body + "\n" + "\n" * MAX_MODULE_LINES + "def short():\n    pass\n"
    sample = tmp_path / "sample.py"
    sample.write_text(text)
    assert too_long(sample, tmp_path) == [
        f"sample.py: {len(text.splitlines())} lines (at most {MAX_MODULE_LINES})",
        f"sample.py:2 long: {MAX_FUNCTION_LINES + 2} lines (at most {MAX_FUNCTION_LINES})",
    ]


def test_no_module_over_500_lines_nor_function_over_80() -> None:
    offenders = [problem for path in _modules() for problem in too_long(path)]
    assert offenders == []
