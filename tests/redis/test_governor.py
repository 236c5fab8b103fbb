"""RedisGovernor on a real Redis: replicas share pauses and the retry budget; Redis down is local."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import aiohttp
import anyio
import pytest

from upscale_async import GovernorPolicy, RetryPolicy, ServerError, UpscaleClient
from upscale_async.emulator import Emulator, Fault, FaultPlan
from upscale_async.redis import RedisGovernor
from upscale_async.testing import make_campaign, sample_lead

from .conftest import RedisServer

FAST = RetryPolicy(attempts=4, wait_initial=0.01, wait_max=0.02, wait_jitter=0.0, timeout=20)
RETRIEVE = "retrieve_messages"


def _campaign() -> Any:
    return make_campaign(completion_notification_url="http://127.0.0.1:9/unused")


@asynccontextmanager
async def replica(
    emu: Emulator, url: str, namespace: str, starts: list[float] | None = None, **options: Any
) -> AsyncIterator[UpscaleClient]:
    """One replica: its own RedisGovernor (name "api") and client; request starts recorded."""
    trace = aiohttp.TraceConfig()

    async def started(*_: Any) -> None:
        if starts is not None:
            starts.append(time.monotonic())

    trace.on_request_start.append(started)
    async with AsyncExitStack() as stack:
        governor = await stack.enter_async_context(
            RedisGovernor(url, name="api", namespace=namespace, **options)
        )
        session = await stack.enter_async_context(aiohttp.ClientSession(trace_configs=[trace]))
        client = await stack.enter_async_context(
            UpscaleClient(
                emu.api_key, base_url=emu.base_url, retry=FAST, governor=governor, session=session
            )
        )
        yield client


async def test_a_429_on_one_replica_pauses_the_other(redis_url: str, redis_namespace: str) -> None:
    """Replica A gets a 429 (Retry-After 0.8 s); replica B, polling, sends nothing until it ends."""
    polled: list[float] = []
    async with (
        Emulator(webhook_secret=None) as emu,
        replica(emu, redis_url, redis_namespace) as a,
        replica(emu, redis_url, redis_namespace, polled) as b,
    ):
        first = await a.request_message_generation(_campaign(), [sample_lead(0)])
        emu.faults.set("request_message_generation", [Fault.http(429, retry_after=0.8)])

        async def poll() -> None:
            for _ in range(60):
                await b.retrieve_messages(first.secure_request_id)
                await anyio.sleep(0.02)

        with anyio.fail_after(20):
            async with anyio.create_task_group() as tg:
                tg.start_soon(poll)
                await anyio.sleep(0.1)
                throttled = time.monotonic()
                await a.request_message_generation(_campaign(), [sample_lead(1)])
        # A's 429 answered at about `throttled`; B learns of it within one sync (0.1 s).
        during = [at for at in polled if throttled + 0.25 < at < throttled + 0.7]
        assert during == []
        assert b.governor is not None
        assert b.governor.syncs > 0
        assert len(polled) == 60


async def test_the_replicas_share_one_retry_budget(redis_url: str, redis_namespace: str) -> None:
    """10 tokens, 5 a retry: A spends them; after a sync, B's failing call is not retried."""
    policy = GovernorPolicy(retry_quota=10, retry_cost=5, burst_errors=1000)
    async with (
        Emulator(webhook_secret=None) as emu,
        replica(emu, redis_url, redis_namespace, policy=policy) as a,
        replica(emu, redis_url, redis_namespace, policy=policy) as b,
    ):
        first = await a.request_message_generation(_campaign(), [sample_lead(0)])
        emu.faults.set(RETRIEVE, FaultPlan(rate=1.0, choices=(Fault.http(500),)))
        with pytest.raises(ServerError):
            await a.retrieve_messages(first.secure_request_id)
        assert emu.state.endpoint_counts[RETRIEVE] == 3  # two retries paid, the third refused
        assert b.governor is not None
        with anyio.fail_after(5):
            while b.governor.retry_capacity != 0:
                await anyio.sleep(0.02)
        with pytest.raises(ServerError) as info:
            await b.retrieve_messages(first.secure_request_id)
        assert emu.state.endpoint_counts[RETRIEVE] == 4
        assert any("retry budget" in note for note in getattr(info.value, "__notes__", []))


async def test_with_redis_down_each_replica_governs_alone(
    redis_server_factory: Any, redis_namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis stops mid-run: one warning, requests go on under the local governor; it comes back."""
    server: RedisServer = redis_server_factory()
    caplog.set_level(logging.WARNING, logger="upscale_async")
    async with (
        Emulator(webhook_secret=None) as emu,
        replica(emu, server.url, redis_namespace) as a,
    ):
        first = await a.request_message_generation(_campaign(), [sample_lead(0)])
        server.stop()
        with anyio.fail_after(10):
            for _ in range(10):
                await a.retrieve_messages(first.secure_request_id)
                await anyio.sleep(0.05)
        warnings = [r for r in caplog.records if "cannot sync with Redis" in r.getMessage()]
        assert len(warnings) == 1
        server.start()
        assert a.governor is not None
        syncs = a.governor.syncs  # type: ignore[attr-defined]
        with anyio.fail_after(10):
            while a.governor.syncs == syncs:  # type: ignore[attr-defined]
                await anyio.sleep(0.05)
        assert any("answers again" in r.getMessage() for r in caplog.records)
