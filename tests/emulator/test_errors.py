"""Every documented error of §6 (exact bodies), plus the undocumented 400/404/405/413 as JSON."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest

from upscale_async._spec.validation import join_messages, validate_generation_body
from upscale_async.emulator import Emulator

from .support import GENERATE, ID_PARAM, KEY, RETRIEVE, REVOKED, make_body

INVALID = {"error": "Unauthorized: Invalid API key"}
REVOKED_BODY = {"error": "Unauthorized: API key has been revoked"}
COMBINED = {"error": "Unauthorized: API key invalid or revoked", "status": "error"}
NO_CREDITS = {
    "error": "Not enough credits remaining to complete this request. "
    "Please upgrade your plan or purchase a bundle."
}


@pytest.fixture
async def emu() -> Any:
    async with Emulator(api_keys=[KEY], revoked_keys=[REVOKED], webhook_secret=None) as running:
        yield running


async def call(
    session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, Any]:
    async with session.request(method, url, **kwargs) as response:
        assert response.content_type == "application/json"
        return response.status, await response.json()


AUTH_CASES = [
    pytest.param("POST", GENERATE, None, INVALID, id="generate-missing"),
    pytest.param("POST", GENERATE, "nope", INVALID, id="generate-invalid"),
    pytest.param("POST", GENERATE, REVOKED, REVOKED_BODY, id="generate-revoked"),
    pytest.param("GET", RETRIEVE, None, {**INVALID, "status": "error"}, id="retrieve-missing"),
    pytest.param("GET", RETRIEVE, "nope", {**INVALID, "status": "error"}, id="retrieve-invalid"),
    pytest.param(
        "GET", RETRIEVE, REVOKED, {**REVOKED_BODY, "status": "error"}, id="retrieve-revoked"
    ),
    pytest.param("GET", "/sequences/get_sequences", None, COMBINED, id="sequences-missing"),
    pytest.param("GET", "/get_sequences", REVOKED, COMBINED, id="sequences-revoked"),
    pytest.param("GET", "/account", "nope", COMBINED, id="account-invalid"),
    pytest.param("GET", "/account", REVOKED, COMBINED, id="account-revoked"),
]


@pytest.mark.parametrize(("method", "path", "key", "expected"), AUTH_CASES)
async def test_unauthorized_bodies(
    emu: Emulator,
    session: aiohttp.ClientSession,
    method: str,
    path: str,
    key: str | None,
    expected: dict[str, str],
) -> None:
    """Missing, invalid and revoked keys get 401 with the endpoint's documented body."""
    headers = {} if key is None else {"Api-Key": key}
    status, body = await call(session, method, emu.base_url + path, headers=headers, json={})
    assert (status, body) == (401, expected)


async def test_not_enough_credits_queues_nothing(session: aiohttp.ClientSession) -> None:
    """Too few credits: 402 with the exact body, and nothing is stored or charged."""
    async with Emulator(api_keys=[KEY], credits=3, webhook_secret=None) as emu:
        status, body = await call(
            session, "POST", emu.base_url + GENERATE, headers={"Api-Key": KEY}, json=make_body(2)
        )
        assert (status, body) == (402, NO_CREDITS)
        assert emu.state.accepted == 0
        assert emu.state.credits() == 3
        assert not emu.state.charge_counts()


VALIDATION_CASES = [
    pytest.param(
        {"message_sequence": "connection_request"},
        "message_sequence must be an array",
        id="sequence-not-array",
    ),
    pytest.param({"lead_data": []}, "lead_data must contain at least one lead", id="no-leads"),
    pytest.param(
        {"proposition_company_url": "not a url"},
        "proposition_company_url must be a valid URL",
        id="unparseable-url",
    ),
]


@pytest.mark.parametrize(("change", "expected"), VALIDATION_CASES)
async def test_single_validation_error(
    emu: Emulator, session: aiohttp.ClientSession, change: dict[str, Any], expected: str
) -> None:
    """One invalid field gives 422 with the documented message alone (no status key)."""
    status, body = await call(
        session, "POST", emu.base_url + GENERATE, headers={"Api-Key": KEY}, json=make_body(**change)
    )
    assert (status, body) == (422, {"error": expected})


async def test_several_validation_errors_in_documented_order(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    """The documented multi-error example comes back joined by single spaces, in order."""
    request = make_body(2, proposition_company_url="ftp://www.acmecorp.com")
    del request["automation_tool_customer_id"]
    del request["lead_data"][0]["first_name"]
    request["lead_data"][1]["lead_company"] = ""
    status, body = await call(
        session, "POST", emu.base_url + GENERATE, headers={"Api-Key": KEY}, json=request
    )
    assert status == 422
    assert body == {
        "error": "automation_tool_customer_id is required but was missing or blank "
        "proposition_company_url must be a valid HTTP or HTTPS URL "
        "lead_data[0].first_name is required but was missing or blank "
        "lead_data[1].lead_company is required but was missing or blank"
    }


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"tone_preference": "shouty"}, id="tone"),
        pytest.param({"message_sequence": [{"step": 2, "messageType": "breakup"}]}, id="type"),
        pytest.param({"message_sequence": ["share_material"]}, id="missing-material-link"),
        pytest.param(
            {"message_sequence": ["hiring_activity"], "hiring_location": "XX"}, id="bad-country"
        ),
        pytest.param({"message_sequence": ["stage_ambition"]}, id="missing-job-title"),
    ],
)
async def test_422_is_the_shared_validator_output(
    emu: Emulator, session: aiohttp.ClientSession, change: dict[str, Any]
) -> None:
    """Every 422 is exactly join_messages(validate_generation_body(body)), shared with the SDK."""
    request = make_body(**change)
    status, body = await call(
        session, "POST", emu.base_url + GENERATE, headers={"Api-Key": KEY}, json=request
    )
    assert status == 422
    assert body == {"error": join_messages(validate_generation_body(request))}


async def test_unknown_message_type_can_be_allowed(session: aiohttp.ClientSession) -> None:
    """allow_unknown_message_types lets a coming-soon type through and echoes it."""
    async with Emulator(
        api_keys=[KEY], webhook_secret=None, allow_unknown_message_types=True
    ) as emu:
        request = make_body(1, types=("breakup",))
        status, body = await call(
            session, "POST", emu.base_url + GENERATE, headers={"Api-Key": KEY}, json=request
        )
        assert status == 200
        params = {ID_PARAM: body["secure_request_id"]}
        status, body = await call(
            session, "GET", emu.base_url + RETRIEVE, headers={"Api-Key": KEY}, params=params
        )
        assert body["campaign"]["message_sequence"] == ["breakup"]
        first_name = request["lead_data"][0]["first_name"]
        assert first_name in body["campaign"]["leads_data"][0]["breakup_message"]


async def test_max_leads_per_request(session: aiohttp.ClientSession) -> None:
    """A configured maximum rejects bigger requests with a clear 422."""
    async with Emulator(api_keys=[KEY], webhook_secret=None, max_leads_per_request=3) as emu:
        status, body = await call(
            session, "POST", emu.base_url + GENERATE, headers={"Api-Key": KEY}, json=make_body(4)
        )
        assert (status, body) == (
            422,
            {"error": "lead_data must contain at most 3 leads but had 4"},
        )
        status, _ = await call(
            session, "POST", emu.base_url + GENERATE, headers={"Api-Key": KEY}, json=make_body(3)
        )
        assert status == 200


async def test_campaign_name_required_unless_legacy(session: aiohttp.ClientSession) -> None:
    """automation_tool_campaign_name is required, except with the legacy switch (§8 #12)."""
    request = make_body(1)
    del request["automation_tool_campaign_name"]
    for legacy, expected in ((False, 422), (True, 200)):
        async with Emulator(
            api_keys=[KEY], webhook_secret=None, require_campaign_name=not legacy
        ) as emu:
            status, body = await call(
                session, "POST", emu.base_url + GENERATE, headers={"Api-Key": KEY}, json=request
            )
            assert status == expected, body
            if expected == 422:
                assert body == {
                    "error": "automation_tool_campaign_name is required but was missing or blank"
                }


async def test_retrieve_without_id(emu: Emulator, session: aiohttp.ClientSession) -> None:
    """Retrieve without an id: the exact documented 422 with status error."""
    status, body = await call(session, "GET", emu.base_url + RETRIEVE, headers={"Api-Key": KEY})
    assert status == 422
    assert body == {
        "error": "request_message_generation_secure_request_id is required but was missing "
        "or blank",
        "status": "error",
    }


async def test_malformed_json_is_400(emu: Emulator, session: aiohttp.ClientSession) -> None:
    """A POST body that is not JSON gets 400 with a JSON error body."""
    status, body = await call(
        session,
        "POST",
        emu.base_url + GENERATE,
        headers={"Api-Key": KEY, "Content-Type": "application/json"},
        data=b'{"lead_data": [',
    )
    assert status == 400
    assert body["error"].startswith("Malformed JSON body")


async def test_malformed_json_on_retrieve_is_400(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    """A GET body that is not JSON (and no query id) gets 400 with status error."""
    status, body = await call(
        session, "GET", emu.base_url + RETRIEVE, headers={"Api-Key": KEY}, data=b"{oops"
    )
    assert status == 400
    assert body["status"] == "error"


async def test_unknown_request_id_is_404(emu: Emulator, session: aiohttp.ClientSession) -> None:
    """An id the emulator never issued gets 404 with a JSON body."""
    params = {ID_PARAM: "3d68ae3b-5957-454d-be1c-8731a4f877f6"}
    status, body = await call(
        session, "GET", emu.base_url + RETRIEVE, headers={"Api-Key": KEY}, params=params
    )
    assert status == 404
    assert body["status"] == "error"
    assert "not found" in body["error"]


async def test_other_keys_request_is_404(session: aiohttp.ClientSession) -> None:
    """A request id issued to another API key is not found."""
    async with Emulator(api_keys=[KEY, "second"], webhook_secret=None) as emu:
        _, body = await call(
            session, "POST", emu.base_url + GENERATE, headers={"Api-Key": KEY}, json=make_body()
        )
        params = {ID_PARAM: body["secure_request_id"]}
        status, _ = await call(
            session, "GET", emu.base_url + RETRIEVE, headers={"Api-Key": "second"}, params=params
        )
        assert status == 404


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", GENERATE, id="get-generate"),
        pytest.param("PUT", "/request_message_generation", id="put-generate"),
        pytest.param("POST", RETRIEVE, id="post-retrieve"),
        pytest.param("DELETE", "/account", id="delete-account"),
    ],
)
async def test_wrong_method_is_405(
    emu: Emulator, session: aiohttp.ClientSession, method: str, path: str
) -> None:
    """An unsupported method gets 405 with a JSON body and an Allow header."""
    async with session.request(method, emu.base_url + path, headers={"Api-Key": KEY}) as response:
        assert response.status == 405
        assert response.headers["Allow"]
        assert "Method not allowed" in (await response.json())["error"]


async def test_unknown_path_is_404(emu: Emulator, session: aiohttp.ClientSession) -> None:
    """A path the API does not have gets 404 with a JSON body."""
    status, body = await call(session, "GET", emu.base_url + "/nothing", headers={"Api-Key": KEY})
    assert status == 404
    assert "error" in body


async def test_body_too_large_is_413(session: aiohttp.ClientSession) -> None:
    """A body over max_body_size gets 413 with a JSON body, and nothing is stored."""
    async with Emulator(api_keys=[KEY], webhook_secret=None, max_body_size=2_000) as emu:
        status, body = await call(
            session,
            "POST",
            emu.base_url + GENERATE,
            headers={"Api-Key": KEY},
            data=orjson.dumps(make_body(30)),
        )
        assert status == 413
        assert body == {"error": "Request body too large: at most 2000 bytes are accepted"}
        assert emu.state.accepted == 0
