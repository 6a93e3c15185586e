"""The micro-batcher on its own, with the tiny pipeline: grouping, splitting, errors."""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any

import pytest

from model_service.batching import BACKGROUND_NICE, LiveTraffic, MicroBatcher
from onepipe import LoadedPipeline


def _batcher(tiny: LoadedPipeline[Any, Any, Any], enabled: bool, runs: list[tuple[int, int]]) -> MicroBatcher:
    return MicroBatcher(
        tiny, enabled=enabled, max_size=32, max_wait_s=0.02, on_run=lambda n, r: runs.append((n, r))
    )


async def _burst(batcher: MicroBatcher, tiny: LoadedPipeline[Any, Any, Any], count: int) -> list[Any]:
    flag_sets = [tiny.definition.validate_flags(f) for f in ({}, {"method": "mean"})]
    calls = []
    for i in range(count):
        inputs = tiny.definition.validate_inputs([{"values": [i, i + 1], "unit": "kg"}] * (1 + i % 3))
        calls.append(batcher.predict(inputs, flag_sets[i % 2], debug=i % 4 == 0))
    results = [answer.result for answer in await asyncio.gather(*calls)]
    await batcher.close()
    return results


def test_concurrent_requests_share_runs_and_get_their_own_results(
    tiny: LoadedPipeline[Any, Any, Any],
) -> None:
    runs: list[tuple[int, int]] = []
    batched = asyncio.run(_burst(_batcher(tiny, True, runs), tiny, 24))
    alone_runs: list[tuple[int, int]] = []
    alone = asyncio.run(_burst(_batcher(tiny, False, alone_runs), tiny, 24))
    assert [r.outputs for r in batched] == [r.outputs for r in alone]
    assert [r.traces is not None for r in batched] == [i % 4 == 0 for i in range(24)]
    assert [len(r.traces) for r in batched if r.traces] == [1 + i % 3 for i in range(0, 24, 4)]
    assert len(alone_runs) == 24 and all(requests == 1 for _, requests in alone_runs)
    assert len(runs) < 24 and max(requests for _, requests in runs) > 1
    assert sum(requests for _, requests in runs) == 24


def test_a_failing_run_fails_every_caller_in_it(tiny: LoadedPipeline[Any, Any, Any]) -> None:
    batcher = _batcher(tiny, True, [])

    async def three() -> Any:
        ok = tiny.definition.validate_inputs([{"values": [1], "unit": "kg"}])
        failing = tiny.definition.validate_inputs([{"values": [1], "unit": "fail"}])
        flags, other = tiny.definition.validate_flags({}), tiny.definition.validate_flags({"scale": 2})
        results = await asyncio.gather(
            batcher.predict(ok, flags, False),
            batcher.predict(failing, flags, False),
            batcher.predict(ok, other, False),
            return_exceptions=True,
        )
        await batcher.close()
        return results

    same_batch, failed, other_batch = asyncio.run(three())
    assert isinstance(failed, RuntimeError) and "unit 'fail'" in str(failed)
    assert isinstance(same_batch, RuntimeError)  # it ran in the same pipeline call
    assert not isinstance(other_batch, BaseException) and other_batch.result.outputs[0].value == 3.0


# -- background requests (the gateway's shadow calls) yield to the others ---------------------------


def _readings(tiny: LoadedPipeline[Any, Any, Any], count: int) -> list[Any]:
    return tiny.definition.validate_inputs([{"values": [i, -1, 2 * i], "unit": "kg"} for i in range(count)])


def _two_versions(
    tiny: LoadedPipeline[Any, Any, Any], max_pause_s: float
) -> tuple[LiveTraffic, MicroBatcher, MicroBatcher]:
    """Two versions' batchers in one process, as the model service has them: one LiveTraffic."""
    traffic = LiveTraffic(max_pause_s=max_pause_s)
    champion, challenger = (
        MicroBatcher(tiny, enabled=True, max_size=32, max_wait_s=0.0, traffic=traffic) for _ in range(2)
    )
    return traffic, champion, challenger


def test_a_background_request_waits_while_another_versions_request_is_under_way(
    tiny: LoadedPipeline[Any, Any, Any],
) -> None:
    traffic, champion, challenger = _two_versions(tiny, max_pause_s=30)
    flags = tiny.definition.validate_flags({})
    inputs = _readings(tiny, 10)

    async def scenario() -> tuple[bool, Any, Any]:
        with traffic.live(champion):  # a caller of the champion, under way
            shadow = asyncio.create_task(challenger.predict(inputs, flags, False, background=True))
            await asyncio.sleep(0.5)
            waited = not shadow.done()
        answer = await asyncio.wait_for(shadow, 10)  # the caller gone, it runs
        alone = await challenger.predict(inputs, flags, False)
        await champion.close()
        await challenger.close()
        return waited, answer, alone

    waited, answer, alone = asyncio.run(scenario())
    assert waited
    # run in chunks of BACKGROUND_CHUNK, the same outputs as one run; the pipeline time is its steps'
    assert answer.result.outputs == alone.result.outputs and len(answer.result.outputs) == 10
    assert answer.pipeline_ms > 0


def test_a_background_request_never_waits_for_its_own_batchers_callers_nor_past_the_pause(
    tiny: LoadedPipeline[Any, Any, Any],
) -> None:
    traffic, champion, challenger = _two_versions(tiny, max_pause_s=0.2)
    flags = tiny.definition.validate_flags({})
    inputs = _readings(tiny, 3)

    async def scenario() -> tuple[Any, Any]:
        # a pinned caller of the challenger waits behind the background batch: not the other way round
        with traffic.live(challenger):
            own = await asyncio.wait_for(challenger.predict(inputs, flags, False, background=True), 5)
        # a champion caller that never ends: each pause ends at max_pause_s, so the batch finishes
        with traffic.live(champion):
            paused = await asyncio.wait_for(challenger.predict(inputs, flags, False, background=True), 30)
        await champion.close()
        await challenger.close()
        return own, paused

    own, paused = asyncio.run(scenario())
    expected = tiny.run(inputs, flags).outputs
    assert own.result.outputs == expected and paused.result.outputs == expected


def test_a_background_run_takes_the_lowest_cpu_priority_and_a_callers_run_keeps_the_processs(
    tiny: LoadedPipeline[Any, Any, Any],
) -> None:
    niceness: list[tuple[str, int]] = []  # (thread, nice) of each step, read on the thread that ran it

    def on_step(step: str, seconds: float) -> None:
        thread = threading.current_thread().name.split("_")[0]
        niceness.append((thread, os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))

    batcher = MicroBatcher(tiny, enabled=True, max_size=32, max_wait_s=0.0, on_step=on_step)
    flags = tiny.definition.validate_flags({})
    inputs = _readings(tiny, 2)

    async def in_turn() -> None:
        await batcher.predict(inputs, flags, False)
        await batcher.predict(inputs, flags, False, background=True)
        await batcher.predict(inputs, flags, False)
        await batcher.close()

    own = os.getpriority(os.PRIO_PROCESS, 0)
    asyncio.run(in_turn())
    steps = len(niceness) // 3
    assert steps > 0 and len(niceness) == 3 * steps
    assert niceness == (
        [("pipeline", own)] * steps + [("background", BACKGROUND_NICE)] * steps + [("pipeline", own)] * steps
    )


def test_each_request_gets_its_share_of_the_runs_pipeline_time(tiny: LoadedPipeline[Any, Any, Any]) -> None:
    runs: list[tuple[int, int]] = []
    batcher = _batcher(tiny, True, runs)
    flags = tiny.definition.validate_flags({})

    async def burst() -> tuple[Any, Any]:
        one, three = await asyncio.gather(
            batcher.predict(_readings(tiny, 1), flags, False),
            batcher.predict(_readings(tiny, 3), flags, False),
        )
        await batcher.close()
        return one, three

    one, three = asyncio.run(burst())
    assert runs == [(4, 2)]  # both queued before the first run: one run, shares by inputs
    assert one.pipeline_ms > 0 and three.pipeline_ms == pytest.approx(3 * one.pipeline_ms)
