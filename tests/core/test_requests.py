"""The exact requests each endpoint sends, under both route presets (aioresponses)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest
from aioresponses import aioresponses
from yarl import URL

from upscale_async import Lead, Routes, UpscaleClient, ValidationError

from .conftest import BASE, KEY, s0_body, s0_campaign, s0_leads

REQ_ID = "3d68ae3b-5957-454d-be1c-8731a4f877f6"
RETRIEVED = {
    "metadata": {
        "request_message_generation_api_request_secure_request_id": REQ_ID,
        "generation_status": "complete",
    },
    "campaign": {"leads_data": []},
}


def only_call(m: aioresponses, method: str, url: str) -> Any:
    calls = m.requests[(method, URL(url))]
    assert len(calls) == 1
    return calls[0].kwargs


@pytest.fixture(params=["newest", "legacy"])
async def preset_client(request: pytest.FixtureRequest) -> AsyncIterator[UpscaleClient]:
    routes = Routes.newest() if request.param == "newest" else Routes.legacy()
    async with UpscaleClient(KEY, base_url=BASE, routes=routes) as c:
        yield c


async def test_generation_request_newest(mocked: aioresponses, client: UpscaleClient) -> None:
    """POST /messages/request_message_generation with Api-Key, JSON Content-Type and the S0 body."""
    url = f"{BASE}/messages/request_message_generation"
    mocked.post(url, payload={"message": "Success", "secure_request_id": REQ_ID})
    accepted = await client.request_message_generation(s0_campaign(), s0_leads())
    assert accepted.secure_request_id == REQ_ID
    assert accepted.message == "Success"
    call = only_call(mocked, "POST", url)
    assert call["headers"]["Api-Key"] == KEY
    assert call["headers"]["Content-Type"] == "application/json"
    assert call["params"] is None
    assert orjson.loads(call["data"]) == s0_body()


async def test_generation_request_legacy(mocked: aioresponses) -> None:
    """The legacy preset posts to /request_message_generation with a string sequence (D3)."""
    url = f"{BASE}/request_message_generation"
    mocked.post(url, payload={"message": "Success", "secure_request_id": REQ_ID})
    async with UpscaleClient(KEY, base_url=BASE, routes=Routes.legacy()) as client:
        await client.request_message_generation(s0_campaign(), s0_leads())
    body = orjson.loads(only_call(mocked, "POST", url)["data"])
    expected = s0_body()
    expected["message_sequence"] = ["connection_request", "first_follow_up"]
    assert body == expected


async def test_retrieve_request_newest(mocked: aioresponses, client: UpscaleClient) -> None:
    """GET /messages/retrieve_messages with the id as a query parameter, no body, no Content-Type."""
    url = f"{BASE}/messages/retrieve_messages?request_message_generation_secure_request_id={REQ_ID}"
    mocked.get(url, payload=RETRIEVED)
    result = await client.retrieve_messages(REQ_ID)
    assert result.is_complete
    call = only_call(mocked, "GET", url)
    assert call["headers"]["Api-Key"] == KEY
    assert "Content-Type" not in call["headers"]
    assert call["data"] is None


async def test_retrieve_request_legacy(mocked: aioresponses) -> None:
    """The legacy preset sends the id in the query and in a JSON body on the GET (D2)."""
    url = f"{BASE}/retrieve_messages?request_message_generation_secure_request_id={REQ_ID}"
    mocked.get(url, payload=RETRIEVED, status=202)
    async with UpscaleClient(KEY, base_url=BASE, routes=Routes.legacy()) as client:
        result = await client.retrieve_messages(REQ_ID)
    assert result.http_status == 202
    call = only_call(mocked, "GET", url)
    assert orjson.loads(call["data"]) == {"request_message_generation_secure_request_id": REQ_ID}
    assert call["headers"]["Content-Type"] == "application/json"


async def test_get_sequences_request(mocked: aioresponses, preset_client: UpscaleClient) -> None:
    """GET sequences sends the filters as query parameters (booleans as true/false)."""
    path = preset_client.routes.get_sequences
    url = f"{BASE}{path}?cadence_profile=default&saturated_markets=true&sequence_length=short"
    mocked.get(
        url,
        payload={
            "sequences": [
                {
                    "id": "seq_1",
                    "name": "Short",
                    "steps": [{"step": 1, "messageType": "connection_request", "wait_days": 0}],
                    "saturated_markets": True,
                }
            ]
        },
    )
    sequences = await preset_client.get_sequences(
        sequence_length="short", saturated_markets=True, cadence_profile="default"
    )
    assert sequences[0].id == "seq_1"
    assert sequences[0].message_types == ["connection_request"]
    assert sequences[0].steps[0].wait_days == 0
    call = only_call(mocked, "GET", url)
    assert "Content-Type" not in call["headers"]


async def test_get_sequences_without_filters(mocked: aioresponses, client: UpscaleClient) -> None:
    """No filters: no query string; the v1 placeholder shape is read too."""
    url = f"{BASE}/sequences/get_sequences"
    mocked.get(
        url,
        payload={"sequences": [{"id": "placeholder", "message_types": ["first_follow_up"]}]},
    )
    [sequence] = await client.get_sequences()
    assert sequence.message_types == ["first_follow_up"]
    only_call(mocked, "GET", url)


async def test_get_sequences_rejects_unknown_filter_values(client: UpscaleClient) -> None:
    """A filter value outside the documented set is a ValidationError before any request."""
    with pytest.raises(ValidationError, match="sequence_length must be one of short, medium, long"):
        await client.get_sequences(sequence_length="tiny")


async def test_account_request(mocked: aioresponses, preset_client: UpscaleClient) -> None:
    """GET /account with no body; the placeholder keys are read."""
    url = f"{BASE}/account"
    mocked.get(
        url,
        payload={
            "created_at": "2024-01-15T10:00:00Z",
            "plan_name": "Placeholder plan",
            "monthly_credits": 0,
            "monthly_allowance": 1000,
        },
    )
    account = await preset_client.get_account()
    assert account.plan_name == "Placeholder plan"
    assert account.monthly_allowance == 1000
    call = only_call(mocked, "GET", url)
    assert call["data"] is None
    assert call["headers"]["Api-Key"] == KEY


async def test_invalid_request_raises_before_sending(
    mocked: aioresponses, client: UpscaleClient
) -> None:
    """All problems are reported at once in ValidationError, and nothing is sent."""
    leads: list[dict[str, Any]] = [dict(lead) for lead in s0_body()["lead_data"]]
    leads[0]["first_name"] = " "
    leads[1]["lead_linkedin"] = "ftp://linkedin.com/in/x"
    with pytest.raises(ValidationError) as info:
        await client.request_message_generation(s0_campaign(), leads)
    assert info.value.errors == [
        ("lead_data[0].first_name", "lead_data[0].first_name is required but was missing or blank"),
        (
            "lead_data[1].lead_linkedin",
            "lead_data[1].lead_linkedin must be a valid HTTP or HTTPS URL",
        ),
    ]
    assert not mocked.requests


async def test_empty_leads_is_a_validation_error(client: UpscaleClient) -> None:
    """An empty lead list fails with the server's message."""
    with pytest.raises(ValidationError, match="lead_data must contain at least one lead"):
        await client.request_message_generation(s0_campaign(), [])


SINGLE = "leads must be an iterable (list or iterator) of leads, not a single {}; wrap one lead in a list"


async def _leads() -> AsyncIterator[dict[str, Any]]:
    for lead in s0_body()["lead_data"]:
        yield lead


@pytest.mark.parametrize("raw", [False, True], ids=["parsed", "raw"])
@pytest.mark.parametrize(
    ("leads", "message"),
    [
        pytest.param(s0_body()["lead_data"][0], SINGLE.format("dict"), id="dict"),
        pytest.param(s0_leads()[0], SINGLE.format("Lead"), id="Lead"),
        pytest.param("lead_001", SINGLE.format("str"), id="str"),
        pytest.param(b"lead_001", SINGLE.format("bytes"), id="bytes"),
        pytest.param(5, "leads must be an iterable (list or iterator) of leads, not int", id="int"),
        pytest.param(
            _leads(),
            "leads must be an iterable (list or iterator) of leads, not async_generator "
            "(an async iterable: collect it into a list first, or pass it to submit_batch)",
            id="async",
        ),
    ],
)
async def test_one_lead_instead_of_a_list_is_refused_clearly(
    mocked: aioresponses, client: UpscaleClient, leads: Any, message: str, raw: bool
) -> None:
    """A single lead (dict or Lead), a str, bytes or a non-iterable: a TypeError saying what
    was given and how to fix it, before anything is sent."""
    call = client.with_raw_response if raw else client
    with pytest.raises(TypeError) as info:
        await call.request_message_generation(s0_campaign(), leads)
    assert str(info.value) == message
    assert not mocked.requests


async def test_any_iterable_of_leads_is_still_accepted(
    mocked: aioresponses, client: UpscaleClient
) -> None:
    """A generator or a tuple of leads is sent as before (only a single lead is refused)."""
    url = f"{BASE}/messages/request_message_generation"
    mocked.post(url, payload={"message": "Success", "secure_request_id": REQ_ID}, repeat=True)

    def generated() -> Iterator[Lead]:
        yield from s0_leads()

    for leads in (generated(), tuple(s0_leads())):
        accepted = await client.request_message_generation(s0_campaign(), leads)
        assert accepted.secure_request_id == REQ_ID
    sent = [orjson.loads(c.kwargs["data"]) for c in mocked.requests[("POST", URL(url))]]
    assert [body["lead_data"] for body in sent] == [s0_body()["lead_data"]] * 2


async def test_blank_retrieve_id_is_a_validation_error(client: UpscaleClient) -> None:
    """retrieve_messages("") fails with the server's message for a missing id."""
    with pytest.raises(ValidationError, match="request_message_generation_secure_request_id is"):
        await client.retrieve_messages(" ")
