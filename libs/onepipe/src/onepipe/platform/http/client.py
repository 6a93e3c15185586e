"""The one client for the model service, sync and async (needs the `client` extra: httpx, aiohttp, tenacity).

Timeouts on every call; a bounded retry with exponential backoff on connection
errors and 503 (the service is starting or overloaded); never a retry on 4xx.
Failures raise typed exceptions that say which service failed and how.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

import aiohttp
import httpx
from tenacity import (
    AsyncRetrying,
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from onepipe.contract import PipelineInfo
from onepipe.platform.cases import CaseLibrary
from onepipe.platform.http.envelopes import (
    BACKGROUND_PRIORITY,
    REQUEST_ID_HEADER,
    SERVER_TIMING_HEADER,
    VERSION_HEADER,
    PredictRequest,
    PredictResponse,
    pipeline_ms,
)
from onepipe.platform.versions.types import VersionList


class ServiceError(Exception):
    """A call to another service failed; `service` names it."""

    def __init__(self, service: str, message: str, status: int | None = None) -> None:
        super().__init__(f"{service}: {message}")
        self.service = service
        self.status = status


class ServiceUnavailableError(ServiceError):
    """The service could not be reached, or answered 503, after the retries.

    `detail` is what the service said when it answered 503 (None when it could not be reached).
    """

    def __init__(
        self, service: str, message: str, status: int | None = None, detail: str | None = None
    ) -> None:
        super().__init__(service, message, status)
        self.detail = detail


class ServiceTimeoutError(ServiceUnavailableError):
    """The service took longer than the timeout."""


class ServiceRejectedError(ServiceError):
    """The service refused the request (4xx); `problem` is its problem+json body."""

    def __init__(self, service: str, status: int, problem: dict[str, Any]) -> None:
        detail = problem.get("detail") or problem.get("title") or f"HTTP {status}"
        super().__init__(service, f"refused the request ({status}): {detail}", status)
        self.problem = problem


class ServiceFailedError(ServiceError):
    """The service failed on the request (5xx other than 503)."""


class _RetryableError(Exception):
    """Internal: a 503 (`detail`: what the service said) or a connection error worth another try."""

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.detail = detail


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts in all, and the backoff between them (seconds)."""

    attempts: int = 4
    backoff_min: float = 0.2
    backoff_max: float = 3.0

    def kwargs(self, after_first: bool = False) -> dict[str, Any]:
        """tenacity arguments for this policy; `after_first`: for the attempts after a first one that
        failed and `first_wait()`, with the same backoff from there on."""
        skipped = 1 if after_first else 0
        return {
            "stop": stop_after_attempt(self.attempts - skipped),
            "wait": wait_exponential(
                multiplier=self.backoff_min * 2**skipped, min=self.backoff_min, max=self.backoff_max
            ),
            "retry": retry_if_exception_type(_RetryableError),
            "reraise": False,
        }

    def first_wait(self) -> float:
        """Seconds between the first attempt and the second (what tenacity's backoff waits then)."""
        return min(self.backoff_min, self.backoff_max)


def _predict_body(
    inputs: Sequence[Mapping[str, Any]], flags: Mapping[str, Any] | None, debug: bool, version: str | None
) -> dict[str, Any]:
    request = PredictRequest(
        inputs=[dict(i) for i in inputs], flags=dict(flags or {}), debug=debug, version=version
    )
    return request.model_dump(exclude_none=True)  # no version: the champion


def _headers(request_id: str | None) -> dict[str, str]:
    return {REQUEST_ID_HEADER: request_id} if request_id else {}


def _check(service: str, response: httpx.Response) -> httpx.Response:
    _check_status(service, response.status_code, response.content, response.reason_phrase)
    return response


def _check_status(service: str, status: int, body: bytes, reason: str) -> None:
    """Raise the typed error for a failed answer (a 503 as worth another try); pass a success."""
    if status == 503:
        detail = _detail(body, reason)
        raise _RetryableError(f"answered 503: {detail}", detail)
    if 400 <= status < 500:
        raise ServiceRejectedError(service, status, _problem(body))
    if status >= 500:
        raise ServiceFailedError(service, f"failed with {status}: {_detail(body, reason)}", status)


def _problem(body: bytes) -> dict[str, Any]:
    try:
        problem = json.loads(body)
    except ValueError:
        return {"detail": body[:500].decode("utf-8", "replace")}
    return problem if isinstance(problem, dict) else {"detail": str(problem)[:500]}


def _detail(body: bytes, reason: str) -> str:
    problem = _problem(body)
    return str(problem.get("detail") or problem.get("title") or reason)


def _transport_error(service: str, method: str, path: str, error: httpx.TransportError) -> Exception:
    """A read timeout is final (the work may be under way); connecting again is worth a retry."""
    if isinstance(error, httpx.TimeoutException) and not isinstance(error, httpx.ConnectTimeout):
        return ServiceTimeoutError(service, f"timed out on {method} {path}", 504)
    return _RetryableError(f"{type(error).__name__}: {error}")


def _give_up(service: str, url: str, cause: BaseException | None, attempts: int) -> ServiceUnavailableError:
    detail = cause.detail if isinstance(cause, _RetryableError) else None
    return ServiceUnavailableError(
        service, f"unavailable at {url} after {attempts} attempts: {cause}", 503, detail
    )


class ServiceClient:
    """Blocking HTTP client for one of our services: timeouts, bounded retries, typed errors."""

    service = "service"

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 3.0,
        retry: RetryPolicy | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            headers=dict(headers or {}),
            transport=transport,
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            for attempt in Retrying(**self.retry.kwargs()):
                with attempt:
                    try:
                        response = self._http.request(method, path, **kwargs)
                    except httpx.TransportError as error:
                        raise _transport_error(self.service, method, path, error) from error
                    return _check(self.service, response)
        except RetryError as error:
            cause = error.last_attempt.exception()
            raise _give_up(self.service, self.base_url, cause, self.retry.attempts) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def ready(self) -> dict[str, Any]:
        """The service's /readyz answer (raises ServiceUnavailableError when not ready)."""
        return dict(self._request("GET", "/readyz").json())


class ModelServiceClient(ServiceClient):
    """Blocking client for the model service at `base_url`."""

    service = "model service"

    def pipeline(self) -> PipelineInfo:
        """The pipeline's description: steps, schemas, examples, version."""
        return PipelineInfo.model_validate(self._request("GET", "/v1/pipeline").json())

    def predict(
        self,
        inputs: Sequence[Mapping[str, Any]],
        flags: Mapping[str, Any] | None = None,
        debug: bool = False,
        request_id: str | None = None,
        version: str | None = None,
    ) -> PredictResponse:
        """Run inputs through the pipeline."""
        response = self._request(
            "POST",
            "/v1/predict",
            json=_predict_body(inputs, flags, debug, version),
            headers=_headers(request_id),
        )
        return PredictResponse.model_validate(response.json())

    def versions(self) -> VersionList:
        """The registered versions, their aliases and which are loaded."""
        return VersionList.model_validate(self._request("GET", "/v1/versions").json())

    def case_library(self) -> CaseLibrary:
        """The edge-case library the model service replays on a promotion."""
        return CaseLibrary.model_validate(self._request("GET", "/v1/cases/library").json())


@dataclass(frozen=True)
class RawPredictAnswer:
    """A predict answer as the model service sent it: its JSON body, the pipeline's version and its
    Server-Timing header, read only when asked (the gateway passes most answers on unread)."""

    body: bytes
    version: str
    server_timing: str | None = None

    @property
    def pipeline_ms(self) -> float | None:
        """The pipeline's milliseconds for these inputs (None from a server that sends no timing)."""
        return pipeline_ms(self.server_timing)


class AsyncModelServiceClient:
    """Async client for the model service at `base_url` (same behaviour as the blocking one).

    On aiohttp rather than httpx: the gateway calls it once per public request, and httpx's
    layers above the connection pool were a fifth of the gateway's CPU (docs/performance.md).
    """

    service = "model service"

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = 30.0,
        connect_timeout: float = 3.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> AsyncModelServiceClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _pool(self) -> aiohttp.ClientSession:
        # made on first use: a session belongs to the event loop that runs it
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout, raise_for_status=False)
        return self._session

    async def _request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        read_timeout: float | None = None,
    ) -> tuple[bytes, Mapping[str, str]]:
        sent_headers = {**(headers or {}), **({"Content-Type": "application/json"} if body else {})}
        timeout = (
            self._timeout
            if read_timeout is None
            else aiohttp.ClientTimeout(
                total=None, sock_connect=self._timeout.sock_connect, sock_read=read_timeout
            )
        )

        async def once() -> tuple[bytes, Mapping[str, str]]:
            try:
                async with self._pool().request(
                    method, self.base_url + path, data=body, headers=sent_headers, timeout=timeout
                ) as response:
                    content = await response.read()
            except (aiohttp.ClientError, TimeoutError) as error:
                raise _aiohttp_error(self.service, method, path, error) from error
            _check_status(self.service, response.status, content, response.reason or "")
            return content, response.headers

        # the first attempt outside tenacity: an answer, the common case, costs no retry machinery
        # (a twentieth of the gateway's CPU per request, docs/performance.md finding 12)
        try:
            return await once()
        except _RetryableError as first:
            if self.retry.attempts <= 1:
                raise _give_up(self.service, self.base_url, first, 1) from None
        await asyncio.sleep(self.retry.first_wait())
        try:
            async for attempt in AsyncRetrying(**self.retry.kwargs(after_first=True)):
                with attempt:
                    return await once()
        except RetryError as error:
            cause = error.last_attempt.exception()
            raise _give_up(self.service, self.base_url, cause, self.retry.attempts) from None
        raise AssertionError("unreachable")  # pragma: no cover

    async def versions(self) -> dict[str, Any]:
        """The registered versions, as the model service lists them."""
        found: dict[str, Any] = json.loads((await self._request("GET", "/v1/versions"))[0])
        return found

    async def version_change(
        self, action: str, body: Mapping[str, Any], headers: Mapping[str, str], read_timeout: float
    ) -> dict[str, Any]:
        """POST /v1/versions/{action} (promote, rollback): the evidence may take minutes to gather."""
        content, _ = await self._request(
            "POST", f"/v1/versions/{action}", json.dumps(dict(body)).encode(), headers, read_timeout
        )
        found: dict[str, Any] = json.loads(content)
        return found

    async def ready(self) -> dict[str, Any]:
        """The service's /readyz answer (raises ServiceUnavailableError when not ready)."""
        return dict(json.loads((await self._request("GET", "/readyz"))[0]))

    async def case_library(self) -> CaseLibrary:
        """The edge-case library the model service replays on a promotion."""
        return CaseLibrary.model_validate_json((await self._request("GET", "/v1/cases/library"))[0])

    async def pipeline(self) -> PipelineInfo:
        """The pipeline's description: steps, schemas, examples, version."""
        return PipelineInfo.model_validate_json((await self._request("GET", "/v1/pipeline"))[0])

    async def predict(
        self,
        inputs: Sequence[Mapping[str, Any]],
        flags: Mapping[str, Any] | None = None,
        debug: bool = False,
        request_id: str | None = None,
        version: str | None = None,
    ) -> PredictResponse:
        """Run inputs through the pipeline."""
        answer = await self.predict_raw(inputs, flags, debug, request_id, version)
        return PredictResponse.model_validate_json(answer.body)

    async def predict_raw(
        self,
        inputs: Sequence[Mapping[str, Any]],
        flags: Mapping[str, Any] | None = None,
        debug: bool = False,
        request_id: str | None = None,
        version: str | None = None,
        background: bool = False,
    ) -> RawPredictAnswer:
        """Run inputs through the pipeline; the answer as sent, to pass on without parsing it.

        `background`: run only while no caller's request waits (RFC 9218 urgency 7): shadow calls."""
        body = json.dumps(_predict_body(inputs, flags, debug, version)).encode()
        return await self.predict_body(body, request_id, background)

    async def predict_body(
        self, body: bytes, request_id: str | None = None, background: bool = False
    ) -> RawPredictAnswer:
        """As `predict_raw`, for a request body already in the model service's form (its
        PredictRequest as JSON), sent as it is: the model service validates it."""
        sent = _headers(request_id) | ({"Priority": BACKGROUND_PRIORITY} if background else {})
        content, headers = await self._request("POST", "/v1/predict", body, sent)
        return RawPredictAnswer(content, headers.get(VERSION_HEADER, ""), headers.get(SERVER_TIMING_HEADER))


def _aiohttp_error(service: str, method: str, path: str, error: Exception) -> Exception:
    """As _transport_error: a read timeout is final, connecting again is worth a retry."""
    if isinstance(error, TimeoutError) and not isinstance(error, aiohttp.ConnectionTimeoutError):
        return ServiceTimeoutError(service, f"timed out on {method} {path}", 504)
    return _RetryableError(f"{type(error).__name__}: {error}")
