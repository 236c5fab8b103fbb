"""RedisLedger on a real Redis: claims, leases, renewal, expiry, takeover, records, mismatches."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import anyio
import pytest

from upscale_async import (
    AcceptedRequest,
    BatchInterruptedError,
    BatchPolicy,
    ConfigurationError,
    PollPolicy,
    StopReason,
    UpscaleClient,
)
from upscale_async._ledger import Chunk, ClaimState, LedgerMismatchError
from upscale_async.emulator import Emulator, Fault, FaultPlan
from upscale_async.redis import RedisUnavailableError
from upscale_async.redis._ledger import RedisLedger
from upscale_async.testing import make_campaign, sample_leads

from .conftest import RedisServer, free_port

Open = Callable[..., AbstractAsyncContextManager[RedisLedger]]


@pytest.fixture
def open_ledger(redis_url: str, redis_namespace: str) -> Open:
    """Open a RedisLedger (a worker) on the test's namespace, batch "b" unless told."""

    @asynccontextmanager
    async def opened(**options: object) -> AsyncIterator[RedisLedger]:
        options.setdefault("batch", "b")
        async with RedisLedger(redis_url, namespace=redis_namespace, **options) as ledger:  # type: ignore[arg-type]
            yield ledger

    return opened


def chunk(index: int, ids: tuple[str, ...] = ("a", "b")) -> Chunk:
    return Chunk(index, index * 10, ids)


async def test_a_free_chunk_is_mine_and_done_once_recorded(open_ledger: Open) -> None:
    """MINE for the first claim; after record_chunk every worker finds it DONE with the request."""
    async with open_ledger() as one, open_ledger() as two:
        mine = await one.claim_chunk(chunk(0))
        assert mine.state is ClaimState.MINE
        request = AcceptedRequest("req-0", ("a", "b"), 0)
        assert await one.record_chunk(mine, request) is True
        done = await two.claim_chunk(chunk(0))
    assert done.state is ClaimState.DONE
    assert done.requests == (request,)


async def test_a_leased_chunk_is_busy_for_another_worker(open_ledger: Open) -> None:
    """A chunk leased by a live worker is BUSY elsewhere, to be claimed again soon."""
    async with open_ledger() as one, open_ledger(recheck_interval=0.2) as two:
        assert (await one.claim_chunk(chunk(1))).state is ClaimState.MINE
        busy = await two.claim_chunk(chunk(1))
    assert busy.state is ClaimState.BUSY
    assert 0 < busy.retry_after <= 0.2


async def test_recording_releases_the_lease(open_ledger: Open, redis_url: str) -> None:
    """After record_chunk the chunk's lease key is gone (and the record is there)."""
    from redis.asyncio import Redis

    async with open_ledger() as one:
        claim = await one.claim_chunk(chunk(2))
        await one.record_chunk(claim, AcceptedRequest("req-2", ("a", "b"), 20))
        raw = Redis.from_url(redis_url)
        try:
            leases = [k async for k in raw.scan_iter(match=f"{one.namespace}:ledger:*lease*")]
        finally:
            await raw.aclose()
    assert leases == []


async def test_a_released_chunk_can_be_claimed_at_once(open_ledger: Open) -> None:
    """A chunk whose post failed is released: the next claim (any worker) is MINE."""
    async with open_ledger() as one, open_ledger() as two:
        claim = await one.claim_chunk(chunk(3))
        await one.release_chunk(claim)
        assert (await two.claim_chunk(chunk(3))).state is ClaimState.MINE


async def test_a_lease_is_renewed_while_held(open_ledger: Open) -> None:
    """A lease held three TTLs long by a live worker is still BUSY for the others."""
    async with open_ledger(lease_ttl=0.3) as one, open_ledger() as two:
        assert (await one.claim_chunk(chunk(4))).state is ClaimState.MINE
        await anyio.sleep(0.9)
        assert (await two.claim_chunk(chunk(4))).state is ClaimState.BUSY


async def test_a_stalled_workers_lease_expires_and_is_taken_over(open_ledger: Open) -> None:
    """A worker stalled past the TTL loses its lease; another takes it; the first cannot record."""
    async with open_ledger(lease_ttl=0.3) as one, open_ledger() as two:
        stale = await one.claim_chunk(chunk(5))
        # The whole loop stalls (a GC pause, SIGSTOP): no renewal runs.
        time.sleep(0.5)  # noqa: ASYNC251
        taken = await two.claim_chunk(chunk(5))
        assert taken.state is ClaimState.MINE
        late = AcceptedRequest("req-late", ("a", "b"), 50)
        assert await one.record_chunk(stale, late) is False
        assert await one.accepted_requests() == []
        mine = AcceptedRequest("req-5", ("a", "b"), 50)
        assert await two.record_chunk(taken, mine) is True
        assert await one.accepted_requests() == [mine]


async def test_an_expired_lease_nobody_took_is_still_recorded(open_ledger: Open) -> None:
    """A lease that expired with no other holder does not lose an accepted request."""
    async with open_ledger(lease_ttl=0.2) as one:
        claim = await one.claim_chunk(chunk(6))
        time.sleep(0.3)  # noqa: ASYNC251 - a stalled loop: the lease expires unrenewed
        request = AcceptedRequest("req-6", ("a", "b"), 60)
        assert await one.record_chunk(claim, request) is True
        assert await one.accepted_requests() == [request]


async def test_another_input_at_the_same_position_is_refused(open_ledger: Open) -> None:
    """A claim whose lead ids differ from the ones claimed there names the chunk and the rule."""
    async with open_ledger() as one, open_ledger() as two:
        await one.claim_chunk(chunk(7, ("a", "b")))
        with pytest.raises(LedgerMismatchError) as caught:
            await two.claim_chunk(chunk(7, ("a", "c")))
    message = str(caught.value)
    assert message.startswith("chunk 7 (from input lead 70) differs from the chunk the ledger")
    assert "same campaign and the same input in the same order" in message
    assert caught.value.chunk == 7


async def test_accepted_requests_lists_every_workers_records_in_input_order(
    open_ledger: Open,
) -> None:
    """accepted_requests() returns what every worker recorded, sorted by first index."""
    async with open_ledger() as one, open_ledger() as two:
        for ledger, index in ((two, 9), (one, 8), (two, 0)):
            claim = await ledger.claim_chunk(chunk(index))
            await ledger.record_chunk(
                claim, AcceptedRequest(f"req-{index}", ("a", "b"), index * 10)
            )
        async with open_ledger(batch="other") as in_another_batch:
            assert await in_another_batch.accepted_requests() == []
        assert [r.secure_request_id for r in await one.accepted_requests()] == [
            "req-0",
            "req-8",
            "req-9",
        ]


async def test_an_unreachable_redis_is_named_at_start() -> None:
    """Entering a ledger on a port nobody listens on raises RedisUnavailableError with the URL."""
    url = f"redis://:pw@127.0.0.1:{free_port()}/0"
    with pytest.raises(RedisUnavailableError, match=r"cannot reach Redis at redis://\*\*\*@127"):
        async with RedisLedger(url, batch="b", timeout=1):
            pass


async def test_the_url_comes_from_the_environment(
    redis_url: str, redis_namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without url=, UPSCALE_REDIS_URL names the server."""
    monkeypatch.setenv("UPSCALE_REDIS_URL", redis_url)
    async with RedisLedger(batch="b", namespace=redis_namespace) as ledger:
        assert (await ledger.claim_chunk(chunk(0))).state is ClaimState.MINE


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"batch": "a b"}, "batch must be 1-100 characters", id="batch-name"),
        pytest.param({"batch": "b", "lease_ttl": 0}, "lease_ttl must be", id="lease-ttl"),
        pytest.param({"batch": "b", "namespace": ""}, "namespace must be", id="namespace"),
    ],
)
def test_bad_configuration_says_what_to_fix(options: dict[str, object], message: str) -> None:
    """A bad batch name, TTL or namespace raises ConfigurationError naming it."""
    with pytest.raises(ConfigurationError, match=message):
        RedisLedger("redis://127.0.0.1:1/0", **options)  # type: ignore[arg-type]


async def test_a_ledger_not_entered_says_how_to_use_it(redis_url: str) -> None:
    """Claiming on a ledger outside `async with` raises a RuntimeError saying so."""
    with pytest.raises(RuntimeError, match=r"async with RedisLedger\(...\) as ledger"):
        await RedisLedger(redis_url, batch="b").claim_chunk(chunk(0))


# -- through submit_batch -----------------------------------------------------------------------

POLICY = BatchPolicy(chunk_size=10, concurrency=3)


async def test_a_second_worker_finds_every_chunk_recorded(open_ledger: Open) -> None:
    """A worker after the first posts nothing; its result accounts every lead as accepted."""
    leads = sample_leads(95)
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            async with open_ledger() as one:
                first = await client.submit_batch(make_campaign(), leads, batch=POLICY, ledger=one)
            async with open_ledger() as two:
                second = await client.submit_batch(make_campaign(), leads, batch=POLICY, ledger=two)
                recorded = await two.accepted_requests()
    assert emu.state.submissions == 10
    assert second.accepted_count == 95
    assert second.accepted == first.accepted == recorded


async def test_a_chunk_held_by_a_dead_worker_is_taken_over(
    open_ledger: Open, redis_url: str
) -> None:
    """A lease left by a worker that died expires; the batch waits for it, then posts the chunk."""
    from redis.asyncio import Redis

    leads = sample_leads(50)
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            async with open_ledger(recheck_interval=0.05) as ledger:
                raw = Redis.from_url(redis_url)
                try:  # what a SIGKILLed worker leaves: a lease on chunk 2, for 0.5 s more
                    await raw.set(f"{ledger.namespace}:ledger:{{b}}:lease:2", "dead", px=500)
                finally:
                    await raw.aclose()
                started = anyio.current_time()
                result = await client.submit_batch(
                    make_campaign(), leads, batch=POLICY, ledger=ledger
                )
                waited = anyio.current_time() - started
    assert result.accepted_count == 50
    assert emu.state.submissions == 5
    assert waited >= 0.4


async def test_redis_going_away_stops_the_batch_with_every_lead_accounted(
    redis_server_factory: Callable[[], RedisServer], redis_namespace: str
) -> None:
    """Redis killed mid-batch: BatchInterruptedError(LEDGER) naming the URL; no lead lost."""
    server = redis_server_factory()
    leads = sample_leads(300)
    caught: list[BatchInterruptedError] = []
    async with Emulator(webhook_secret=None) as emu:
        emu.faults.set(
            "request_message_generation", FaultPlan(rate=1.0, choices=[Fault.slow(0.05)])
        )
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            async with RedisLedger(server.url, batch="b", namespace=redis_namespace) as ledger:

                async def kill_redis() -> None:
                    while emu.state.submissions < 3:
                        await anyio.sleep(0.01)
                    server.stop()

                async with anyio.create_task_group() as tg:
                    tg.start_soon(kill_redis)
                    try:
                        await client.submit_batch(
                            make_campaign(), leads, batch=POLICY, ledger=ledger
                        )
                    except BatchInterruptedError as exc:
                        caught.append(exc)
    [error] = caught
    assert error.reason is StopReason.LEDGER
    assert isinstance(error.__cause__, RedisUnavailableError)
    assert server.url.split("/0")[0] in str(error.__cause__)
    assert error.partial.total == 300
    assert error.partial.accepted_count + error.partial.not_submitted_count == 300


async def test_generate_on_a_ledger_awaits_what_another_worker_sent(open_ledger: Open) -> None:
    """generate(ledger=) after a submitting worker posts nothing and hands out every lead once."""
    leads = sample_leads(30)
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            async with open_ledger() as one:
                await client.submit_batch(make_campaign(), leads, batch=POLICY, ledger=one)
            fast = client.with_options(poll=PollPolicy(initial=0.01, max_interval=0.05))
            async with open_ledger() as two:
                async with fast.generate(
                    make_campaign(), leads, batch=POLICY, ledger=two
                ) as outcomes:
                    seen = [outcome async for outcome in outcomes]
    assert sorted(o.lead_id for o in seen) == [lead["automation_tool_lead_id"] for lead in leads]
    assert {o.outcome for o in seen} == {"generated"}
    assert emu.state.submissions == 3


async def test_generate_refuses_a_ledger_and_accepted_together(open_ledger: Open) -> None:
    """ledger= and accepted= together would hand out the ledger's leads twice: refused."""
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            async with open_ledger() as ledger:
                earlier = [AcceptedRequest("req-0", ("a",), 0)]
                with pytest.raises(ValueError, match="pass ledger= or accepted=, not both"):
                    async with client.generate(
                        make_campaign(), [], ledger=ledger, accepted=earlier
                    ):
                        pass


async def test_a_worker_given_another_campaign_is_refused(open_ledger: Open) -> None:
    """Same leads, another campaign: the second worker stops (LEDGER) and posts nothing."""
    leads = sample_leads(20)
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            async with open_ledger() as one:
                await client.submit_batch(make_campaign(), leads, batch=POLICY, ledger=one)
            other = make_campaign(automation_tool_campaign_name="Another campaign")
            async with open_ledger() as two:
                with pytest.raises(BatchInterruptedError) as caught:
                    await client.submit_batch(other, leads, batch=POLICY, ledger=two)
    assert caught.value.reason is StopReason.LEDGER
    assert isinstance(caught.value.__cause__, LedgerMismatchError)
    assert "the same campaign" in str(caught.value.__cause__)
    assert caught.value.partial.not_submitted_count == 20
    assert emu.state.submissions == 2


def test_a_mismatch_error_pickles_with_its_fields() -> None:
    """LedgerMismatchError survives pickling (to a worker pool's parent) with its fields."""
    import pickle

    error = LedgerMismatchError("chunk 3 differs", chunk=3, expected="a", found="b")
    back = pickle.loads(pickle.dumps(error))
    assert (str(back), back.chunk, back.expected, back.found) == ("chunk 3 differs", 3, "a", "b")


async def test_clear_forgets_the_batch_and_only_it(open_ledger: Open) -> None:
    """clear() deletes the batch's records, digests and leases; another batch keeps its own."""
    async with open_ledger() as ledger, open_ledger(batch="kept") as kept:
        for one in (ledger, kept):
            claim = await one.claim_chunk(chunk(0))
            await one.record_chunk(claim, AcceptedRequest("req-0", ("a", "b"), 0))
        await ledger.claim_chunk(chunk(1, ("x", "y")))
        await ledger.clear()
        assert await ledger.accepted_requests() == []
        assert (await ledger.claim_chunk(chunk(1, ("a", "c")))).state is ClaimState.MINE
        assert len(await kept.accepted_requests()) == 1
