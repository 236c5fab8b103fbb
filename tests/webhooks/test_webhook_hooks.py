"""Event hooks and telemetry on the webhook receiver: accepted, duplicate and rejected webhooks."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web

from upscale_async import (
    EventHooks,
    Telemetry,
    WebhookAcceptedEvent,
    WebhookRejectedEvent,
    WebhookVerificationError,
)
from upscale_async.webhooks import (
    CompletionHub,
    StandardWebhooksVerifier,
    WebhookReceiver,
    webhook_handler,
)

from .webhook_support import OTHER_SECRET, SECRET, event_body, sign


class Counts(Telemetry):
    """A telemetry that records its webhook calls."""

    def __init__(self) -> None:
        self.webhooks: list[tuple[str, int]] = []

    def webhook(self, result: str, status: int) -> None:
        self.webhooks.append((result, status))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def _post(session: aiohttp.ClientSession, url: str, body: bytes, headers: Any) -> int:
    async with session.post(url, data=body, headers=headers) as response:
        return response.status


async def test_receiver_hooks_and_telemetry_hear_every_webhook(
    session: aiohttp.ClientSession,
) -> None:
    """A new webhook, its redelivery and a bad signature reach the hooks and the counts."""
    seen: list[Any] = []

    async def accepted(event: WebhookAcceptedEvent) -> None:
        seen.append(event)

    hooks = EventHooks(on_webhook_accepted=accepted, on_webhook_rejected=seen.append)
    counts = Counts()
    verifier = StandardWebhooksVerifier(SECRET)
    async with (
        CompletionHub() as hub,
        WebhookReceiver(hub, verifier=verifier, hooks=hooks, telemetry=counts) as rx,
    ):
        body, headers = sign(event_body("req-1"), msg_id="wh_1")
        assert await _post(session, rx.url, body, headers) == 200
        assert await _post(session, rx.url, body, headers) == 200
        body, headers = sign(event_body("req-2"), secret=OTHER_SECRET)
        assert await _post(session, rx.url, body, headers) == 401
    new, again, rejected = seen
    assert (new.event.secure_request_id, new.duplicate, again.duplicate) == ("req-1", False, True)
    assert isinstance(rejected, WebhookRejectedEvent)
    assert (rejected.status, type(rejected.error)) == (401, WebhookVerificationError)
    assert rejected.remote == "127.0.0.1"
    assert counts.webhooks == [("received", 200), ("duplicate", 200), ("rejected", 401)]


async def test_a_raising_webhook_hook_keeps_the_answer(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """A webhook hook that raises is logged with its name; the webhook is still answered 200."""

    def broken(event: object) -> None:
        raise RuntimeError("hook bug")

    app = web.Application()
    handler = webhook_handler(
        CompletionHub(),
        StandardWebhooksVerifier(SECRET),
        hooks=EventHooks(on_webhook_accepted=broken),
    )
    app.router.add_post("/hook", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        body, headers = sign(event_body())
        assert await _post(session, f"http://127.0.0.1:{port}/hook", body, headers) == 200
    finally:
        await runner.cleanup()
    assert "event hook on_webhook_accepted raised" in caplog.text


def test_webhook_hooks_and_telemetry_are_checked() -> None:
    """hooks= and telemetry= of the wrong type are refused, naming what to pass."""
    verifier = StandardWebhooksVerifier(SECRET)
    with pytest.raises(TypeError, match=r"hooks must be an upscale_async\.EventHooks"):
        webhook_handler(CompletionHub(), verifier, hooks=print)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="telemetry must be a Telemetry"):
        WebhookReceiver(CompletionHub(), verifier=verifier, telemetry=1)  # type: ignore[arg-type]


async def test_upscale_log_debug_shows_no_key_or_webhook_secret(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A whole run under UPSCALE_LOG=debug logs requests and webhooks, never a secret."""
    from upscale_async import UpscaleClient
    from upscale_async.emulator import Emulator
    from upscale_async.testing import sample_campaign, sample_leads

    monkeypatch.setenv("UPSCALE_LOG", "debug")
    hub = CompletionHub()
    with caplog.at_level(logging.DEBUG, logger="upscale_async"):
        async with (
            Emulator(api_keys=("sk_live_very_secret_key",)) as emu,
            hub,
            WebhookReceiver(hub, verifier=StandardWebhooksVerifier(emu.webhook_secret or "")) as rx,
            UpscaleClient(emu.api_key, base_url=emu.base_url) as client,
        ):
            accepted = await client.request_message_generation(
                sample_campaign(completion_notification_url=rx.url), sample_leads(2)
            )
            with anyio.fail_after(10):
                await client.await_completion(accepted.secure_request_id, hub=hub)
            secret = emu.webhook_secret or ""
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("webhook ") and "accepted (new)" in m for m in messages)
    assert any(m.startswith("POST /messages/request_message_generation -> 200") for m in messages)
    assert "sk_live_very_secret_key" not in caplog.text
    assert secret.removeprefix("whsec_") not in caplog.text
    assert "'Api-Key': '***'" in caplog.text
