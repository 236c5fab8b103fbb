"""submit_batch behaviour that mutation testing showed no other test pinned down.

Mostly the ledger side of ``_batch.py`` (against fake ledgers, as in test_ledger_batch.py):
progress reports for chunks held elsewhere, the accounting of failed chunks, what a ledger
that fails to record or release does, the BUSY backoff (with a virtual clock), and the lease
given back when a batch is cancelled mid-post. The emulator answers over loopback.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import orjson
import pytest

import upscale_async._batch as batch_module
from upscale_async import (
    AcceptedRequest,
    BatchInterruptedError,
    BatchJournal,
    BatchPolicy,
    BatchProgress,
    BatchSubmission,
    CreditPolicy,
    Lead,
    RetryPolicy,
    StopReason,
    Telemetry,
    UpscaleClient,
)
from upscale_async._ledger import Chunk, ChunkClaim, ClaimState, campaign_key, chunk_digest
from upscale_async.emulator import Emulator, Fault, FaultPlan
from upscale_async.testing import make_campaign, sample_leads

ONE_WORKER = BatchPolicy(chunk_size=10, concurrency=1)


class Ledger:
    """A BatchLedger fake: each chunk is MINE (or DONE, or BUSY ``busy[index]`` times first)."""

    def __init__(
        self, *, done: bool = False, busy: dict[int, int] | None = None, retry_after: float = 9.0
    ) -> None:
        self.done = done
        self.busy = defaultdict(int, busy or {})
        self.retry_after = retry_after
        self.chunks: list[Chunk] = []
        self.recorded: list[AcceptedRequest] = []
        self.released: list[int] = []

    async def claim_chunk(self, chunk: Chunk) -> ChunkClaim:
        self.chunks.append(chunk)
        if self.busy[chunk.index]:
            self.busy[chunk.index] -= 1
            return ChunkClaim(ClaimState.BUSY, chunk, retry_after=self.retry_after)
        if self.done:
            other = AcceptedRequest(f"other-{chunk.index}", chunk.lead_ids, chunk.first_index)
            return ChunkClaim(ClaimState.DONE, chunk, requests=(other,))
        return ChunkClaim(ClaimState.MINE, chunk, token=f"t{chunk.index}")

    async def record_chunk(self, claim: ChunkClaim, request: AcceptedRequest) -> bool:
        self.recorded.append(request)
        return True

    async def release_chunk(self, claim: ChunkClaim) -> None:
        self.released.append(claim.chunk.index)

    async def accepted_requests(self) -> list[AcceptedRequest]:
        return list(self.recorded)


async def run(
    ledger: Any, leads: Any, policy: BatchPolicy = ONE_WORKER, **kwargs: Any
) -> tuple[BatchSubmission, Emulator]:
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(
            emu.api_key, base_url=emu.base_url, retry=RetryPolicy(attempts=1)
        ) as client:
            faults = kwargs.pop("faults", None)
            if faults is not None:
                emu.faults.set("request_message_generation", faults)
            result = await client.submit_batch(
                make_campaign(), leads, batch=policy, ledger=ledger, **kwargs
            )
    return result, emu


# -- _check_ledger -----------------------------------------------------------------------------


async def test_what_is_not_a_ledger_is_refused_with_the_whole_message() -> None:
    """ledger= of the wrong type: a TypeError that says what a ledger is and what was given."""
    with pytest.raises(TypeError) as info:
        await run({}, [])
    assert str(info.value) == (
        "ledger must be a BatchLedger (a BatchJournal, or upscale_async.redis.RedisLedger "
        "inside `async with`), not dict"
    )


async def test_a_journal_given_twice_is_refused_with_the_whole_message(tmp_path: Path) -> None:
    """A journal as ledger= and its record as on_accepted=: a ValueError saying why and what to do."""
    with BatchJournal(tmp_path / "j") as journal:
        with pytest.raises(ValueError, match="recorded twice") as info:
            await run(journal, [], on_accepted=journal.record)
    assert str(info.value) == (
        "the journal is passed as ledger= and its record as on_accepted=: every request "
        "would be recorded twice; pass it as ledger= only (it records each chunk itself)"
    )


async def test_credits_and_a_ledger_together_are_refused() -> None:
    """credits= with ledger=: a ValueError naming both and how to keep the batch resumable."""
    with pytest.raises(ValueError, match="credits=") as info:
        await run(Ledger(), [], credits=CreditPolicy())
    assert str(info.value) == (
        "credits= cannot be combined with ledger= yet: a ledger names each chunk by its "
        "fixed leads, and the credit gate cuts chunks to the credits left; run the batch "
        "with one of them (a BatchJournal's record as on_accepted= keeps it resumable)"
    )


# -- chunks held elsewhere, failed chunks, the digest --------------------------------------


async def test_chunks_recorded_elsewhere_are_reported_one_by_one() -> None:
    """With every chunk DONE already, each is accounted and reported, nothing is posted."""
    reports: list[BatchProgress] = []
    heard: list[AcceptedRequest] = []
    result, emu = await run(
        Ledger(done=True), sample_leads(30), on_progress=reports.append, on_accepted=heard.append
    )
    assert emu.state.submissions == 0
    assert result.request_ids == ["other-0", "other-1", "other-2"]
    assert [r.secure_request_id for r in heard] == result.request_ids
    assert [(r.chunks_done, r.leads_accepted) for r in reports] == [(1, 10), (2, 20), (3, 30)]


async def test_a_chunk_of_rejected_leads_is_reported_and_never_claimed() -> None:
    """A chunk whose every lead is rejected is reported as progress, not claimed or posted."""
    leads = sample_leads(20)
    for lead in leads[10:]:
        lead["first_name"] = ""
    reports: list[BatchProgress] = []
    ledger = Ledger()
    result, emu = await run(ledger, leads, on_progress=reports.append)
    assert [c.index for c in ledger.chunks] == [0]
    assert emu.state.submissions == 1
    assert [r.index for r in result.rejected] == list(range(10, 20))
    assert [(r.leads_accepted, r.leads_rejected) for r in reports] == [(10, 0), (10, 10)]


async def test_each_chunk_claimed_carries_the_digest_of_its_ids_campaign_and_leads() -> None:
    """Chunk.digest is the digest of the chunk's lead ids, the campaign and the leads as sent."""
    ledger = Ledger()
    leads = sample_leads(20)
    await run(ledger, leads)
    key = campaign_key(orjson.dumps(make_campaign().to_wire()))
    assert [c.index for c in ledger.chunks] == [0, 1]
    for chunk, sent in zip(ledger.chunks, (leads[:10], leads[10:]), strict=True):
        assert chunk.digest == chunk_digest(chunk.lead_ids, key, leads=sent)
    assert ledger.chunks[0].digest != ledger.chunks[1].digest


async def test_failed_chunks_are_accounted_one_by_one_and_released() -> None:
    """Two chunks failing after retries: both in failed (error, type, status), both released."""
    reports: list[BatchProgress] = []
    ledger = Ledger()
    result, _ = await run(
        ledger,
        sample_leads(30),
        on_progress=reports.append,
        faults=[Fault.http(500), Fault.http(503)],
    )
    assert [(f.error_type, f.status, f.first_index) for f in result.failed] == [
        ("ServerError", 500, 0),
        ("ServerError", 503, 10),
    ]
    assert all(f.error for f in result.failed)
    assert sorted(ledger.released) == [0, 1]
    assert (reports[-1].leads_failed, reports[-1].errors, reports[-1].leads_accepted) == (20, 2, 10)


async def test_a_chunk_dropped_on_the_way_fails_without_a_status() -> None:
    """A chunk that failed without an HTTP answer is a FailedChunk with status None."""
    result, _ = await run(Ledger(), sample_leads(10), faults=[Fault.drop_before()])
    [failed] = result.failed
    assert failed.status is None
    assert failed.error_type == "TransportError"
    assert failed.error.startswith("connection failed: ")


async def test_a_source_that_raises_stops_a_ledger_batch() -> None:
    """With a ledger too, a lead source that raises stops the batch with SOURCE_ERROR."""

    def leads() -> Any:
        yield from sample_leads(10)
        raise OSError("disk gone")

    with pytest.raises(BatchInterruptedError) as info:
        await run(Ledger(), leads())
    assert info.value.reason is StopReason.SOURCE_ERROR
    assert info.value.partial.accepted_count == 10


# -- record and release failures ----------------------------------------------------------


class FailingRecord(Ledger):
    async def record_chunk(self, claim: ChunkClaim, request: AcceptedRequest) -> bool:
        raise ConnectionError("ledger down")


async def test_a_chunk_accepted_but_not_recorded_stops_the_batch_saying_so() -> None:
    """A failed record stops the batch (LEDGER); the error notes the request and the chunk."""
    with pytest.raises(BatchInterruptedError) as info:
        await run(FailingRecord(), sample_leads(30))
    error = info.value
    assert error.reason is StopReason.LEDGER
    cause = error.__cause__
    assert isinstance(cause, ConnectionError)
    [request] = error.partial.accepted
    assert cause.__notes__ == [
        f"request {request.secure_request_id} (chunk 0) was accepted but not recorded: a later "
        "run posts that chunk again, which D8 makes free"
    ]


class LostLease(Ledger):
    async def record_chunk(self, claim: ChunkClaim, request: AcceptedRequest) -> bool:
        return claim.chunk.index != 1


async def test_a_chunk_whose_lease_passed_on_is_logged_not_stopped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """record_chunk False (the lease went to another worker) is logged; the batch goes on."""
    with caplog.at_level(logging.INFO, logger="upscale_async"):
        result, _ = await run(LostLease(), sample_leads(30))
    assert result.accepted_count == 30
    lines = [r for r in caplog.records if "lease had passed" in r.getMessage()]
    assert [r.getMessage() for r in lines] == [
        f"chunk 1: accepted as {result.request_ids[1]}, but its lease had passed to another "
        "worker, which records it (D8 gives it the same request id)"
    ]


class FailingRelease(Ledger):
    async def release_chunk(self, claim: ChunkClaim) -> None:
        raise ConnectionError("ledger down")


async def test_a_lease_that_cannot_be_given_back_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A failed release (of a chunk that failed) is a warning: the lease expires anyway."""
    with caplog.at_level(logging.WARNING, logger="upscale_async"):
        result, _ = await run(FailingRelease(), sample_leads(20), faults=[Fault.http(500)])
    assert result.failed_count == 10
    assert result.accepted_count == 10
    [line] = [r for r in caplog.records if "could not release" in r.getMessage()]
    assert line.levelno == logging.WARNING
    assert line.getMessage() == (
        "chunk 0: could not release its lease (ConnectionError: ledger down); another worker "
        "can take it once the lease expires"
    )


# -- cancellation --------------------------------------------------------------------------


class SlowRelease(Ledger):
    """release_chunk takes a while (a network store), or never returns (``forever``)."""

    def __init__(self, forever: bool = False) -> None:
        super().__init__()
        self.forever = forever

    async def release_chunk(self, claim: ChunkClaim) -> None:
        await anyio.sleep(3600 if self.forever else 0.05)
        self.released.append(claim.chunk.index)


async def test_a_lease_is_given_back_when_the_batch_is_cancelled_mid_post() -> None:
    """Cancelled while its chunk is being posted, the batch still releases the lease."""
    ledger = SlowRelease()
    into = BatchSubmission()
    async with Emulator(webhook_secret=None) as emu:
        emu.faults.set("request_message_generation", [Fault.slow(5.0)])
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with anyio.move_on_after(1.0):
                await client.submit_batch(
                    make_campaign(), sample_leads(10), batch=ONE_WORKER, ledger=ledger, into=into
                )
    assert ledger.released == [0]
    assert into.failed_count == 10


async def test_a_release_that_hangs_gives_up_after_two_seconds() -> None:
    """A cancelled batch waits for its lease release at most about two seconds."""
    ledger = SlowRelease(forever=True)
    async with Emulator(webhook_secret=None) as emu:
        emu.faults.set("request_message_generation", [Fault.slow(5.0)])
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with anyio.fail_after(10):
                started = anyio.current_time()
                with anyio.move_on_after(1.0):
                    await client.submit_batch(
                        make_campaign(), sample_leads(10), batch=ONE_WORKER, ledger=ledger
                    )
                waited = anyio.current_time() - started
    assert 3.0 <= waited < 9.0  # 1 s before the cancel, then the 2 s release bound
    assert ledger.released == []


class HangingClaim(Ledger):
    async def claim_chunk(self, chunk: Chunk) -> ChunkClaim:
        self.chunks.append(chunk)
        await anyio.sleep(3600)
        raise AssertionError("unreachable")


async def test_leads_whose_claim_was_cancelled_are_not_submitted() -> None:
    """Cancelled while claiming a chunk: its leads end in not_submitted of ``into``."""
    into = BatchSubmission()
    leads = sample_leads(10)
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with anyio.move_on_after(1.0):
                await client.submit_batch(
                    make_campaign(), leads, batch=ONE_WORKER, ledger=HangingClaim(), into=into
                )
    assert into.not_submitted == leads
    assert into.stopped_by is StopReason.CANCELLED


# -- BUSY chunks: how many are held, and the backoff -------------------------------------------


async def test_a_worker_holds_exactly_four_busy_chunks() -> None:
    """Every chunk BUSY at first: one worker holds four of them waiting, no more."""
    waiting: set[int] = set()
    most = 0

    class Counting(Ledger):
        async def claim_chunk(self, chunk: Chunk) -> ChunkClaim:
            nonlocal most
            waiting.discard(chunk.index)
            claim = await super().claim_chunk(chunk)
            if claim.state is ClaimState.BUSY:
                waiting.add(chunk.index)
                most = max(most, len(waiting))
            return claim

    result, _ = await run(
        Counting(busy={i: 1 for i in range(12)}, retry_after=0.01), sample_leads(120)
    )
    assert result.accepted_count == 120
    assert most == 4


class VirtualClock:
    """anyio as _batch sees it, with current_time and sleep on a virtual clock."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def current_time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds
        await anyio.lowlevel.checkpoint()

    def __getattr__(self, name: str) -> Any:
        return getattr(anyio, name)


async def test_a_busy_chunk_is_rechecked_after_doubling_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A chunk BUSY five times is claimed again after 0.02, 0.04, 0.08, 0.16 and 0.32 s."""
    clock = VirtualClock()
    monkeypatch.setattr(batch_module, "anyio", clock)
    ledger = Ledger(busy={0: 5}, retry_after=9.0)
    result, _ = await run(ledger, sample_leads(10))
    assert result.accepted_count == 10
    assert [c.index for c in ledger.chunks] == [0] * 6
    assert clock.sleeps == [0.02, 0.04, 0.08, 0.16, 0.32]


async def test_the_recheck_wait_is_capped_by_the_ledgers_retry_after(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The ledger's retry_after caps each wait before a chunk is claimed again."""
    clock = VirtualClock()
    monkeypatch.setattr(batch_module, "anyio", clock)
    ledger = Ledger(busy={0: 4}, retry_after=0.05)
    await run(ledger, sample_leads(10))
    assert clock.sleeps == [0.02, 0.04, 0.05, 0.05]


def test_every_batch_module_name_the_clock_test_replaces_exists() -> None:
    """The virtual clock stands in for anyio.current_time and anyio.sleep only."""
    used = set(re.findall(r"anyio\.(\w+)", Path(batch_module.__file__).read_text()))
    assert {"current_time", "sleep"} <= used


# -- the stop error's message --------------------------------------------------------------


async def test_each_stop_says_why_in_its_message() -> None:
    """The BatchInterruptedError says why the batch stopped, the cause, the counts and what next."""

    def leads() -> Any:
        yield from sample_leads(10)
        raise OSError("disk gone")

    with pytest.raises(BatchInterruptedError) as info:
        await run(Ledger(), leads())
    assert str(info.value) == (
        "the batch stopped early after 10 leads: the lead source raised (OSError: disk gone); "
        "10 accepted, 0 rejected, 0 failed, 0 not submitted: `partial` has every lead, and its "
        "not_submitted leads can be resubmitted once the cause is fixed"
    )
    with pytest.raises(BatchInterruptedError) as info:
        await run(FailingRecord(), sample_leads(20))
    assert (
        " leads: the batch ledger refused a chunk or failed (ConnectionError: ledger down); "
        in str(info.value)
    )

    def refuse(progress: BatchProgress) -> None:
        raise RuntimeError("no thanks")

    with pytest.raises(BatchInterruptedError) as info:
        await run(Ledger(), sample_leads(20), on_progress=refuse)
    assert " leads: a callback raised (RuntimeError: no thanks); " in str(info.value)
    with pytest.raises(BatchInterruptedError) as info:
        await run(Ledger(), sample_leads(20), faults=[Fault.http(401)])
    assert " leads: the API key was refused (401) (AuthenticationError: " in str(info.value)


@pytest.mark.parametrize(
    ("first", "then", "kept"),
    [
        # The first reason wins...
        (StopReason.SERVICE_UNAVAILABLE, StopReason.AUTHENTICATION, StopReason.SERVICE_UNAVAILABLE),
        (StopReason.SOURCE_ERROR, StopReason.INSUFFICIENT_CREDITS, StopReason.SOURCE_ERROR),
        (StopReason.INSUFFICIENT_CREDITS, StopReason.SERVICE_UNAVAILABLE,
         StopReason.INSUFFICIENT_CREDITS),
        # ...but a 401 after a 402: the key must be fixed before credits matter.
        (StopReason.INSUFFICIENT_CREDITS, StopReason.AUTHENTICATION, StopReason.AUTHENTICATION),
    ],
)  # fmt: skip
def test_the_first_stop_reason_wins_except_a_401_after_a_402(
    first: StopReason, then: StopReason, kept: StopReason
) -> None:
    """_Batch.stopping keeps the first reason and its cause; only 401 replaces 402."""
    batch = batch_module._Batch.__new__(batch_module._Batch)
    batch.stop, batch.cause = None, None
    causes = {first: RuntimeError("first"), then: RuntimeError("then")}
    batch.stopping(first, causes[first])
    batch.stopping(then, causes[then])
    assert batch.stop is kept
    assert batch.cause is causes[kept]


# -- chunks in flight, and no pull after a stop (ledger workers) ----------------------------


@pytest.mark.parametrize("ledger", [None, "fake"])
async def test_a_batch_counts_its_chunks_in_flight(ledger: str | None) -> None:
    """Progress counts the chunks in flight (with a ledger or not): the other worker's as one
    ends, none at the end."""
    seen: list[int] = []
    policy = BatchPolicy(chunk_size=10, concurrency=2)
    result, _ = await run(
        Ledger() if ledger else None,
        sample_leads(60),
        policy,
        faults=FaultPlan(rate=1.0, choices=[Fault.slow(0.05)]),
        on_progress=lambda p: seen.append(p.chunks_in_flight),
    )
    assert result.accepted_count == 60
    assert min(seen) == 0
    assert max(seen) == 1  # reported as each chunk ends: the other one is still in flight
    assert seen[-1] == 0


class FlakyLeads:
    """An async lead source, slow per lead, that raises once at ``fail_at`` and then goes on
    (as a flaky network source might); counts the leads asked for after it raised."""

    def __init__(self, total: int, fail_at: int) -> None:
        self.leads = sample_leads(total)
        self.fail_at = fail_at
        self.next = 0
        self.failed = False
        self.asked_after_failure = 0

    def __aiter__(self) -> FlakyLeads:
        return self

    async def __anext__(self) -> dict[str, Any]:
        await anyio.sleep(0.01)
        if self.failed:
            self.asked_after_failure += 1
        if self.next >= len(self.leads):
            raise StopAsyncIteration
        i, self.next = self.next, self.next + 1
        if i == self.fail_at and not self.failed:
            self.failed = True
            raise OSError("source went away")
        return self.leads[i]


@pytest.mark.parametrize("ledger", [None, "fake"])
async def test_no_worker_pulls_leads_once_the_source_failed(ledger: str | None) -> None:
    """A worker waiting for its turn to pull when the other's pull fails pulls nothing more:
    the leads already pulled are handed back, and the source is not asked again."""
    source = FlakyLeads(40, fail_at=15)
    with pytest.raises(BatchInterruptedError) as info:
        await run(
            Ledger() if ledger else None,
            source,
            BatchPolicy(chunk_size=10, concurrency=2),
        )
    partial = info.value.partial
    assert info.value.reason is StopReason.SOURCE_ERROR
    assert source.asked_after_failure == 0
    assert partial.accepted_count == 10
    assert [lead["automation_tool_lead_id"] for lead in partial.not_submitted] == [
        f"lead_{i:06d}" for i in range(10, 15)
    ]


class CountingLeads:
    """A lead source (sync or async) that counts the leads asked for after it said it ended."""

    def __init__(self, total: int) -> None:
        self.leads = iter(sample_leads(total))
        self.asked_after_end = 0
        self.ended = False

    def _next(self) -> dict[str, Any]:
        if self.ended:
            self.asked_after_end += 1
        try:
            return next(self.leads)
        except StopIteration:
            self.ended = True
            raise

    def __iter__(self) -> CountingLeads:
        return self

    def __next__(self) -> dict[str, Any]:
        return self._next()

    def __aiter__(self) -> CountingLeads:
        return self

    async def __anext__(self) -> dict[str, Any]:
        await anyio.lowlevel.checkpoint()
        try:
            return self._next()
        except StopIteration:
            raise StopAsyncIteration from None


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_an_ended_source_is_not_asked_again(kind: str) -> None:
    """Once one worker finds the source ended, the other workers do not ask it again: the
    short last chunk asks past the end once, and the pull that comes back empty once more."""
    source = CountingLeads(25)
    leads = iter(source) if kind == "sync" else source.__aiter__()
    result, _ = await run(None, leads, BatchPolicy(chunk_size=10, concurrency=4))
    assert result.accepted_count == 25
    assert source.asked_after_end == 1


class Spans(Telemetry):
    """A Telemetry that notes the batch span's (chunk_size, total) and each chunk span's
    (start, size)."""

    def __init__(self) -> None:
        self.batches: list[tuple[int, int | None]] = []
        self.chunks: list[tuple[int, int]] = []

    def batch(self, chunk_size: int, total: int | None) -> Any:
        self.batches.append((chunk_size, total))
        return super().batch(chunk_size, total)

    def chunk(self, start: int, size: int) -> Any:
        self.chunks.append((start, size))
        return super().chunk(start, size)


@pytest.mark.parametrize("ledger", [None, "ledger"])
async def test_on_accepted_hears_of_each_accepted_request_as_it_is_accepted(
    ledger: str | None,
) -> None:
    """on_accepted gets every request the batch posted and had accepted, in order, once each."""
    heard: list[AcceptedRequest] = []
    result, _ = await run(Ledger() if ledger else None, sample_leads(25), on_accepted=heard.append)
    assert heard == result.accepted
    assert [(r.first_index, len(r.lead_ids)) for r in heard] == [(0, 10), (10, 10), (20, 5)]


async def test_each_chunk_span_carries_its_first_index_and_size() -> None:
    """The telemetry span around a chunk's POST names its first lead's index and its size; the
    batch span its chunk size and its lead count."""
    spans = Spans()
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url, telemetry=spans) as client:
            await client.submit_batch(make_campaign(), sample_leads(25), batch=ONE_WORKER)
    assert spans.chunks == [(0, 10), (10, 10), (20, 5)]
    assert spans.batches == [(10, 25)]


async def test_a_chunk_cancelled_in_flight_is_failed_saying_it_may_have_been_accepted() -> None:
    """Cancelled while its chunk is posted, the batch records that chunk as failed: its leads
    and first index, no status, and a message saying resubmitting is safe."""
    into = BatchSubmission()
    leads = sample_leads(20)
    async with Emulator(webhook_secret=None) as emu:
        emu.faults.set("request_message_generation", [None, Fault.slow(5.0)])
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with anyio.move_on_after(1.0):
                await client.submit_batch(make_campaign(), leads, batch=ONE_WORKER, into=into)
    assert into.accepted_count == 10
    [failed] = into.failed
    assert failed.leads == tuple(leads[10:])
    assert failed.error == (
        "cancelled while in flight: Upscale may or may not have accepted these leads; "
        "resubmitting them is safe (the API deduplicates)"
    )
    assert (failed.error_type, failed.status, failed.first_index) == ("Cancelled", None, 10)


async def test_an_async_source_is_pulled_a_chunk_at_a_time() -> None:
    """From an async source each request holds exactly chunk_size leads (the last the rest)."""

    async def leads() -> Any:
        for lead in sample_leads(25):
            yield lead

    result, _ = await run(None, leads())
    assert [len(request.lead_ids) for request in result.accepted] == [10, 10, 5]


async def test_leads_that_take_the_slow_path_are_reported_as_the_objects_given() -> None:
    """A chunk of Leads with an invalid one and a duplicate (checked lead by lead): the rejected
    and the failed leads are the caller's own Lead objects, in input order."""
    leads = [Lead(**d) for d in sample_leads(5)]
    bad = Lead(**{**sample_leads(6)[5], "lead_linkedin": "not a url"})
    dup = Lead(**sample_leads(1)[0])
    result, _ = await run(None, [*leads, bad, dup], faults=[Fault.http(500)])
    assert [(r.index, r.lead) for r in result.rejected] == [(5, bad), (6, dup)]
    assert all(r.lead is lead for r, lead in zip(result.rejected, (bad, dup), strict=True))
    [failed] = result.failed
    assert all(a is b for a, b in zip(failed.leads, leads, strict=True))
    assert len(failed.leads) == 5


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_after_a_402_the_rest_of_the_source_is_handed_back(kind: str) -> None:
    """Stopped by a 402, the batch hands back every lead the source still had, in order."""
    dicts = sample_leads(30)

    async def async_leads() -> Any:
        for lead in dicts:
            yield lead

    leads = iter(dicts) if kind == "sync" else async_leads()
    with pytest.raises(BatchInterruptedError) as info:
        await run(None, leads, faults=[Fault.http(402)])
    assert info.value.reason is StopReason.INSUFFICIENT_CREDITS
    assert info.value.partial.not_submitted == dicts


async def test_a_source_that_fails_while_handed_back_keeps_what_it_gave() -> None:
    """The source raises while the rest is drained after a 402: the batch then stops for the
    source, and the leads it gave before raising are handed back too."""
    dicts = sample_leads(30)

    def leads() -> Any:
        yield from dicts
        raise OSError("source went away")

    with pytest.raises(BatchInterruptedError) as info:
        await run(None, leads(), faults=[Fault.http(402)])
    assert info.value.reason is StopReason.SOURCE_ERROR
    assert info.value.partial.not_submitted == dicts


async def test_a_generator_source_reports_no_total() -> None:
    """Progress from a source of unknown length (a generator) has total None."""
    totals: list[int | None] = []
    await run(
        None, (lead for lead in sample_leads(15)), on_progress=lambda p: totals.append(p.total)
    )
    assert totals
    assert set(totals) == {None}


async def test_a_single_lead_given_as_the_source_is_refused_with_the_whole_message() -> None:
    """A lone mapping as ``leads``: a TypeError saying to wrap it in a list."""
    with pytest.raises(TypeError) as info:
        await run(None, sample_leads(1)[0])
    assert str(info.value) == (
        "leads must be an iterable (list, iterator or async iterator) of leads, not a single "
        "dict; wrap one lead in a list"
    )
