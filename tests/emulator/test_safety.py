"""The emulator's own safety: loopback-only webhooks by default, capped and timed request bodies.

No test here sends anything off the machine. The webhook decision is tested alone, as a pure
function. The end-to-end tests use ``http://0.0.0.0:PORT``: the decision refuses it (it is not
loopback) before any socket is created, yet a connection to it, if a bug made one, would still
reach this machine (Linux connects 0.0.0.0 to the local host), so no outward traffic can result.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson
import pytest

from upscale_async import PollPolicy, UpscaleClient
from upscale_async.emulator import Emulator, EmulatorConfig
from upscale_async.emulator._webhooks import refusal
from upscale_async.testing import make_campaign, sample_lead
from upscale_async.webhooks import CompletionHub, StandardWebhooksVerifier, WebhookReceiver

from .support import GENERATE, KEY, Receiver, make_body

HEADERS = {"Api-Key": KEY}
FAST: dict[str, Any] = {"api_keys": [KEY], "webhook_time_scale": 0.001}
LIMITS: dict[str, Any] = {
    "api_keys": [KEY],
    "webhook_secret": None,
    "max_body_size": 1_000,
    "body_timeout": 0.5,
}
ROUTES = [
    pytest.param("POST", GENERATE, id="generate"),
    pytest.param("GET", "/messages/retrieve_messages", id="retrieve"),
    pytest.param("GET", "/get_sequences", id="sequences"),
    pytest.param("GET", "/account", id="account"),
    pytest.param("GET", "/no/such/path", id="unknown-path"),
]
Start = Callable[..., Awaitable[Receiver]]


def via_unspecified(receiver: Receiver) -> str:
    """The receiver's URL through 0.0.0.0: refused by the rule, yet local if ever connected."""
    url = receiver.url.replace("127.0.0.1", "0.0.0.0")
    assert refusal(url) is not None  # the premise: refused before any socket
    return url


async def submit(session: aiohttp.ClientSession, emu: Emulator, body: Any) -> str:
    async with session.post(emu.base_url + GENERATE, json=body, headers=HEADERS) as response:
        assert response.status == 200
        return str((await response.json())["secure_request_id"])


# -- the decision, alone ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://127.0.0.1:9/hook", id="127.0.0.1"),
        pytest.param("http://127.200.3.4/hook", id="127/8"),
        pytest.param("http://[::1]:8080/hook", id="ipv6-loopback"),
        pytest.param("http://localhost:8080/hook", id="localhost"),
        pytest.param("https://LOCALHOST/hook", id="localhost-upper-https"),
    ],
)
def test_loopback_targets_are_allowed(url: str) -> None:
    """Loopback targets (127.0.0.0/8, ::1, localhost) are allowed by default."""
    assert refusal(url) is None


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://hooks.example.com/upscale", id="public-name"),
        pytest.param("http://169.254.169.254/latest/meta-data/", id="cloud-metadata"),
        pytest.param("http://metadata.google.internal/", id="metadata-name"),
        pytest.param("http://10.0.0.1/hook", id="private-ip"),
        pytest.param("http://8.8.8.8/hook", id="public-ip"),
        pytest.param("http://0.0.0.0:9/hook", id="unspecified"),
        pytest.param("http://[::ffff:169.254.169.254]/", id="ipv4-mapped"),
        pytest.param("http://2130706433/hook", id="decimal-ip"),
        pytest.param("http://localhost.attacker.example/", id="localhost-prefix"),
        pytest.param("http://127.0.0.1.nip.io/hook", id="loopback-lookalike-name"),
        pytest.param("http://127.0.0.1@attacker.example/hook", id="userinfo-trick"),
        pytest.param("ftp://127.0.0.1/hook", id="non-http-scheme"),
        pytest.param("http:///hook", id="no-host"),
    ],
)
def test_other_targets_are_refused(url: str) -> None:
    """Every non-loopback target, host names included (never resolved), is refused by default."""
    assert refusal(url) is not None


def test_opt_in_allows_external_targets() -> None:
    """allow_external_webhooks lifts the rule."""
    assert refusal("https://hooks.example.com/upscale", allow_external=True) is None


def test_external_webhooks_are_off_by_default() -> None:
    """EmulatorConfig refuses external webhooks unless told otherwise."""
    assert EmulatorConfig().allow_external_webhooks is False
    assert EmulatorConfig(allow_external_webhooks=True).allow_external_webhooks is True


def test_body_timeout_must_be_positive() -> None:
    """A body_timeout of 0 is refused at construction."""
    with pytest.raises(ValueError, match="body_timeout"):
        EmulatorConfig(body_timeout=0)


# -- the decision, end to end -----------------------------------------------------------------
async def test_refused_delivery_is_recorded_not_sent(
    session: aiohttp.ClientSession, receivers: Start
) -> None:
    """A non-loopback webhook target gets one "refused" record and no request at all."""
    receiver = await receivers()
    url = via_unspecified(receiver)
    async with Emulator(**FAST) as emu:
        request_id = await submit(session, emu, make_body(1, url=url))
        await emu.wait_deliveries(5)
        log = emu.state.deliveries_for(request_id)
    assert [(r.attempt, r.outcome, r.status, r.url) for r in log] == [(1, "refused", None, url)]
    assert log[0].error is not None
    assert "0.0.0.0" in log[0].error
    assert receiver.calls == []


async def test_refusal_logs_one_warning_naming_url_and_opt_in(
    session: aiohttp.ClientSession, receivers: Start, caplog: pytest.LogCaptureFixture
) -> None:
    """A refused delivery logs one warning naming the URL and the opt-in."""
    caplog.set_level(logging.WARNING, logger="upscale_async.emulator")
    url = via_unspecified(await receivers())
    async with Emulator(**FAST) as emu:
        await submit(session, emu, make_body(1, url=url))
        await emu.wait_deliveries(5)
    [record] = [r for r in caplog.records if r.name == "upscale_async.emulator"]
    assert record.levelno == logging.WARNING
    assert url in record.getMessage()
    assert "--allow-external-webhooks" in record.getMessage()


async def test_opt_in_delivers_to_a_non_loopback_target(
    session: aiohttp.ClientSession, receivers: Start
) -> None:
    """With allow_external_webhooks=True a non-loopback target is delivered to."""
    receiver = await receivers()
    url = via_unspecified(receiver)
    async with Emulator(**FAST, allow_external_webhooks=True) as emu:
        await submit(session, emu, make_body(1, url=url))
        await emu.wait_deliveries(5)
        outcomes = [r.outcome for r in emu.state.deliveries]
    assert outcomes == ["delivered"]
    assert len(receiver.calls) == 1


async def test_waiter_falls_back_to_polling_when_refused() -> None:
    """A waiter whose webhook is refused still completes, through the fallback poll."""
    hub = CompletionHub()
    async with Emulator(webhook_time_scale=0.001) as emu:
        verifier = StandardWebhooksVerifier(emu.webhook_secret or "")
        async with (
            WebhookReceiver(hub, verifier=verifier) as receiver,
            UpscaleClient(emu.api_key, base_url=emu.base_url) as client,
        ):
            url = receiver.url.replace("127.0.0.1", "0.0.0.0")
            assert refusal(url) is not None
            campaign = make_campaign(completion_notification_url=url)
            accepted = await client.request_message_generation(campaign, [sample_lead(1)])
            poll = PollPolicy(initial=0.05, fallback_interval=0.2)
            [result] = await client.await_completion(
                [accepted.secure_request_id], hub=hub, poll=poll, timeout=10
            )
        assert result.is_complete
        assert [d.outcome for d in emu.state.deliveries] == ["refused"]


# -- request bodies ---------------------------------------------------------------------------
async def exchange(
    emu: Emulator, head: bytes, body: bytes = b"", *, trickle: float | None = None
) -> tuple[int, dict[str, Any], float]:
    """Send raw bytes on a new connection; return the status, the JSON body and the seconds.

    ``trickle`` sends the body one byte every that many seconds until the answer arrives (at
    most the whole body: bounded in count and time).
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", emu.port)
    started = time.monotonic()
    try:
        writer.write(head)
        if trickle is None:
            writer.write(body)
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(65_536), 10)
        else:
            read = asyncio.ensure_future(reader.read(65_536))
            try:
                for byte in body:
                    writer.write(bytes([byte]))
                    await writer.drain()
                    done, _ = await asyncio.wait({read}, timeout=trickle)
                    if done:
                        break
                answer = await asyncio.wait_for(read, 10)
            finally:
                read.cancel()
        elapsed = time.monotonic() - started
    finally:
        writer.close()
        await writer.wait_closed()
    status_line, _, rest = answer.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), orjson.loads(payload), elapsed


def request_head(method: str, path: str, emu: Emulator, *headers: str) -> bytes:
    lines = [f"{method} {emu.base_url.removeprefix(emu.url)}{path} HTTP/1.1", "Host: x"]
    lines += [f"Api-Key: {KEY}", "Content-Type: application/json", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_declared_oversized_body_is_refused_unread(method: str, path: str) -> None:
    """A Content-Length over max_body_size is answered 413 at once, on every route, unread."""
    async with Emulator(**LIMITS) as emu:
        head = request_head(method, path, emu, f"Content-Length: {10**12}")
        status, body, _ = await exchange(emu, head)
        assert emu.state.accepted == 0
    assert status == 413
    assert body["error"] == "Request body too large: at most 1000 bytes are accepted"


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_chunked_body_over_the_cap_is_413(method: str, path: str) -> None:
    """A chunked body (no Content-Length) longer than max_body_size is 413 on every route."""
    async with Emulator(**LIMITS) as emu:
        head = request_head(method, path, emu, "Transfer-Encoding: chunked")
        chunk = b"x" * 600
        body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(3)) + b"0\r\n\r\n"
        status, answer, _ = await exchange(emu, head, body)
    assert status == 413
    assert "at most 1000 bytes" in answer["error"]


@pytest.mark.parametrize(
    ("size", "expected"),
    [pytest.param(1_000, 400, id="at-the-cap-is-read"), pytest.param(1_001, 413, id="one-over")],
)
async def test_cap_boundary_is_exact(size: int, expected: int) -> None:
    """A chunked body of exactly max_body_size bytes is read (then 400: not JSON); one more is 413."""
    async with Emulator(**LIMITS) as emu:
        head = request_head("POST", GENERATE, emu, "Transfer-Encoding: chunked")
        body = b"%x\r\n%s\r\n0\r\n\r\n" % (size, b"x" * size)
        status, _, _ = await exchange(emu, head, body)
    assert status == expected


async def test_body_shorter_than_declared_times_out_with_408() -> None:
    """A body that stops short of its Content-Length is answered 408 after body_timeout."""
    async with Emulator(**LIMITS) as emu:
        head = request_head("POST", GENERATE, emu, "Content-Length: 500")
        status, body, elapsed = await exchange(emu, head, b'{"lead_data": [')
        assert emu.state.accepted == 0
    assert status == 408
    assert body["error"] == "Request timeout: the body was not received within 0.5 s"
    assert 0.4 <= elapsed < 8


async def test_body_sent_a_byte_at_a_time_times_out_with_408() -> None:
    """A body trickled a byte at a time is cut off at body_timeout, however long it keeps on."""
    async with Emulator(**LIMITS) as emu:
        body = orjson.dumps(make_body(1))[:400]
        head = request_head("POST", GENERATE, emu, f"Content-Length: {len(body)}")
        status, _, elapsed = await exchange(emu, head, body, trickle=0.02)
    assert status == 408
    assert elapsed < 6  # the whole body would take at least 8 s at this pace


# -- --verbose ----------------------------------------------------------------------------------
async def test_verbose_logs_each_request(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """verbose=True logs method, path, status and elapsed time of each request."""
    caplog.set_level(logging.INFO, logger="upscale_async.emulator")
    async with Emulator(api_keys=[KEY], webhook_secret=None, verbose=True) as emu:
        async with session.get(emu.base_url + "/account", headers=HEADERS) as response:
            assert response.status == 200
    [line] = [r.getMessage() for r in caplog.records if r.name == "upscale_async.emulator"]
    assert line.startswith("GET /api/v2/account 200 ")
    assert line.endswith(" ms")


async def test_verbose_logs_each_delivery(
    session: aiohttp.ClientSession, receivers: Start, caplog: pytest.LogCaptureFixture
) -> None:
    """verbose=True logs each webhook attempt with its URL, attempt number and outcome."""
    caplog.set_level(logging.INFO, logger="upscale_async.emulator")
    receiver = await receivers([500])
    async with Emulator(**FAST, verbose=True) as emu:
        await submit(session, emu, make_body(1, url=receiver.url))
        await emu.wait_deliveries(5)
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("webhook ")]
    assert lines == [
        f"webhook {receiver.url} attempt 1: failed 500",
        f"webhook {receiver.url} attempt 2: delivered 200",
    ]


async def test_quiet_by_default(
    session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """Without verbose, a request logs nothing."""
    caplog.set_level(logging.DEBUG, logger="upscale_async.emulator")
    async with Emulator(api_keys=[KEY], webhook_secret=None) as emu:
        async with session.get(emu.base_url + "/account", headers=HEADERS) as response:
            assert response.status == 200
    assert [r for r in caplog.records if r.name == "upscale_async.emulator"] == []
