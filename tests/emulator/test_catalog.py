"""get_sequences (filters, defaults, the literal ``default``) and account (live credits)."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from upscale_async.emulator import Emulator

from .support import GENERATE, KEY, make_body

HEADERS = {"Api-Key": KEY}


@pytest.fixture
async def emu() -> Any:
    async with Emulator(api_keys=[KEY], webhook_secret=None, credits=50) as running:
        yield running


async def sequences(
    session: aiohttp.ClientSession, emu: Emulator, params: dict[str, str], path: str
) -> tuple[int, Any]:
    async with session.get(emu.base_url + path, params=params, headers=HEADERS) as response:
        return response.status, await response.json()


@pytest.mark.parametrize("path", ["/sequences/get_sequences", "/get_sequences"])
async def test_no_filter_returns_everything(
    emu: Emulator, session: aiohttp.ClientSession, path: str
) -> None:
    """Without parameters every sequence comes back, on both paths."""
    status, body = await sequences(session, emu, {}, path)
    assert status == 200
    found = body["sequences"]
    assert len(found) == 54
    assert {seq["sequence_length"] for seq in found} == {"short", "medium", "long"}
    step = found[0]["steps"][0]
    assert set(step) == {"step", "messageType", "wait_days"}
    assert step["step"] == 1


async def test_one_filter_applies_defaults(emu: Emulator, session: aiohttp.ClientSession) -> None:
    """One parameter filters on all four, the others at their defaults."""
    status, body = await sequences(
        session, emu, {"sequence_length": "short"}, "/sequences/get_sequences"
    )
    assert status == 200
    [only] = body["sequences"]
    assert (
        only["sequence_length"],
        only["campaign_objective"],
        only["cadence_profile"],
        only["saturated_markets"],
    ) == ("short", "meeting", "normal", False)
    assert 1 <= len(only["steps"]) <= 2


async def test_literal_default(emu: Emulator, session: aiohttp.ClientSession) -> None:
    """The literal value ``default`` means the parameter's default."""
    _, explicit = await sequences(
        session, emu, {"sequence_length": "default"}, "/sequences/get_sequences"
    )
    _, defaults = await sequences(
        session,
        emu,
        {
            "sequence_length": "medium",
            "campaign_objective": "meeting",
            "cadence_profile": "normal",
            "saturated_markets": "false",
        },
        "/sequences/get_sequences",
    )
    assert explicit == defaults
    assert len(explicit["sequences"][0]["steps"]) == 3


async def test_saturated_markets_open_with_connection(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    """saturated_markets=true sequences start with a connection request; long has 4-5 steps."""
    _, body = await sequences(
        session,
        emu,
        {"saturated_markets": "true", "sequence_length": "long"},
        "/sequences/get_sequences",
    )
    [seq] = body["sequences"]
    assert seq["steps"][0]["messageType"] == "connection_request"
    assert 4 <= len(seq["steps"]) <= 5


async def test_bad_filter_value_is_422(emu: Emulator, session: aiohttp.ClientSession) -> None:
    """An unknown filter value gets 422 naming the allowed values, with status error."""
    status, body = await sequences(
        session, emu, {"cadence_profile": "weekly"}, "/sequences/get_sequences"
    )
    assert status == 422
    assert body == {
        "error": "cadence_profile must be one of rapid, normal, long_term, or default but was "
        "'weekly'",
        "status": "error",
    }


async def test_account_reflects_live_credits(emu: Emulator, session: aiohttp.ClientSession) -> None:
    """account serves the placeholder keys from the live credit state."""
    async with session.post(emu.base_url + GENERATE, json=make_body(2), headers=HEADERS) as resp:
        assert resp.status == 200
    emu.add_credits(10)
    async with session.get(emu.base_url + "/account", headers=HEADERS) as response:
        assert response.status == 200
        body = await response.json()
    assert body["monthly_credits"] == 50 - 4 + 10
    assert body["monthly_allowance"] == 60
    assert body["plan_name"]
    assert body["created_at"].endswith("Z")


@pytest.mark.parametrize("value", ["weekly", "MEDIUMS", " "])
async def test_the_sdk_and_the_emulator_read_a_filter_alike(
    emu: Emulator, session: aiohttp.ClientSession, value: str
) -> None:
    """One rule for both: a bad value gets the same message from the SDK (before sending) as
    the emulator's 422; a value in another case or padded is read as the same filter."""
    from upscale_async import UpscaleClient, ValidationError

    status, body = await sequences(
        session, emu, {"sequence_length": value}, "/sequences/get_sequences"
    )
    async with UpscaleClient(KEY, base_url=emu.base_url) as client:
        if status == 422:
            with pytest.raises(ValidationError) as refused:
                await client.get_sequences(sequence_length=value)
            assert refused.value.errors == [("sequence_length", body["error"])]
        else:
            assert status == 200
            got = await client.get_sequences(sequence_length=value)
            assert len(got) == len(body)


async def test_a_filter_in_upper_case_is_the_filter_in_lower_case(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    """``MEDIUM`` and `` medium `` read as ``medium``, from the SDK as from the emulator."""
    from upscale_async import UpscaleClient

    _, lower = await sequences(
        session, emu, {"sequence_length": "medium"}, "/sequences/get_sequences"
    )
    _, upper = await sequences(
        session, emu, {"sequence_length": "MEDIUM"}, "/sequences/get_sequences"
    )
    assert upper == lower
    async with UpscaleClient(KEY, base_url=emu.base_url) as client:
        got = await client.get_sequences(sequence_length=" MEDIUM ")
    assert len(got) == len(lower) > 0
