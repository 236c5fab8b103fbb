"""How generate keeps the leads of an accepted request for its outcomes (see _completion.py).

``submit_batch(keep_leads=...)`` hands each accepted request over with its leads as given, in
the order of its ids, also for a chunk a ledger holds already; ``_given`` pairs a request's
ids with them and never loses an id when they do not fit.
"""

from __future__ import annotations

from typing import Any

from upscale_async import AcceptedRequest, BatchPolicy, Lead, RetryPolicy, UpscaleClient
from upscale_async._batch import submit_batch
from upscale_async._completion import _given
from upscale_async._ledger import Chunk, ChunkClaim, ClaimState
from upscale_async.emulator import Emulator
from upscale_async.testing import make_campaign, sample_leads


class DoneLedger:
    """A ledger that holds every chunk already, as one request with its ids reversed."""

    async def claim_chunk(self, chunk: Chunk) -> ChunkClaim:
        ids = tuple(reversed(chunk.lead_ids))
        other = AcceptedRequest(f"other-{chunk.index}", ids, chunk.first_index)
        return ChunkClaim(ClaimState.DONE, chunk, requests=(other,))

    async def record_chunk(self, claim: ChunkClaim, request: AcceptedRequest) -> bool:
        raise AssertionError("a DONE chunk is not recorded again")

    async def release_chunk(self, claim: ChunkClaim) -> None:
        raise AssertionError("a DONE chunk is not released")

    async def accepted_requests(self) -> list[AcceptedRequest]:
        return []


async def batch_keeping(leads: list[Any], **kwargs: Any) -> list[tuple[AcceptedRequest, list[Any]]]:
    kept: list[tuple[AcceptedRequest, list[Any]]] = []

    def keep(request: AcceptedRequest, given: list[Any]) -> None:
        kept.append((request, given))

    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(
            emu.api_key, base_url=emu.base_url, retry=RetryPolicy(attempts=1)
        ) as client:
            await submit_batch(
                client._api,
                make_campaign(),
                leads,
                policy=BatchPolicy(chunk_size=3, concurrency=1),
                keep_leads=keep,
                **kwargs,
            )
    return kept


async def test_each_accepted_request_is_kept_with_its_leads_as_given() -> None:
    """Sent chunks: the leads as given (the same objects), rejected ones left out, in id order."""
    leads: list[Any] = [dict(lead) for lead in sample_leads(5)]
    leads[1]["first_name"] = ""
    leads[3] = Lead.from_mapping(leads[3])
    kept = await batch_keeping(leads)
    assert [request.lead_ids for request, _ in kept] == [
        (leads[0]["automation_tool_lead_id"], leads[2]["automation_tool_lead_id"]),
        (leads[3].automation_tool_lead_id, leads[4]["automation_tool_lead_id"]),
    ]
    assert [[id(lead) for lead in given] for _, given in kept] == [
        [id(leads[0]), id(leads[2])],
        [id(leads[3]), id(leads[4])],
    ]


async def test_a_chunk_the_ledger_holds_is_kept_with_its_leads_in_the_order_of_its_ids() -> None:
    """A DONE chunk: each of the ledger's requests with the leads matching its ids, in order."""
    leads = [dict(lead) for lead in sample_leads(4)]
    kept = await batch_keeping(leads, ledger=DoneLedger())
    assert [request.secure_request_id for request, _ in kept] == ["other-0", "other-1"]
    for request, given in kept:
        assert [lead["automation_tool_lead_id"] for lead in given] == list(request.lead_ids)
    assert [id(lead) for lead in kept[0][1]] == [id(leads[2]), id(leads[1]), id(leads[0])]


def test_given_pairs_each_id_with_its_lead_or_none() -> None:
    """_given: ids with their leads; None for each id when the leads are unknown or do not fit."""
    request = AcceptedRequest("r", ("a", "b"), 0)
    assert list(_given(request, ["A", "B"])) == [("a", "A"), ("b", "B")]
    assert list(_given(request, None)) == [("a", None), ("b", None)]
    assert list(_given(request, ["A"])) == [("a", None), ("b", None)]
    assert list(_given(request, ["A", "B", "C"])) == [("a", None), ("b", None)]
