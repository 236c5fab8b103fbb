"""submit_batch with a ledger: BUSY chunks are kept, re-claimed, and always accounted for.

The ledger here is a scripted BatchLedger (each claim of a chunk takes the next answer of its
script), so the batch's side of the protocol is tested alone; tests/redis tests RedisLedger.
"""

from __future__ import annotations

from collections import defaultdict

import anyio
import pytest

from upscale_async import (
    AcceptedRequest,
    BatchInterruptedError,
    BatchPolicy,
    BatchSubmission,
    StopReason,
    UpscaleClient,
)
from upscale_async._ledger import Chunk, ChunkClaim, ClaimState
from upscale_async.emulator import Emulator
from upscale_async.testing import make_campaign, sample_leads

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
