"""A long soak (deselected by default; run with ``python -m pytest -m soak``).

Rounds of 10,000-lead batches against an emulator in another process that injects seeded
random faults, until ``UPSCALE_SOAK_SECONDS`` (default 600) have passed: every round loses no
lead, and the client's Python heap (tracemalloc) stops growing once the first rounds have
warmed it up. (The emulator runs apart so that its growing ledger is not counted as the
client's; peak RSS is not used because the allocator's fragmentation creeps up by itself.)
"""

from __future__ import annotations

import gc
import logging
import os
import socket
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import aiohttp
import anyio
import pytest

from upscale_async import BatchPolicy, PollPolicy, RetryPolicy, UpscaleClient

from ..integration.conftest import campaign, leads

ROUND_LEADS = 10_000
SERVER = textwrap.dedent(
    """
    import asyncio, signal, sys
    from upscale_async.emulator import Emulator, Fault, FaultPlan

    CHOICES = (Fault.http(429, retry_after=0.01), Fault.http(500), Fault.http(503),
               Fault.drop_before(), Fault.drop_after(), Fault.slow(0.05))

    async def main(port: int) -> None:
        async with Emulator(port=port, webhook_secret=None, credits=10**12) as emu:
            emu.faults.set("*", FaultPlan(rate=0.1, choices=CHOICES, seed=2026))
            stop = asyncio.Event()
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
            print("ready", flush=True)
            await stop.wait()
            assert not emu.state.double_charges(), "double charge"

    asyncio.run(main(int(sys.argv[1])))
    """
)


async def wait_ready(url: str, deadline: float) -> None:
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as response:
                    await response.read()
                    return
            except aiohttp.ClientConnectionError:
                await anyio.sleep(0.05)
    raise TimeoutError("the soak emulator did not start")


@pytest.mark.soak
@pytest.mark.timeout(7200)
async def test_soak(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Batches under random faults for a long time: no loss, no double charge, flat memory."""
    # Thousands of expected retry warnings would pile up in pytest's log capture.
    caplog.set_level(logging.ERROR, logger="upscale_async")
    seconds = float(os.environ.get("UPSCALE_SOAK_SECONDS", "600"))
    script = tmp_path / "soak_server.py"
    script.write_text(SERVER)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}/api/v2"
    retry = RetryPolicy(attempts=10, wait_initial=0.01, wait_max=0.1, wait_jitter=0.01)
    heap_after: list[int] = []
    tracemalloc.start()
    async with await anyio.open_process([sys.executable, str(script), str(port)]) as server:
        try:
            await wait_ready(f"{base_url}/account", time.monotonic() + 30)
            deadline = time.monotonic() + seconds
            async with UpscaleClient(
                "upscale-emulator-key", base_url=base_url, retry=retry
            ) as client:
                while time.monotonic() < deadline and len(heap_after) < 10_000:
                    batch = await client.submit_batch(
                        campaign(),
                        leads(ROUND_LEADS, f"r{len(heap_after)}"),
                        batch=BatchPolicy(chunk_size=100, concurrency=8),
                    )
                    results = await client.await_completion(
                        batch, poll=PollPolicy(initial=0.02, max_interval=0.2), timeout=300
                    )
                    assert batch.accepted_count == ROUND_LEADS
                    assert sum(len(r.leads) for r in results) == ROUND_LEADS
                    del batch, results
                    gc.collect()
                    heap_after.append(tracemalloc.get_traced_memory()[0])
        finally:
            tracemalloc.stop()
            server.terminate()
            await server.wait()
    assert server.returncode == 0  # the emulator saw no double charge
    assert len(heap_after) >= 3
    # After warm-up, what the client keeps between rounds grows by less than 2 MB in all.
    assert max(heap_after[2:]) - heap_after[2] < 2_000_000, f"heap by round: {heap_after}"
