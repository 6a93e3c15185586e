"""What travels between the services: predict requests and responses, problem details."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field, StrictBool

from onepipe.errors import Problem
from onepipe.trace import Trace

VERSION_HEADER = "X-Pipeline-Version"
# an alias (champion, challenger), a registered version's number (v3) or a version hash
VERSION_REF_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
VERSION_DESCRIPTION = (
    "The version to answer with: an alias (`champion`, `challenger`), a registered version's number "
    "(`v3`) or a version hash (as responses carry it). Unset: the champion."
)
REQUEST_ID_HEADER = "X-Request-ID"
# RFC 9218's Priority header: urgency 7, the lowest, is for background work (the gateway's shadow
# calls); the model service runs such a request only while no other request waits for it
BACKGROUND_PRIORITY = "u=7"


# W3C Server-Timing: the model service's pipeline time for the request's inputs (its share of the
# micro-batch it ran in, a background run's pauses left out), so a caller can tell it from the HTTP
SERVER_TIMING_HEADER = "Server-Timing"
PIPELINE_TIMING = re.compile(r"(?:^|,)\s*pipeline\s*;[^,]*?\bdur=([0-9.]+)")


def server_timing(pipeline_ms: float) -> str:
    """The Server-Timing value for a pipeline time in milliseconds."""
    return f"pipeline;dur={pipeline_ms:.3f}"


def pipeline_ms(server_timing: str | None) -> float | None:
    """The pipeline time a Server-Timing header carries, if any."""
    found = PIPELINE_TIMING.search(server_timing or "")
    return float(found.group(1)) if found else None


def is_background(priority: str | None) -> bool:
    """Whether a Priority header (RFC 9218, e.g. `u=7, i`) asks for the lowest urgency, 7."""
    if not priority:
        return False
    return any(part.strip() == BACKGROUND_PRIORITY for part in priority.split(","))


class PredictRequest(BaseModel):
    """A batch of inputs for the pipeline, with flags and the debug switch."""

    inputs: list[dict[str, Any]] = Field(
        description="The inputs, each an object of the pipeline's input model."
    )
    flags: dict[str, Any] = Field(default_factory=dict, description="Flags; unset flags take their default.")
    # strict: "yes" or 1 is refused like any value that is not a JSON boolean
    debug: StrictBool = Field(False, description="Also return a trace of every step per input.")
    version: str | None = Field(None, pattern=VERSION_REF_PATTERN, description=VERSION_DESCRIPTION)


class PredictResponse(BaseModel):
    """The pipeline's outputs (and traces with debug on), with the pipeline version."""

    version: str
    outputs: list[dict[str, Any]]
    traces: list[Trace] | None = None


class ProblemDetail(BaseModel):
    """An RFC 9457 problem: what went wrong, for people and for programs."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[Problem] | None = Field(
        None, description="Each invalid field: `loc` (where) and `message` (what)."
    )
