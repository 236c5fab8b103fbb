"""Retries against the emulator's injected faults: what is retried, what is sent once, what it costs."""

from __future__ import annotations

import time

import pytest

from upscale_async import (
    AuthenticationError,
    InsufficientCreditsError,
    RateLimitError,
    RetryPolicy,
    UnprocessableEntityError,
    UpscaleClient,
)
from upscale_async.emulator import Emulator, Fault, FaultPlan

from .conftest import campaign, lead

GENERATE = "request_message_generation"
FAST = RetryPolicy(attempts=4, wait_initial=0.01, wait_max=0.02, wait_jitter=0.0)


async def _generate(emu: Emulator, plan: FaultPlan, **options: object) -> str:
    emu.faults.set(GENERATE, plan)
    async with UpscaleClient(emu.api_key, base_url=emu.base_url, **options) as client:  # type: ignore[arg-type]
        accepted = await client.request_message_generation(campaign(), [lead(1), lead(2)])
    return accepted.secure_request_id


@pytest.mark.parametrize(
    "fault",
    [
        pytest.param(Fault.http(500), id="500"),
        pytest.param(Fault.http(502), id="502"),
        pytest.param(Fault.http(503), id="503"),
        pytest.param(Fault.http(408), id="408"),
        pytest.param(Fault.http(429, retry_after=0.01), id="429"),
        pytest.param(Fault.drop_before(), id="dropped-before-processing"),
    ],
)
async def test_transient_faults_are_retried_until_success(fault: Fault) -> None:
    """Two transient faults, then success: three POSTs, one request, charged once."""
    async with Emulator(webhook_secret=None) as emu:
        await _generate(emu, FaultPlan(script=[fault, fault]), retry=FAST)
        assert emu.state.endpoint_counts[GENERATE] == 3
        assert len(emu.state.requests) == 1
        assert not emu.state.double_charges()


async def test_a_connection_dropped_after_processing_is_retried_and_deduplicated() -> None:
    """The server processed the POST but the answer was lost: the retry gets the same id, one charge."""
    async with Emulator(webhook_secret=None) as emu:
        secure_request_id = await _generate(emu, FaultPlan(script=[Fault.drop_after()]), retry=FAST)
        assert emu.state.endpoint_counts[GENERATE] == 2
        assert list(emu.state.requests) == [secure_request_id]
        assert emu.state.dedupe_hits == 1
        assert not emu.state.double_charges()
        assert len(emu.state.charge_counts()) == 4  # 2 leads x 2 message types, once each


async def test_an_answer_slower_than_the_timeout_is_retried() -> None:
    """A request that times out is sent again; the server's dedupe keeps it to one charge."""
    async with Emulator(webhook_secret=None) as emu:
        await _generate(emu, FaultPlan(script=[Fault.slow(2.0)]), retry=FAST, timeout=0.3)
        assert emu.state.endpoint_counts[GENERATE] == 2
        assert not emu.state.double_charges()


async def test_retry_after_is_honoured() -> None:
    """A 429 with Retry-After waits that long before the next attempt."""
    async with Emulator(webhook_secret=None) as emu:
        started = time.monotonic()
        await _generate(emu, FaultPlan(script=[Fault.http(429, retry_after=0.4)]), retry=FAST)
        assert time.monotonic() - started >= 0.35
        assert emu.state.endpoint_counts[GENERATE] == 2


async def test_retry_after_is_capped() -> None:
    """A Retry-After beyond retry_after_max waits only retry_after_max."""
    policy = RetryPolicy(attempts=3, retry_after_max=0.05, wait_jitter=0.0)
    async with Emulator(webhook_secret=None) as emu:
        started = time.monotonic()
        await _generate(emu, FaultPlan(script=[Fault.http(503, retry_after=30)]), retry=policy)
        assert time.monotonic() - started < 5.0
        assert emu.state.endpoint_counts[GENERATE] == 2


async def test_a_rate_limit_that_outlasts_the_attempts_raises() -> None:
    """429 on every attempt raises RateLimitError after exactly `attempts` requests."""
    async with Emulator(webhook_secret=None) as emu:
        plan = FaultPlan(rate=1.0, choices=(Fault.http(429, retry_after=0.01),))
        with pytest.raises(RateLimitError):
            await _generate(emu, plan, retry=FAST)
        assert emu.state.endpoint_counts[GENERATE] == FAST.attempts


async def test_401_is_sent_once() -> None:
    """A refused key is not retried."""
    async with Emulator(webhook_secret=None, revoked_keys=("revoked",)) as emu:
        async with UpscaleClient("revoked", base_url=emu.base_url, retry=FAST) as client:
            with pytest.raises(AuthenticationError):
                await client.request_message_generation(campaign(), [lead(1)])
        assert emu.state.endpoint_counts[GENERATE] == 1


async def test_402_is_sent_once() -> None:
    """Insufficient credits are not retried, and nothing is charged."""
    async with Emulator(webhook_secret=None, credits=1) as emu:
        with pytest.raises(InsufficientCreditsError):
            await _generate(emu, FaultPlan(), retry=FAST)
        assert emu.state.endpoint_counts[GENERATE] == 1
        assert emu.state.credits_used() == 0


async def test_422_is_sent_once() -> None:
    """A 422 from the server is not retried."""
    async with Emulator(webhook_secret=None) as emu:
        with pytest.raises(UnprocessableEntityError):
            await _generate(emu, FaultPlan(script=[Fault.http(422)]), retry=FAST)
        assert emu.state.endpoint_counts[GENERATE] == 1
