"""Transport behaviour that mutation testing showed no other test pinned down.

Each test asserts one promise of ``_transport.py`` that a surviving mutant broke, against a
loopback aiohttp server on a free port (or no server at all).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from upscale_async import (
    APIError,
    ClientClosedError,
    ConfigurationError,
    ResponseValidationError,
    ServerError,
    TransportError,
)
from upscale_async._transport import Transport

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """Start a loopback server answering every path with a handler; yields its base URL."""
    runners: list[web.AppRunner] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}/api"

    yield start
    for runner in runners:
        await runner.cleanup()


def answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body, headers=headers)

    return handler


async def error(base: str) -> APIError:
    transport = Transport(base_url=base, api_key="k")
    try:
        with pytest.raises(APIError) as info:
            await transport.send("GET", "/x", timeout=5.0)
    finally:
        await transport.aclose()
    return info.value


async def test_the_base_urls_password_shows_as_three_stars_in_errors() -> None:
    """A password of the base URL quoted by aiohttp's error becomes exactly ``***``."""
    transport = Transport(base_url="ftp://user:pw-secret@127.0.0.1:9", api_key="k")
    try:
        with pytest.raises(TransportError) as info:
            await transport.send("GET", "/x", timeout=5.0)
    finally:
        await transport.aclose()
    assert str(info.value).startswith(
        "request failed: NonHttpUrlClientError: ftp://user:***@127.0.0.1:9/x"
    )


async def test_an_error_body_that_is_not_utf8_is_read_with_replacement(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    """An error body with bytes that are not UTF-8 still gives the typed error, its text replaced."""
    base = await serve(answer(500, b"\xff\xfeoops"))
    raised = await error(base)
    assert type(raised) is ServerError
    assert raised.message == "\ufffd\ufffdoops"
    assert raised.body == "\ufffd\ufffdoops"


async def test_a_streamed_body_over_the_cap_names_the_request(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    """The error for a chunked body past the cap starts with the method and path it answered."""

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(5):
            await response.write(b"z" * 40)
        await response.write_eof()
        return response

    base = await serve(chunked)
    transport = Transport(base_url=base, api_key="k")
    try:
        with pytest.raises(ResponseValidationError) as info:
            await transport.send("POST", "/p", body=b"{}", timeout=5.0, max_size=100)
    finally:
        await transport.aclose()
    assert str(info.value).startswith("POST /p answered a body of at least ")
    assert "bytes, over the cap of 100 bytes (max_response_size)" in str(info.value)


async def test_a_body_that_comes_in_pieces_is_read_whole(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    """A JSON answer streamed in several pieces, with pauses between them, is read whole."""

    async def pieces(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for part in (b'{"plan_name": "pro", ', b'"monthly_credits": 10, ', b'"note": "abc"}'):
            await response.write(part)
            await asyncio.sleep(0.02)
        await response.write_eof()
        return response

    base = await serve(pieces)
    transport = Transport(base_url=base, api_key="k")
    try:
        response = await transport.send("GET", "/account", timeout=5.0)
    finally:
        await transport.aclose()
    assert response.data == {"plan_name": "pro", "monthly_credits": 10, "note": "abc"}


async def test_a_closed_transport_says_how_to_use_a_client() -> None:
    """After aclose, a request raises ClientClosedError with the whole how-to."""
    transport = Transport(base_url="http://127.0.0.1:9/api", api_key="k")
    await transport.aclose()
    with pytest.raises(ClientClosedError) as info:
        await transport.send("GET", "/account", timeout=5.0)
    assert str(info.value) == (
        "This UpscaleClient is closed; create a new one, or use it inside "
        "`async with UpscaleClient(...) as client:`"
    )


async def test_max_connections_bounds_the_requests_in_flight(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    """Six requests at once through a transport of max_connections=2: at most two at a time."""
    in_flight = 0
    most = 0

    async def slow(request: web.Request) -> web.Response:
        nonlocal in_flight, most
        in_flight += 1
        most = max(most, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        return web.Response(body=b"{}", content_type="application/json")

    base = await serve(slow)
    transport = Transport(base_url=base, api_key="k", max_connections=2)
    try:
        await asyncio.gather(*(transport.send("GET", "/x", timeout=5.0) for _ in range(6)))
    finally:
        await transport.aclose()
    assert most == 2


async def test_a_short_timeout_holds_after_a_call_without_one(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    """A call with no timeout first does not make a later call's 0.2 s timeout go away."""
    from upscale_async import RequestTimeoutError

    async def slow(request: web.Request) -> web.Response:
        if request.path.endswith("/slow"):
            await asyncio.sleep(1.0)
        return web.Response(body=b"{}", content_type="application/json")

    base = await serve(slow)
    transport = Transport(base_url=base, api_key="k")
    try:
        await transport.send("GET", "/fast", timeout=None)
        with pytest.raises(RequestTimeoutError):
            await transport.send("GET", "/slow", timeout=0.2)
    finally:
        await transport.aclose()


def test_only_brackets_and_a_final_dot_are_stripped_from_a_host() -> None:
    """is_loopback_host strips [] and one trailing dot, not letters: ``Xlocalhost`` is remote."""
    from upscale_async._transport import is_loopback_host

    assert is_loopback_host("[::1]")
    assert is_loopback_host("localhost.")
    assert not is_loopback_host("Xlocalhost")
    assert not is_loopback_host("X127.0.0.1")
    assert not is_loopback_host("localhostX")


async def test_a_refused_connection_names_its_error_and_request() -> None:
    """Nothing listening: TransportError says "connection failed", the aiohttp error's type,
    and carries the method and path."""
    import socket

    with socket.socket() as probe:  # a loopback port with nothing listening on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    transport = Transport(base_url=f"http://127.0.0.1:{port}/api", api_key="k")
    try:
        with pytest.raises(TransportError) as info:
            await transport.send("GET", "/account", timeout=5.0)
    finally:
        await transport.aclose()
    assert str(info.value).startswith("connection failed: ClientConnectorError: ")
    assert (info.value.method, info.value.path) == ("GET", "/account")


async def test_a_malformed_answer_names_its_error_and_request() -> None:
    """An answer aiohttp cannot parse: TransportError says "request failed", and carries the
    method and path."""

    async def bad_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n{}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(bad_http, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = Transport(base_url=f"http://127.0.0.1:{port}/api", api_key="k")
    try:
        with pytest.raises(TransportError) as info:
            await transport.send("GET", "/account", timeout=5.0)
    finally:
        await transport.aclose()
        server.close()
        await server.wait_closed()
    assert str(info.value).startswith(("request failed: ", "connection failed: "))
    assert (info.value.method, info.value.path) == ("GET", "/account")


async def test_a_300_answer_is_an_error(serve: Callable[[Handler], Awaitable[str]]) -> None:
    """Only 2xx is success: a 300 answer raises APIError with its status."""
    info = await error(await serve(answer(300, b'{"error": "choose"}')))
    assert info.status == 300


async def test_only_trailing_slashes_are_cut_from_the_base_url(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    """A base URL ending in a letter keeps it: ``.../apiX/`` sends to ``/apiX/account``."""
    paths: list[str] = []

    async def record(request: web.Request) -> web.Response:
        paths.append(request.path)
        return web.Response(body=b"{}", content_type="application/json")

    base = await serve(record)
    transport = Transport(base_url=base + "X/", api_key="k")
    try:
        await transport.send("GET", "/account", timeout=5.0)
    finally:
        await transport.aclose()
    assert paths == ["/apiX/account"]


async def test_extra_headers_replace_the_clients_own_of_the_same_name(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    """``Accept`` and ``User-Agent`` given as extra headers replace the client's: the server sees
    each once, with the value given."""
    seen: list[tuple[list[str], list[str]]] = []

    async def record(request: web.Request) -> web.Response:
        seen.append((request.headers.getall("Accept"), request.headers.getall("User-Agent")))
        return web.Response(body=b"{}", content_type="application/json")

    base = await serve(record)
    transport = Transport(base_url=base, api_key="k")
    extra = {"Accept": "application/x-test", "User-Agent": "mine/1"}
    try:
        await transport.send("GET", "/account", timeout=5.0, extra_headers=extra)
    finally:
        await transport.aclose()
    assert seen == [(["application/x-test"], ["mine/1"])]


# -- the key provider ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("returned", "shown"),
    [
        pytest.param("  ", "str (blank)", id="blank"),
        pytest.param(None, "NoneType ", id="none"),
        pytest.param(42, "int ", id="int"),
    ],
)
async def test_a_provider_returning_no_key_names_what_it_returned(
    returned: object, shown: str
) -> None:
    """The error for a bad key from the provider names the type returned, "(blank)" for blank."""

    def provider() -> object:
        return returned

    transport = Transport(base_url="http://127.0.0.1:9", api_key=provider)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError) as info:
        await transport.ensure_key()
    assert str(info.value) == (
        f"the api_key callable {provider!r} returned {shown}; it must return the current "
        "Upscale API key as a non-empty str"
    )
    await transport.aclose()


async def test_a_fixed_key_cannot_rotate() -> None:
    """With a str key there is nothing to ask: rotate_key says no new key is in place."""
    transport = Transport(base_url="http://127.0.0.1:9", api_key="fixed")
    assert await transport.ensure_key() == 1
    assert await transport.rotate_key(1) is False
    assert transport.headers(False)["Api-Key"] == "fixed"
    await transport.aclose()


async def test_a_key_already_replaced_by_another_task_is_not_asked_again() -> None:
    """rotate_key for an older key version says True at once, without asking the provider."""
    keys = iter(["k1", "k2", "k3"])
    asked: list[str] = []

    async def provider() -> str:
        asked.append(key := next(keys))
        return key

    transport = Transport(base_url="http://127.0.0.1:9", api_key=provider)
    assert await transport.ensure_key() == 2
    assert await transport.rotate_key(2) is True  # asks: k2 differs from k1
    assert asked == ["k1", "k2"]
    assert await transport.rotate_key(2) is True  # stale version: replaced already
    assert asked == ["k1", "k2"]
    assert transport.headers(False)["Api-Key"] == "k2"
    await transport.aclose()


def test_the_headers_of_an_attempt() -> None:
    """headers() holds the key and Accept, Content-Type only with a body, and the extras."""
    transport = Transport(base_url="http://127.0.0.1:9", api_key="key-1")
    get, post = transport.headers(False), transport.headers(True)
    assert get["Api-Key"] == post["Api-Key"] == "key-1"
    assert "Content-Type" not in get
    assert post["Content-Type"] == "application/json"
    extra = transport.headers(False, {"X-Trace": "t1"})
    assert extra == {**get, "X-Trace": "t1"}
    assert transport.headers(True, {}) == post


def test_a_cleartext_base_url_is_warned_of_in_full(caplog: pytest.LogCaptureFixture) -> None:
    """Plain http to a host that is not loopback: one warning naming the URL (credentials hidden)
    and the host, saying the key would travel in clear text. Nothing is sent anywhere."""
    import logging

    from upscale_async._transport import warn_if_cleartext

    with caplog.at_level(logging.WARNING, logger="upscale_async"):
        warn_if_cleartext("http://user:secret@upscale.example/api")
    assert [r.getMessage() for r in caplog.records] == [
        "base_url http://***@upscale.example/api uses plain http to upscale.example, which "
        "is not loopback: the API key would travel in clear text; use an https:// base URL"
    ]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://u:p@host/cb?next=http://other/", "https://***@host/cb?next=http://other/"),
        ("https://u:p@host/users/a@b", "https://***@host/users/a@b"),
        ("https://host/users/a@b", "https://host/users/a@b"),
    ],
)
def test_only_the_authoritys_credentials_are_redacted(url: str, shown: str) -> None:
    """redact_url hides what stands before the host's ``@``, whatever the path holds."""
    from upscale_async._transport import redact_url

    assert redact_url(url) == shown
