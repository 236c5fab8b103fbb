"""submit_batch with a ledger: BUSY chunks are kept, re-claimed, and always accounted for.

The ledger here is a scripted BatchLedger (each claim of a chunk takes the next answer of its
script), so the batch's side of the protocol is tested alone; tests/redis tests RedisLedger.
"""

from __future__ import annotations

import subprocess
import sys
from collections import defaultdict
from decimal import Decimal
from typing import Any

import anyio
import pytest

from upscale_async import (
    AcceptedRequest,
    BatchInterruptedError,
    BatchPolicy,
    BatchSubmission,
    Lead,
    StopReason,
    UpscaleClient,
)
from upscale_async._ledger import (
    Chunk,
    ChunkClaim,
    ClaimState,
    LedgerMismatchError,
    chunk_digest,
    mismatch,
)
from upscale_async.emulator import Emulator
from upscale_async.testing import make_campaign, make_leads, sample_leads

POLICY = BatchPolicy(chunk_size=10, concurrency=2)


class ScriptedLedger:
    """Claims answer from a per-chunk script ("busy", "done", "mine"); then MINE."""

    def __init__(self, script: dict[int, list[str]] | None = None, *, busy_once: bool = False):
        self.script = defaultdict(list, {k: list(v) for k, v in (script or {}).items()})
        self.busy_once = busy_once
        self.claims: defaultdict[int, int] = defaultdict(int)
        self.recorded: dict[int, AcceptedRequest] = {}
        self.released: list[int] = []
        self.waiting: set[int] = set()  # chunks answered BUSY and not claimed since
        self.most_waiting = 0

    async def claim_chunk(self, chunk: Chunk) -> ChunkClaim:
        self.claims[chunk.index] += 1
        self.waiting.discard(chunk.index)
        steps = self.script[chunk.index]
        step = steps.pop(0) if steps else "mine"
        if self.busy_once and self.claims[chunk.index] == 1:
            step = "busy"
        if step == "busy":
            self.waiting.add(chunk.index)
            self.most_waiting = max(self.most_waiting, len(self.waiting))
            return ChunkClaim(ClaimState.BUSY, chunk, retry_after=0.01)
        if step == "done":
            other = AcceptedRequest(f"other-{chunk.index}", chunk.lead_ids, chunk.first_index)
            return ChunkClaim(ClaimState.DONE, chunk, requests=(other,))
        return ChunkClaim(ClaimState.MINE, chunk, token=f"t{chunk.index}")

    async def record_chunk(self, claim: ChunkClaim, request: AcceptedRequest) -> bool:
        self.recorded[claim.chunk.index] = request
        return True

    async def release_chunk(self, claim: ChunkClaim) -> None:
        self.released.append(claim.chunk.index)

    async def accepted_requests(self) -> list[AcceptedRequest]:
        return sorted(self.recorded.values(), key=lambda r: r.first_index)


async def test_a_busy_chunk_recorded_elsewhere_is_accepted_unsent() -> None:
    """BUSY twice, then DONE: the chunk is not posted and counts as the other's request."""
    ledger = ScriptedLedger({1: ["busy", "busy", "done"]})
    heard: list[AcceptedRequest] = []
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            result = await client.submit_batch(
                make_campaign(), sample_leads(30), batch=POLICY, ledger=ledger,
                on_accepted=heard.append,
            )  # fmt: skip
    assert emu.state.submissions == 2
    assert ledger.claims[1] == 3
    assert result.request_ids[1] == "other-1"
    assert result.accepted_count == 30
    assert "other-1" in {r.secure_request_id for r in heard}


async def test_a_busy_chunk_whose_lease_expired_is_taken_over() -> None:
    """BUSY, then MINE (the holder's lease expired): posted once and recorded here."""
    ledger = ScriptedLedger({2: ["busy", "mine"]})
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            result = await client.submit_batch(
                make_campaign(), sample_leads(30), batch=POLICY, ledger=ledger
            )
    assert emu.state.submissions == 3
    assert set(ledger.recorded) == {0, 1, 2}
    assert result.accepted == await ledger.accepted_requests()


async def test_busy_chunks_when_credits_run_out_are_not_submitted() -> None:
    """A 402 stops the batch: the chunks still held elsewhere end in not_submitted, none lost."""
    ledger = ScriptedLedger({1: ["busy"] * 1000, 3: ["busy"] * 1000})
    async with Emulator(webhook_secret=None, credits=30) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with pytest.raises(BatchInterruptedError) as caught:
                await client.submit_batch(
                    make_campaign(),
                    sample_leads(60),
                    batch=BatchPolicy(chunk_size=10, concurrency=1),
                    ledger=ledger,
                )
    partial = caught.value.partial
    assert caught.value.reason is StopReason.INSUFFICIENT_CREDITS
    assert partial.total == 60
    assert partial.accepted_count == 10
    not_sent = {lead["automation_tool_lead_id"] for lead in partial.not_submitted}
    assert {f"lead_{i:06d}" for i in range(10, 20)} <= not_sent
    assert ledger.released == [2]  # the 402 chunk's lease is given back


async def test_busy_chunks_at_cancellation_stay_in_into() -> None:
    """Cancelled while chunks wait elsewhere: into= has them as not_submitted."""
    ledger = ScriptedLedger({k: ["busy"] * 1000 for k in range(1, 6)})
    into = BatchSubmission()
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with anyio.move_on_after(0.3):
                await client.submit_batch(
                    make_campaign(), sample_leads(60), batch=POLICY, ledger=ledger, into=into
                )
    assert into.stopped_by is StopReason.CANCELLED
    assert into.accepted_count == 10
    assert into.total == 60
    assert into.not_submitted_count == 50


async def test_a_worker_holds_a_bounded_number_of_busy_chunks() -> None:
    """Every chunk BUSY at first: a worker keeps at most 4 x concurrency of them waiting."""
    ledger = ScriptedLedger(busy_once=True)
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            result = await client.submit_batch(
                make_campaign(),
                sample_leads(300),
                batch=BatchPolicy(chunk_size=10, concurrency=1),
                ledger=ledger,
            )
    assert result.accepted_count == 300
    assert emu.state.submissions == 30
    assert 4 <= ledger.most_waiting <= 4 + 1


# -- what a chunk's digest covers: its leads as sent, not only their ids -------------------


class SharedLedger:
    """An in-memory shared ledger, as RedisLedger decides: the first claim of a chunk sets its
    digest, a claim with another digest is refused, a recorded chunk is DONE for everyone."""

    def __init__(self) -> None:
        self.digests: dict[int, str] = {}
        self.recorded: dict[int, AcceptedRequest] = {}

    async def claim_chunk(self, chunk: Chunk) -> ChunkClaim:
        known = self.digests.setdefault(chunk.index, chunk.digest)
        if known != chunk.digest:
            raise mismatch(chunk, known, "this test's ledger")
        if chunk.index in self.recorded:
            return ChunkClaim(ClaimState.DONE, chunk, requests=(self.recorded[chunk.index],))
        return ChunkClaim(ClaimState.MINE, chunk, token=f"t{chunk.index}")

    async def record_chunk(self, claim: ChunkClaim, request: AcceptedRequest) -> bool:
        self.recorded[claim.chunk.index] = request
        return True

    async def release_chunk(self, claim: ChunkClaim) -> None:
        pass

    async def accepted_requests(self) -> list[AcceptedRequest]:
        return sorted(self.recorded.values(), key=lambda r: r.first_index)


SHARED = BatchPolicy(chunk_size=100, concurrency=2)


async def test_a_worker_given_the_same_ids_with_other_lead_data_is_refused() -> None:
    """Same lead ids, another lead_company and first_name: stopped (LEDGER) before posting.

    The audit's reproduction: the second worker used to adopt the first worker's requests,
    report its 300 leads accepted and never send its own lead data.
    """
    ledger = SharedLedger()
    changed = [
        {**lead, "lead_company": "Other Co", "first_name": "Zed"} for lead in sample_leads(300)
    ]
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            first = await client.submit_batch(
                make_campaign(), sample_leads(300), batch=SHARED, ledger=ledger
            )
            assert (first.accepted_count, emu.state.submissions) == (300, 3)
            with pytest.raises(BatchInterruptedError) as caught:
                await client.submit_batch(make_campaign(), changed, batch=SHARED, ledger=ledger)
    assert emu.state.submissions == 3  # nothing of the second worker was posted
    assert caught.value.reason is StopReason.LEDGER
    error = caught.value.__cause__
    assert isinstance(error, LedgerMismatchError)
    assert error.chunk == 0
    assert "the same lead ids with other lead data" in str(error)
    assert caught.value.partial.accepted_count == 0
    assert caught.value.partial.not_submitted_count == 300


async def test_a_worker_given_the_same_leads_as_lead_objects_adopts_the_requests() -> None:
    """The same leads as Lead objects (keys in another order on the wire): DONE, nothing posted."""
    ledger = SharedLedger()
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            first = await client.submit_batch(
                make_campaign(),
                [dict(reversed(lead.items())) for lead in sample_leads(300)],
                batch=SHARED,
                ledger=ledger,
            )
            second = await client.submit_batch(
                make_campaign(), make_leads(300), batch=SHARED, ledger=ledger
            )
    assert emu.state.submissions == 3
    assert second.stopped_by is None
    assert second.request_ids == first.request_ids


async def test_a_lead_that_cannot_be_serialized_fails_its_chunk_as_without_a_ledger() -> None:
    """A value orjson cannot send: its chunk is failed (the post's error), the batch goes on."""
    leads: list[Any] = sample_leads(20)
    leads[12] = Lead(**leads[12], extra={"score": Decimal("1.5")})
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            result = await client.submit_batch(
                make_campaign(), leads, batch=POLICY, ledger=SharedLedger()
            )
    assert result.counts()["accepted"] == 10
    assert [(f.first_index, f.error) for f in result.failed] == [
        (10, "Type is not JSON serializable: decimal.Decimal")
    ]


def test_a_digest_is_the_same_in_another_process() -> None:
    """No per-process hashing: a fresh interpreter computes the same digest for the same chunk."""
    code = (
        "from upscale_async._ledger import chunk_digest\n"
        "from upscale_async.testing import sample_leads\n"
        "leads = sample_leads(5)\n"
        "print(chunk_digest([l['automation_tool_lead_id'] for l in leads], b'k', leads=leads))"
    )
    leads = sample_leads(5)
    here = chunk_digest([lead["automation_tool_lead_id"] for lead in leads], b"k", leads=leads)
    there = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert there.stdout.strip() == here


@pytest.mark.parametrize(
    ("ids", "campaign", "lead", "differs"),
    [
        (("a", "c"), b"k", {"id": "a"}, "position (other lead ids; digest "),
        (("a", "b"), b"k", {"id": "a", "x": 2}, "(the same lead ids with other lead data; digest "),
        (("a", "b"), b"other", {"id": "a"}, "position (another campaign; digest "),
        (("a", "c"), b"other", {"id": "a"}, "(other lead ids and another campaign; digest "),
    ],
)
def test_a_mismatch_says_what_differs(
    ids: tuple[str, str], campaign: bytes, lead: dict[str, Any], differs: str
) -> None:
    """Each part of the digest is compared: the message names the ids, the data, the campaign."""
    recorded = chunk_digest(("a", "b"), b"k", leads=[{"id": "a"}])
    chunk = Chunk(3, 30, ids, chunk_digest(ids, campaign, leads=[lead]))
    message = str(mismatch(chunk, recorded, "the ledger"))
    assert message.startswith("chunk 3 (from input lead 30) differs from the chunk the ledger")
    assert differs in message
    assert "same campaign and the same input in the same order" in message
    assert message.endswith("Nothing of this chunk was sent")


def test_a_digest_recorded_by_an_earlier_version_is_named_as_such() -> None:
    """A digest without the three parts (an earlier version's): the message says so."""
    chunk = Chunk(0, 0, ("a",), chunk_digest(("a",), leads=[{"id": "a"}]))
    message = str(mismatch(chunk, "0" * 24, "the ledger"))
    assert "(a digest of another form, as another version of upscale_async writes;" in message
    assert "must run the same version of upscale_async and be given the same campaign" in message
