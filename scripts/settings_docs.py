"""Write the README's configuration table and .env.example from the services' settings classes.

`uv run python scripts/settings_docs.py` after changing a setting; tests/stack/test_docs.py
fails when either file is out of date.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic_settings import BaseSettings

from batch_worker.settings import Settings as WorkerSettings
from gateway.settings import Settings as GatewaySettings
from model_service.settings import Settings as ModelSettings
from onepipe.platform.settings import env_variable
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
    "STREAMLIT_SERVER_ADDRESS": (
        "127.0.0.1",
        "Address the UI listens on (`just up` defaults it to 127.0.0.1; 0.0.0.0 in a container).",
    ),
}
# Read by compose.yaml alone (no service reads them)
COMPOSE = {
    "UI_BIND": (
        "127.0.0.1",
        "Host address the Docker stack publishes the UI on: it has no login, so loopback unless you "
        "put a login in front (docs/deploy.md); 0.0.0.0 publishes it on every interface.",
    ),
    "MLFLOW_BIND": (
        "127.0.0.1",
        "Host address the Docker stack publishes the registry's web UI (the mlflow service) on: it has no "
        "login and can move the champion, so loopback unless you put a login in front (docs/deploy.md).",
    ),
    "MLFLOW_PORT": ("5000", "Host port of the registry's web UI (the mlflow service) in the Docker stack."),
}
# The secrets the Docker stack needs: .env.example leaves them empty (compose refuses an empty
# one; the services read empty as the default, so `just up` in development still works)
SECRETS = {
    "GATEWAY_API_KEYS": [
        "Required by the Docker stack. Make a key with",
        "  uv run gateway new-key --name app --scope predict --scope jobs",
        "and paste the GATEWAY_API_KEYS='[...]' line it prints; several keys (the ui's too) go in one list.",
    ],
    "UI_API_KEY": [
        "Required by the Docker stack: a key with the jobs, feedback and versions scopes, the key line of",
        "  uv run gateway new-key --name ui --scope jobs --scope feedback --scope versions",
        "(its entry goes into the GATEWAY_API_KEYS list above).",
    ],
}
TABLE_HEADER = "| variable | default | meaning | read by |"


def variables(settings: type[BaseSettings]) -> dict[str, tuple[str, str]]:
    """Each setting's env variable, with its default as text and its description."""
    found = {}
    for name, field in settings.model_fields.items():
        default = field.get_default(call_default_factory=True)
        if isinstance(default, bool):
            text = str(default).lower()
        elif isinstance(default, list):
            text = json.dumps(default)
        else:
            text = str(default)
        found[env_variable(settings, name)] = (text, str(field.description))
    return found


def table_rows() -> list[str]:
    """The configuration table's rows: every variable once, with the services that read it."""
    rows: dict[str, tuple[str, str, list[str]]] = {}
    for service, settings in SETTINGS.items():
        for variable, (default, description) in variables(settings).items():
            rows.setdefault(variable, (default, description, []))[2].append(service)
    for variable, (default, description) in STREAMLIT.items():
        rows[variable] = (default, description, ["ui (Streamlit)"])
    for variable, (default, description) in COMPOSE.items():
        rows[variable] = (default, description, ["compose.yaml"])
    return [f"| `{v}` | `{d}` | {desc} | {', '.join(who)} |" for v, (d, desc, who) in rows.items()]


def env_example() -> str:
    """.env.example: every variable commented out with its default, and the secrets empty, to be filled in."""
    lines = [
        "# Every variable the services read. Copying this file to .env changes nothing: each setting",
        "# is commented out with its default, and an empty value means the default. Uncomment what",
        "# you change; the shell's environment wins over .env, which wins over the defaults.",
        "# The Docker stack needs the two secrets left empty here: docker compose refuses to start",
        "# while GATEWAY_API_KEYS or UI_API_KEY is empty.",
        "# Written by scripts/settings_docs.py from the settings classes.",
    ]
    seen: set[str] = set()
    for service, settings in SETTINGS.items():
        lines += ["", f"# --- {service} ---"]
        for variable, (default, description) in variables(settings).items():
            if variable in seen:
                continue
            seen.add(variable)
            if variable in SECRETS:
                lines += [f"# {description}", *(f"# {line}" for line in SECRETS[variable]), f"{variable}="]
            else:
                lines += [f"# {description}", f"# {variable}={default}"]
    lines += ["", "# --- ui: Streamlit's own settings ---"]
    for variable, (default, description) in STREAMLIT.items():
        lines += [f"# {description}", f"# {variable}={default}"]
    lines += ["", "# --- the Docker stack (compose.yaml) ---"]
    for variable, (default, description) in COMPOSE.items():
        lines += [f"# {description}", f"# {variable}={default}"]
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
