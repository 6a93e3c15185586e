"""The micro-batcher on its own, with the tiny pipeline: grouping, splitting, errors."""

from __future__ import annotations

import asyncio
from typing import Any

from model_service.batching import MicroBatcher
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
    results = await asyncio.gather(*calls)
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
    assert not isinstance(other_batch, BaseException) and other_batch.outputs[0].value == 3.0
