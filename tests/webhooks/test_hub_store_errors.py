"""A shared store that cannot be reached: waiters keep waiting (then poll), deliveries answer 503."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest

from upscale_async import PollPolicy, UpscaleClient
from upscale_async.emulator import Emulator
from upscale_async.testing import make_campaign, sample_lead
from upscale_async.webhooks import (
    CompletionEvent,
    CompletionHub,
    StandardWebhooksVerifier,
    WebhookReceiver,
)

from .linked_backend import LinkedBackend, SharedStore
from .webhook_support import SECRET, event_body, sign


def event(request_id: str = "req-1") -> CompletionEvent:
    return CompletionEvent(secure_request_id=request_id, status="complete", webhook_id="wh-1")


@pytest.fixture
async def linked() -> AsyncIterator[tuple[CompletionHub, LinkedBackend]]:
    backend = LinkedBackend(SharedStore(), "a")
    async with CompletionHub(backend=backend) as hub:
        yield hub, backend


async def test_a_failed_lookup_leaves_the_waiter_waiting_until_its_timeout(
    linked: tuple[CompletionHub, LinkedBackend], caplog: pytest.LogCaptureFixture
) -> None:
    """take raising makes wait time out (the caller then polls), not raise the store's error."""
    hub, backend = linked
    backend.fail.add("take")
    with caplog.at_level(logging.WARNING, logger="upscale_async.webhooks"):
        with pytest.raises(TimeoutError):
            await hub.wait("req-1", timeout=0.05)
    assert not hub.is_waiting("req-1")
    assert "the completion store failed in take for req-1" in caplog.text


async def test_a_waiter_whose_lookup_failed_is_still_woken_by_a_delivery(
    linked: tuple[CompletionHub, LinkedBackend],
) -> None:
    """After a failed take the waiter stays registered: a later delivery resolves it."""
    hub, backend = linked
    backend.fail.add("take")
    waiter = asyncio.create_task(hub.wait("req-1"))
    await asyncio.sleep(0.01)
    assert hub.is_waiting("req-1")
    backend.fail.discard("take")
    assert await hub.deliver(event()) is True
    assert await waiter == event()


async def test_a_failed_record_still_wakes_this_hubs_waiters_then_raises(
    linked: tuple[CompletionHub, LinkedBackend],
) -> None:
    """record raising: the local waiter is resolved, and deliver raises the store's error."""
    hub, backend = linked
    waiter = asyncio.create_task(hub.wait("req-1", timeout=2))
    await asyncio.sleep(0.01)
    backend.fail.add("record")
    with pytest.raises(ConnectionError, match="store unreachable during record"):
        await hub.deliver(event())
    assert await waiter == event()


async def test_the_receiver_answers_503_when_the_store_fails(
    linked: tuple[CompletionHub, LinkedBackend], caplog: pytest.LogCaptureFixture
) -> None:
    """A webhook the hub cannot share is answered 503 (retried by Upscale), not 500; logged."""
    hub, backend = linked
    backend.fail.add("record")
    async with (
        WebhookReceiver(hub, verifier=StandardWebhooksVerifier(SECRET)) as rx,
        aiohttp.ClientSession() as session,
    ):
        waiter = asyncio.create_task(hub.wait("req-1", timeout=2))
        await asyncio.sleep(0.01)
        body, headers = sign(event_body("req-1"))
        with caplog.at_level(logging.WARNING, logger="upscale_async.webhooks"):
            async with session.post(rx.url, data=body, headers=headers) as response:
                answer = (response.status, await response.json())
    assert answer == (
        503,
        {"ok": False, "error": "the completion store is unavailable; retry later"},
    )
    assert (await waiter).secure_request_id == "req-1"
    assert "webhook for req-1 answered 503, to be retried by its sender" in caplog.text
    assert "ConnectionError: a: store unreachable during record" in caplog.text


async def test_await_completion_polls_when_the_store_cannot_be_reached() -> None:
    """With every store call failing, await_completion still completes, by its fallback poll."""
    backend = LinkedBackend(SharedStore(), "a")
    backend.fail.update({"take", "record", "keep"})
    async with (
        CompletionHub(backend=backend) as hub,
        Emulator(webhook_secret=None) as emu,
        UpscaleClient(emu.api_key, base_url=emu.base_url) as client,
    ):
        accepted = await client.request_message_generation(make_campaign(), [sample_lead(1)])
        async with asyncio.timeout(10):
            (result,) = await client.await_completion(
                accepted.secure_request_id,
                hub=hub,
                poll=PollPolicy(fallback_interval=0.2),
                timeout=10,
            )
    assert result.is_complete
