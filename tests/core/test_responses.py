"""Responses under attack: bodies that do not fit, bodies too large, clear-text and URL secrets."""

from __future__ import annotations

import gzip
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import pytest
from aiohttp import web

from upscale_async import (
    DEFAULT_MAX_RESPONSE_SIZE,
    ConfigurationError,
    RateLimitError,
    ResponseValidationError,
    RetryPolicy,
    TransportError,
    UpscaleClient,
)
from upscale_async._wire import structure_retrieved

KEY = "sk_test_key"
MiB = 1024 * 1024
ONE_TRY = RetryPolicy(attempts=1)
META = {"request_message_generation_api_request_secure_request_id": "x"}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[str]:
    """A one-route aiohttp server on 127.0.0.1 (random port); yields its base URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def _json(body: bytes, **headers: str) -> Handler:
    async def handler(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json", headers=headers)

    return handler


# -- 2xx bodies that do not fit -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "path"),
    [
        pytest.param({"campaign": {"leads_data": []}}, "metadata is missing", id="no-metadata"),
        pytest.param({"metadata": META}, "campaign is missing", id="no-campaign"),
        pytest.param(
            {"metadata": META, "campaign": None}, "campaign should be", id="null-campaign"
        ),
        pytest.param(
            {"metadata": META, "campaign": {}}, "campaign.leads_data is missing", id="no-leads-data"
        ),
        pytest.param(
            {"metadata": META, "campaign": {"leads_data": {}}},
            "campaign.leads_data should be an array",
            id="leads-data-not-list",
        ),
    ],
)
def test_retrieve_body_missing_a_part_names_it(body: dict[str, Any], path: str) -> None:
    """A retrieve body without metadata, campaign or leads_data raises naming the path."""
    with pytest.raises(ResponseValidationError, match=path):
        structure_retrieved(body, 200)


async def test_a_200_retrieve_without_metadata_is_not_complete() -> None:
    """A 200 retrieve answer without metadata raises ResponseValidationError, not 'complete'."""
    async with serve(_json(b'{"campaign": {"leads_data": []}}')) as base:
        async with UpscaleClient(KEY, base_url=base, retry=ONE_TRY) as client:
            with pytest.raises(ResponseValidationError, match="metadata is missing"):
                await client.retrieve_messages("some-id")


# -- the size cap -------------------------------------------------------------------------------


async def test_a_body_over_its_content_length_cap_raises() -> None:
    """A body whose Content-Length passes the cap raises with the size, the cap and the fix."""
    body = b'"' + b"x" * (2 * MiB) + b'"'
    async with serve(_json(body)) as base:
        async with UpscaleClient(KEY, base_url=base, max_response_size=MiB) as client:
            with pytest.raises(ResponseValidationError) as info:
                await client.get_account()
    text = str(info.value)
    assert f"{len(body)} bytes" in text
    assert f"cap of {MiB} bytes" in text
    assert "max_response_size=" in text


async def test_a_streamed_body_stops_being_read_at_the_cap() -> None:
    """A body with no Content-Length is cut off past the cap: the server cannot send it all."""
    total = 32 * MiB
    sent = 0
    finished = anyio.Event()

    async def stream(request: web.Request) -> web.StreamResponse:
        nonlocal sent
        resp = web.StreamResponse(headers={"Content-Type": "application/json"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        piece = b" " * (64 * 1024)
        try:
            with anyio.fail_after(30):  # bounded in time as in size
                while sent < total:
                    await resp.write(piece)
                    sent += len(piece)
        except (ConnectionError, TimeoutError):
            pass
        finally:
            finished.set()
        return resp

    async with serve(stream) as base:
        async with UpscaleClient(KEY, base_url=base, max_response_size=MiB) as client:
            with pytest.raises(ResponseValidationError, match=f"cap of {MiB} bytes"):
                await client.get_account()
        with anyio.fail_after(30):
            await finished.wait()
    assert sent < total


async def test_a_compressed_body_is_capped_after_decompression() -> None:
    """A small gzip body that inflates past the cap raises (the cap counts decoded bytes)."""
    body = gzip.compress(b" " * (4 * MiB))
    assert len(body) < MiB
    async with serve(_json(body, **{"Content-Encoding": "gzip"})) as base:
        async with UpscaleClient(KEY, base_url=base, max_response_size=MiB) as client:
            with pytest.raises(ResponseValidationError, match=f"cap of {MiB} bytes"):
                await client.get_account()


async def test_with_options_changes_the_cap() -> None:
    """with_options(max_response_size=...) caps that view; the client keeps its own cap."""
    body = b'{"plan_name": "' + b"x" * (2 * MiB) + b'"}'
    async with serve(_json(body)) as base:
        async with UpscaleClient(KEY, base_url=base, retry=ONE_TRY) as client:
            assert client.max_response_size == DEFAULT_MAX_RESPONSE_SIZE
            account = await client.get_account()
            assert account.plan_name is not None
            with pytest.raises(ResponseValidationError, match="max_response_size"):
                await client.with_options(max_response_size=MiB).get_account()


@pytest.mark.parametrize("value", [0, -1, 1.5, True])
def test_a_bad_cap_is_refused_at_construction(value: Any) -> None:
    """max_response_size must be a positive int or None; anything else raises ValueError."""
    with pytest.raises(ValueError, match="max_response_size must be"):
        UpscaleClient(KEY, base_url="https://api.test", max_response_size=value)


# -- clear text and credentials in the base URL ------------------------------------------------


def test_plain_http_to_a_remote_host_logs_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    """A plain-http base URL to a non-loopback host logs one warning at construction."""
    caplog.set_level(logging.WARNING, logger="upscale_async")
    client = UpscaleClient(KEY, base_url="http://api.example.com/api/v2")
    client.with_options(timeout=5)
    warnings = [r for r in caplog.records if "clear text" in r.getMessage()]
    assert len(warnings) == 1
    assert "api.example.com" in warnings[0].getMessage()
    assert KEY not in caplog.text


@pytest.mark.parametrize(
    "base_url",
    [
        pytest.param("http://127.0.0.1:8080/api", id="127.0.0.1"),
        pytest.param("http://127.9.9.9/api", id="127/8"),
        pytest.param("http://[::1]:8080/api", id="ipv6-loopback"),
        pytest.param("http://localhost:8080/api", id="localhost"),
        pytest.param("https://api.example.com/api", id="https"),
    ],
)
def test_loopback_or_https_does_not_warn(base_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """Plain http to loopback (127.0.0.0/8, ::1, localhost), or https anywhere, logs nothing."""
    caplog.set_level(logging.WARNING, logger="upscale_async")
    UpscaleClient(KEY, base_url=base_url)
    assert not [r for r in caplog.records if "clear text" in r.getMessage()]


def test_credentials_in_the_base_url_stay_out_of_repr() -> None:
    """user:password in the base URL never shows in repr(client) or client.base_url."""
    client = UpscaleClient(KEY, base_url="https://alice:s3cr3tpw@api.example.com/api/v2")
    assert "s3cr3tpw" not in repr(client)
    assert "alice" not in repr(client)
    assert client.base_url == "https://***@api.example.com/api/v2"


def test_credentials_stay_out_of_a_configuration_error() -> None:
    """A bad base URL holding credentials is refused without echoing them."""
    with pytest.raises(ConfigurationError) as info:
        UpscaleClient(KEY, base_url="ftp://alice:s3cr3tpw@api.example.com/")
    assert "s3cr3tpw" not in str(info.value)


def test_credentials_stay_out_of_the_clear_text_warning(caplog: pytest.LogCaptureFixture) -> None:
    """The clear-text warning names the host, never the base URL's credentials."""
    caplog.set_level(logging.WARNING, logger="upscale_async")
    UpscaleClient(KEY, base_url="http://alice:s3cr3tpw@api.example.com/api")
    assert "clear text" in caplog.text
    assert "s3cr3tpw" not in caplog.text


async def test_credentials_stay_out_of_a_transport_error() -> None:
    """A connection failure to a base URL with credentials does not echo them."""
    with socket.socket() as sock:  # a free loopback port with nothing listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://alice:s3cr3tpw@127.0.0.1:{port}/api"
    async with UpscaleClient(KEY, base_url=base, retry=ONE_TRY) as client:
        with pytest.raises(TransportError) as info:
            await client.get_account()
    assert "s3cr3tpw" not in str(info.value)
    assert "s3cr3tpw" not in repr(info.value)


# -- Retry-After --------------------------------------------------------------------------------


async def test_retry_after_is_the_wait_used_and_the_header_is_kept() -> None:
    """RateLimitError.retry_after is the capped, scaled wait; retry_after_header the raw value."""
    calls = 0

    async def limited(_: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        return web.json_response({"error": "slow down"}, status=429, headers={"Retry-After": "100"})

    policy = RetryPolicy(attempts=2, retry_after_max=2.0, time_scale=0.01)
    async with serve(limited) as base:
        async with UpscaleClient(KEY, base_url=base, retry=policy) as client:
            with pytest.raises(RateLimitError) as info:
                await client.get_account()
    assert calls == 2
    assert info.value.retry_after == pytest.approx(0.02)
    assert info.value.retry_after_header == "100"
