"""The shared model-service client against real servers that are down, slow, refusing or failing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tenacity import RetryCallState

from onepipe.platform.http.client import (
    AsyncModelServiceClient,
    ModelServiceClient,
    RetryPolicy,
    ServiceFailedError,
    ServiceRejectedError,
    ServiceTimeoutError,
    ServiceUnavailableError,
)
from onepipe_harness.processes import ThreadedServer, free_port

FAST = RetryPolicy(attempts=3, backoff_min=0.01, backoff_max=0.05)
OK = {"version": "v1", "outputs": [{"echo": 1}]}


class Script:
    """What the fake model service answers, call after call."""

    def __init__(self) -> None:
        self.calls = 0
        self.answers: list[tuple[int, dict[str, Any]]] = []
        self.delay = 0.0
        self.seen_request_ids: list[str | None] = []


@pytest.fixture(scope="module")
def script_server() -> Iterator[tuple[Script, str]]:
    script = Script()

    async def handler(request: Request) -> JSONResponse:
        script.calls += 1
        script.seen_request_ids.append(request.headers.get("X-Request-ID"))
        if script.delay:
            await asyncio.sleep(script.delay)
        status, body = script.answers.pop(0) if script.answers else (200, OK)
        return JSONResponse(body, status_code=status)

    app = Starlette(routes=[Route("/v1/predict", handler, methods=["POST"])])
    with ThreadedServer(app) as server:
        yield script, server.url


@pytest.fixture
def scripted(script_server: tuple[Script, str]) -> tuple[Script, str]:
    script, url = script_server
    script.calls, script.answers, script.delay, script.seen_request_ids = 0, [], 0.0, []
    return script, url


def test_server_down_is_unavailable_after_the_retries() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with ModelServiceClient(url, retry=FAST) as client, pytest.raises(ServiceUnavailableError) as caught:
        client.predict([{"text": "x"}])
    assert caught.value.service == "model service"
    assert f"unavailable at {url} after 3 attempts" in str(caught.value)
    assert "ConnectError" in str(caught.value)
    assert time.monotonic() - started < 5


def test_503_is_retried_then_succeeds(scripted: tuple[Script, str]) -> None:
    script, url = scripted
    script.answers = [(503, {"detail": "loading"}), (503, {"detail": "loading"})]
    with ModelServiceClient(url, retry=FAST) as client:
        answer = client.predict([{"text": "x"}], request_id="rid-1")
    assert answer.outputs == [{"echo": 1}] and script.calls == 3
    assert script.seen_request_ids == ["rid-1"] * 3


def test_503_for_good_gives_up(scripted: tuple[Script, str]) -> None:
    script, url = scripted
    script.answers = [(503, {"detail": "still loading"})] * 5
    with (
        ModelServiceClient(url, retry=FAST) as client,
        pytest.raises(ServiceUnavailableError, match="still loading"),
    ):
        client.predict([{"text": "x"}])
    assert script.calls == 3


def test_4xx_is_never_retried_and_keeps_the_problem(scripted: tuple[Script, str]) -> None:
    script, url = scripted
    problem = {"title": "Invalid input", "status": 422, "detail": "inputs[0].text: too long", "errors": []}
    script.answers = [(422, problem)]
    with ModelServiceClient(url, retry=FAST) as client, pytest.raises(ServiceRejectedError) as caught:
        client.predict([{"text": "x"}])
    assert script.calls == 1 and caught.value.status == 422 and caught.value.problem == problem
    assert str(caught.value) == "model service: refused the request (422): inputs[0].text: too long"


def test_500_is_a_failure_not_retried(scripted: tuple[Script, str]) -> None:
    script, url = scripted
    script.answers = [(500, {"detail": "step crashed"})]
    with (
        ModelServiceClient(url, retry=FAST) as client,
        pytest.raises(ServiceFailedError, match="failed with 500: step crashed"),
    ):
        client.predict([{"text": "x"}])
    assert script.calls == 1


def test_slow_server_times_out(scripted: tuple[Script, str]) -> None:
    script, url = scripted
    script.delay = 1.0
    with (
        ModelServiceClient(url, timeout=0.2, retry=FAST) as client,
        pytest.raises(ServiceTimeoutError) as caught,
    ):
        client.predict([{"text": "x"}])
    assert caught.value.status == 504 and "timed out on POST /v1/predict" in str(caught.value)
    assert script.calls == 1


def test_async_client_behaves_the_same(scripted: tuple[Script, str]) -> None:
    script, url = scripted

    async def run() -> None:
        script.answers = [(503, {"detail": "busy"})]
        async with AsyncModelServiceClient(url, retry=FAST) as client:
            assert (await client.predict([{"text": "x"}])).outputs == [{"echo": 1}]
            script.answers = [(404, {"detail": "no such route"})]
            with pytest.raises(ServiceRejectedError):
                await client.predict([{"text": "x"}])
            script.delay = 1.0
            async with AsyncModelServiceClient(url, timeout=0.2, retry=FAST) as slow:
                with pytest.raises(ServiceTimeoutError) as caught:
                    await slow.predict([{"text": "x"}])
            assert caught.value.status == 504 and "timed out on POST /v1/predict" in str(caught.value)
        async with AsyncModelServiceClient(f"http://127.0.0.1:{free_port()}", retry=FAST) as down:
            with pytest.raises(ServiceUnavailableError, match="after 3 attempts"):
                await down.predict([{"text": "x"}])

    asyncio.run(run())
    assert script.calls == 4


def test_the_async_client_tries_its_first_attempt_alone_then_the_rest_with_the_policys_backoff(
    scripted: tuple[Script, str],
) -> None:
    script, url = scripted
    four = RetryPolicy(attempts=4, backoff_min=0.01, backoff_max=0.05)

    async def run() -> tuple[int, str]:
        async with AsyncModelServiceClient(url, retry=four) as client:
            script.answers = [(503, {"detail": "loading"})] * 3
            assert (await client.predict([{"text": "x"}])).outputs == [{"echo": 1}]
            served = script.calls
            script.answers = [(503, {"detail": "loading"})] * 4
            with pytest.raises(ServiceUnavailableError) as caught:
                await client.predict([{"text": "x"}])
        return served, str(caught.value)

    served, refused = asyncio.run(run())
    assert served == 4 and script.calls == 8
    assert f"unavailable at {url} after 4 attempts" in refused and "loading" in refused


def test_the_backoff_after_a_first_attempt_is_the_policys_own() -> None:
    policy = RetryPolicy(attempts=5, backoff_min=0.2, backoff_max=1.0)

    def waits(kwargs: dict[str, Any], count: int) -> list[float]:
        found = []
        for number in range(1, count + 1):
            state = RetryCallState(retry_object=None, fn=None, args=(), kwargs={})  # type: ignore[arg-type]
            state.attempt_number = number
            found.append(kwargs["wait"](state))
        return found

    whole = waits(policy.kwargs(), 4)  # after attempts 1 to 4
    assert whole == [0.2, 0.4, 0.8, 1.0]
    assert [policy.first_wait(), *waits(policy.kwargs(after_first=True), 3)] == whole
