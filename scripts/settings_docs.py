"""Write the README's configuration table and .env.example from the services' settings classes.

`uv run python scripts/settings_docs.py` after changing a setting; tests/test_docs.py
fails when either file is out of date.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from batch_worker.settings import Settings as WorkerSettings
from gateway.settings import Settings as GatewaySettings
from model_service.settings import Settings as ModelSettings
from ui_service.settings import Settings as UiSettings

ROOT = Path(__file__).resolve().parent.parent
SETTINGS: dict[str, type[BaseSettings]] = {
    "model service": ModelSettings,
    "gateway": GatewaySettings,
    "worker": WorkerSettings,
    "ui": UiSettings,
}
# Streamlit reads its own settings; the UI's port and address are among them
STREAMLIT = {
    "STREAMLIT_SERVER_PORT": ("8501", "Port of the UI."),
    "STREAMLIT_SERVER_ADDRESS": ("127.0.0.1", "Address of the UI."),
}
TABLE_HEADER = "| variable | default | meaning | read by |"


def variables(settings: type[BaseSettings]) -> dict[str, tuple[str, str]]:
    """Each setting's env variable, with its default as text and its description."""
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
        found[str(variable).upper()] = (text, str(field.description))
    return found


def table_rows() -> list[str]:
    """The configuration table's rows: every variable once, with the services that read it."""
    rows: dict[str, tuple[str, str, list[str]]] = {}
    for service, settings in SETTINGS.items():
        for variable, (default, description) in variables(settings).items():
            rows.setdefault(variable, (default, description, []))[2].append(service)
    for variable, (default, description) in STREAMLIT.items():
        rows[variable] = (default, description, ["ui (Streamlit)"])
    return [f"| `{v}` | `{d}` | {desc} | {', '.join(who)} |" for v, (d, desc, who) in rows.items()]


def env_example() -> str:
    """.env.example: every variable with its default and a comment."""
    lines = [
        "# Every variable the services read, with its default. Copy to .env to change them.",
        "# Written by scripts/settings_docs.py from the settings classes.",
    ]
    seen: set[str] = set()
    for service, settings in SETTINGS.items():
        lines += ["", f"# --- {service} ---"]
        for variable, (default, description) in variables(settings).items():
            if variable not in seen:
                seen.add(variable)
                lines += [f"# {description}", f"{variable}={default}"]
    lines += ["", "# --- ui: Streamlit's own settings ---"]
    for variable, (default, description) in STREAMLIT.items():
        lines += [f"# {description}", f"{variable}={default}"]
    return "\n".join(lines) + "\n"


def readme_with_table(readme: str) -> str:
    """The README with its configuration table rows replaced."""
    lines = readme.split("\n")
    start = lines.index(TABLE_HEADER)
    end = start + 2
    while end < len(lines) and re.match(r"^\| `", lines[end]):
        end += 1
    return "\n".join([*lines[: start + 2], *table_rows(), *lines[end:]])


def main() -> None:
    """Rewrite both files."""
    readme = ROOT / "README.md"
    readme.write_text(readme_with_table(readme.read_text()))
    (ROOT / ".env.example").write_text(env_example())


if __name__ == "__main__":
    main()
