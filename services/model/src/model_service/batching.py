"""Adaptive micro-batching: concurrent requests with the same flags and debug run as one batch.

While the pipeline runs a batch, new requests queue up; the next batch takes them all
at once (up to the size limit), so batches grow with load and stay at one when idle.
A batch waits up to `max_wait_s` for more requests only under load (the last batch held
more than one request): an idle service runs a lone request at once, so a caller
alone never pays the wait.
The pipeline runs on one worker thread, off the event loop, so the server keeps
accepting requests while it computes.

A background request (the gateway's shadow calls, RFC 9218 urgency 7) yields to the others: its
batch runs BACKGROUND_CHUNK inputs at a time, and each chunk starts, and goes on after each step,
only while no request of another version's batcher in this process is waiting or running
(`LiveTraffic`), so a caller waits at most for the rest of one short step. A pause lasts at most
BACKGROUND_MAX_PAUSE_S, so a saturated service still finishes background work, slowly. It runs on
a thread of its own at the lowest CPU priority (nice BACKGROUND_NICE), so the operating system also
gives the cores to callers first: to this process's other threads and to the other processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Final

from pydantic import BaseModel

from onepipe import LoadedPipeline, RunResult

BACKGROUND_MAX_PAUSE_S: Final = 1.0  # longest a background batch waits for quiet before each step
BACKGROUND_CHUNK: Final = 4  # inputs per pipeline run of a background batch: short steps to yield between
BACKGROUND_NICE: Final = 19  # the background thread's nice value: the lowest priority


def lower_this_threads_priority() -> None:
    """Give the calling thread the lowest CPU priority (Linux: a nice value per thread)."""
    with contextlib.suppress(OSError, AttributeError):  # another OS: the pauses alone yield
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), BACKGROUND_NICE)


class LiveTraffic:
    """The requests of this process that are not background, counted by batcher.

    Threads wait on it: a background batch runs on its batcher's worker thread."""

    def __init__(self, max_pause_s: float = BACKGROUND_MAX_PAUSE_S) -> None:
        self.max_pause_s = max_pause_s
        self._changed = threading.Condition()
        self._live: Counter[int] = Counter()

    @contextlib.contextmanager
    def live(self, batcher: MicroBatcher) -> Iterator[None]:
        """Count a request of `batcher` from now until the block ends."""
        with self._changed:
            self._live[id(batcher)] += 1
        try:
            yield
        finally:
            with self._changed:
                self._live[id(batcher)] -= 1
                self._changed.notify_all()

    def wait_for_quiet(self, batcher: MicroBatcher) -> None:
        """Block until no other batcher has a request (its own wait behind this one), or max_pause_s."""
        mine = id(batcher)
        with self._changed:
            self._changed.wait_for(
                lambda: not any(count for key, count in self._live.items() if key != mine), self.max_pause_s
            )


@dataclass(frozen=True)
class Answer:
    """A request's result, with its share of the pipeline time of the run it was part of."""

    result: RunResult[Any]
    pipeline_ms: (
        float  # the steps' time (a background run's pauses left out) x this request's inputs / the run's
    )


@dataclass
class _Request:
    inputs: list[BaseModel]
    flags: BaseModel
    debug: bool
    future: asyncio.Future[Answer]
    background: bool = False

    @property
    def key(self) -> tuple[str, bool]:
        return self.flags.model_dump_json(), self.debug


class MicroBatcher:
    """Runs validated requests through the pipeline, gathering them into batches when enabled."""

    def __init__(
        self,
        pipeline: LoadedPipeline[Any, Any, Any],
        *,
        enabled: bool,
        max_size: int,
        max_wait_s: float,
        on_run: Callable[[int, int], None] = lambda inputs, requests: None,
        on_step: Callable[[str, float], None] | None = None,
        traffic: LiveTraffic | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.traffic = traffic or LiveTraffic()
        self.enabled = enabled
        self.max_size = max_size
        self.max_wait_s = max_wait_s
        self.on_run = on_run
        self.on_step = on_step
        # runs never overlap (one group at a time): a background run takes the low-priority thread
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipeline")
        self._background = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="background", initializer=lower_this_threads_priority
        )
        self._queue: asyncio.Queue[_Request] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._last_batch_requests = 1

    async def predict(
        self, inputs: list[BaseModel], flags: BaseModel, debug: bool, background: bool = False
    ) -> Answer:
        """The pipeline's result for these (already validated) inputs; `background` yields to the rest."""
        if background:
            return await self._predict(inputs, flags, debug, background)
        with self.traffic.live(self):
            return await self._predict(inputs, flags, debug, background)

    async def _predict(
        self, inputs: list[BaseModel], flags: BaseModel, debug: bool, background: bool
    ) -> Answer:
        if not self.enabled:
            return await self._run(inputs, flags, debug, requests=1, background=background)
        if self._task is None:
            self._task = asyncio.create_task(self._gather_forever())
        future: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Request(inputs, flags, debug, future, background))
        return await future

    async def close(self) -> None:
        """Stop gathering and let the worker thread finish."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._background.shutdown(wait=True, cancel_futures=True)

    async def _run(
        self, inputs: list[BaseModel], flags: BaseModel, debug: bool, requests: int, background: bool
    ) -> Answer:
        self.on_run(len(inputs), requests)
        spent = [0.0]  # the steps' seconds, summed on the worker thread

        def after_step(step: str, seconds: float) -> None:
            spent[0] += seconds
            if self.on_step is not None:
                self.on_step(step, seconds)
            if background:  # wait for quiet before the next step
                self.traffic.wait_for_quiet(self)

        def run() -> RunResult[Any]:
            if not background:
                return self.pipeline.run(inputs, flags, debug=debug, on_step=after_step)
            parts = []
            for start in range(0, len(inputs), BACKGROUND_CHUNK):
                self.traffic.wait_for_quiet(self)
                chunk = inputs[start : start + BACKGROUND_CHUNK]
                parts.append(self.pipeline.run(chunk, flags, debug=debug, on_step=after_step))
            return joined(parts)

        thread = self._background if background else self._executor
        result = await asyncio.get_running_loop().run_in_executor(thread, run)
        return Answer(result, spent[0] * 1000)

    async def _gather_forever(self) -> None:
        while True:
            batch = await self._gather()
            groups: dict[tuple[str, bool], list[_Request]] = {}
            for request in batch:
                groups.setdefault(request.key, []).append(request)
            for group in groups.values():
                await self._run_group(group)

    async def _gather(self) -> list[_Request]:
        loop = asyncio.get_running_loop()
        batch = [await self._queue.get()]
        size = len(batch[0].inputs)
        wait = self.max_wait_s if self._last_batch_requests > 1 else 0.0
        deadline = loop.time() + wait
        while size < self.max_size:
            try:
                request = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    request = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            batch.append(request)
            size += len(request.inputs)
        self._last_batch_requests = len(batch)
        return batch

    async def _run_group(self, group: list[_Request]) -> None:
        live = [r for r in group if not r.future.done()]  # a caller that went away is skipped
        if not live:
            return
        inputs = [item for request in live for item in request.inputs]
        background = all(request.background for request in live)  # a caller among them: not
        try:
            ran = await self._run(
                inputs, live[0].flags, live[0].debug, requests=len(live), background=background
            )
        except Exception as error:  # each caller gets the error of the run it was part of
            for request in live:
                if not request.future.done():
                    request.future.set_exception(error)
            return
        result, start = ran.result, 0
        for request in live:
            end = start + len(request.inputs)
            if not request.future.done():
                share = RunResult[Any](
                    version=result.version,
                    outputs=result.outputs[start:end],
                    traces=result.traces[start:end] if result.traces is not None else None,
                )
                request.future.set_result(Answer(share, ran.pipeline_ms * len(request.inputs) / len(inputs)))
            start = end


def joined(parts: list[RunResult[Any]]) -> RunResult[Any]:
    """The runs of consecutive chunks of one batch as one run's result."""
    traces = [trace for part in parts for trace in part.traces or []]
    return RunResult[Any](
        version=parts[0].version,
        outputs=[output for part in parts for output in part.outputs],
        traces=traces if parts[0].traces is not None else None,
    )
