"""Fault injection: scripted and seeded 429/5xx, dropped connections and slow answers."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest

from upscale_async.emulator import Emulator, Fault, FaultKind, FaultPlan

from .support import GENERATE, ID_PARAM, KEY, RETRIEVE, make_body

HEADERS = {"Api-Key": KEY}


@pytest.fixture
async def emu() -> Any:
    async with Emulator(api_keys=[KEY], webhook_secret=None, credits=100) as running:
        yield running


async def post(session: aiohttp.ClientSession, emu: Emulator, body: Any) -> tuple[int, Any]:
    async with session.post(emu.base_url + GENERATE, json=body, headers=HEADERS) as response:
        return response.status, await response.json()


async def test_drop_after_processing_then_retry_is_deduplicated(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    """A POST dropped after processing, retried with the same body: one charge, same id."""
    emu.faults.set("request_message_generation", [Fault.drop_after()])
    body = make_body(3)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post(session, emu, body)
    assert emu.state.accepted == 1  # the lost answer's request still counts
    [stored] = emu.state.requests
    status, answer = await post(session, emu, body)
    assert status == 200
    assert answer["secure_request_id"] == stored
    assert emu.state.credits() == 100 - 6
    assert set(emu.state.charge_counts().values()) == {1}
    assert emu.state.endpoint_counts["request_message_generation"] == 2
    assert [(r.endpoint, r.fault.kind) for r in emu.state.faults] == [
        ("request_message_generation", FaultKind.DROP_AFTER)
    ]


async def test_drop_before_processing_changes_nothing(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    """A POST dropped before processing stores and charges nothing."""
    emu.faults.set("request_message_generation", [Fault.drop_before()])
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await post(session, emu, make_body(2))
    assert emu.state.accepted == 0
    assert emu.state.credits() == 100
    status, _ = await post(session, emu, make_body(2))
    assert status == 200


async def test_429_carries_retry_after(emu: Emulator, session: aiohttp.ClientSession) -> None:
    """An injected 429 has a Retry-After header and a JSON error body."""
    emu.faults.set("request_message_generation", [Fault.http(429, retry_after=2)])
    async with session.post(emu.base_url + GENERATE, json=make_body(), headers=HEADERS) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "2"
        assert "error" in await response.json()
    assert emu.state.accepted == 0


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors(emu: Emulator, session: aiohttp.ClientSession, status: int) -> None:
    """Injected 5xx answers come back as JSON errors, with status error on retrieve."""
    emu.faults.set("retrieve_messages", [Fault.http(status)])
    async with session.get(
        emu.base_url + RETRIEVE, params={ID_PARAM: "x"}, headers=HEADERS
    ) as response:
        assert response.status == status
        body = await response.json()
    assert body["status"] == "error"


async def test_slow_response(emu: Emulator, session: aiohttp.ClientSession) -> None:
    """A delay fault answers normally after the delay."""
    emu.faults.set("account", [Fault.slow(0.2)])
    started = time.monotonic()
    async with session.get(emu.base_url + "/account", headers=HEADERS) as response:
        assert response.status == 200
    assert time.monotonic() - started >= 0.2


async def test_script_then_behave(emu: Emulator, session: aiohttp.ClientSession) -> None:
    """A script is consumed one entry per request (None = behave), then the endpoint behaves."""
    emu.faults.set("get_sequences", [Fault.http(503), None, Fault.http(500)])
    statuses = []
    for _ in range(4):
        async with session.get(
            emu.base_url + "/sequences/get_sequences", headers=HEADERS
        ) as response:
            statuses.append(response.status)
    assert statuses == [503, 200, 500, 200]


async def test_seeded_rate_is_reproducible(session: aiohttp.ClientSession) -> None:
    """The same seeded rate plan injects the same faults in the same order."""
    runs: list[list[int]] = []
    plan = FaultPlan(rate=0.5, choices=[Fault.http(500), Fault.http(503)], seed=7)
    for _ in range(2):
        async with Emulator(api_keys=[KEY], webhook_secret=None) as emu:
            emu.faults.set("account", plan)
            statuses = []
            for _ in range(20):
                async with session.get(emu.base_url + "/account", headers=HEADERS) as response:
                    statuses.append(response.status)
            runs.append(statuses)
    assert runs[0] == runs[1]
    assert {200, 500, 503} <= set(runs[0])


async def test_clear_and_wildcard(emu: Emulator, session: aiohttp.ClientSession) -> None:
    """``*`` sets a plan on every endpoint; clear removes it."""
    emu.faults.set("*", FaultPlan(rate=1.0, choices=[Fault.http(502)]))
    async with session.get(emu.base_url + "/account", headers=HEADERS) as response:
        assert response.status == 502
    emu.faults.clear()
    async with session.get(emu.base_url + "/account", headers=HEADERS) as response:
        assert response.status == 200


def test_unknown_endpoint_rejected() -> None:
    """A plan for an endpoint that does not exist is a ValueError."""
    with pytest.raises(ValueError, match="unknown endpoint"):
        Emulator().faults.set("generate", [])
