"""WebhookReceiver under abuse: head deadline, keep-alive, connection bound, head size, logs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, suppress

import aiohttp
import pytest

from upscale_async.webhooks import (
    CompletionHub,
    ReceiverLimits,
    StandardWebhooksVerifier,
    WebhookReceiver,
)

from .webhook_support import SECRET, event_body, sign

HEAD = b"POST /upscale/webhook HTTP/1.1\r\nHost: 127.0.0.1\r\n"
# Generous for a loaded 2-core machine; the limits under test are a fraction of it.
SETTLE = 8.0


def receiver(**limits: float) -> WebhookReceiver:
    return WebhookReceiver(
        CompletionHub(),
        verifier=StandardWebhooksVerifier(SECRET),
        limits=ReceiverLimits(**limits),  # type: ignore[arg-type]
    )


async def is_closed_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """True when the server closes the connection (EOF or reset) within ``seconds``."""
    try:
        async with asyncio.timeout(seconds):
            while await reader.read(65536):
                pass
    except TimeoutError:
        return False
    except ConnectionError:
        pass
    return True


async def open_raw(
    rx: WebhookReceiver, stack: AsyncExitStack
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", rx.port)
    stack.push_async_callback(close_writer, writer)
    return reader, writer


async def close_writer(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with suppress(ConnectionError):
        await writer.wait_closed()


def signed_request(request_id: str, msg_id: str) -> bytes:
    body, headers = sign(event_body(request_id), msg_id=msg_id)
    lines = [f"{k}: {v}" for k, v in headers.items()]
    lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return HEAD + "\r\n".join(lines).encode() + b"\r\n\r\n" + body


async def read_status(reader: asyncio.StreamReader) -> int:
    async with asyncio.timeout(SETTLE):
        status_line = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            if name.lower() == "content-length":
                length = int(value)
        await reader.readexactly(length)
    return int(status_line.split()[1])


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


async def post_valid(session: aiohttp.ClientSession, rx: WebhookReceiver, n: int) -> int:
    body, headers = sign(event_body(f"req-{n}"), msg_id=f"msg_{n}")
    async with session.post(rx.url, data=body, headers=headers) as response:
        await response.read()
        return response.status


async def test_unfinished_head_is_closed_after_header_timeout() -> None:
    """A connection that stops in the middle of its headers is closed after header_timeout."""
    async with receiver(header_timeout=0.5) as rx, AsyncExitStack() as stack:
        reader, writer = await open_raw(rx, stack)
        writer.write(HEAD + b"X-Slow: " + b"a" * 1000)
        assert await is_closed_within(reader, SETTLE)


async def test_silent_connection_is_closed_after_header_timeout() -> None:
    """A connection that never sends a byte is closed after header_timeout."""
    async with receiver(header_timeout=0.5) as rx, AsyncExitStack() as stack:
        reader, _ = await open_raw(rx, stack)
        assert await is_closed_within(reader, SETTLE)


async def test_idle_keepalive_connection_is_closed_after_keepalive_timeout() -> None:
    """After a request, an idle keep-alive connection is closed after keepalive_timeout."""
    async with receiver(header_timeout=60, keepalive_timeout=0.5) as rx, AsyncExitStack() as s:
        reader, writer = await open_raw(rx, s)
        writer.write(signed_request("req-1", "msg_1"))
        assert await read_status(reader) == 200
        assert await is_closed_within(reader, SETTLE)


async def test_idle_keepalive_connection_outlives_the_header_timeout() -> None:
    """An idle keep-alive connection is not closed by the head deadline, only by keep-alive."""
    async with receiver(header_timeout=0.2, keepalive_timeout=60) as rx, AsyncExitStack() as s:
        reader, writer = await open_raw(rx, s)
        writer.write(signed_request("req-1", "msg_1"))
        assert await read_status(reader) == 200
        await asyncio.sleep(1.0)  # five head deadlines, idle
        writer.write(signed_request("req-2", "msg_2"))
        assert await read_status(reader) == 200


async def test_head_over_max_header_size_is_closed_at_once() -> None:
    """A request head growing past max_header_size closes the connection before the deadline."""
    async with receiver(header_timeout=60, max_header_size=4096) as rx, AsyncExitStack() as s:
        reader, writer = await open_raw(rx, s)
        for i in range(10):  # 10 headers of 1,000 bytes, each under aiohttp's own line cap
            writer.write(b"X-Pad-%d: %s\r\n" % (i, b"a" * 1000) if i else HEAD)
        assert await is_closed_within(reader, SETTLE)


async def test_idle_sockets_beyond_the_bound_leave_room_for_a_valid_webhook(
    session: aiohttp.ClientSession,
) -> None:
    """With 40 idle sockets against max_connections=20, 20 are open and a webhook gets 200."""
    async with receiver(header_timeout=60, max_connections=20) as rx, AsyncExitStack() as s:
        for _ in range(40):
            await open_raw(rx, s)
        await asyncio.sleep(0.1)
        assert rx.open_connections == 20
        assert await post_valid(session, rx, 1) == 200
        assert rx.open_connections <= 20


async def test_connections_in_a_request_are_not_closed_for_a_new_one() -> None:
    """At the bound with every connection in a request, a new connection is refused at once."""
    async with receiver(header_timeout=60, max_connections=5) as rx, AsyncExitStack() as s:
        busy = []
        for _ in range(5):  # heads complete, bodies promised but not sent: in a request
            reader, writer = await open_raw(rx, s)
            writer.write(HEAD + b"Content-Length: 100\r\n\r\n")
            busy.append(reader)
        await asyncio.sleep(0.2)
        newcomer, _ = await open_raw(rx, s)
        assert await is_closed_within(newcomer, SETTLE)
        assert rx.refused_connections == 1
        assert not any(r.at_eof() for r in busy)


async def test_log_lines_under_a_flood_are_rate_limited(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """1,000 bad requests (unsigned, and malformed HTTP) write at most 10 lines and a summary."""
    caplog.set_level(logging.INFO)
    rx = receiver(max_log_lines=10, log_period=600)
    async with rx, AsyncExitStack() as stack:

        async def unsigned(k: int) -> None:
            body = b'{"secure_request_id": "x", "status": "complete"}'
            async with session.post(rx.url, data=body) as response:
                assert response.status == 401

        async def malformed() -> None:
            reader, writer = await open_raw(rx, stack)
            writer.write(b"POST /upscale/webhook HTTP/1.1\r\nbad header line\r\n\r\n")
            assert await read_status(reader) == 400

        for start in range(0, 900, 50):
            await asyncio.gather(*(unsigned(k) for k in range(start, start + 50)))
        for _ in range(100):
            await malformed()
    records = [r for r in caplog.records if r.name.startswith(("upscale_async", "aiohttp"))]
    assert len(records) <= 11
    assert "log lines suppressed" in records[-1].getMessage()


@pytest.mark.parametrize(
    ("request_line", "status"),
    [
        (b"POST /elsewhere HTTP/1.1\r\n", 404),
        (b"GET /upscale/webhook HTTP/1.1\r\n", 405),
        (b"GET /upscale/webhook/more HTTP/1.1\r\n", 404),
    ],
)
async def test_after_a_404_or_405_the_next_head_is_timed_again(
    request_line: bytes, status: int
) -> None:
    """Every route tells the guard its request is done, so a keep-alive connection that got a
    404 or 405 cannot then hold the receiver with a head it never finishes."""
    async with receiver(header_timeout=0.5, keepalive_timeout=60) as rx, AsyncExitStack() as s:
        reader, writer = await open_raw(rx, s)
        writer.write(request_line + b"Host: 127.0.0.1\r\nContent-Length: 0\r\n\r\n")
        assert await read_status(reader) == status
        writer.write(HEAD + b"X-Slow: " + b"a" * 100)  # a second head, never finished
        assert await is_closed_within(reader, SETTLE)


async def test_other_paths_answer_404_and_other_methods_405_with_allow_post(
    session: aiohttp.ClientSession,
) -> None:
    """The receiver answers like aiohttp's router: 404 elsewhere, 405 (Allow: POST) here."""
    async with receiver() as rx:
        base = rx.url.removesuffix("/upscale/webhook")
        async with session.post(base + "/other", data=b"{}") as response:
            assert response.status == 404
        for method in ("GET", "PUT", "HEAD", "DELETE"):
            async with session.request(method, rx.url) as response:
                assert response.status == 405
                assert response.headers["Allow"] == "POST"
        assert await post_valid(session, rx, 1) == 200
