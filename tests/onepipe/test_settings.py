"""Settings as every entry point reads them: empty means the default, a malformed value is one line.

And `gateway new-key` prints a GATEWAY_API_KEYS line that .env, a shell and just all read back.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import streamlit as st
from pydantic_settings import BaseSettings
from streamlit.testing.v1 import AppTest

from gateway.auth import hash_key
from gateway.settings import ApiKeyEntry
from gateway.settings import Settings as GatewaySettings
from onepipe_harness.processes import ROOT
from scripts.settings_docs import SETTINGS, variables

UV_RUN = ["uv", "run", "--frozen", "--no-sync"]
# one entry exactly as `new-key` printed it before it printed a whole line: no list brackets
BARE_ENTRY = json.dumps({"name": "app", "sha256": "0" * 64, "scopes": ["predict"]})


def _run(command: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*UV_RUN, *command],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize(
    ("keys", "reason"),
    [
        (BARE_ENTRY, "GATEWAY_API_KEYS: Input should be a valid list."),
        (f"[{BARE_ENTRY}], {BARE_ENTRY}", "GATEWAY_API_KEYS: not valid JSON (Extra data at character "),
        ('[{"name": "app", "scopes": ["predict"]}]', "GATEWAY_API_KEYS[0].sha256: Field required."),
        # read at start, not on the key's first request (which it made a 500)
        (
            json.dumps([{"name": "app", "sha256": "0" * 64, "rate_limit": "lots"}]),
            "GATEWAY_API_KEYS[0].rate_limit: Value error, 'lots' is not a rate limit like '120/minute'",
        ),
    ],
)
def test_gateway_serve_names_a_malformed_api_keys_value_in_one_line(keys: str, reason: str) -> None:
    done = _run(["gateway", "serve"], GATEWAY_API_KEYS=keys, GATEWAY_ENVIRONMENT="production")
    assert done.returncode == 1, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"error: {reason}"), lines[0]
    assert "Expected: JSON list of key entries" in lines[0]
    assert "`uv run gateway new-key` prints a GATEWAY_API_KEYS line" in lines[0]
    assert lines[0].endswith("Fix it in the environment or in .env.")


@pytest.mark.parametrize(
    ("command", "variable", "value", "reason"),
    [
        (["model-service", "serve"], "MODEL_PORT", "eighty", "Input should be a valid integer"),
        (
            ["model-service", "train", "--if-needed"],
            "MODEL_BATCHING",
            "maybe",
            "Input should be a valid boolean",
        ),
        (
            ["celery", "-A", "batch_worker.celery_app", "worker", "--queues", "jobs"],
            "WORKER_CONCURRENCY",
            "0",
            "Input should be greater than or equal to 1",
        ),
        (["python", "-m", "scripts.stack_env"], "UI_TIMEOUT", "soon", "Input should be a valid number"),
        (["gateway", "serve"], "GATEWAY_RATE_LIMIT", "fast", "Value error, 'fast' is not a rate limit like"),
    ],
)
def test_every_entry_point_names_a_malformed_setting_in_one_line(
    command: list[str], variable: str, value: str, reason: str
) -> None:
    done = _run(command, **{variable: value})
    assert done.returncode == 1, done.stderr
    assert done.stderr.splitlines() == [done.stderr.strip()], done.stderr
    assert done.stderr.startswith(f"error: {variable}: {reason}"), done.stderr
    assert done.stdout == ""


def test_the_ui_shows_a_malformed_setting_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UI_TIMEOUT", "soon")
    st.cache_resource.clear()
    at = AppTest.from_file(
        str(ROOT / "services" / "ui" / "src" / "ui_service" / "app.py"), default_timeout=60
    )
    at.run()
    assert not at.exception, at.exception
    assert [e.value for e in at.error] == [
        "error: UI_TIMEOUT: Input should be a valid number, unable to parse string as a number. "
        "Expected: Seconds to wait for the model service or the gateway. "
        "Fix it in the environment or in .env."
    ]


@pytest.mark.parametrize("settings", list(SETTINGS.values()), ids=list(SETTINGS))
def test_an_empty_value_means_the_default(
    settings: type[BaseSettings], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env here
    for variable in variables(settings):
        monkeypatch.setenv(variable, "")
    defaults = {
        name: field.get_default(call_default_factory=True) for name, field in settings.model_fields.items()
    }
    assert settings().model_dump() == defaults


def test_new_key_prints_a_line_that_env_files_shells_and_just_read_back(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    done = _run(["gateway", "new-key", "--name", "o'brien's app", "--scope", "predict", "--scope", "jobs"])
    assert done.returncode == 0, done.stderr
    key_line, env_line, hint = done.stdout.splitlines()
    assert key_line.startswith("key (shown once): op_")
    key = key_line.removeprefix("key (shown once): ")
    assert env_line.startswith("GATEWAY_API_KEYS='[{") and env_line.endswith("}]'")
    assert hint.startswith("# several keys: one list")
    expected = [ApiKeyEntry(name="o'brien's app", sha256=hash_key(key), scopes=["predict", "jobs"])]

    env_file = tmp_path / "keys.env"
    env_file.write_text(env_line + "\n" + hint + "\n")
    monkeypatch.delenv("GATEWAY_API_KEYS", raising=False)
    assert GatewaySettings(_env_file=env_file).api_keys == expected

    shell = subprocess.run(
        ["bash", "-c", f'. {env_file} && printf %s "$GATEWAY_API_KEYS"'],
        capture_output=True,
        text=True,
        check=True,
    )
    (tmp_path / "Justfile").write_text("set dotenv-load := true\nshow:\n    @printenv GATEWAY_API_KEYS\n")
    just = subprocess.run(
        ["just", "--dotenv-path", str(env_file), "show"],
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "GATEWAY_API_KEYS"},
        capture_output=True,
        text=True,
        check=True,
    )
    for read_back in (shell.stdout, just.stdout.rstrip("\n")):
        assert [ApiKeyEntry.model_validate(e) for e in json.loads(read_back)] == expected
