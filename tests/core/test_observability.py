"""Per-call options, raw responses, event hooks and UPSCALE_LOG request logging."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aioresponses import aioresponses
from yarl import URL

from upscale_async import (
    ConfigurationError,
    EventHooks,
    NotFoundError,
    RawResponse,
    RequestEvent,
    ResponseEvent,
    ResponseValidationError,
    RetryEvent,
    RetryPolicy,
    ServerError,
    Telemetry,
    UpscaleClient,
)

from .conftest import BASE, KEY, s0_campaign, s0_leads

GEN = f"{BASE}/messages/request_message_generation"
ACCOUNT = f"{BASE}/account"
RETRIEVE = f"{BASE}/messages/retrieve_messages"
SEQUENCES = f"{BASE}/sequences/get_sequences"
SID = "3d68ae3b-5957-454d-be1c-8731a4f877f6"
OK = {"message": "Success", "secure_request_id": SID}
ACCOUNT_BODY = {"plan_name": "pro", "monthly_credits": 10}
RETRIEVED = {"metadata": {"total_leads": 0}, "campaign": {"leads_data": []}}
FAST = RetryPolicy(attempts=3, time_scale=0.0)


def sent_headers(m: aioresponses, method: str, url: str) -> list[dict[str, str]]:
    return [dict(call.kwargs["headers"]) for call in m.requests[(method, URL(url))]]


async def test_per_call_headers_are_sent_and_merged(mocked: aioresponses) -> None:
    """with_options(headers=) adds headers to that view's requests only, merged over the client's."""
    mocked.get(ACCOUNT, payload=ACCOUNT_BODY, repeat=True)
    async with UpscaleClient(KEY, base_url=BASE, headers={"X-Team": "growth"}) as client:
        view = client.with_options(headers={"X-Trace": "t-1", "X-Team": "ops"})
        await view.get_account()
        await client.get_account()
    first, second = sent_headers(mocked, "GET", ACCOUNT)
    assert (first["X-Trace"], first["X-Team"], first["Api-Key"]) == ("t-1", "ops", KEY)
    assert second["X-Team"] == "growth"
    assert "X-Trace" not in second
    assert view.headers == {"X-Team": "ops", "X-Trace": "t-1"}


def test_headers_cannot_set_the_api_key() -> None:
    """Api-Key in headers= is refused with a message naming api_key=."""
    client = UpscaleClient(KEY, base_url=BASE)
    with pytest.raises(ValueError, match=r"headers cannot set Api-Key: pass the key as"):
        client.with_options(headers={"api-key": "other"})
    with pytest.raises(ValueError, match="str names to str values"):
        client.with_options(headers={"X-N": 1})  # type: ignore[dict-item]


async def test_per_call_retry_and_timeout(mocked: aioresponses) -> None:
    """A view's retry policy bounds that call; the client keeps its own."""
    mocked.get(ACCOUNT, status=503, payload={"error": "busy"}, repeat=True)
    async with UpscaleClient(KEY, base_url=BASE, retry=FAST) as client:
        with pytest.raises(ServerError):
            await client.with_options(retry=RetryPolicy(attempts=1), timeout=2.0).get_account()
        assert len(mocked.requests[("GET", URL(ACCOUNT))]) == 1
        with pytest.raises(ServerError):
            await client.get_account()
        assert len(mocked.requests[("GET", URL(ACCOUNT))]) == 1 + 3


async def test_raw_response_counts_attempts_and_keeps_headers(mocked: aioresponses) -> None:
    """A raw call after one 503 has attempts 2, the final status, headers and request id."""
    mocked.post(GEN, status=503, payload={"error": "busy"})
    mocked.post(GEN, payload=OK, headers={"X-Request-Id": "req-42"})
    async with UpscaleClient(KEY, base_url=BASE, retry=FAST) as client:
        raw = await client.with_raw_response.request_message_generation(s0_campaign(), s0_leads())
    assert isinstance(raw, RawResponse)
    assert raw.parsed.secure_request_id == SID
    assert (raw.status, raw.attempts, raw.request_id) == (200, 2, "req-42")
    assert raw.headers["X-Request-Id"] == "req-42"
    assert raw.secure_request_id == SID
    assert (raw.method, raw.path) == ("POST", "/messages/request_message_generation")
    assert 0 < raw.elapsed < 5


async def test_every_endpoint_has_a_raw_form(mocked: aioresponses) -> None:
    """retrieve_messages, get_sequences and get_account answer RawResponse; no request id: None."""
    mocked.get(
        f"{RETRIEVE}?request_message_generation_secure_request_id={SID}",
        status=202,
        payload=RETRIEVED,
    )
    mocked.get(SEQUENCES, payload={"sequences": []})
    mocked.get(ACCOUNT, payload=ACCOUNT_BODY)
    async with UpscaleClient(KEY, base_url=BASE, retry=FAST) as client:
        raw = client.with_raw_response
        retrieved = await raw.retrieve_messages(SID)
        sequences = await raw.get_sequences()
        account = await raw.get_account()
    assert (retrieved.status, retrieved.attempts, retrieved.request_id) == (202, 1, None)
    assert retrieved.secure_request_id == SID
    assert not retrieved.parsed.is_complete
    assert sequences.parsed == []
    assert account.parsed.monthly_credits == 10


async def test_raw_errors_are_raised_as_usual(mocked: aioresponses) -> None:
    """A raw call that fails raises the same typed error as the plain call."""
    mocked.get(
        f"{RETRIEVE}?request_message_generation_secure_request_id=nope",
        status=404,
        payload={"error": "not found"},
    )
    async with UpscaleClient(KEY, base_url=BASE, retry=FAST) as client:
        with pytest.raises(NotFoundError):
            await client.with_raw_response.retrieve_messages("nope")


async def test_hooks_hear_requests_responses_and_retries(mocked: aioresponses) -> None:
    """Sync and async hooks get each attempt, its answer and the retry between them, in order."""
    mocked.post(GEN, status=429, payload={"error": "slow"}, headers={"Retry-After": "0"})
    mocked.post(GEN, payload=OK, headers={"X-Request-Id": "req-7"})
    seen: list[Any] = []

    async def on_response(event: ResponseEvent) -> None:
        seen.append(event)

    hooks = EventHooks(on_request=seen.append, on_response=on_response, on_retry=seen.append)
    async with UpscaleClient(KEY, base_url=BASE, retry=FAST, hooks=hooks) as client:
        await client.request_message_generation(s0_campaign(), s0_leads())
    assert [type(e).__name__ for e in seen] == [
        "RequestEvent",
        "ResponseEvent",
        "RetryEvent",
        "RequestEvent",
        "ResponseEvent",
    ]
    first, failed, retry, second, done = seen
    assert first == RequestEvent(
        method="POST", path="/messages/request_message_generation", attempt=1
    )
    assert (failed.status, failed.attempt, type(failed.error).__name__) == (
        429,
        1,
        "RateLimitError",
    )
    assert isinstance(retry, RetryEvent)
    assert (retry.attempt, retry.delay) == (1, 0.0)
    assert second.attempt == 2
    assert (done.status, done.request_id, done.secure_request_id, done.error) == (
        200,
        "req-7",
        SID,
        None,
    )


async def test_a_hook_that_raises_is_logged_and_the_call_goes_on(
    mocked: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    """A raising hook is logged at ERROR with its name; the call returns its normal result."""
    mocked.get(ACCOUNT, payload=ACCOUNT_BODY)

    def broken(event: object) -> None:
        raise RuntimeError("hook bug")

    hooks = EventHooks(on_request=broken, on_response=broken)
    async with UpscaleClient(KEY, base_url=BASE, hooks=hooks) as client:
        with caplog.at_level(logging.ERROR, logger="upscale_async"):
            account = await client.get_account()
    assert account.monthly_credits == 10
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(messages) == 2
    assert messages[0].startswith("event hook on_request raised while handling RequestEvent")
    assert "on_response" in messages[1]
    assert all(r.exc_info for r in caplog.records if r.levelno == logging.ERROR)


def test_hooks_must_be_callable() -> None:
    """EventHooks refuses a value that is not callable, naming the hook."""
    with pytest.raises(TypeError, match=r"EventHooks\.on_retry must be a function"):
        EventHooks(on_retry="print")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="hooks must be an EventHooks"):
        UpscaleClient(KEY, base_url=BASE, hooks=print)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="telemetry must be a Telemetry"):
        UpscaleClient(KEY, base_url=BASE, telemetry=object())  # type: ignore[arg-type]


async def test_upscale_log_logs_each_attempt_with_fields_and_no_secret(
    mocked: aioresponses, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """UPSCALE_LOG=debug: a line per attempt with structured fields; key and password hidden."""
    monkeypatch.setenv("UPSCALE_LOG", "debug")
    base = "https://user:hunter2pass@api.test/api/v2"
    mocked.get(
        f"https://user:hunter2pass@api.test/api/v2/messages/retrieve_messages?request_message_generation_secure_request_id={SID}",
        payload=RETRIEVED,
        headers={"X-Request-Id": "req-9"},
    )
    with caplog.at_level(logging.DEBUG, logger="upscale_async"):
        async with UpscaleClient(KEY, base_url=base) as client:
            await client.retrieve_messages(SID)
    records = [r for r in caplog.records if hasattr(r, "attempt")]
    assert [r.levelname for r in records] == ["DEBUG", "INFO"]
    sent, answered = records
    assert (answered.method, answered.path, answered.status, answered.attempt) == (  # type: ignore[attr-defined]
        "GET",
        "/messages/retrieve_messages",
        200,
        1,
    )
    assert answered.request_id == "req-9"  # type: ignore[attr-defined]
    assert answered.secure_request_id == sent.secure_request_id == SID  # type: ignore[attr-defined]
    text = caplog.text
    assert "'Api-Key': '***'" in text
    assert KEY not in text
    assert "hunter2pass" not in text


def test_upscale_log_rejects_an_unknown_level(monkeypatch: pytest.MonkeyPatch) -> None:
    """UPSCALE_LOG=verbose raises ConfigurationError naming the allowed values."""
    monkeypatch.setenv("UPSCALE_LOG", "verbose")
    with pytest.raises(ConfigurationError, match=r"UPSCALE_LOG='verbose' is not a log level"):
        UpscaleClient(KEY, base_url=BASE)


async def test_without_hooks_telemetry_or_log_the_plain_path_runs(
    mocked: aioresponses, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No hooks, telemetry or UPSCALE_LOG: no observer and no telemetry (the unobserved path)."""
    monkeypatch.delenv("UPSCALE_LOG", raising=False)
    client = UpscaleClient(KEY, base_url=BASE)
    assert client._api.observer is None
    assert client._api.telemetry is None
    hooked = UpscaleClient(KEY, base_url=BASE, hooks=EventHooks())
    assert hooked._api.observer is not None
    assert hooked._api.telemetry is None  # hooks alone open no span
    assert UpscaleClient(KEY, base_url=BASE, telemetry=Telemetry())._api.telemetry is None


async def test_retry_log_lines_carry_the_structured_fields(
    mocked: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    """The retry warning has method, path, status, attempt and request_id as record fields."""
    mocked.get(ACCOUNT, status=503, payload={"error": "busy"}, headers={"X-Request-Id": "r-1"})
    mocked.get(ACCOUNT, payload=ACCOUNT_BODY)
    async with UpscaleClient(KEY, base_url=BASE, retry=FAST) as client:
        with caplog.at_level(logging.WARNING, logger="upscale_async"):
            await client.get_account()
    [record] = [r for r in caplog.records if r.getMessage().startswith("retrying")]
    fields = {k: getattr(record, k) for k in ("method", "path", "status", "attempt", "request_id")}
    assert fields == {
        "method": "GET",
        "path": "/account",
        "status": 503,
        "attempt": 1,
        "request_id": "r-1",
    }


@contextlib.asynccontextmanager
async def answering_200(body: bytes, content_type: str) -> AsyncIterator[str]:
    """A raw aiohttp server on 127.0.0.1 (a free port the OS picks) answering every path 200
    with ``body``; yields its base URL."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=200, body=body, content_type=content_type)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/api/v2"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("body", "content_type", "cap", "cause"),
    [
        pytest.param(b"<html>oops</html>", "text/html", None, "not JSON", id="not-json"),
        pytest.param(
            b'{"plan_name": "' + b"p" * 64 + b'"}',
            "application/json",
            32,
            "max_response_size",
            id="over-the-cap",
        ),
    ],
)
async def test_a_200_with_an_unreadable_body_is_reported_as_a_200_that_failed(
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    body: bytes,
    content_type: str,
    cap: int | None,
    cause: str,
) -> None:
    """A 200 whose body is not JSON or over the cap: the hook, the log line and its status
    field say 200, with the ResponseValidationError (not "no answer")."""
    monkeypatch.setenv("UPSCALE_LOG", "info")
    seen: list[ResponseEvent] = []
    hooks = EventHooks(on_response=seen.append)
    async with answering_200(body, content_type) as base:
        async with UpscaleClient(
            KEY, base_url=base, retry=FAST, hooks=hooks, max_response_size=cap
        ) as client:
            with caplog.at_level(logging.INFO, logger="upscale_async"):
                with pytest.raises(ResponseValidationError, match=cause) as info:
                    await client.get_account()
    assert [(e.attempt, e.status, type(e.error).__name__) for e in seen] == [
        (1, 200, "ResponseValidationError")
    ]
    assert seen[0].error is info.value
    [record] = [r for r in caplog.records if hasattr(r, "attempt")]
    assert (record.levelname, record.status, record.attempt) == ("INFO", 200, 1)  # type: ignore[attr-defined]
    message = record.getMessage()
    assert message.startswith(
        "GET /account -> 200 (ResponseValidationError: GET /account answered "
    )
    assert "no answer" not in message
    assert info.value.status == 200


async def test_a_telemetry_that_overrides_only_attempt_ended_still_counts_a_failed_200(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """attempt_failed defaults to attempt_ended, so an older Telemetry subclass sees status 200;
    one that overrides attempt_failed gets the error too."""
    monkeypatch.delenv("UPSCALE_LOG", raising=False)
    ended: list[tuple[str, int | None]] = []
    failed: list[tuple[int | None, str]] = []

    class Ended(Telemetry):
        def attempt_ended(
            self, call: Any, method: str, path: str, status: int | None, seconds: float
        ) -> None:
            ended.append((path, status))

    class Failed(Ended):
        def attempt_failed(
            self,
            call: Any,
            method: str,
            path: str,
            status: int | None,
            seconds: float,
            error: Exception,
        ) -> None:
            failed.append((status, type(error).__name__))

    async with answering_200(b"<html>oops</html>", "text/html") as base:
        for telemetry in (Ended(), Failed()):
            async with UpscaleClient(KEY, base_url=base, retry=FAST, telemetry=telemetry) as c:
                with pytest.raises(ResponseValidationError):
                    await c.get_account()
    assert ended == [("/account", 200)]
    assert failed == [(200, "ResponseValidationError")]
