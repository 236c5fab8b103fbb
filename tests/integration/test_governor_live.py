"""The rate governor against the emulator: one client-wide pause, AIMD, and the retry budget."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import aiohttp
import anyio
import pytest

from upscale_async import (
    BatchPolicy,
    GovernorPolicy,
    RetryPolicy,
    ServerError,
    UpscaleClient,
)
from upscale_async.emulator import Emulator, Fault, FaultPlan

from .conftest import campaign, lead, leads

GENERATE = "request_message_generation"
RETRIEVE = "retrieve_messages"
FAST = RetryPolicy(attempts=4, wait_initial=0.01, wait_max=0.02, wait_jitter=0.0, timeout=20)


class Traffic:
    """When this client started each request and got each answer (aiohttp trace hooks)."""

    def __init__(self) -> None:
        self.starts: list[tuple[float, str, str]] = []
        self.ends: list[tuple[float, str, str, int]] = []

    def config(self) -> aiohttp.TraceConfig:
        trace = aiohttp.TraceConfig()

        async def start(_: Any, __: SimpleNamespace, params: Any) -> None:
            self.starts.append((time.monotonic(), params.method, params.url.path))

        async def end(_: Any, __: SimpleNamespace, params: Any) -> None:
            self.ends.append(
                (time.monotonic(), params.method, params.url.path, params.response.status)
            )

        trace.on_request_start.append(start)
        trace.on_request_end.append(end)
        return trace

    def first_end(self, status: int) -> float:
        return next(at for at, _, _, s in self.ends if s == status)

    def started_between(self, low: float, high: float, method: str | None = None) -> int:
        return sum(1 for at, m, _ in self.starts if low < at < high and method in (None, m))


@asynccontextmanager
async def traced_client(
    emu: Emulator, traffic: Traffic, **options: Any
) -> AsyncIterator[UpscaleClient]:
    async with (
        aiohttp.ClientSession(trace_configs=[traffic.config()]) as session,
        UpscaleClient(emu.api_key, base_url=emu.base_url, session=session, **options) as client,
    ):
        yield client


async def _poll(client: UpscaleClient, secure_request_id: str, polls: int) -> None:
    """A second worker of the same client: retrieve every 20 ms (bounded)."""
    for _ in range(polls):
        await client.retrieve_messages(secure_request_id)
        await anyio.sleep(0.02)


@pytest.mark.parametrize("governed", [True, False], ids=["governor", "no-governor"])
async def test_a_429_on_one_worker_pauses_the_others(governed: bool) -> None:
    """A 429 (Retry-After 0.6 s) on a POST: the polling worker sends nothing until it is over.

    Without a governor (the control) the poller goes on through the 429's wait.
    """
    traffic = Traffic()
    governor = GovernorPolicy() if governed else None
    async with (
        Emulator(webhook_secret=None) as emu,
        traced_client(emu, traffic, retry=FAST, governor=governor) as client,
    ):
        first = await client.request_message_generation(campaign(), [lead(0)])
        emu.faults.set(GENERATE, [Fault.http(429, retry_after=0.6)])
        with anyio.fail_after(15):
            async with anyio.create_task_group() as tg:
                tg.start_soon(_poll, client, first.secure_request_id, 50)
                await anyio.sleep(0.1)
                await client.request_message_generation(campaign(), [lead(1)])
        throttled = traffic.first_end(429)
        during = traffic.started_between(throttled + 0.05, throttled + 0.5)
        if governed:
            assert during == 0
            assert client.governor is not None
            assert client.governor.pauses == 1
            [retry] = [at for at, m, _ in traffic.starts if m == "POST" and at > throttled]
            assert retry - throttled >= 0.55
        else:
            assert during >= 5
        assert emu.state.endpoint_counts[GENERATE] == 3
        assert not emu.state.double_charges()


async def test_a_burst_of_server_errors_while_polling_pauses_submitting() -> None:
    """Three 500s on retrieve within the window pause the POSTs of another worker for 0.5 s."""
    traffic = Traffic()
    policy = GovernorPolicy(burst_errors=3, burst_window=10.0, burst_pause=0.5)
    async with (
        Emulator(webhook_secret=None) as emu,
        traced_client(emu, traffic, retry=FAST, governor=policy) as client,
    ):
        first = await client.request_message_generation(campaign(), [lead(0)])
        emu.faults.set(RETRIEVE, [Fault.http(500)] * 3)

        async def submit() -> None:
            for i in range(1, 40):
                await client.request_message_generation(campaign(), [lead(i)])
                await anyio.sleep(0.02)

        with anyio.fail_after(15):
            async with anyio.create_task_group() as tg:
                tg.start_soon(submit)
                await anyio.sleep(0.1)
                await client.retrieve_messages(first.secure_request_id)
        third = [at for at, _, _, status in traffic.ends if status == 500][2]
        assert traffic.started_between(third + 0.05, third + 0.45, "POST") == 0
        assert traffic.started_between(third + 0.5, third + 5.0, "POST") > 0
        assert client.governor is not None
        assert client.governor.pauses == 1


async def test_the_retry_budget_bounds_the_traffic_of_a_failing_service() -> None:
    """Retrieve always 500: 10 tokens pay for two retries, then every call fails at once.

    Five calls send 3 + 1 + 1 + 1 + 1 = 7 requests instead of 5 x 4 = 20.
    """
    policy = GovernorPolicy(retry_quota=10, retry_cost=5, burst_errors=1000)
    async with (
        Emulator(webhook_secret=None) as emu,
        UpscaleClient(emu.api_key, base_url=emu.base_url, retry=FAST, governor=policy) as client,
    ):
        first = await client.request_message_generation(campaign(), [lead(0)])
        emu.faults.set(RETRIEVE, FaultPlan(rate=1.0, choices=(Fault.http(500),)))
        errors = []
        for _ in range(5):
            with pytest.raises(ServerError) as info:
                await client.retrieve_messages(first.secure_request_id)
            errors.append(info.value)
        assert emu.state.endpoint_counts[RETRIEVE] == 7
        assert client.governor is not None
        assert client.governor.retries_refused == 5
        notes = getattr(errors[-1], "__notes__", [])
        assert any("retry budget is spent" in note for note in notes)
        emu.faults.clear()
        await client.retrieve_messages(first.secure_request_id)  # a success refunds a token
        assert client.governor.retry_capacity == 1


async def test_a_429_storm_in_a_batch_halves_concurrency_once_and_it_recovers() -> None:
    """Four 429s answering one window of 8 POSTs: one decrease to 4, then back to 8; no lead lost."""
    policy = GovernorPolicy(max_concurrency=8)
    async with (
        Emulator(webhook_secret=None) as emu,
        UpscaleClient(emu.api_key, base_url=emu.base_url, retry=FAST, governor=policy) as client,
    ):
        emu.faults.set(GENERATE, [Fault.http(429, retry_after=0.05)] * 4)
        with anyio.fail_after(30):
            batch = await client.submit_batch(
                campaign(), leads(3000), batch=BatchPolicy(chunk_size=50, concurrency=8)
            )
        governor = client.governor
        assert governor is not None
        assert governor.decreases == 1
        assert governor.concurrency_limit == 8
        assert governor.in_flight == 0
        assert batch.accepted_count == 3000
        assert not emu.state.double_charges()
