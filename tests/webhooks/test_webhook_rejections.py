"""``on_rejected``: the application hears of every webhook the receiver or the handler rejects."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from upscale_async import WebhookPayloadError, WebhookVerificationError
from upscale_async.webhooks import (
    CompletionHub,
    StandardWebhooksVerifier,
    WebhookReceiver,
    webhook_handler,
)

from .webhook_support import OTHER_SECRET, SECRET, event_body, sign

Rejection = WebhookVerificationError | WebhookPayloadError


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def _status(
    session: aiohttp.ClientSession, url: str, body: bytes, headers: dict[str, str]
) -> int:
    async with session.post(url, data=body, headers=headers) as response:
        return response.status


async def test_receiver_reports_each_bad_signature(session: aiohttp.ClientSession) -> None:
    """Each webhook signed with another secret is answered 401 and passed to on_rejected."""
    seen: list[Rejection] = []
    verifier = StandardWebhooksVerifier(SECRET)
    async with WebhookReceiver(CompletionHub(), verifier=verifier, on_rejected=seen.append) as rx:
        for n in range(3):
            body, headers = sign(event_body(f"req-{n}"), secret=OTHER_SECRET, msg_id=f"m{n}")
            assert await _status(session, rx.url, body, headers) == 401
    assert [type(e) for e in seen] == [WebhookVerificationError] * 3


async def test_receiver_reports_bad_body_and_too_large(session: aiohttp.ClientSession) -> None:
    """A signed body that is not an event (400) and one over the size limit (413) are reported."""
    seen: list[Rejection] = []
    verifier = StandardWebhooksVerifier(SECRET)
    hub = CompletionHub()
    async with WebhookReceiver(
        hub, verifier=verifier, max_body_size=512, on_rejected=seen.append
    ) as rx:
        body, headers = sign(b"{oops")
        assert await _status(session, rx.url, body, headers) == 400
        body, headers = sign(event_body(padding="x" * 1000))
        assert await _status(session, rx.url, body, headers) == 413
    assert [type(e) for e in seen] == [WebhookPayloadError, WebhookPayloadError]
    assert "larger than the limit of 512" in str(seen[1])


async def test_receiver_does_not_report_good_webhooks(session: aiohttp.ClientSession) -> None:
    """A correctly signed event and its redelivery are not rejections."""
    seen: list[Rejection] = []
    verifier = StandardWebhooksVerifier(SECRET)
    async with WebhookReceiver(CompletionHub(), verifier=verifier, on_rejected=seen.append) as rx:
        body, headers = sign(event_body("req-1"), msg_id="wh_1")
        assert await _status(session, rx.url, body, headers) == 200
        assert await _status(session, rx.url, body, headers) == 200
    assert seen == []


async def test_callback_that_raises_keeps_the_answer(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """An on_rejected that raises is logged, and the webhook is still answered 401."""

    def broken(error: Rejection) -> None:
        raise RuntimeError("callback bug")

    verifier = StandardWebhooksVerifier(SECRET)
    async with WebhookReceiver(CompletionHub(), verifier=verifier, on_rejected=broken) as rx:
        body, headers = sign(event_body(), secret=OTHER_SECRET)
        assert await _status(session, rx.url, body, headers) == 401
    assert "on_rejected raised" in caplog.text
    assert "callback bug" in caplog.text


async def test_handler_reports_bad_signature() -> None:
    """webhook_handler(on_rejected=...) in one's own app reports a bad signature too."""
    seen: list[Rejection] = []
    app = web.Application()
    handler = webhook_handler(
        CompletionHub(), StandardWebhooksVerifier(SECRET), on_rejected=seen.append
    )
    app.router.add_post("/hook", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        body, headers = sign(event_body(), secret=OTHER_SECRET)
        async with aiohttp.ClientSession() as s:
            assert await _status(s, f"http://127.0.0.1:{port}/hook", body, headers) == 401
    finally:
        await runner.cleanup()
    assert len(seen) == 1
    assert "does not match" in str(seen[0])


def test_on_rejected_must_be_callable() -> None:
    """A non-callable on_rejected is a TypeError at construction."""
    with pytest.raises(TypeError, match="on_rejected must be callable"):
        webhook_handler(CompletionHub(), StandardWebhooksVerifier(SECRET), on_rejected=3)  # type: ignore[arg-type]
