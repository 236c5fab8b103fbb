"""Attacks on WebhookReceiver: nothing forged, replayed or malformed resolves a waiter."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
import time
import tracemalloc

import aiohttp
import anyio
import orjson

from upscale_async.webhooks import (
    CompletionHub,
    HmacSignatureVerifier,
    StandardWebhooksVerifier,
    WebhookReceiver,
)

from ..webhooks.webhook_support import OTHER_SECRET, SECRET, event_body, sign

IDS = [f"req-{i}" for i in range(20)]


async def test_attacks_resolve_nothing_and_valid_webhooks_keep_flowing() -> None:
    """Forged, replayed, future, oversized, malformed, mistyped and 1,000 garbage requests."""
    hub = CompletionHub()
    now = [time.time()]
    verifier = StandardWebhooksVerifier(SECRET, clock=lambda: now[0])
    waiters = {i: asyncio.ensure_future(hub.wait(i)) for i in IDS}
    rng = random.Random(9)
    async with (
        WebhookReceiver(hub, verifier=verifier, max_body_size=8192) as receiver,
        aiohttp.ClientSession() as session,
    ):

        async def send(
            body: bytes, headers: dict[str, str], ctype: str = "application/json"
        ) -> int:
            async with session.post(
                receiver.url, data=body, headers={"Content-Type": ctype, **headers}
            ) as response:
                await response.read()
                return response.status

        # A genuine delivery, captured for a replay attack later.
        captured = sign(event_body("req-captured"), msg_id="msg_captured")
        assert await send(*captured) == 200

        statuses = [
            await send(*sign(event_body("req-0"), secret=OTHER_SECRET)),  # forged
            await send(*sign(event_body("req-1"), timestamp=now[0] + 3600)),  # future
            await send(*sign(event_body("req-2"), timestamp=now[0] - 3600)),  # stale
            await send(*sign(b"x" * 20_000)),  # oversized
            await send(*sign(b"{not json")),  # malformed JSON
            await send(
                *sign(b"secure_request_id=req-3&status=complete"),
                "application/x-www-form-urlencoded",
            ),  # wrong content type
            await send(orjson_event("req-4"), {}),  # unsigned
        ]
        assert statuses == [401, 401, 401, 413, 400, 400, 401]

        now[0] += 600  # ten minutes later, the captured delivery is replayed
        assert await send(*captured) == 401

        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]

        async def garbage(k: int) -> int:
            body = rng.randbytes(rng.randint(0, 4000))
            headers = {
                "webhook-id": f"msg_{k}",
                "webhook-timestamp": str(int(now[0])),
                "webhook-signature": "v1," + rng.randbytes(32).hex(),
            }
            return await send(body, headers, rng.choice(["application/json", "text/plain"]))

        garbage_statuses: list[int] = []

        async def fire(start: int) -> None:
            for k in range(start, start + 100):
                garbage_statuses.append(await garbage(k))

        async with anyio.create_task_group() as tg:
            for start in range(0, 1_000, 100):
                tg.start_soon(fire, start)
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()

        assert len(garbage_statuses) == 1_000
        assert set(garbage_statuses) <= {400, 401, 413}
        assert not any(w.done() for w in waiters.values())
        stats = await hub.stats()
        assert stats.stored_events == 1  # only the genuine, captured event
        assert grown < 2_000_000  # bounded: nothing from the garbage is kept

        # Valid webhooks are still served.
        for i in IDS:
            assert await send(*sign(event_body(i), msg_id=f"msg_ok_{i}", timestamp=now[0])) == 200
        events = await asyncio.gather(*waiters.values())
        assert [e.secure_request_id for e in events] == IDS
    assert (await hub.stats()).waiters == 0


def orjson_event(request_id: str) -> bytes:
    return orjson.dumps(event_body(request_id))


async def test_replay_under_a_non_utf8_webhook_id_is_refused() -> None:
    """A captured delivery re-sent under an id with undecodable bytes gets 401, not 200."""
    hub = CompletionHub()
    async with WebhookReceiver(hub, verifier=StandardWebhooksVerifier(SECRET)) as receiver:
        # The signature covers "msg_?", which "msg_\xff" became under replacement decoding.
        body, headers = sign(event_body("req-mangled"), msg_id="msg_?")
        head = b"".join(
            b"%s: %s\r\n" % (k.encode(), b"msg_\xff" if k == "webhook-id" else v.encode())
            for k, v in headers.items()
        )
        reader, writer = await asyncio.open_connection("127.0.0.1", receiver.port)
        try:
            writer.write(
                b"POST /upscale/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                b"Content-Length: %d\r\n%s\r\n%s" % (len(body), head, body)
            )
            async with asyncio.timeout(10):
                status_line = await reader.readline()
        finally:
            writer.close()
            await writer.wait_closed()
    assert status_line.split()[1] == b"401"
    assert (await hub.stats()).stored_events == 0


async def test_hmac_body_replayed_under_fresh_ids_is_a_duplicate() -> None:
    """A captured plain-HMAC delivery replayed with new webhook-id headers is a duplicate."""
    hub = CompletionHub()
    verifier = HmacSignatureVerifier(b"k3y")
    body = orjson.dumps(event_body("req-hmac"))
    signature = hmac.new(b"k3y", body, hashlib.sha256).hexdigest()
    async with (
        WebhookReceiver(hub, verifier=verifier) as receiver,
        aiohttp.ClientSession() as session,
    ):
        answers = []
        for k in range(5):
            headers = {"X-Upscale-Signature": signature, "webhook-id": f"msg_fresh_{k}"}
            async with session.post(receiver.url, data=body, headers=headers) as response:
                answers.append((response.status, orjson.loads(await response.read())))
    assert answers[0] == (200, {"ok": True})
    assert answers[1:] == [(200, {"ok": True, "duplicate": True})] * 4
