"""Every documented error body (docs/contract.md §6) maps to the right exception and messages."""

from __future__ import annotations

import pickle
from typing import Any

import pytest
from aioresponses import aioresponses

from upscale_async import (
    APIError,
    AuthenticationError,
    BadRequestError,
    InsufficientCreditsError,
    NotFoundError,
    RateLimitError,
    ResponseValidationError,
    ServerError,
    UnprocessableEntityError,
    UpscaleClient,
)

from .conftest import BASE, KEY, s0_campaign, s0_leads

GEN = f"{BASE}/messages/request_message_generation"
MULTI = (
    "automation_tool_customer_id is required but was missing or blank "
    "proposition_company_url must be a valid HTTP or HTTPS URL "
    "lead_data[0].first_name is required but was missing or blank "
    "lead_data[1].lead_company is required but was missing or blank"
)
NO_CREDITS = (
    "Not enough credits remaining to complete this request. "
    "Please upgrade your plan or purchase a bundle."
)


@pytest.mark.parametrize(
    ("status", "body", "error_type", "messages"),
    [
        pytest.param(
            401,
            {"error": "Unauthorized: Invalid API key"},
            AuthenticationError,
            ["Unauthorized: Invalid API key"],
            id="401-invalid",
        ),
        pytest.param(
            401,
            {"error": "Unauthorized: API key has been revoked"},
            AuthenticationError,
            ["Unauthorized: API key has been revoked"],
            id="401-revoked",
        ),
        pytest.param(
            401,
            {"error": "Unauthorized: API key invalid or revoked", "status": "error"},
            AuthenticationError,
            ["Unauthorized: API key invalid or revoked"],
            id="401-invalid-or-revoked",
        ),
        pytest.param(402, {"error": NO_CREDITS}, InsufficientCreditsError, [NO_CREDITS], id="402"),
        pytest.param(
            422,
            {"error": "message_sequence must be an array"},
            UnprocessableEntityError,
            ["message_sequence must be an array"],
            id="422-single",
        ),
        pytest.param(
            422,
            {"error": MULTI},
            UnprocessableEntityError,
            [
                "automation_tool_customer_id is required but was missing or blank",
                "proposition_company_url must be a valid HTTP or HTTPS URL",
                "lead_data[0].first_name is required but was missing or blank",
                "lead_data[1].lead_company is required but was missing or blank",
            ],
            id="422-multiple",
        ),
        pytest.param(
            422,
            {"error": "proposition_company_url must be a valid URL"},
            UnprocessableEntityError,
            ["proposition_company_url must be a valid URL"],
            id="422-url",
        ),
        pytest.param(
            422,
            {"error": "lead_data must contain at least one lead"},
            UnprocessableEntityError,
            ["lead_data must contain at least one lead"],
            id="422-empty-leads",
        ),
        pytest.param(
            422,
            {
                "error": "request_message_generation_secure_request_id is required but was "
                "missing or blank",
                "status": "error",
            },
            UnprocessableEntityError,
            ["request_message_generation_secure_request_id is required but was missing or blank"],
            id="422-retrieve-id",
        ),
        pytest.param(400, {"error": "malformed JSON"}, BadRequestError, [], id="400"),
        pytest.param(404, {"error": "not found", "status": "error"}, NotFoundError, [], id="404"),
    ],
)
async def test_documented_error_bodies(
    mocked: aioresponses,
    client: UpscaleClient,
    status: int,
    body: dict[str, Any],
    error_type: type[APIError],
    messages: list[str],
) -> None:
    """Each error status raises its exception with the server's message, after one request."""
    mocked.post(GEN, status=status, payload=body, headers={"X-Request-Id": "req-7"})
    with pytest.raises(error_type) as info:
        await client.request_message_generation(s0_campaign(), s0_leads())
    error = info.value
    assert error.status == status
    assert error.message == body["error"]
    assert error.body == body
    assert error.method == "POST"
    assert error.path == "/messages/request_message_generation"
    assert error.request_id == "req-7"
    if messages:
        assert isinstance(
            error, UnprocessableEntityError | AuthenticationError | InsufficientCreditsError
        )
        if isinstance(error, UnprocessableEntityError):
            assert error.messages == messages
        else:
            assert [error.message] == messages
    assert sum(len(v) for v in mocked.requests.values()) == 1


async def test_error_without_json_body(mocked: aioresponses, client: UpscaleClient) -> None:
    """A non-JSON error body is kept as text in the message."""
    mocked.post(GEN, status=418, body="I'm a teapot")
    with pytest.raises(APIError, match=r"HTTP 418 .*I'm a teapot"):
        await client.request_message_generation(s0_campaign(), s0_leads())


async def test_server_error_after_retries(mocked: aioresponses, client: UpscaleClient) -> None:
    """A 5xx that persists raises ServerError after every attempt."""
    for _ in range(3):
        mocked.post(GEN, status=502, payload={"error": "bad gateway"})
    with pytest.raises(ServerError, match="bad gateway"):
        await client.request_message_generation(s0_campaign(), s0_leads())


async def test_rate_limit_error_carries_retry_after(mocked: aioresponses) -> None:
    """A 429 that persists raises RateLimitError with retry_after."""
    mocked.post(GEN, status=429, payload={"error": "slow down"}, headers={"Retry-After": "7"})
    async with UpscaleClient(KEY, base_url=BASE, retry=_one_attempt()) as client:
        with pytest.raises(RateLimitError) as info:
            await client.request_message_generation(s0_campaign(), s0_leads())
    assert info.value.retry_after == 7.0


def _one_attempt() -> Any:
    from upscale_async import RetryPolicy

    return RetryPolicy(attempts=1)


def test_a_response_validation_error_carries_its_status_and_pickles_with_it() -> None:
    """status is keyword-only, None by default, and survives a pickle round trip."""
    error = ResponseValidationError(
        "GET /account answered 200 with a body that is not JSON", body=b"<html>", status=200
    )
    again = pickle.loads(pickle.dumps(error))
    assert (type(again), str(again), again.status, again.body) == (
        ResponseValidationError,
        "GET /account answered 200 with a body that is not JSON",
        200,
        b"<html>",
    )
    assert vars(again) == vars(error)
    assert ResponseValidationError("bad shape").status is None
    with pytest.raises(TypeError):
        ResponseValidationError("bad", None, 200)  # type: ignore[misc]


def test_a_response_validation_error_pickled_before_it_had_a_status_reads_none() -> None:
    """An error rebuilt from state without ``status`` (an older pickle) reads status None."""
    error = ResponseValidationError("not JSON", body=b"x", status=200)
    rebuild, (cls, args, state) = error.__reduce__()
    del state["status"]
    old = rebuild(cls, args, state)
    assert (old.status, old.body, str(old)) == (None, b"x", "not JSON")
