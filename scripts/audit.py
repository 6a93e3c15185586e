"""`just audit` (a step of `just lint`): every locked dependency against the known vulnerabilities.

pip-audit over `uv export` of uv.lock (every member, group and extra, with hashes, so nothing is
resolved again), looking each locked release up in PyPI's advisory data, strictly: a package it
cannot look up fails the audit. Accepted exceptions come in as `--ignore-vuln ID` (the recipe's),
each explained in docs/security.md.

Where PyPI answers its project pages but not its per-release ones (this project's machines reach
PyPI through a proxy that serves what installers use, and no other advisory service), pip-audit can
look nothing up. The audit then falls back on the project pages, whose advisories are those of the
latest release: a package locked at its latest release is checked exactly; one behind it only
against the advisories still open on the latest release (and is named). Findings, and packages not
found at all, fail in both modes.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
PYPI = "https://pypi.org/pypi"
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)")


def export(path: Path) -> dict[str, str]:
    """Write the lock as a hashed requirements file; the pinned versions by canonical name."""
    subprocess.run(
        [
            "uv",
            "export",
            "--frozen",
            "--all-packages",
            "--all-groups",
            "--all-extras",
            "--no-emit-workspace",
            "--format",
            "requirements.txt",
            "--no-header",
            "--quiet",
            "--output-file",
            str(path),
        ],
        cwd=ROOT,
        check=True,
    )
    found = (PIN.match(line) for line in path.read_text().splitlines())
    return {canonicalize_name(m[1]): m[2] for m in found if m}


def per_release_data_answers(client: httpx.Client, pins: dict[str, str]) -> bool:
    """Whether PyPI serves the per-release pages pip-audit reads (probed with pip-audit's own release)."""
    try:
        return client.get(f"{PYPI}/pip-audit/{pins['pip-audit']}/json").status_code == 200
    except httpx.TransportError:
        return False


def pip_audit(requirements: Path, ignored: list[str]) -> int:
    """pip-audit, strict; its exit status."""
    command = [sys.executable, "-m", "pip_audit", "-r", str(requirements), "--disable-pip", "--strict"]
    command += ["--progress-spinner", "off", *(f"--ignore-vuln={vuln}" for vuln in ignored)]
    return subprocess.run(command, cwd=ROOT).returncode


def _project(client: httpx.Client, name: str) -> dict[str, Any] | str:
    try:
        answer = client.get(f"{PYPI}/{name}/json")
    except httpx.TransportError as error:
        return f"{type(error).__name__}: {error}"
    if answer.status_code != 200:
        return f"HTTP {answer.status_code}"
    data: dict[str, Any] = answer.json()
    return data


def fallback(client: httpx.Client, pins: dict[str, str], ignored: set[str]) -> int:
    """The project pages' advisories for the packages locked at their latest release; 1 on any finding."""
    with ThreadPoolExecutor(8) as pool:
        pages = dict(zip(pins, pool.map(lambda name: _project(client, name), pins), strict=True))
    findings, failures, behind = [], [], []
    for name, pinned in sorted(pins.items()):
        page = pages[name]
        if isinstance(page, str):
            failures.append(f"{name} {pinned}: not looked up ({page})")
            continue
        latest = page["info"]["version"]
        # an advisory of the latest release is not fixed yet, so an older one most likely has it too
        note = "" if Version(latest) == Version(pinned) else f", listed for the latest release {latest}"
        if note:
            behind.append(f"{name} {pinned} (latest {latest})")
        for vuln in page.get("vulnerabilities") or []:
            ids = {vuln["id"], *(vuln.get("aliases") or [])}
            if not vuln.get("withdrawn") and not ids & ignored:
                fixed = ", ".join(vuln.get("fixed_in") or []) or "none yet"
                findings.append(f"{name} {pinned}: {' / '.join(sorted(ids))} (fixed in: {fixed}{note})")
    checked = len(pins) - len(behind) - len(failures)
    print(
        "audit: PyPI's per-release advisory pages do not answer from here, so pip-audit cannot run; "
        f"fell back on the project pages: {checked} of {len(pins)} locked packages are at their latest "
        "release and were checked against its advisories"
    )
    if behind:
        print(
            f"audit: {len(behind)} behind their latest release, checked only against the advisories "
            "still open on it: " + "; ".join(behind)
        )
    for line in failures + findings:
        print(f"audit: {line}", file=sys.stderr)
    if findings or failures:
        return 1
    print("audit: no known vulnerability in the packages checked")
    return 0


def main() -> int:
    """Export the lock, then pip-audit it (or fall back on the project pages)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ignore-vuln", action="append", default=[], metavar="ID", help="accepted, see docs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, httpx.Client(timeout=30) as client:
        requirements = Path(folder) / "requirements.txt"
        pins = export(requirements)
        if per_release_data_answers(client, pins):
            return pip_audit(requirements, args.ignore_vuln)
        return fallback(client, pins, set(args.ignore_vuln))


if __name__ == "__main__":
    sys.exit(main())
