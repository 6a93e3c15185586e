"""`just up`: the local stack from the Procfile, its URLs printed, all of it stopped by Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Any

import httpx

from gateway.auth import DEVELOPMENT_KEY
from onepipe import LoadedPipeline
from tests.processes import OUTPUT, ROOT, free_port


def test_just_up_serves_the_stack_and_ctrl_c_stops_everything(
    example_pipeline: LoadedPipeline[Any, Any, Any],
) -> None:
    port, gateway_port, ui_port = free_port(), free_port(), free_port()
    OUTPUT.mkdir(exist_ok=True)
    log_path = OUTPUT / "just-up.log"
    with log_path.open("wb") as log:
        up = subprocess.Popen(
            ["just", "up"],
            cwd=ROOT,
            env={
                **os.environ,
                "MODEL_PORT": str(port),
                "GATEWAY_PORT": str(gateway_port),
                "STREAMLIT_SERVER_PORT": str(ui_port),
            },
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, like a terminal's
        )
        try:
            deadline = time.monotonic() + 180
            ready = None
            while time.monotonic() < deadline and up.poll() is None:
                try:
                    ready = httpx.get(f"http://127.0.0.1:{gateway_port}/readyz", timeout=2)
                    if ready.status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.3)
            assert ready is not None and ready.json()["version"] == example_pipeline.version, (
                log_path.read_text()
            )
            answer = httpx.post(
                f"http://127.0.0.1:{gateway_port}/v1/predict",
                json={"inputs": {"text": "Great!"}},
                headers={"X-API-Key": DEVELOPMENT_KEY},
            )
            assert answer.status_code == 200 and answer.json()["outputs"][0]["label"] == "fresh"
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"http://127.0.0.1:{ui_port}/_stcore/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.3)
            assert httpx.get(f"http://127.0.0.1:{ui_port}/_stcore/health").text == "ok"
        finally:
            os.killpg(up.pid, signal.SIGINT)  # Ctrl-C reaches the whole group
            up.wait(timeout=30)
    printed = log_path.read_text()
    assert f"model service  http://127.0.0.1:{port}" in printed
    assert f"gateway        http://127.0.0.1:{gateway_port}" in printed
    assert f"local API key  {DEVELOPMENT_KEY}" in printed
    assert "worker.1" in printed and " ready." in printed  # the batch worker came up too
    assert f"ui             http://127.0.0.1:{ui_port}" in printed
    for each in (port, gateway_port, ui_port):
        try:
            httpx.get(f"http://127.0.0.1:{each}/healthz", timeout=2)
            raise AssertionError(f"port {each} still answers after Ctrl-C")
        except httpx.TransportError:
            pass
