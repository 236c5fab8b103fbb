"""The transport's retries: what is retried, how long it waits, and what never is."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from aioresponses import aioresponses

from upscale_async import (
    AuthenticationError,
    BadRequestError,
    InsufficientCreditsError,
    NotFoundError,
    RetryPolicy,
    TransportError,
    UnprocessableEntityError,
    UpscaleClient,
)
from upscale_async._transport import parse_retry_after

from .conftest import BASE, KEY, s0_campaign, s0_leads

GEN = f"{BASE}/messages/request_message_generation"
OK = {"message": "Success", "secure_request_id": "3d68ae3b-5957-454d-be1c-8731a4f877f6"}


def calls(m: aioresponses) -> int:
    return sum(len(v) for v in m.requests.values())


async def test_503_twice_then_success(mocked: aioresponses) -> None:
    """503, 503, 200 succeeds on the third attempt."""
    mocked.post(GEN, status=503, payload={"error": "busy"})
    mocked.post(GEN, status=503, payload={"error": "busy"})
    mocked.post(GEN, payload=OK)
    async with UpscaleClient(KEY, base_url=BASE, retry=RetryPolicy(time_scale=0.0)) as client:
        accepted = await client.request_message_generation(s0_campaign(), s0_leads())
    assert accepted.secure_request_id == OK["secure_request_id"]
    assert calls(mocked) == 3


async def test_429_waits_for_retry_after(
    mocked: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    """A 429 with Retry-After: 1 is retried after the advertised delay (scaled by time_scale)."""
    mocked.post(GEN, status=429, payload={"error": "slow"}, headers={"Retry-After": "1"})
    mocked.post(GEN, payload=OK)
    policy = RetryPolicy(wait_initial=30.0, wait_jitter=0.0, time_scale=0.05)
    caplog.set_level(logging.WARNING, logger="upscale_async")
    async with UpscaleClient(KEY, base_url=BASE, retry=policy) as client:
        started = time.perf_counter()
        await client.request_message_generation(s0_campaign(), s0_leads())
        elapsed = time.perf_counter() - started
    assert 0.045 <= elapsed < 0.5  # 1 s x 0.05, not the 30 s backoff
    assert "in 0.05 s (attempt 2 of 5)" in caplog.text  # Retry-After 1 s x 0.05
    assert KEY not in caplog.text


async def test_connection_error_is_retried(mocked: aioresponses) -> None:
    """A dropped connection is retried; a persistent one raises TransportError."""
    import aiohttp

    mocked.post(GEN, exception=aiohttp.ServerDisconnectedError())
    mocked.post(GEN, payload=OK)
    async with UpscaleClient(KEY, base_url=BASE, retry=RetryPolicy(time_scale=0.0)) as client:
        await client.request_message_generation(s0_campaign(), s0_leads())
        for _ in range(5):
            mocked.post(GEN, exception=aiohttp.ClientConnectionError("refused"))
        with pytest.raises(TransportError, match="connection failed"):
            await client.request_message_generation(s0_campaign(), s0_leads())


async def test_timeout_is_retried(mocked: aioresponses) -> None:
    """A timeout is retried like a connection error."""
    mocked.post(GEN, exception=TimeoutError())
    mocked.post(GEN, payload=OK)
    async with UpscaleClient(KEY, base_url=BASE, retry=RetryPolicy(time_scale=0.0)) as client:
        await client.request_message_generation(s0_campaign(), s0_leads())
    assert calls(mocked) == 2


@pytest.mark.parametrize(
    ("status", "error_type"),
    [
        pytest.param(400, BadRequestError, id="400"),
        pytest.param(401, AuthenticationError, id="401"),
        pytest.param(402, InsufficientCreditsError, id="402"),
        pytest.param(404, NotFoundError, id="404"),
        pytest.param(422, UnprocessableEntityError, id="422"),
    ],
)
async def test_never_retried(
    mocked: aioresponses, status: int, error_type: type[Exception]
) -> None:
    """400, 401, 402, 404 and 422 raise at once after one request."""
    mocked.post(GEN, status=status, payload={"error": "no"})
    mocked.post(GEN, payload=OK)
    async with UpscaleClient(KEY, base_url=BASE, retry=RetryPolicy(time_scale=0.0)) as client:
        with pytest.raises(error_type):
            await client.request_message_generation(s0_campaign(), s0_leads())
    assert calls(mocked) == 1


async def test_cancel_mid_retry_leaves_no_task(mocked: aioresponses) -> None:
    """A call cancelled while waiting to retry propagates CancelledError and leaves no task."""
    mocked.post(GEN, status=503, payload={"error": "busy"})
    mocked.post(GEN, payload=OK)
    before = asyncio.all_tasks()
    async with UpscaleClient(KEY, base_url=BASE, retry=RetryPolicy(wait_initial=30)) as client:
        task = asyncio.create_task(client.request_message_generation(s0_campaign(), s0_leads()))
        while calls(mocked) < 1:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert asyncio.all_tasks() == before
    assert calls(mocked) == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("3", 3.0, id="seconds"),
        pytest.param("0.5", 0.5, id="fraction"),
        pytest.param("-4", 0.0, id="negative"),
        pytest.param("soon", None, id="garbage"),
        pytest.param(None, None, id="absent"),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    """Retry-After is read as seconds; garbage is ignored."""
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date() -> None:
    """Retry-After as an HTTP date is the time until that date."""
    import email.utils

    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    seconds = parse_retry_after(when)
    assert seconds is not None
    assert 15 < seconds <= 20


async def test_retry_after_is_capped(
    mocked: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    """A huge Retry-After is capped at retry_after_max."""
    mocked.post(GEN, status=503, payload={"error": "x"}, headers={"Retry-After": "86400"})
    mocked.post(GEN, payload=OK)
    caplog.set_level(logging.WARNING, logger="upscale_async")
    policy = RetryPolicy(retry_after_max=2.0, time_scale=0.01)
    async with UpscaleClient(KEY, base_url=BASE, retry=policy) as client:
        await client.request_message_generation(s0_campaign(), s0_leads())
    assert "in 0.02 s" in caplog.text  # capped at 2 s, scaled by 0.01


@pytest.mark.parametrize("status", [500, 501, 505, 507, 520, 599])
async def test_every_5xx_is_retried(status: int) -> None:
    """D11: any 5xx is retried (not only 500 and 502-504); here once, then the call succeeds."""
    from upscale_async.emulator import Emulator, Fault

    async with Emulator(webhook_secret=None) as emu:
        emu.faults.set("request_message_generation", [Fault.http(status)])
        policy = RetryPolicy(time_scale=0.0)
        async with UpscaleClient(emu.api_key, base_url=emu.base_url, retry=policy) as client:
            accepted = await client.request_message_generation(s0_campaign(), s0_leads())
    assert accepted.secure_request_id
