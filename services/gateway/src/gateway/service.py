"""The gateway's logic, reachable without a server: predict, pipeline description, readiness."""

from __future__ import annotations

import asyncio
import codecs
import logging
import time
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator
from pydantic_core import PydanticCustomError
from redis.exceptions import RedisError

from gateway.auth import Caller, KeyRing
from gateway.queue import queue_state
from gateway.settings import Settings
from gateway.shadow import Shadow
from onepipe import PipelineInfo, Problem
from onepipe.platform.http.client import (
    AsyncModelServiceClient,
    RawPredictAnswer,
    RetryPolicy,
    ServiceError,
    ServiceFailedError,
    ServiceRejectedError,
    ServiceTimeoutError,
    ServiceUnavailableError,
)
from onepipe.platform.http.envelopes import REQUEST_ID_HEADER, VERSION_DESCRIPTION, VERSION_REF_PATTERN
from onepipe.platform.http.server import ProblemError
from onepipe.platform.logs import request_id_var
from onepipe.platform.schema.values import json_type_words as _json_kind
from onepipe.platform.versions.types import ShadowSummary

log = logging.getLogger("gateway")
# a problem's own members; any other is an extension (RFC 9457) passed on to the caller
STANDARD_MEMBERS = {"type", "title", "status", "detail", "instance", "errors"}
RETRY_AFTER = "5"
INFO_TTL_SECONDS = 30.0
PROMOTION_TIMEOUT_S = 900.0  # a promotion replays the cases and scores the held-out rows on both versions


class PublicPredictRequest(BaseModel):
    """Inputs for the pipeline (one, or a list), with optional flags and the debug switch."""

    model_config = ConfigDict(extra="forbid")  # a misspelt `flags` is refused, not silently ignored

    inputs: dict[str, Any] | list[dict[str, Any]] = Field(description="One input, or a list of inputs.")
    flags: dict[str, Any] = Field(default_factory=dict, description="Flags; unset flags take their default.")
    debug: StrictBool = Field(
        False, description="Also return a trace of every step (needs the `debug` scope)."
    )
    version: str | None = Field(
        None, pattern=VERSION_REF_PATTERN, description=f"{VERSION_DESCRIPTION} Needs the `versions` scope."
    )

    @field_validator("inputs", mode="before")
    @classmethod
    def _one_or_a_list(cls, value: Any) -> Any:
        """One message for inputs of the wrong shape (the union would give one per alternative)."""
        if isinstance(value, list):
            for index, item in enumerate(value):
                if not isinstance(item, dict):
                    raise PydanticCustomError(
                        "input_type",
                        "item {index} is {kind}, not an input (an object)",
                        {"index": index, "kind": _json_kind(item)},
                    )
        elif not isinstance(value, dict):
            raise PydanticCustomError(
                "inputs_type",
                "must be one input (an object) or a list of inputs, not {kind}",
                {"kind": _json_kind(value)},
            )
        return value


class Gateway:
    """Checks what the caller may do, then asks the model service; its failures become clear problems."""

    def __init__(self, settings: Settings, client: AsyncModelServiceClient | None = None) -> None:
        self.settings = settings
        self.client = client or AsyncModelServiceClient(
            settings.model_url,
            timeout=settings.model_timeout,
            retry=RetryPolicy(attempts=settings.model_attempts, backoff_min=0.2, backoff_max=1.0),
        )
        self._info: PipelineInfo | None = None
        self._info_at = 0.0
        self._name: str | None = None
        self.shadow = Shadow(settings)

    async def close(self) -> None:
        """Close the model-service connections (and the shadow calls' and record's)."""
        await self.shadow.close()
        await self.client.aclose()

    async def predict(self, body: PublicPredictRequest, caller: Caller) -> RawPredictAnswer:
        """Outputs for the caller's inputs, as the model service sent them (passed on unparsed)."""
        return (await self.predict_timed(body, caller))[0]

    async def predict_timed(
        self, body: PublicPredictRequest, caller: Caller, sent: bytes | None = None
    ) -> tuple[RawPredictAnswer, float]:
        """As `predict`, with the milliseconds the model service took to answer, as measured here.

        `sent`: the body as the caller sent it. When its inputs are a list it is already the model
        service's request (the same fields, checked here against the public limits), so it is passed
        on as sent instead of encoded again (docs/performance.md, finding 12)."""
        inputs = body.inputs if isinstance(body.inputs, list) else [body.inputs]
        limit = self.settings.max_inputs
        if len(inputs) > limit:
            raise ProblemError(
                413,
                "Too many inputs",
                f"inputs: {len(inputs)} inputs is over the limit of {limit} per request",
                errors=[Problem(loc="inputs", message=f"at most {limit} inputs per request")],
            )
        if body.debug:
            KeyRing.require(caller, "debug")
        if body.version is not None:
            KeyRing.require(caller, "versions")
        started = time.perf_counter()
        try:
            if sent is not None and isinstance(body.inputs, list) and not sent.startswith(codecs.BOM_UTF8):
                result = await self.client.predict_body(sent, request_id=request_id_var.get())
            else:
                result = await self.client.predict_raw(
                    inputs, body.flags, body.debug, request_id=request_id_var.get(), version=body.version
                )
        except ServiceError as error:
            raise _problem(error, self.settings.model_timeout) from None
        took = (time.perf_counter() - started) * 1000
        if self._info is not None and self._info.version != result.version:
            self._info = None  # the pipeline changed under us: describe it afresh
        return result, took

    async def shadow_summary(self, since: datetime | None) -> ShadowSummary:
        """What shadowing to the challenger found since `since` (docs/versions.md#shadow-traffic)."""
        info = await self.pipeline()
        try:
            return await self.shadow.summary(info.output_schema, since)
        except (OSError, RedisError) as error:
            log.warning("the shadow record cannot be read: %s", error)
            raise ProblemError(
                503,
                "Shadow record unavailable",
                "the shadow record's store did not answer; retry later",
                headers={"Retry-After": RETRY_AFTER},
            ) from None

    async def versions(self) -> dict[str, Any]:
        """The registered versions, their aliases and scores, as the model service lists them."""
        try:
            return await self.client.versions()
        except ServiceError as error:
            raise _problem(error, self.settings.model_timeout) from None

    def problem(self, error: ServiceError) -> ProblemError:
        """A model-service failure as the problem the public caller sees (no internal addresses)."""
        return _problem(error, self.settings.model_timeout)

    async def change_versions(self, action: str, body: dict[str, Any], caller: Caller) -> dict[str, Any]:
        """Promote or roll back at the model service; who asked is recorded with a forced promotion."""
        headers = {"X-Caller": caller.name, REQUEST_ID_HEADER: request_id_var.get()}
        if action == "promote":
            body = {**body, "shadow": await self._shadow_evidence()}
        try:
            found = await self.client.version_change(action, body, headers, PROMOTION_TIMEOUT_S)
        except ServiceError as error:
            raise _problem(error, PROMOTION_TIMEOUT_S) from None
        self._info = None  # the champion may have changed: describe it afresh
        self.shadow.forget()  # and the challenger: shadow nothing until it is known again
        return found

    async def _shadow_evidence(self) -> dict[str, Any] | None:
        """The shadow record of this champion and challenger, for a promotion's evidence; None if unread."""
        try:
            summary = await self.shadow_summary(None)
        except ProblemError:
            return None
        return summary.model_dump(mode="json") if summary.challenger is not None else None

    async def pipeline(self) -> PipelineInfo:
        """The pipeline's description (cached briefly)."""
        if self._info is None or time.monotonic() - self._info_at > INFO_TTL_SECONDS:
            try:
                self._info = await self.client.pipeline()
            except ServiceError as error:
                raise _problem(error, self.settings.model_timeout) from None
            self._info_at = time.monotonic()
            self._name = self._info.name
        return self._info

    async def pipeline_name(self) -> str | None:
        """The served pipeline's name: the last one known, asked for only until the model service first
        answers (so a scrape of /metrics during an outage does not wait for it); None until then."""
        if self._name is None:
            await self.pipeline_or_none()
        return self._name

    async def pipeline_or_none(self) -> PipelineInfo | None:
        """The pipeline's description, or None when the model service does not answer."""
        try:
            return await self.pipeline()
        except ProblemError:
            return None

    async def ready(self) -> dict[str, str]:
        """Ready only when the model service is; degraded (still 200) when only the queue is unavailable.

        The queue (Redis: jobs and rate-limit counters) is asked for at most a second, alongside.
        """
        model, queue = await asyncio.gather(
            self.client.ready(), queue_state(self.settings.redis_url), return_exceptions=True
        )
        if isinstance(model, ServiceError):
            raise _problem(model, self.settings.model_timeout) from None
        if isinstance(model, BaseException):
            raise model
        self.shadow.learn(model)  # the challenger, known without a call of its own
        if isinstance(queue, BaseException):  # queue_state answers every failure; this is a bug
            raise queue
        usable = not queue.startswith("unavailable")
        return {
            "status": "ready" if usable else "degraded",
            "pipeline": model["pipeline"],
            "version": model["version"],
            "model_service": "ready",
            "queue": queue,
        }


def _problem(error: ServiceError, timeout: float) -> ProblemError:
    """A model-service failure as the problem the public caller sees (no internal addresses)."""
    if isinstance(error, ServiceRejectedError):
        # the caller's input was refused: their mistake, already in the request log line
        log.info("model service refused the request: %s", error)
        problem = error.problem
        errors = [
            Problem(loc=e["loc"], message=e["message"], input=e.get("input"), field=e.get("field"))
            for e in problem.get("errors") or []
        ]
        return ProblemError(
            error.status or 422,
            str(problem.get("title", "Invalid request")),
            str(problem.get("detail", "")),
            errors,
            extra={k: v for k, v in problem.items() if k not in STANDARD_MEMBERS},  # e.g. the evidence
        )
    log.warning("model service call failed: %s", error)
    if isinstance(error, ServiceTimeoutError):
        return ProblemError(
            504,
            "Model service timeout",
            f"the model service did not answer within {timeout:g} s; retry later",
            headers={"Retry-After": RETRY_AFTER},
        )
    if isinstance(error, ServiceUnavailableError):
        return ProblemError(
            503,
            "Model service unavailable",
            "the model service is unavailable (down, starting or overloaded); retry later",
            headers={"Retry-After": RETRY_AFTER},
        )
    assert isinstance(error, ServiceFailedError)
    return ProblemError(
        502,
        "Model service failed",
        "the model service failed on this request; "
        f"quote request id {request_id_var.get()} when reporting it",
    )
