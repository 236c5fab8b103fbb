"""The transport against a loopback aiohttp server: status mapping, bodies, headers, caps, errors."""

from __future__ import annotations

import asyncio
import email.utils
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from upscale_async import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    InsufficientCreditsError,
    NotFoundError,
    RateLimitError,
    RequestTimeoutError,
    ResponseValidationError,
    ServerError,
    TransportError,
    UnprocessableEntityError,
)
from upscale_async._transport import (
    Transport,
    is_loopback_host,
    parse_retry_after,
    redact_url,
    warn_if_cleartext,
)

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
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}/api/"

    yield start
    for runner in runners:
        await runner.cleanup()


def answer(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=status, body=body, headers=headers)

    return handler


async def send(base: str, method: str = "GET", **kwargs: object) -> object:
    transport = Transport(base_url=base, api_key="k")
    try:
        return await transport.send(method, "/x", timeout=5.0, **kwargs)  # type: ignore[arg-type]
    finally:
        await transport.aclose()


async def error(base: str, **kwargs: object) -> APIError:
    with pytest.raises(APIError) as info:
        await send(base, **kwargs)
    return info.value


# -- Retry-After, messages, redaction ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, None, id="none"),
        pytest.param("", None, id="empty"),
        pytest.param(" 3 ", 3.0, id="seconds"),
        pytest.param("1.5", 1.5, id="fraction"),
        pytest.param("-4", 0.0, id="negative"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("Wed, 21 Oct 2015 07:28:00 GMT", 0.0, id="past-date"),
    ],
)
def test_retry_after_values(value: str | None, expected: float | None) -> None:
    """Retry-After reads seconds (never negative) or a date; anything else is None."""
    assert parse_retry_after(value) == expected


def test_retry_after_date_in_the_future() -> None:
    """A Retry-After date in the future is the seconds until then."""
    when = email.utils.formatdate(time.time() + 100, usegmt=True)
    seconds = parse_retry_after(when)
    assert seconds is not None
    assert 95 <= seconds <= 100


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        pytest.param("https://u:p@api.example/v2", "https://***@api.example/v2", id="userinfo"),
        pytest.param("https://api.example/v2", "https://api.example/v2", id="plain"),
        pytest.param("api.example", "api.example", id="no-scheme"),
        pytest.param("https://a@b@host", "https://***@host", id="two-ats"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    """redact_url hides user:password@ and leaves other URLs as they are."""
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("LOCALHOST.", True),
        ("api.localhost", True),
        ("127.1.2.3", True),
        ("[::1]", True),
        ("10.0.0.1", False),
        ("example.com", False),
        ("", False),
        (None, False),
    ],
)
def test_loopback_hosts(host: str | None, loopback: bool) -> None:
    """Loopback is localhost (and *.localhost), 127.0.0.0/8 and ::1."""
    assert is_loopback_host(host) is loopback


def test_cleartext_warning_only_for_remote_http(caplog: pytest.LogCaptureFixture) -> None:
    """Plain http to a remote host warns once, with credentials redacted; https does not."""
    with caplog.at_level(logging.WARNING, logger="upscale_async"):
        warn_if_cleartext("https://api.example")
        warn_if_cleartext("http://127.0.0.1:8000")
        assert caplog.records == []
        warn_if_cleartext("HTTP://u:secret@api.example/v2")
    [record] = caplog.records
    assert "secret" not in record.getMessage()
    assert "***@api.example" in record.getMessage()


# -- status mapping ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (402, InsufficientCreditsError),
        (404, NotFoundError),
        (429, RateLimitError),
        (500, ServerError),
        (503, ServerError),
        (418, APIError),
        (302, APIError),
    ],
)
async def test_each_status_maps_to_its_error(
    serve: Callable[[Handler], Awaitable[str]], status: int, cls: type[APIError]
) -> None:
    """Each error status (redirects included: they are not followed) raises its own class."""
    headers = {"Location": "/elsewhere"} if status == 302 else None
    base = await serve(answer(status, b'{"error":"nope"}', headers))
    raised = await error(base)
    assert type(raised) is cls
    assert raised.status == status
    assert raised.message == "nope"
    assert raised.body == {"error": "nope"}
    assert (raised.method, raised.path) == ("GET", "/x")


async def test_a_422_is_split_into_its_messages(serve: Callable[[Handler], Awaitable[str]]) -> None:
    """A 422's error string comes back split into the server's messages."""
    text = "first_name is required but was missing or blank last_name must be a string"
    base = await serve(answer(422, b'{"error":"%s"}' % text.encode()))
    raised = await error(base)
    assert isinstance(raised, UnprocessableEntityError)
    assert raised.messages == [
        "first_name is required but was missing or blank",
        "last_name must be a string",
    ]


async def test_error_headers_are_kept(serve: Callable[[Handler], Awaitable[str]]) -> None:
    """An error keeps the X-Request-Id and the Retry-After header, read as seconds."""
    headers = {"X-Request-Id": "rid-9", "Retry-After": "7"}
    base = await serve(answer(429, b'{"error":"slow down"}', headers))
    raised = await error(base)
    assert raised.request_id == "rid-9"
    assert raised.retry_after == 7.0
    assert raised.retry_after_header == "7"


@pytest.mark.parametrize(
    ("body", "message", "parsed"),
    [
        pytest.param(b"  plain oops  ", "plain oops", "  plain oops  ", id="text"),
        pytest.param(b"", "HTTP 503 with an empty body", None, id="empty"),
        pytest.param(b'{"error":""}', '{"error":""}', {"error": ""}, id="empty-error"),
        pytest.param(b'{"detail":"x"}', '{"detail":"x"}', {"detail": "x"}, id="other-json"),
        pytest.param(b'["a"]', '["a"]', ["a"], id="json-array"),
    ],
)
async def test_an_error_without_an_error_field_shows_the_body(
    serve: Callable[[Handler], Awaitable[str]], body: bytes, message: str, parsed: object
) -> None:
    """Without a non-empty "error" string, the message is the body's text (or says it is empty)."""
    base = await serve(answer(503, body))
    raised = await error(base)
    assert raised.message == message
    assert raised.body == parsed


async def test_a_long_text_error_is_cut_to_500_characters(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    """A long non-JSON error body is cut to 500 characters in the message."""
    base = await serve(answer(500, b"x" * 600))
    raised = await error(base)
    assert raised.message == "x" * 500
    assert raised.body == "x" * 600


# -- 2xx bodies --------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [200, 202, 204, 299])
async def test_every_2xx_is_a_response(
    serve: Callable[[Handler], Awaitable[str]], status: int
) -> None:
    """Every 2xx answer is a Response; an empty body reads as None."""
    body = b"" if status == 204 else b'{"ok":true}'
    base = await serve(answer(status, body, {"X-Thing": "1"}))
    response = await send(base)
    assert response.status == status  # type: ignore[attr-defined]
    assert response.data == (None if status == 204 else {"ok": True})  # type: ignore[attr-defined]
    assert response.headers["X-Thing"] == "1"  # type: ignore[attr-defined]


async def test_a_2xx_body_that_is_not_json(serve: Callable[[Handler], Awaitable[str]]) -> None:
    """A 2xx body that is not JSON raises ResponseValidationError quoting its start."""
    base = await serve(answer(200, b"<html>" + b"y" * 300))
    with pytest.raises(ResponseValidationError) as info:
        await send(base)
    assert str(info.value) == (
        f"GET /x answered 200 with a body that is not JSON: {(b'<html>' + b'y' * 300)[:200]!r}"
    )
    assert info.value.body == b"<html>" + b"y" * 300
    assert info.value.status == 200


# -- requests ----------------------------------------------------------------------------------


async def test_requests_carry_the_key_and_the_right_headers(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    """GETs carry the key, Accept and User-Agent; POSTs also a JSON Content-Type and the body."""
    seen: list[tuple[str, str, dict[str, str], bytes, dict[str, str]]] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(
            (
                request.method,
                request.path,
                dict(request.headers),
                await request.read(),
                dict(request.query),
            )
        )
        return web.json_response({})

    base = await serve(handler)
    transport = Transport(base_url=base + "//", api_key="secret-key")
    try:
        await transport.send("GET", "/r", params={"id": "1"}, timeout=5.0)
        await transport.send("POST", "/p", body=b'{"a":1}', timeout=None)
    finally:
        await transport.aclose()
    (get_m, get_path, get_h, _, query), (post_m, post_path, post_h, post_body, _) = seen
    assert (get_m, get_path, query) == ("GET", "/api/r", {"id": "1"})
    assert (post_m, post_path, post_body) == ("POST", "/api/p", b'{"a":1}')
    assert get_h["Api-Key"] == post_h["Api-Key"] == "secret-key"
    assert get_h["Accept"] == post_h["Accept"] == "application/json"
    assert get_h["User-Agent"].startswith("upscale-async/")
    assert "Content-Type" not in get_h
    assert post_h["Content-Type"] == "application/json"
    assert transport.base_url == base.rstrip("/")


async def test_a_borrowed_sessions_user_agent_is_kept_and_it_is_left_open(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    """A borrowed session keeps its own User-Agent, and closing the transport leaves it open."""
    agents: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        agents.append(request.headers["User-Agent"])
        return web.json_response({})

    base = await serve(handler)
    async with aiohttp.ClientSession(headers={"User-Agent": "mine/1"}) as session:
        transport = Transport(base_url=base, api_key="k", session=session)
        await transport.send("GET", "/x", timeout=5.0)
        await transport.aclose()
        assert not session.closed
        assert transport.closed
    assert agents == ["mine/1"]


async def test_a_closed_transport_refuses_to_send() -> None:
    """After aclose, send raises ClientClosedError saying how to get a working client."""
    transport = Transport(base_url="http://127.0.0.1:9", api_key="k")
    await transport.aclose()
    with pytest.raises(ClientClosedError, match="This UpscaleClient is closed"):
        await transport.send("GET", "/x", timeout=1.0)


async def test_an_owned_session_is_closed(serve: Callable[[Handler], Awaitable[str]]) -> None:
    """The session a transport made is closed by aclose."""
    base = await serve(answer(200, b"{}"))
    transport = Transport(base_url=base, api_key="k")
    await transport.send("GET", "/x", timeout=5.0)
    session = transport._session
    await transport.aclose()
    assert session is not None
    assert session.closed


async def test_a_slow_answer_is_a_request_timeout(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    """No answer within the timeout raises RequestTimeoutError naming it."""

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(2)
        return web.json_response({})

    base = await serve(slow)
    transport = Transport(base_url=base, api_key="k")
    try:
        with pytest.raises(RequestTimeoutError) as info:
            await transport.send("GET", "/x", timeout=0.2)
    finally:
        await transport.aclose()
    assert "no answer within 0.2 s" in str(info.value)
    assert (info.value.method, info.value.path) == ("GET", "/x")


async def test_a_refused_connection_is_a_transport_error() -> None:
    """A connection refused raises TransportError saying the connection failed, without secrets."""
    transport = Transport(base_url="http://user:pw-secret@127.0.0.1:9", api_key="k")
    try:
        with pytest.raises(TransportError) as info:
            await transport.send("GET", "/x", timeout=5.0)
    finally:
        await transport.aclose()
    assert str(info.value).startswith("connection failed: ")
    assert "pw-secret" not in str(info.value)
    assert (info.value.method, info.value.path) == ("GET", "/x")


async def test_a_bad_url_is_a_transport_error() -> None:
    """A request aiohttp refuses to make raises TransportError saying the request failed."""
    transport = Transport(base_url="ftp://127.0.0.1:9", api_key="k")
    try:
        with pytest.raises(TransportError, match=r"^request failed: "):
            await transport.send("GET", "/x", timeout=5.0)
    finally:
        await transport.aclose()


# -- the response cap --------------------------------------------------------------------------


async def test_a_declared_length_over_the_cap_fails_before_reading(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    """A Content-Length over max_size raises at once, naming both sizes."""
    base = await serve(answer(200, b"z" * 101))
    with pytest.raises(ResponseValidationError) as info:
        await send(base, max_size=100)
    assert str(info.value).startswith(
        "GET /x answered a body of 101 bytes (its Content-Length), over the cap of 100 bytes"
    )
    assert info.value.status == 200


async def test_a_body_over_the_cap_keeps_the_status_it_was_answered_with(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    """A ResponseValidationError for a body past the cap, declared or streamed, has its status."""

    async def streamed(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=202)
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(5):
            await response.write(b"z" * 40)
        await response.write_eof()
        return response

    for handler, cause in ((answer(201, b"z" * 101), "Content-Length"), (streamed, "at least")):
        base = await serve(handler)
        with pytest.raises(ResponseValidationError, match=cause) as info:
            await send(base, max_size=100)
        assert info.value.status == (201 if handler is not streamed else 202)


async def test_a_streamed_body_over_the_cap_fails(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    """A chunked body is counted as it comes and fails once past max_size."""

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(5):
            await response.write(b"z" * 40)
        await response.write_eof()
        return response

    base = await serve(chunked)
    with pytest.raises(ResponseValidationError, match=r"answered a body of at least \d+ bytes"):
        await send(base, max_size=100)
    with pytest.raises(ResponseValidationError, match="not JSON"):
        await send(base, max_size=200)  # exactly at the cap: read whole


async def test_a_body_exactly_at_the_cap_or_uncapped_is_read(
    serve: Callable[[Handler], Awaitable[str]],
) -> None:
    """A body of exactly max_size bytes is read, and max_size=None reads any body."""
    body = b'{"a":"' + b"q" * 94 + b'"}'
    assert len(body) == 102
    base = await serve(answer(200, body))
    assert (await send(base, max_size=102)).data == {"a": "q" * 94}  # type: ignore[attr-defined]
    assert (await send(base, max_size=None)).data == {"a": "q" * 94}  # type: ignore[attr-defined]
