"""`just new-pipeline NAME`: scaffold a working pipeline package under pipelines/NAME.

The package has models, steps (one with two variants picked by a flag), training on a
bundled dataset, named examples and a test. pipelines/* are workspace members, so the
new folder is one; this script then locks and syncs the workspace to install it.
`--into DIR` scaffolds elsewhere without locking (the tests use it).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path
from string import Template

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = Path(__file__).with_name("pipeline_template")
NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


def scaffold(name: str, into: Path) -> Path:
    """Write the package for `name` under `into`; returns its folder. ValueError when it cannot."""
    if not NAME.match(name):
        raise ValueError(
            f"{name!r} is no pipeline name: use lowercase letters, digits and single hyphens, "
            "starting with a letter (e.g. ticket-router)"
        )
    package = name.replace("-", "_")
    folder = into / name
    if folder.exists():
        raise ValueError(f"{folder} already exists: choose another name or remove it")
    values = {"name": name, "package": package}
    files = {
        "pyproject.toml": "pyproject.toml.tmpl",
        f"src/{package}/__init__.py": None,
        f"src/{package}/pipeline.py": "pipeline.py.tmpl",
        f"src/{package}/data.json": "data.json.tmpl",
        "tests/test_pipeline.py": "test_pipeline.py.tmpl",
    }
    for relative, template in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        text = "" if template is None else Template((TEMPLATES / template).read_text()).substitute(values)
        path.write_text(text if template is not None else f'"""The {name} pipeline."""\n')
    return folder


def main() -> None:
    """Scaffold, then lock and sync the workspace so that every `just` recipe sees the package."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="the pipeline's name, e.g. ticket-router")
    parser.add_argument(
        "--into", type=Path, default=ROOT / "pipelines", help="where (not locked unless pipelines/)"
    )
    arguments = parser.parse_args()
    try:
        folder = scaffold(arguments.name, arguments.into)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    package = arguments.name.replace("-", "_")
    print(f"created {folder}")
    if arguments.into.resolve() == (ROOT / "pipelines").resolve():
        subprocess.run(["uv", "lock"], cwd=ROOT, check=True)
        subprocess.run(["uv", "sync", "--frozen", "--all-packages"], cwd=ROOT, check=True)
        print(
            "next:\n"
            f"  uv run pytest {folder.relative_to(ROOT)}/tests\n"
            f"  MODEL_PIPELINE={package}.pipeline:pipeline just train\n"
            f"  MODEL_PIPELINE={package}.pipeline:pipeline just up\n"
            f"  docker compose: MODEL_PIPELINE={package}.pipeline:pipeline and "
            f"PIPELINE_DIR=pipelines/{arguments.name} in .env"
        )


if __name__ == "__main__":
    main()
