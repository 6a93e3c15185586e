"""`just up`: the whole local stack from the Procfile, on Redis or on the embedded default.

Each run prints its URLs and mode, serves a predict and a batch job end to end, and
stops entirely on Ctrl-C. Settings come from the shell's environment, then the dotenv
file, then the defaults, and what `just up` prints is where things listen.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from onepipe import LoadedPipeline
from onepipe.platform.settings import DEVELOPMENT_KEY
from onepipe_harness.processes import OUTPUT, ROOT, RedisServer, free_port, listening_addresses

KEY = {"X-API-Key": DEVELOPMENT_KEY}


def _wait_for(url: str, deadline: float) -> httpx.Response | None:
    while time.monotonic() < deadline:
        try:
            answer = httpx.get(url, timeout=2)
            if answer.status_code == 200:
                return answer
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    return None


@pytest.mark.parametrize(
    ("mode", "redis_url", "printed_mode"),
    [
        ("redis", "{redis}", "queue          Redis at {redis}"),
        ("embedded", "redis://127.0.0.1:{dead}/0", "queue          embedded: no Redis at"),
    ],
)
def test_just_up_serves_the_stack_and_ctrl_c_stops_everything(
    example_pipeline: LoadedPipeline[Any, Any, Any],
    redis_server: RedisServer,
    tmp_path: Path,
    mode: str,
    redis_url: str,
    printed_mode: str,
) -> None:
    port, gateway_port, ui_port, dotenv_gateway_port = free_port(), free_port(), free_port(), free_port()
    OUTPUT.mkdir(exist_ok=True)
    log_path = OUTPUT / f"just-up-{mode}.log"
    gateway = f"http://127.0.0.1:{gateway_port}"
    # a .env made by `cp .env.example .env` (empty secrets), plus a port the shell overrides
    # and one only the file sets
    dotenv = tmp_path / "dotenv"
    dotenv.write_text(
        (ROOT / ".env.example").read_text()
        + f"GATEWAY_PORT={dotenv_gateway_port}\nSTREAMLIT_SERVER_PORT={ui_port}\n"
    )
    shell = {k: v for k, v in os.environ.items() if not k.startswith(("STREAMLIT_", "GATEWAY_", "UI_"))}
    with log_path.open("wb") as log:
        up = subprocess.Popen(
            ["just", "--dotenv-path", str(dotenv), "up"],
            cwd=ROOT,
            env={
                **shell,
                "MODEL_PORT": str(port),
                "GATEWAY_PORT": str(gateway_port),
                "REDIS_URL": redis_url.format(dead=free_port(), redis=redis_server.url(9)),
                "STORAGE_URL": str(tmp_path / "storage"),
                "WORKER_CHECK_INTERVAL": "2",  # the beat's scheduled checks, soon enough to see one
            },
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, like a terminal's
        )
        try:
            deadline = time.monotonic() + 180
            ready = _wait_for(f"{gateway}/readyz", deadline)
            assert ready is not None and ready.json()["version"] == example_pipeline.version, (
                log_path.read_text()
            )
            answer = httpx.post(f"{gateway}/v1/predict", json={"inputs": {"text": "Great!"}}, headers=KEY)
            assert answer.status_code == 200 and answer.json()["outputs"][0]["label"] == "fresh"
            health = _wait_for(f"http://127.0.0.1:{ui_port}/_stcore/health", deadline)
            assert health is not None and health.text == "ok"
            for each in (port, gateway_port, ui_port):  # this machine only, the UI included
                assert listening_addresses(each) == {"127.0.0.1"}, each
            with pytest.raises(httpx.TransportError):  # the shell's GATEWAY_PORT won over the dotenv file's
                httpx.get(f"http://127.0.0.1:{dotenv_gateway_port}/healthz", timeout=2)

            upload = {"file": ("up.csv", b"text\nA delight from start to finish.\nA dreary, joyless slog.\n")}
            job = httpx.post(f"{gateway}/v1/jobs", files=upload, headers=KEY).json()
            while job["state"] in ("queued", "running") and time.monotonic() < deadline:
                time.sleep(0.5)
                job = httpx.get(job["url"], headers=KEY).json()
            assert job["state"] == "succeeded" and job["rows_done"] == 2, (job, log_path.read_text()[-3000:])
            checks = httpx.get(f"{gateway}/v1/versions/checks", headers=KEY).json()
            while checks["latest"] is None and time.monotonic() < deadline:
                time.sleep(0.5)
                checks = httpx.get(f"{gateway}/v1/versions/checks", headers=KEY).json()
            latest = checks["latest"]
            assert latest is not None and latest["ok"], (checks, log_path.read_text()[-3000:])
            assert [v["label"] for v in latest["versions"]] == ["champion"] and latest["cases"] > 0
        finally:
            os.killpg(up.pid, signal.SIGINT)  # Ctrl-C reaches the whole group
            up.wait(timeout=30)
    printed = log_path.read_text()
    first_lines = printed.splitlines()[:6]
    expected = printed_mode.format(redis=redis_server.url(9))
    assert any(line.startswith(expected) for line in first_lines), first_lines
    assert "environment    development  (GATEWAY_ENVIRONMENT)" in printed
    assert f"model service  http://127.0.0.1:{port}  (listening on 127.0.0.1;" in printed
    gateway_lines = [line for line in printed.splitlines() if line.startswith("gateway        http")]
    assert gateway_lines == [
        f"gateway        http://127.0.0.1:{gateway_port}  (listening on 127.0.0.1; docs at /docs)"
    ]
    assert f"ui             http://127.0.0.1:{ui_port}  (listening on 127.0.0.1)" in printed
    assert f"local API key  {DEVELOPMENT_KEY}" in printed
    assert "worker.1" in printed and " ready." in printed
    assert "beat.1" in printed and "beat: Starting" in printed
    for each in (port, gateway_port, ui_port):
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{each}/healthz", timeout=2)


def test_just_up_runs_honcho_so_the_environment_wins_over_a_dotenv_file(tmp_path: Path) -> None:
    """honcho reads .env by default and lets it override the environment; `just up` must not let it."""
    recipe = subprocess.run(
        ["just", "--show", "up"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    found = re.search(r"honcho start (.*)$", recipe, re.MULTILINE)
    assert found is not None, recipe
    (tmp_path / ".env").write_text("ONEPIPE_PROBE=from-dotenv\n")
    (tmp_path / "Procfile").write_text('probe: printf "probe says %s\\n" "$ONEPIPE_PROBE"\n')
    done = subprocess.run(
        [sys.executable, "-m", "honcho", "start", *shlex.split(found.group(1))],
        cwd=tmp_path,  # the same relative Procfile and .env as in the repository's root
        env={**os.environ, "ONEPIPE_PROBE": "from-shell"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.findall(r"probe says (.*)", done.stdout) == ["from-shell"]
