"""No leaks: after 1,000 submit/await cycles cancelled at random points, nothing is left behind."""

from __future__ import annotations

import asyncio
import gc
import random

import anyio

from upscale_async import PollPolicy, RetryPolicy, UpscaleClient
from upscale_async.emulator import Emulator

from ..integration.conftest import campaign, lead

CYCLES = 1_000
MAX_CONNECTIONS = 20


async def one_cycle(client: UpscaleClient, i: int, rng: random.Random) -> None:
    async def work() -> None:
        accepted = await client.request_message_generation(campaign(), [lead(i)])
        await client.await_completion(
            accepted.secure_request_id, poll=PollPolicy(initial=0.002), timeout=5
        )

    with anyio.move_on_after(rng.uniform(0.0, 0.006)):
        await work()


async def test_cancelled_cycles_leave_nothing_behind() -> None:
    """1,000 cycles with random cancellations: no pending task, pooled connections only, no warning."""
    rng = random.Random(42)
    before = asyncio.all_tasks()
    async with Emulator(webhook_secret=None, latency=0.003) as emu:
        async with UpscaleClient(
            emu.api_key,
            base_url=emu.base_url,
            max_connections=MAX_CONNECTIONS,
            retry=RetryPolicy(time_scale=0.0),
        ) as client:
            for start in range(0, CYCLES, 10):
                async with anyio.create_task_group() as tg:
                    for i in range(start, start + 10):
                        tg.start_soon(one_cycle, client, i, rng)
            session = client._api.transport._session
            assert session is not None
            connector = session.connector
            assert connector is not None
            open_connections = sum(len(v) for v in connector._conns.values()) + len(
                connector._acquired
            )
            assert open_connections <= MAX_CONNECTIONS
        assert session.closed
        # The cancellations land at every stage: before the POST, during it, while polling.
        # How many POSTs get out within 0-6 ms depends on the machine's load, so the bound is
        # loose; the leak checks below are what the test is about.
        posts = emu.state.endpoint_counts["request_message_generation"]
        assert 0 < posts < CYCLES
    gc.collect()  # an unclosed session or transport would warn here (warnings are errors)
    assert asyncio.all_tasks() == before
