"""Accepting, charging, deduplicating and generating requests; retrieve on both path spellings."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import pytest

from upscale_async._spec.contract import FAILURE_REASON
from upscale_async.emulator import DOC_EXAMPLE_ID, Emulator

from .support import GENERATE, ID_PARAM, KEY, RETRIEVE, make_body

HEADERS = {"Api-Key": KEY}


async def submit(
    session: aiohttp.ClientSession, emu: Emulator, body: Any, path: str = GENERATE
) -> str:
    async with session.post(emu.base_url + path, json=body, headers=HEADERS) as response:
        payload = await response.json()
        assert response.status == 200, payload
        assert payload["message"] == "Success"
        return str(payload["secure_request_id"])


async def retrieve(
    session: aiohttp.ClientSession, emu: Emulator, request_id: str, path: str = RETRIEVE
) -> tuple[int, dict[str, Any]]:
    params = {ID_PARAM: request_id}
    async with session.get(emu.base_url + path, params=params, headers=HEADERS) as response:
        return response.status, await response.json()


@pytest.fixture
async def emu() -> Any:
    async with Emulator(api_keys=[KEY], webhook_secret=None, credits=1_000) as running:
        yield running


@pytest.mark.parametrize("path", [GENERATE, "/request_message_generation"])
@pytest.mark.parametrize("read_path", [RETRIEVE, "/retrieve_messages"])
async def test_both_path_generations(
    emu: Emulator, session: aiohttp.ClientSession, path: str, read_path: str
) -> None:
    """Generation and retrieve answer on the prefixed and the unprefixed paths (D1)."""
    request_id = await submit(session, emu, make_body(), path)
    assert uuid.UUID(request_id).version == 4
    status, body = await retrieve(session, emu, request_id, read_path)
    assert status == 200
    assert body["metadata"]["request_message_generation_api_request_secure_request_id"] == (
        request_id
    )


async def test_retrieve_by_get_body(emu: Emulator, session: aiohttp.ClientSession) -> None:
    """Retrieve accepts the id in a JSON body on the GET (v1/v2 style, D2)."""
    request_id = await submit(session, emu, make_body())
    async with session.get(
        emu.base_url + "/retrieve_messages", json={ID_PARAM: request_id}, headers=HEADERS
    ) as response:
        assert response.status == 200
        body = await response.json()
    assert body["metadata"]["request_message_generation_api_request_secure_request_id"] == (
        request_id
    )


async def test_query_wins_over_body(emu: Emulator, session: aiohttp.ClientSession) -> None:
    """With an id in both the query and the body, the query's id is used (D2)."""
    first = await submit(session, emu, make_body(prefix="a"))
    second = await submit(session, emu, make_body(prefix="b"))
    async with session.get(
        emu.base_url + RETRIEVE, params={ID_PARAM: first}, json={ID_PARAM: second}, headers=HEADERS
    ) as response:
        body = await response.json()
    assert body["metadata"]["request_message_generation_api_request_secure_request_id"] == first


async def test_post_without_content_type(emu: Emulator, session: aiohttp.ClientSession) -> None:
    """A POST body is parsed as JSON even without a Content-Type header (§8 #22)."""
    import orjson

    async with session.post(
        emu.base_url + GENERATE,
        data=orjson.dumps(make_body()),
        headers=HEADERS,
        skip_auto_headers=["Content-Type"],
    ) as response:
        assert response.status == 200


async def test_retrieve_shape_and_echo(emu: Emulator, session: aiohttp.ClientSession) -> None:
    """A complete retrieve has the §3.3 fields and echoes the sequence as type strings."""
    request = make_body(2, signoff_name="Sarah")
    request_id = await submit(session, emu, request)
    status, body = await retrieve(session, emu, request_id)
    assert status == 200
    meta = body["metadata"]
    assert uuid.UUID(meta["retrieve_messages_api_request_secure_request_id"]).version == 4
    assert meta["requested_messages_count"] == 4
    assert meta["generated_messages_count"] == 4
    assert meta["failed_messages_count"] is None
    assert meta["failed_messages_reason"] is None
    assert meta["generation_status"] == "complete"
    assert meta["status_message"]
    assert body["account"] == {"automation_tool_customer_id": "customer_12345"}
    campaign = body["campaign"]
    assert campaign["automation_tool_campaign_id"] == "campaign_67890"
    assert campaign["message_sequence"] == ["connection_request", "first_follow_up"]
    first = campaign["leads_data"][0]
    sent = request["lead_data"][0]
    assert first["external_prospect_id"] == "lead_000"
    assert first["linkedin"] == sent["lead_linkedin"]
    assert first["share_material_message"] is None
    assert first["hiring_activity_message"] is None
    assert first["stage_ambition_message"] is None
    assert sent["first_name"] in first["outreach_message"]
    assert first["first_follow_up_message"].endswith("Sarah")


async def test_string_sequence_accepted(emu: Emulator, session: aiohttp.ClientSession) -> None:
    """A v1 sequence of plain strings is accepted (D3)."""
    request_id = await submit(
        session, emu, make_body(message_sequence=["connection_request", "first_follow_up"])
    )
    _, body = await retrieve(session, emu, request_id)
    assert body["campaign"]["message_sequence"] == ["connection_request", "first_follow_up"]


async def test_texts_are_personalised(emu: Emulator, session: aiohttp.ClientSession) -> None:
    """Texts use name, company, proposition, tone, and {{yourName}} without a signoff_name."""
    request = make_body(1, tone_preference="formal", signoff_name=None)
    _, body = await retrieve(session, emu, await submit(session, emu, request))
    text = body["campaign"]["leads_data"][0]["outreach_message"]
    sent = request["lead_data"][0]
    assert text.startswith(f"Dear {sent['first_name']}")
    assert sent["lead_company"] in text
    assert "Acme Corporation" in text
    assert text.endswith("{{yourName}}")


async def test_every_type_has_a_field(emu: Emulator, session: aiohttp.ClientSession) -> None:
    """Each of the five types fills its retrieve field (D5), using the conditional fields."""
    kinds = (
        "connection_request",
        "first_follow_up",
        "stage_ambition",
        "share_material",
        "hiring_activity",
    )
    request = make_body(
        1,
        types=kinds,
        job_title="CTO",
        material_link="https://acme.example/case-study",
        hiring_location="gb",
    )
    _, body = await retrieve(session, emu, await submit(session, emu, request))
    lead = body["campaign"]["leads_data"][0]
    assert "CTO" in lead["stage_ambition_message"]
    assert "https://acme.example/case-study" in lead["share_material_message"]
    assert "GB" in lead["hiring_activity_message"]
    assert all(lead[field] for field in ("outreach_message", "first_follow_up_message"))


async def test_same_body_same_id_no_double_charge(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    """An identical body (any key order) returns the same id and charges nothing more (D8)."""
    body = make_body(3)
    first = await submit(session, emu, body)
    reordered = dict(reversed(list(body.items())))
    second = await submit(session, emu, reordered)
    assert first == second
    assert emu.state.accepted == 1
    assert emu.state.dedupe_hits == 1
    assert emu.state.credits() == 1_000 - 6
    assert max(emu.state.charge_counts().values()) == 1
    assert not emu.state.double_charges()


async def test_body_posts_counts_each_body_sent(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    """state.body_posts() counts the posts of each request's body: twice for a re-post."""
    twice = await submit(session, emu, make_body(3))
    await submit(session, emu, make_body(3))
    once = await submit(session, emu, make_body(4))
    assert emu.state.body_posts() == {twice: 2, once: 1}


async def test_generated_pairs_are_free_and_reuse_text(
    emu: Emulator, session: aiohttp.ClientSession
) -> None:
    """A pair already generated costs nothing and comes back with the same text."""
    first = await submit(session, emu, make_body(2))
    changed = make_body(3, proposition_company_name="Other Corp")
    second = await submit(session, emu, changed)
    assert first != second
    assert emu.state.credits() == 1_000 - 4 - 2  # only lead_002's two pairs are new
    _, one = await retrieve(session, emu, first)
    _, two = await retrieve(session, emu, second)
    assert one["campaign"]["leads_data"][0] == two["campaign"]["leads_data"][0]
    assert "Other Corp" in two["campaign"]["leads_data"][2]["outreach_message"]
    assert not emu.state.double_charges()


async def test_failed_leads_are_not_charged(session: aiohttp.ClientSession) -> None:
    """Leads ending in _nowebpresence fail with the documented reason, null fields, no charge."""
    async with Emulator(api_keys=[KEY], webhook_secret=None, credits=10) as emu:
        body = make_body(lead_ids=["ok_1", "gone_nowebpresence", "ok_2"])
        request_id = await submit(session, emu, body)
        status, result = await retrieve(session, emu, request_id)
        assert status == 200
        meta = result["metadata"]
        assert meta["requested_messages_count"] == 6
        assert meta["generated_messages_count"] == 4
        assert meta["failed_messages_count"] == 2
        assert meta["failed_messages_reason"] == FAILURE_REASON
        failed = result["campaign"]["leads_data"][1]
        assert failed["external_prospect_id"] == "gone_nowebpresence"
        assert failed["linkedin"] is None
        assert failed["outreach_message"] is None
        assert failed["first_follow_up_message"] is None
        assert emu.state.credits() == 6
        assert ("gone_nowebpresence", "connection_request") not in {
            (lead, kind) for _, lead, kind in emu.state.charge_counts()
        }


async def test_failure_rate_is_seeded(session: aiohttp.ClientSession) -> None:
    """failure_rate fails the same leads for the same seed, and roughly that share."""
    failed: list[set[str]] = []
    for _ in range(2):
        async with Emulator(api_keys=[KEY], webhook_secret=None, failure_rate=0.3, seed=42) as emu:
            _, body = await retrieve(session, emu, await submit(session, emu, make_body(100)))
            failed.append(
                {
                    lead["external_prospect_id"]
                    for lead in body["campaign"]["leads_data"]
                    if lead["linkedin"] is None
                }
            )
    assert failed[0] == failed[1]
    assert 15 <= len(failed[0]) <= 45


async def test_insufficient_credits_then_add_credits(session: aiohttp.ClientSession) -> None:
    """After a 402, add_credits makes the same request succeed; credits are exact."""
    async with Emulator(api_keys=[KEY], webhook_secret=None, credits=3) as emu:
        async with session.post(
            emu.base_url + GENERATE, json=make_body(2), headers=HEADERS
        ) as response:
            assert response.status == 402
        assert emu.add_credits(1) == 4
        await submit(session, emu, make_body(2))
        assert emu.state.credits() == 0
        assert emu.state.credits_used() == 4


async def test_in_progress_then_complete(session: aiohttp.ClientSession) -> None:
    """Retrieve answers 202 in_progress with partial results, then 200 complete (D4)."""
    async with Emulator(api_keys=[KEY], webhook_secret=None, messages_per_second=20) as emu:
        request_id = await submit(session, emu, make_body(10, types=("connection_request",)))
        await asyncio.sleep(0.12)
        status, body = await retrieve(session, emu, request_id)
        assert status == 202
        meta = body["metadata"]
        assert meta["generation_status"] == "in_progress"
        assert 0 < meta["generated_messages_count"] < meta["requested_messages_count"] == 10
        texts = [lead["outreach_message"] for lead in body["campaign"]["leads_data"]]
        assert texts[0] is not None
        assert texts[-1] is None
        for _ in range(100):
            status, body = await retrieve(session, emu, request_id)
            if status == 200:
                break
            await asyncio.sleep(0.05)
        assert status == 200
        assert body["metadata"]["generation_status"] == "complete"
        assert body["metadata"]["generated_messages_count"] == 10
        assert emu.state.messages_generated == 10


async def test_latency_delays_the_start(session: aiohttp.ClientSession) -> None:
    """With latency, a fresh request has generated nothing yet."""
    async with Emulator(api_keys=[KEY], webhook_secret=None, latency=5.0) as emu:
        request_id = await submit(session, emu, make_body(2))
        status, body = await retrieve(session, emu, request_id)
        assert status == 202
        assert body["metadata"]["generated_messages_count"] == 0
        assert body["campaign"]["leads_data"][0]["outreach_message"] is None


async def test_singular_counts_option(session: aiohttp.ClientSession) -> None:
    """emit_singular_counts adds the singular count names next to the plural ones (§8 #6)."""
    async with Emulator(api_keys=[KEY], webhook_secret=None, emit_singular_counts=True) as emu:
        _, body = await retrieve(session, emu, await submit(session, emu, make_body(1)))
        meta = body["metadata"]
        assert meta["requested_message_count"] == meta["requested_messages_count"] == 2
        assert meta["generated_message_count"] == meta["generated_messages_count"] == 2


async def test_ledger_counts(emu: Emulator, session: aiohttp.ClientSession) -> None:
    """The state counts requests per endpoint and messages generated."""
    request_id = await submit(session, emu, make_body(2))
    await retrieve(session, emu, request_id)
    await retrieve(session, emu, request_id)
    assert emu.state.endpoint_counts["request_message_generation"] == 1
    assert emu.state.endpoint_counts["retrieve_messages"] == 2
    assert emu.state.messages_generated == 4
    assert emu.state.submissions == 1
    assert emu.request(request_id).complete


async def test_rate_is_shared_across_requests(session: aiohttp.ClientSession) -> None:
    """messages_per_second is one budget for all requests, served in arrival order."""
    async with Emulator(api_keys=[KEY], webhook_secret=None, messages_per_second=100) as emu:
        started = time.monotonic()
        first = await submit(session, emu, make_body(10, prefix="a"))
        second = await submit(session, emu, make_body(10, prefix="b"))
        while not emu.request(second).complete:
            assert emu.request(first).done >= emu.request(second).done
            await asyncio.sleep(0.01)
        elapsed = time.monotonic() - started
    assert emu.request(first).complete
    assert 0.3 <= elapsed < 2.0  # 40 messages at 100/s


async def test_doc_example_preloaded(session: aiohttp.ClientSession) -> None:
    """doc_examples serves the documentation's retrieve example id, complete and uncharged."""
    async with Emulator(api_keys=[KEY], webhook_secret=None, doc_examples=True) as emu:
        async with session.get(
            emu.base_url + "/retrieve_messages",
            json={ID_PARAM: DOC_EXAMPLE_ID},
            headers=HEADERS,
        ) as response:
            assert response.status == 200
            body = await response.json()
        assert emu.state.credits_used() == 0
    leads = body["campaign"]["leads_data"]
    assert [lead["external_prospect_id"] for lead in leads] == ["lead_001", "lead_002", "lead_003"]


async def test_reused_pairs_are_available_at_once(session: aiohttp.ClientSession) -> None:
    """Pairs generated earlier count as generated immediately, even while new ones wait."""
    async with Emulator(api_keys=[KEY], webhook_secret=None, latency=0.3) as emu:
        first = await submit(session, emu, make_body(2))
        while not emu.request(first).complete:
            await asyncio.sleep(0.02)
        second = await submit(session, emu, make_body(3))
        status, body = await retrieve(session, emu, second)
        assert status == 202
        assert body["metadata"]["generated_messages_count"] == 4
        leads = body["campaign"]["leads_data"]
        assert leads[1]["first_follow_up_message"] is not None
        assert leads[2]["outreach_message"] is None
        while not emu.request(second).complete:
            await asyncio.sleep(0.02)
        status, body = await retrieve(session, emu, second)
        assert status == 200
        assert body["metadata"]["generated_messages_count"] == 6
        assert emu.state.messages_generated == 6  # 4 for the first request, 2 new


async def test_fully_reused_request_is_complete_at_once(session: aiohttp.ClientSession) -> None:
    """A request made only of already generated pairs is complete immediately."""
    async with Emulator(api_keys=[KEY], webhook_secret=None, messages_per_second=5) as emu:
        first = await submit(session, emu, make_body(1))
        while not emu.request(first).complete:
            await asyncio.sleep(0.02)
        second = await submit(session, emu, make_body(1, automation_tool_campaign_id="other"))
        status, body = await retrieve(session, emu, second)
        assert status == 200
        assert body["metadata"]["generated_messages_count"] == 2


async def test_repeated_type_is_charged_once(emu: Emulator, session: aiohttp.ClientSession) -> None:
    """A type listed twice in the sequence is generated and charged once per lead."""
    request_id = await submit(
        session, emu, make_body(2, types=("connection_request", "connection_request"))
    )
    _, body = await retrieve(session, emu, request_id)
    assert body["campaign"]["message_sequence"] == ["connection_request"]
    assert body["metadata"]["requested_messages_count"] == 2
    assert emu.state.credits() == 1_000 - 2
    assert not emu.state.double_charges()
