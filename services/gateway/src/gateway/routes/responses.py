"""What the routes document beside their answer: the problems they may answer, the version header."""

from __future__ import annotations

from typing import Any

from onepipe.platform.http.apidocs import problems as problem_responses
from onepipe.platform.http.envelopes import VERSION_HEADER

AUTHENTICATED = (401, 429)  # every route with a key: no key or a wrong one, over the rate limit
MODEL_SERVICE = (502, 503, 504)  # every route that asks the model service
VERSIONED = {
    "headers": {VERSION_HEADER: {"description": "The pipeline's version.", "schema": {"type": "string"}}}
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The problem+json answers for these status codes, each once, in order."""
    return problem_responses(*sorted(set(codes)))
