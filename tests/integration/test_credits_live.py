"""Credit-aware batches against the emulator: the estimate, the last credits, a top-up in place."""

from __future__ import annotations

from collections import Counter
from typing import Any

import anyio
import pytest

from upscale_async import (
    BatchInterruptedError,
    BatchJournal,
    BatchPolicy,
    CreditEstimate,
    CreditPolicy,
    CreditShortage,
    StopReason,
    UpscaleClient,
)
from upscale_async.emulator import Emulator

from .conftest import FAST_RETRY, campaign, lead

GENERATE = "request_message_generation"
CHUNKS = BatchPolicy(chunk_size=100, concurrency=4)


def _leads(n: int, prefix: str = "lead") -> list[dict[str, Any]]:
    return [lead(i, prefix) for i in range(n)]


def _client(emu: Emulator) -> UpscaleClient:
    return UpscaleClient(emu.api_key, base_url=emu.base_url, retry=FAST_RETRY)


def _accepted_once(batch: Any, n: int, prefix: str = "lead") -> None:
    counts = Counter(i for request in batch.accepted for i in request.lead_ids)
    assert counts == Counter(lead(i, prefix)["automation_tool_lead_id"] for i in range(n))


async def test_a_top_up_during_the_pause_resumes_the_same_batch_in_place() -> None:
    """250 credits, 300 leads x 2 types: 125 leads use every credit, the batch waits, a top-up
    comes, and the same call goes on: every lead accepted once, each body posted once."""
    async with Emulator(credits=250, webhook_secret=None) as emu, _client(emu) as client:
        shortages: list[tuple[CreditShortage, int]] = []

        async def top_up_later() -> None:
            await anyio.sleep(0.2)
            emu.add_credits(1000)

        async def wait_for_top_up(shortage: CreditShortage) -> bool:
            shortages.append((shortage, emu.state.credits()))
            return await shortage.wait_for_top_up(interval=0.05, timeout=10)

        policy = CreditPolicy(on_insufficient_credits=wait_for_top_up)
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(top_up_later)
                batch = await client.submit_batch(
                    campaign(), _leads(300), batch=CHUNKS, credits=policy
                )
        [(shortage, credits_then)] = shortages
        assert credits_then == 0  # no credit left that one more lead could have used
        assert shortage.available == 0
        assert shortage.needed == 2
        assert shortage.error is None  # foreseen: nothing was refused
        assert batch.stopped_by is None
        assert batch.not_submitted == []
        _accepted_once(batch, 300)
        assert emu.state.endpoint_counts[GENERATE] == len(batch.accepted)
        assert set(emu.state.body_posts().values()) == {1}
        assert not emu.state.double_charges()
        assert emu.state.credits_used() == 600
        assert [r.first_index for r in batch.accepted] == sorted(
            r.first_index for r in batch.accepted
        )


async def test_a_402_nobody_foresaw_puts_the_chunk_back_until_it_fits() -> None:
    """Credits spent elsewhere after the estimate: the refused chunks wait, the last credits go to
    a cut chunk, the top-up resumes: every lead accepted and charged once."""
    async with Emulator(credits=1000, webhook_secret=None) as emu, _client(emu) as client:

        async def spend_elsewhere(estimate: CreditEstimate) -> None:
            assert estimate.available == 1000
            await client.submit_batch(campaign(), _leads(475, "other"), batch=CHUNKS)  # 950

        async def top_up(shortage: CreditShortage) -> bool:
            assert emu.state.credits() < 2
            emu.add_credits(1000)
            return True

        policy = CreditPolicy(on_estimate=spend_elsewhere, on_insufficient_credits=top_up)
        with anyio.fail_after(30):
            batch = await client.submit_batch(campaign(), _leads(300), batch=CHUNKS, credits=policy)
        assert batch.stopped_by is None
        _accepted_once(batch, 300)
        assert not emu.state.double_charges()
        assert emu.state.credits_used() == 950 + 600
        refused = emu.state.endpoint_counts[GENERATE] - len(emu.state.requests)
        assert refused >= 1  # the unforeseen 402s: refused, charged nothing, sent again once
        assert emu.state.credits() == 1000 + 1000 - 950 - 600


async def test_without_a_hook_the_batch_stops_having_used_every_credit() -> None:
    """No on_insufficient_credits: the last chunk is cut to the 50 credits left; none unused."""
    async with Emulator(credits=250, webhook_secret=None) as emu, _client(emu) as client:
        with pytest.raises(BatchInterruptedError) as info:
            await client.submit_batch(campaign(), _leads(300), batch=CHUNKS, credits=CreditPolicy())
        batch = info.value.partial
        assert info.value.reason is StopReason.INSUFFICIENT_CREDITS
        assert batch.accepted_count == 125
        assert batch.not_submitted_count == 175
        assert emu.state.credits() == 0
        assert "credits" in str(info.value.__cause__)


async def test_without_credits_a_402_leaves_credits_unused() -> None:
    """The control: today's batch stops at the first 402 with 50 credits left unused."""
    async with Emulator(credits=250, webhook_secret=None) as emu, _client(emu) as client:
        with pytest.raises(BatchInterruptedError) as info:
            await client.submit_batch(campaign(), _leads(300), batch=CHUNKS)
        assert info.value.reason is StopReason.INSUFFICIENT_CREDITS
        assert emu.state.credits() == 50


async def test_the_estimate_is_reported_before_anything_is_sent() -> None:
    """on_estimate sees leads x types (a repeated id once) against the credits, before a POST."""
    async with Emulator(credits=250, webhook_secret=None) as emu, _client(emu) as client:
        seen: list[tuple[CreditEstimate, int]] = []

        def report(estimate: CreditEstimate) -> None:
            seen.append((estimate, emu.state.endpoint_counts[GENERATE]))

        leads = [*_leads(100), lead(0)]  # lead 0 twice: rejected, sent once
        await client.submit_batch(campaign(), leads, credits=CreditPolicy(on_estimate=report))
        [(estimate, posts_before)] = seen
        assert posts_before == 0
        assert estimate.leads == 101
        assert estimate.message_types == 2
        assert estimate.messages == 202
        assert estimate.known_free == 2
        assert estimate.estimated == 200
        assert estimate.available == 250
        assert estimate.sufficient is True
        assert "upper bound" in estimate.note


async def test_estimate_credits_says_the_shortfall() -> None:
    """client.estimate_credits: 300 leads x 2 types against 250 credits is 350 short."""
    async with Emulator(credits=250, webhook_secret=None) as emu, _client(emu) as client:
        estimate = await client.estimate_credits(campaign(), _leads(300))
        assert estimate.shortfall == 350
        assert estimate.sufficient is False
        with pytest.raises(TypeError, match="collection"):
            await client.estimate_credits(campaign(), iter(_leads(3)))
        assert emu.state.endpoint_counts[GENERATE] == 0


async def test_an_estimate_callback_that_raises_stops_before_sending() -> None:
    """Raising in on_estimate is how to refuse a batch that costs too much: nothing is sent."""
    async with Emulator(credits=250, webhook_secret=None) as emu, _client(emu) as client:

        def refuse(estimate: CreditEstimate) -> None:
            if not estimate.sufficient:
                raise RuntimeError(f"{estimate.shortfall} credits short")

        with pytest.raises(RuntimeError, match="350 credits short"):
            await client.submit_batch(
                campaign(), _leads(300), credits=CreditPolicy(on_estimate=refuse)
            )
        assert emu.state.endpoint_counts[GENERATE] == 0


async def test_credits_with_a_ledger_is_refused_with_a_message(tmp_path: Any) -> None:
    """credits= and ledger= together: ValueError naming both, before anything is sent."""
    async with Emulator(webhook_secret=None) as emu, _client(emu) as client:
        with BatchJournal(tmp_path / "j.jsonl") as journal:
            with pytest.raises(ValueError, match="credits= cannot be combined with ledger="):
                await client.submit_batch(
                    campaign(), _leads(3), credits=CreditPolicy(), ledger=journal
                )
        assert emu.state.endpoint_counts[GENERATE] == 0


async def test_generate_waits_for_a_top_up_and_hands_out_every_lead() -> None:
    """generate(credits=): 100 credits, 80 leads x 2 types; a top-up; 80 generated outcomes."""
    async with Emulator(credits=100, webhook_secret=None) as emu, _client(emu) as client:

        def top_up(shortage: CreditShortage) -> bool:
            emu.add_credits(100)
            return True

        policy = CreditPolicy(on_insufficient_credits=top_up)
        outcomes = []
        with anyio.fail_after(30):
            async with client.generate(
                campaign(), _leads(80), batch=BatchPolicy(chunk_size=30), credits=policy
            ) as results:
                outcomes = [o async for o in results]
        assert Counter(o.outcome for o in outcomes) == {"generated": 80}
        assert not emu.state.double_charges()


async def test_a_hook_that_says_go_on_without_credits_is_asked_at_most_once_a_second() -> None:
    """on_insufficient_credits returning True with no top-up does not spin on the API."""
    async with Emulator(credits=0, webhook_secret=None) as emu, _client(emu) as client:
        asked: list[float] = []

        def go_on(shortage: CreditShortage) -> bool:
            asked.append(anyio.current_time())
            return len(asked) < 3

        with pytest.raises(BatchInterruptedError) as info, anyio.fail_after(10):
            await client.submit_batch(
                campaign(), _leads(10), credits=CreditPolicy(on_insufficient_credits=go_on)
            )
        assert info.value.reason is StopReason.INSUFFICIENT_CREDITS
        assert len(asked) == 3
        assert asked[2] - asked[1] >= 0.9
        assert emu.state.endpoint_counts[GENERATE] == 0
        assert emu.state.endpoint_counts["account"] <= 4


async def test_a_chunk_that_failed_is_counted_as_spent_so_no_chunk_meets_a_402() -> None:
    """A chunk charged but unanswered (the connection dropped after processing) counts against
    the credits: the chunks after it stay within what is left, and none is answered 402."""
    from upscale_async import EventHooks, ResponseEvent, RetryPolicy
    from upscale_async.emulator import Fault

    statuses: list[int | None] = []

    def seen(event: ResponseEvent) -> None:
        if event.path.endswith(GENERATE):
            statuses.append(event.status)

    async with Emulator(credits=400, webhook_secret=None) as emu:
        emu.faults.set(GENERATE, [Fault.drop_after()])
        async with UpscaleClient(
            emu.api_key,
            base_url=emu.base_url,
            retry=RetryPolicy(attempts=1),
            hooks=EventHooks(on_response=seen),
        ) as client:
            with pytest.raises(BatchInterruptedError) as info:
                await client.submit_batch(
                    campaign(),
                    _leads(250),
                    batch=BatchPolicy(chunk_size=50, concurrency=1),
                    credits=CreditPolicy(),
                )
    batch = info.value.partial
    assert info.value.reason is StopReason.INSUFFICIENT_CREDITS
    assert (batch.accepted_count, batch.failed_count, batch.not_submitted_count) == (150, 50, 50)
    assert 402 not in statuses
    assert statuses == [None, 200, 200, 200]
