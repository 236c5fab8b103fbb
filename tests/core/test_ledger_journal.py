"""BatchJournal as a BatchLedger: claims by lead ids, records in the journal's own format."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from upscale_async import (
    AcceptedRequest,
    BatchInterruptedError,
    BatchJournal,
    BatchPolicy,
    PollPolicy,
    StopReason,
    UpscaleClient,
)
from upscale_async._ledger import (
    BatchLedger,
    Chunk,
    ChunkClaim,
    ClaimState,
    LedgerMismatchError,
    mismatch,
)
from upscale_async.emulator import Emulator
from upscale_async.testing import make_campaign, sample_leads

POLICY = BatchPolicy(chunk_size=10, concurrency=3)


def test_a_journal_is_a_batch_ledger(tmp_path: Path) -> None:
    """BatchJournal implements the BatchLedger protocol."""
    with BatchJournal(tmp_path / "j") as journal:
        assert isinstance(journal, BatchLedger)


async def test_a_chunk_is_mine_until_every_lead_is_recorded(tmp_path: Path) -> None:
    """A chunk with one lead not journaled is MINE; once all are recorded it is DONE with them."""
    with BatchJournal(tmp_path / "j") as journal:
        chunk = Chunk(2, 20, ("a", "b"))
        await journal.record(AcceptedRequest("req-x", ("a",), 20))
        assert (await journal.claim_chunk(chunk)).state is ClaimState.MINE
        claim = ChunkClaim(ClaimState.MINE, chunk)
        request = AcceptedRequest("req-1", ("a", "b"), 20)
        assert await journal.record_chunk(claim, request) is True
        done = await journal.claim_chunk(chunk)
    assert done.state is ClaimState.DONE
    assert done.requests == (request,)


async def test_a_chunk_recorded_with_another_chunking_gets_its_share(tmp_path: Path) -> None:
    """Leads recorded in two requests of another chunk size come back as this chunk's share."""
    with BatchJournal(tmp_path / "j") as journal:
        await journal.record(AcceptedRequest("req-0", ("a", "b", "c"), 0))
        await journal.record(AcceptedRequest("req-1", ("d", "e", "f"), 3))
        done = await journal.claim_chunk(Chunk(1, 2, ("c", "d")))
    assert done.state is ClaimState.DONE
    assert done.requests == (
        AcceptedRequest("req-0", ("c",), 2),
        AcceptedRequest("req-1", ("d",), 2),
    )


async def test_record_chunk_writes_the_journal_format(tmp_path: Path) -> None:
    """record_chunk appends the same JSON line as record, so old readers still read it."""
    path = tmp_path / "j"
    request = AcceptedRequest("req-1", ("a", "b"), 20)
    with BatchJournal(path) as journal:
        await journal.record_chunk(ChunkClaim(ClaimState.MINE, Chunk(2, 20, ("a", "b"))), request)
    assert path.read_bytes() == orjson.dumps(request.to_dict()) + b"\n"
    with BatchJournal(path) as again:
        assert again.accepted == [request]
        assert await again.accepted_requests() == [request]


async def test_a_second_run_on_the_journal_sends_nothing(tmp_path: Path) -> None:
    """Run twice with ledger=journal: the second posts nothing and accounts every lead accepted."""
    path = tmp_path / "run.journal"
    leads = sample_leads(95)
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with BatchJournal(path) as journal:
                first = await client.submit_batch(
                    make_campaign(), leads, batch=POLICY, ledger=journal
                )
            posted = emu.state.submissions
            with BatchJournal(path) as journal:
                second = await client.submit_batch(
                    make_campaign(), leads, batch=POLICY, ledger=journal
                )
                assert len(journal.accepted) == 10
    assert posted == 10
    assert emu.state.submissions == posted
    assert second.accepted_count == 95
    assert second.request_ids == first.request_ids


async def test_a_resumed_run_sends_only_the_chunks_not_journaled(tmp_path: Path) -> None:
    """With three chunks journaled by an earlier run, only the other seven are posted."""
    path = tmp_path / "run.journal"
    leads = sample_leads(100)
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with BatchJournal(path) as journal:
                await client.submit_batch(make_campaign(), leads[:30], batch=POLICY, ledger=journal)
            with BatchJournal(path) as journal:
                heard: list[AcceptedRequest] = []
                result = await client.submit_batch(
                    make_campaign(), leads, batch=POLICY, ledger=journal, on_accepted=heard.append
                )
    assert emu.state.submissions == 10
    assert emu.state.dedupe_hits == 0
    assert result.accepted_count == 100
    assert sorted(r.first_index for r in heard) == list(range(0, 100, 10))


async def test_generate_with_a_journal_awaits_the_journaled_chunks(tmp_path: Path) -> None:
    """generate(ledger=journal) hands out every lead once, the journaled ones awaited, not sent."""
    path = tmp_path / "run.journal"
    leads = sample_leads(40)
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with BatchJournal(path) as journal:
                await client.submit_batch(make_campaign(), leads[:20], batch=POLICY, ledger=journal)
            fast = client.with_options(poll=PollPolicy(initial=0.01, max_interval=0.05))
            with BatchJournal(path) as journal:
                async with fast.generate(
                    make_campaign(), leads, batch=POLICY, ledger=journal
                ) as outcomes:
                    seen = [o async for o in outcomes]
    assert sorted(o.lead_id for o in seen) == sorted(
        lead["automation_tool_lead_id"] for lead in leads
    )
    assert {o.outcome for o in seen} == {"generated"}
    assert emu.state.submissions == 4


async def test_the_journal_as_ledger_and_on_accepted_is_refused(tmp_path: Path) -> None:
    """Passing journal.record as on_accepted beside ledger=journal would record twice: refused."""
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with BatchJournal(tmp_path / "j") as journal:
                with pytest.raises(ValueError, match="pass it as ledger= only"):
                    await client.submit_batch(
                        make_campaign(), [], ledger=journal, on_accepted=journal.record
                    )


async def test_a_ledger_that_is_not_one_is_refused() -> None:
    """ledger= must implement BatchLedger; the error names what was given."""
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with pytest.raises(TypeError, match=r"ledger must be a BatchLedger.*not dict"):
                await client.submit_batch(make_campaign(), [], ledger={})  # type: ignore[arg-type]


class RefusingLedger:
    """A ledger that records chunk 0 and 1, then refuses chunk 2 as another input's."""

    def __init__(self) -> None:
        self.recorded: list[AcceptedRequest] = []

    async def claim_chunk(self, chunk: Chunk) -> ChunkClaim:
        if chunk.index == 2:
            raise mismatch(chunk, "0" * 24, "this test's ledger")
        return ChunkClaim(ClaimState.MINE, chunk, token="t")

    async def record_chunk(self, claim: ChunkClaim, request: AcceptedRequest) -> bool:
        self.recorded.append(request)
        return True

    async def release_chunk(self, claim: ChunkClaim) -> None:
        pass

    async def accepted_requests(self) -> list[AcceptedRequest]:
        return list(self.recorded)


async def test_a_refused_claim_stops_the_batch_with_every_lead_accounted() -> None:
    """A LedgerMismatchError stops the batch (LEDGER); the chunk and the rest are not sent."""
    leads = sample_leads(50)
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with pytest.raises(BatchInterruptedError) as info:
                await client.submit_batch(
                    make_campaign(),
                    leads,
                    batch=BatchPolicy(chunk_size=10, concurrency=1),
                    ledger=RefusingLedger(),
                )
    error = info.value
    assert error.reason is StopReason.LEDGER
    assert isinstance(error.__cause__, LedgerMismatchError)
    assert "chunk 2 (from input lead 20)" in str(error.__cause__)
    assert "same campaign and the same input in the same order" in str(error.__cause__)
    assert error.partial.counts() == {
        "accepted": 20,
        "rejected": 0,
        "failed": 0,
        "not_submitted": 30,
        "requests": 2,
    }
    assert emu.state.submissions == 2
