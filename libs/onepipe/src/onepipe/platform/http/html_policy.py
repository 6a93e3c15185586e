"""Content-Security-Policy for the pages the services write (reports, comparisons).

A page may run only its own inline style and script, named by their sha256: whatever text a
dataset's cell smuggles into it stays inert, and the page fetches nothing from anywhere.
"""

from __future__ import annotations

import base64
import hashlib

CSP_HEADER = "Content-Security-Policy"


def _source(text: str) -> str:
    digest = base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
    return f"'sha256-{digest}'"


def content_policy(style: str, script: str | None = None) -> str:
    """A policy allowing exactly this inline `style` (and `script`), inline SVG and nothing else."""
    scripts = _source(script) if script is not None else "'none'"
    return (
        f"default-src 'none'; style-src {_source(style)}; script-src {scripts}; img-src data:; "
        "base-uri 'none'; form-action 'none'"
    )
