"""WebhookReceiver and webhook_handler over real loopback HTTP."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import hmac
import socket
import time
import warnings
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest
from aiohttp import web

from upscale_async.webhooks import (
    CompletionHub,
    HmacSignatureVerifier,
    StandardWebhooksVerifier,
    WebhookReceiver,
    webhook_handler,
)

from .webhook_support import SECRET, event_body, sign


@pytest.fixture
def hub() -> CompletionHub:
    return CompletionHub()


@pytest.fixture
async def receiver(hub: CompletionHub) -> AsyncIterator[WebhookReceiver]:
    verifier = StandardWebhooksVerifier(SECRET)
    async with WebhookReceiver(hub, verifier=verifier, max_body_size=4096) as rx:
        yield rx


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def post(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    headers: dict[str, str],
    content_type: str = "application/json",
) -> tuple[int, dict[str, object]]:
    async with session.post(url, data=body, headers={"Content-Type": content_type, **headers}) as r:
        return r.status, orjson.loads(await r.read())


async def test_url_and_port_are_real(receiver: WebhookReceiver) -> None:
    """The receiver's url holds the bound port and the route path."""
    assert receiver.port > 0
    assert receiver.url == f"http://127.0.0.1:{receiver.port}/upscale/webhook"


async def test_good_event_acknowledged_and_resolves_waiter(
    hub: CompletionHub, receiver: WebhookReceiver, session: aiohttp.ClientSession
) -> None:
    """A correctly signed event gets 200 and resolves the waiter for its id."""
    waiter = asyncio.create_task(hub.wait("req-1", timeout=5))
    body, headers = sign(event_body("req-1"), msg_id="wh_1")
    status, answer = await post(session, receiver.url, body, headers)
    assert (status, answer) == (200, {"ok": True})
    event = await waiter
    assert (event.secure_request_id, event.webhook_id) == ("req-1", "wh_1")


async def test_unknown_id_acknowledged(
    hub: CompletionHub, receiver: WebhookReceiver, session: aiohttp.ClientSession
) -> None:
    """An event for an id nobody waits on still gets 200 (kept for a late waiter)."""
    body, headers = sign(event_body("nobody-waits"))
    status, _ = await post(session, receiver.url, body, headers)
    assert status == 200
    assert (await hub.wait("nobody-waits", timeout=1)).secure_request_id == "nobody-waits"


async def test_duplicate_delivery_acknowledged(
    receiver: WebhookReceiver, session: aiohttp.ClientSession
) -> None:
    """A redelivery of the same webhook gets 2xx too (so the sender stops retrying)."""
    body, headers = sign(event_body("req-1"), msg_id="wh_dup")
    first = await post(session, receiver.url, body, headers)
    second = await post(session, receiver.url, body, headers)
    assert first == (200, {"ok": True})
    assert second == (200, {"ok": True, "duplicate": True})


async def test_forged_signature_401_resolves_nothing(
    hub: CompletionHub, receiver: WebhookReceiver, session: aiohttp.ClientSession
) -> None:
    """A body signed with another secret gets 401 and resolves no waiter."""
    waiter = asyncio.create_task(hub.wait("req-1"))
    body, headers = sign(event_body("req-1"), secret="whsec_Zm9yZ2VkLXNlY3JldA==")
    status, answer = await post(session, receiver.url, body, headers)
    assert status == 401
    assert "does not match" in str(answer["error"])
    await asyncio.sleep(0.01)
    assert not waiter.done()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert (await hub.stats()).stored_events == 0


async def test_stale_timestamp_401(
    receiver: WebhookReceiver, session: aiohttp.ClientSession
) -> None:
    """A correctly signed but ten-minute-old webhook gets 401 saying it is too old."""
    body, headers = sign(event_body(), timestamp=time.time() - 600)
    status, answer = await post(session, receiver.url, body, headers)
    assert status == 401
    assert "too old" in str(answer["error"])


async def test_malformed_json_400(
    receiver: WebhookReceiver, session: aiohttp.ClientSession
) -> None:
    """A signed body that is not JSON gets 400."""
    body, headers = sign(b"{oops")
    status, answer = await post(session, receiver.url, body, headers)
    assert status == 400
    assert "not valid JSON" in str(answer["error"])


async def test_not_a_completion_event_400(
    receiver: WebhookReceiver, session: aiohttp.ClientSession
) -> None:
    """A signed JSON body without secure_request_id gets 400."""
    body, headers = sign({"event": "something.else"})
    status, _ = await post(session, receiver.url, body, headers)
    assert status == 400


async def test_oversized_body_413(
    receiver: WebhookReceiver, session: aiohttp.ClientSession
) -> None:
    """A body over max_body_size gets 413 (Content-Length checked before reading)."""
    body, headers = sign(event_body(padding="x" * 5000))
    status, _ = await post(session, receiver.url, body, headers)
    assert status == 413


async def test_oversized_chunked_body_413(
    receiver: WebhookReceiver, session: aiohttp.ClientSession
) -> None:
    """A chunked body with no Content-Length is cut off at the limit with 413."""

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 1000

    async with session.post(receiver.url, data=chunks()) as response:
        assert response.status == 413


async def test_other_content_type_still_verified_and_parsed(
    hub: CompletionHub, receiver: WebhookReceiver, session: aiohttp.ClientSession
) -> None:
    """The content type is not trusted: a signed JSON event sent as text/plain is accepted."""
    body, headers = sign(event_body("req-text"))
    status, _ = await post(session, receiver.url, body, headers, content_type="text/plain")
    assert status == 200
    assert (await hub.wait("req-text", timeout=1)).secure_request_id == "req-text"


async def test_form_body_rejected(
    receiver: WebhookReceiver, session: aiohttp.ClientSession
) -> None:
    """A signed form-encoded body is not a completion event: 400."""
    body, headers = sign(b"secure_request_id=r&status=complete")
    status, _ = await post(
        session, receiver.url, body, headers, content_type="application/x-www-form-urlencoded"
    )
    assert status == 400


async def test_garbage_burst_does_not_break_valid_deliveries(
    hub: CompletionHub, receiver: WebhookReceiver, session: aiohttp.ClientSession
) -> None:
    """After a burst of garbage requests, valid webhooks are still accepted and delivered."""
    garbage = [
        (b"", {}),
        (
            b"\xff\xfe\x00",
            {"webhook-id": "x", "webhook-timestamp": "1", "webhook-signature": "v1,"},
        ),
        (b"[]" * 100, {"webhook-signature": "v1,!!!"}),
        (b"{}", {"webhook-timestamp": "9" * 50}),
        sign(b"null"),
        sign(b"\x00\x01"),
    ] * 10
    statuses = await asyncio.gather(*(post(session, receiver.url, b, h) for b, h in garbage))
    assert {status for status, _ in statuses} <= {400, 401}
    waiters = [asyncio.create_task(hub.wait(f"ok-{i}", timeout=5)) for i in range(5)]
    for i in range(5):
        body, headers = sign(event_body(f"ok-{i}"), msg_id=f"wh-ok-{i}")
        assert (await post(session, receiver.url, body, headers))[0] == 200
    assert [e.secure_request_id for e in await asyncio.gather(*waiters)] == [
        f"ok-{i}" for i in range(5)
    ]


async def test_handler_mounts_in_own_app_with_hmac(
    hub: CompletionHub, session: aiohttp.ClientSession
) -> None:
    """webhook_handler works in a user's own aiohttp app, here with a plain HMAC verifier."""
    app = web.Application()
    app.router.add_post("/hooks/upscale", webhook_handler(hub, HmacSignatureVerifier("k3y")))
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        body = orjson.dumps(event_body("req-h"))
        mac = hmac.new(b"k3y", body, hashlib.sha256).hexdigest()
        url = f"http://127.0.0.1:{port}/hooks/upscale"
        status, _ = await post(session, url, body, {"X-Upscale-Signature": mac})
        assert status == 200
        assert (await hub.wait("req-h", timeout=1)).secure_request_id == "req-h"
    finally:
        await runner.cleanup()


async def test_receiver_requires_a_verifier(hub: CompletionHub) -> None:
    """Building a receiver without a verifier is a TypeError (D9: verification is explicit)."""
    with pytest.raises(TypeError):
        WebhookReceiver(hub)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="UnverifiedWebhooks"):
        WebhookReceiver(hub, verifier=None)  # type: ignore[arg-type]


async def test_port_before_start_is_an_error(hub: CompletionHub) -> None:
    """Asking for the port of a receiver that is not running raises RuntimeError."""
    rx = WebhookReceiver(hub, verifier=StandardWebhooksVerifier(SECRET))
    with pytest.raises(RuntimeError, match="not started"):
        _ = rx.port


async def test_receiver_closes_cleanly_with_open_keepalive(hub: CompletionHub) -> None:
    """Closing the receiver while a client keeps a connection open raises no warning."""
    verifier = StandardWebhooksVerifier(SECRET)
    async with aiohttp.ClientSession() as session, WebhookReceiver(hub, verifier=verifier) as rx:
        body, headers = sign(event_body())
        assert (await post(session, rx.url, body, headers))[0] == 200


@pytest.mark.parametrize("turns", range(5))
async def test_closing_while_connections_are_being_accepted_leaks_nothing(
    hub: CompletionHub, turns: int
) -> None:
    """Connections the loop accepted just before ``aclose`` are closed with the rest.

    asyncio accepts a connection in one turn of the loop and makes its transport in a later
    one; a server closed in between used to leave the accepted socket (and a half-made
    transport) open, a ResourceWarning. Some number of turns between the connects and
    ``aclose`` hits that window; the parameter tries each.
    """
    rx = WebhookReceiver(hub, verifier=StandardWebhooksVerifier(SECRET))
    await rx.start()
    clients = [socket.create_connection(("127.0.0.1", rx.port), timeout=5) for _ in range(3)]
    try:
        for _ in range(turns):
            await asyncio.sleep(0)
        await rx.aclose()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gc.collect()
    finally:
        for client in clients:
            client.close()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
