"""The load generator: wrk (Debian's, a C program) posting JSON bodies in turn, and its figures parsed.

wrk costs little CPU next to the services it loads, so the figures are the services'.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}
LATENCY = re.compile(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Load:
    """One wrk run's figures."""

    requests_per_second: float
    p50_ms: float
    p99_ms: float


def bodies(inputs: list[Any], flags: dict[str, Any]) -> list[str]:
    """One predict body per input, each with these flags."""
    return [json.dumps({"inputs": [item], "flags": flags}) for item in inputs]


def wrk_path() -> str:
    """wrk's path; a SystemExit saying how to install it when it is missing."""
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("error: wrk is not installed: apt-get install wrk")
    return found


def script(bodies: list[str], headers: dict[str, str]) -> str:
    """A wrk Lua script that POSTs the bodies in turn with the headers."""

    def quoted(text: str) -> str:
        level = "=" * next(n for n in range(1, 100) if f"]{'=' * n}]" not in text)
        return f"[{level}[{text}]{level}]"

    lines = ["local bodies = {", *(f"  {quoted(body)}," for body in bodies), "}"]
    lines += ["local headers = {", *(f"  [ {quoted(k)} ] = {quoted(v)}," for k, v in headers.items()), "}"]
    lines += [
        "local i = 0",
        "request = function()",
        "  i = i % #bodies + 1",
        '  return wrk.format("POST", nil, headers, bodies[i])',
        "end",
    ]
    return "\n".join(lines) + "\n"


def run(url: str, bodies: list[str], headers: dict[str, str], connections: int, seconds: int) -> Load:
    """POST to `url` with `connections` connections for `seconds`; every answer must be a 2xx."""
    with tempfile.TemporaryDirectory() as folder:
        lua = Path(folder) / "post.lua"
        lua.write_text(script(bodies, {"Content-Type": "application/json", **headers}))
        threads = min(connections, 2)
        done = subprocess.run(
            [
                wrk_path(),
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                str(lua),
                url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
    return parse(done.stdout + done.stderr)


def parse(output: str) -> Load:
    """The figures of wrk's --latency output; a RuntimeError when a request failed."""
    if "Non-2xx" in output or "Socket errors" in output:
        raise RuntimeError(f"requests failed under load:\n{output}")
    latencies = {int(p): float(v) * UNITS[u] for p, v, u in LATENCY.findall(output)}
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    if rate is None or set(latencies) != {50, 99}:
        raise RuntimeError(f"wrk printed no figures:\n{output}")
    return Load(float(rate.group(1)), latencies[50], latencies[99])
