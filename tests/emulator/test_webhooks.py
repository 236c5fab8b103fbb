"""Completion webhooks (D9, D10): Standard Webhooks signatures, retries, redirects, tampering."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson
from standardwebhooks.webhooks import Webhook

from upscale_async.emulator import DeliveryPlan, Emulator, retry_delay

from .support import GENERATE, KEY, Receiver, make_body

HEADERS = {"Api-Key": KEY}
FAST: dict[str, Any] = {"api_keys": [KEY], "webhook_time_scale": 0.001}
Start = Callable[..., Awaitable[Receiver]]


async def submit(session: aiohttp.ClientSession, emu: Emulator, body: Any) -> str:
    async with session.post(emu.base_url + GENERATE, json=body, headers=HEADERS) as response:
        assert response.status == 200
        return str((await response.json())["secure_request_id"])


async def test_signature_verifies_with_reference_package(
    session: aiohttp.ClientSession, receivers: Start
) -> None:
    """The delivery verifies with standardwebhooks and carries the documented payload."""
    receiver = await receivers()
    async with Emulator(**FAST) as emu:
        request_id = await submit(session, emu, make_body(2, url=receiver.url))
        await emu.wait_deliveries(5)
        assert emu.webhook_secret is not None
        [(headers, body, _)] = receiver.calls
        payload = Webhook(emu.webhook_secret).verify(body, headers)
    assert headers["Content-Type"] == "application/json"
    assert payload["secure_request_id"] == request_id
    assert payload["status"] == "complete"
    assert payload["requested_messages_count"] == payload["generated_messages_count"] == 4
    assert payload["completed_at"].endswith("Z")
    assert payload["webhook_triggered_at"].endswith("Z")


async def test_retries_until_2xx_with_same_id(
    session: aiohttp.ClientSession, receivers: Start
) -> None:
    """A receiver answering 500, 500, 200 gets exactly three attempts with the same webhook-id."""
    receiver = await receivers([500, 500, 200])
    async with Emulator(**FAST) as emu:
        request_id = await submit(session, emu, make_body(1, url=receiver.url))
        await emu.wait_deliveries(5)
        log = emu.state.deliveries_for(request_id)
    assert len(receiver.calls) == 3
    assert len({headers["webhook-id"] for headers, _, _ in receiver.calls}) == 1
    triggered = {orjson.loads(body)["webhook_triggered_at"] for _, body, _ in receiver.calls}
    assert len(triggered) == 1
    assert [(r.attempt, r.outcome, r.status) for r in log] == [
        (1, "failed", 500),
        (2, "failed", 500),
        (3, "delivered", 200),
    ]


async def test_no_secret_no_delivery(session: aiohttp.ClientSession, receivers: Start) -> None:
    """Without a webhook secret nothing is sent."""
    receiver = await receivers()
    async with Emulator(api_keys=[KEY], webhook_secret=None) as emu:
        await submit(session, emu, make_body(1, url=receiver.url))
        await asyncio.sleep(0.1)
        await emu.wait_deliveries(1)
        assert emu.state.deliveries == []
    assert receiver.calls == []


async def test_redirect_is_a_failure(session: aiohttp.ClientSession, receivers: Start) -> None:
    """A 3xx counts as a failed attempt and is not followed."""
    receiver = await receivers([302])
    async with Emulator(**FAST) as emu:
        await submit(session, emu, make_body(1, url=receiver.url))
        await emu.wait_deliveries(5)
        outcomes = [(r.outcome, r.status) for r in emu.state.deliveries]
    assert outcomes == [("failed", 302), ("delivered", 200)]
    assert receiver.redirected == 0


async def test_timeout_is_a_failure(session: aiohttp.ClientSession, receivers: Start) -> None:
    """An attempt slower than webhook_timeout fails and is retried."""
    receiver = await receivers(delays=[1.0])
    async with Emulator(**FAST, webhook_timeout=0.1) as emu:
        await submit(session, emu, make_body(1, url=receiver.url))
        await emu.wait_deliveries(5)
        log = emu.state.deliveries
    assert [r.outcome for r in log] == ["failed", "delivered"]
    assert log[0].error is not None
    assert "Timeout" in log[0].error


async def test_connection_errors_use_every_attempt(session: aiohttp.ClientSession) -> None:
    """A receiver that is down gets webhook_attempts attempts, then the event is given up."""
    async with Emulator(**FAST, webhook_attempts=3) as emu:
        await submit(session, emu, make_body(1, url="http://127.0.0.1:9/down"))
        await emu.wait_deliveries(5)
        log = emu.state.deliveries
    assert [(r.attempt, r.outcome, r.status) for r in log] == [
        (1, "failed", None),
        (2, "failed", None),
        (3, "failed", None),
    ]
    assert all(r.error for r in log)


async def test_drop_first_delivery(session: aiohttp.ClientSession, receivers: Start) -> None:
    """drop_first loses the first attempt of chosen events only; the retry arrives."""
    receiver = await receivers()
    async with Emulator(**FAST) as emu:
        emu.set_delivery_plan(DeliveryPlan(drop_first=1, request_ids=lambda rid: True))
        chosen = await submit(session, emu, make_body(1, prefix="a", url=receiver.url))
        emu.set_delivery_plan(DeliveryPlan(drop_first=1, request_ids={"someone-else"}))
        other = await submit(session, emu, make_body(1, prefix="b", url=receiver.url))
        await emu.wait_deliveries(5)
        chosen_log = [r.outcome for r in emu.state.deliveries_for(chosen)]
        other_log = [r.outcome for r in emu.state.deliveries_for(other)]
    assert chosen_log == ["dropped", "delivered"]
    assert other_log == ["delivered"]
    assert len(receiver.calls) == 2


async def test_never_delivered(session: aiohttp.ClientSession, receivers: Start) -> None:
    """drop_first >= webhook_attempts loses the event entirely."""
    receiver = await receivers()
    async with Emulator(**FAST, webhook_attempts=2, deliveries=DeliveryPlan(drop_first=2)) as emu:
        await submit(session, emu, make_body(1, url=receiver.url))
        await emu.wait_deliveries(5)
        assert [r.outcome for r in emu.state.deliveries] == ["dropped", "dropped"]
    assert receiver.calls == []


async def test_duplicate_deliveries(session: aiohttp.ClientSession, receivers: Start) -> None:
    """duplicates=3 delivers the same event three times with the same id and body."""
    receiver = await receivers()
    async with Emulator(**FAST, deliveries=DeliveryPlan(duplicates=3)) as emu:
        await submit(session, emu, make_body(1, url=receiver.url))
        await emu.wait_deliveries(5)
        outcomes = [r.outcome for r in emu.state.deliveries]
    assert outcomes == ["delivered", "duplicate", "duplicate"]
    assert len(receiver.calls) == 3
    assert len({headers["webhook-id"] for headers, _, _ in receiver.calls}) == 1
    assert len({body for _, body, _ in receiver.calls}) == 1


async def test_webhook_after_generation_completes(
    session: aiohttp.ClientSession, receivers: Start
) -> None:
    """The event is sent once the last message is generated, with the final counts."""
    receiver = await receivers()
    async with Emulator(**FAST, messages_per_second=100, failure_rate=0.0) as emu:
        body = make_body(lead_ids=["x_1", "y_nowebpresence"], url=receiver.url)
        await submit(session, emu, body)
        await asyncio.wait_for(receiver.arrived.wait(), 5)
    payload = orjson.loads(receiver.calls[0][1])
    assert payload["requested_messages_count"] == 4
    assert payload["generated_messages_count"] == 2


def test_retry_schedule() -> None:
    """delay_k = k^4 + 15 + U(0, 30k) seconds, times the scale (D10)."""
    rng = random.Random(1)
    assert all(16 <= retry_delay(1, rng, 1.0) <= 46 for _ in range(100))
    assert 24**4 + 15 <= retry_delay(24, rng, 1.0) <= 24**4 + 15 + 720
    assert retry_delay(2, rng, 0.001) < 0.2
    total = sum(k**4 + 15 + 15 * k for k in range(1, 25)) / 86_400
    assert 19 < total < 22  # about 21 days, as documented
