"""await_completion and generate against the emulator's real webhook delivery."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from collections.abc import Iterator

import anyio
import pytest

from upscale_async import (
    AuthenticationError,
    BatchInterruptedError,
    BatchPolicy,
    CompletionTimeoutError,
    LeadOutcome,
    PollPolicy,
    StopReason,
    UpscaleClient,
)
from upscale_async.emulator import DeliveryPlan, Emulator
from upscale_async.webhooks import CompletionHub, StandardWebhooksVerifier, WebhookReceiver

from .conftest import campaign, lead, leads

HUB_POLL = PollPolicy(initial=0.05, fallback_interval=30.0)


async def test_200_requests_through_the_hub_need_one_retrieve_each() -> None:
    """200 requests awaited through a hub and a WebhookReceiver: one retrieve call per request."""
    hub = CompletionHub()
    async with Emulator(webhook_time_scale=0.001, latency=0.05) as emu:
        verifier = StandardWebhooksVerifier(emu.webhook_secret or "")
        async with (
            WebhookReceiver(hub, verifier=verifier) as receiver,
            UpscaleClient(emu.api_key, base_url=emu.base_url) as client,
        ):
            batch = await client.submit_batch(
                campaign(receiver.url),
                leads(2_000),
                batch=BatchPolicy(chunk_size=10, concurrency=8),
            )
            assert len(batch.accepted) == 200
            results = await client.await_completion(batch, hub=hub, poll=HUB_POLL, timeout=60)
        assert [r.secure_request_id for r in results] == batch.request_ids
        assert all(r.is_complete for r in results)
        assert emu.state.endpoint_counts["retrieve_messages"] == 200
    assert (await hub.stats()).waiters == 0


async def test_polling_is_bounded_by_the_backoff() -> None:
    """Without webhooks, polling takes at most ceil(log2(T / initial)) + 2 retrieves per request."""
    generation_time = 0.8
    initial = 0.05
    async with Emulator(webhook_secret=None, latency=generation_time) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            batch = await client.submit_batch(
                campaign(), leads(200), batch=BatchPolicy(chunk_size=10)
            )
            poll = PollPolicy(initial=initial, factor=2.0, jitter=0.1)
            results = await client.await_completion(batch, poll=poll, timeout=30)
        assert all(r.is_complete for r in results)
        per_request = emu.state.endpoint_counts["retrieve_messages"] / len(batch.accepted)
        assert per_request <= math.ceil(math.log2(generation_time / initial)) + 2


async def test_webhook_before_the_waiter_resolves_at_once() -> None:
    """A webhook delivered before anyone waits still resolves the waiter, with one retrieve."""
    hub = CompletionHub()
    async with Emulator(webhook_time_scale=0.001) as emu:
        verifier = StandardWebhooksVerifier(emu.webhook_secret or "")
        async with (
            WebhookReceiver(hub, verifier=verifier) as receiver,
            UpscaleClient(emu.api_key, base_url=emu.base_url) as client,
        ):
            accepted = await client.request_message_generation(
                campaign(receiver.url), [lead(1), lead(2)]
            )
            await emu.wait_deliveries(5.0)
            started = time.perf_counter()
            [result] = await client.await_completion(
                [accepted.secure_request_id], hub=hub, poll=HUB_POLL, timeout=10
            )
            assert time.perf_counter() - started < 1.0
        assert result.is_complete
        assert emu.state.endpoint_counts["retrieve_messages"] == 1


async def test_duplicate_deliveries_resolve_once() -> None:
    """The same event delivered three times resolves the waiter once (one retrieve)."""
    hub = CompletionHub()
    async with Emulator(webhook_time_scale=0.001, deliveries=DeliveryPlan(duplicates=3)) as emu:
        verifier = StandardWebhooksVerifier(emu.webhook_secret or "")
        async with (
            WebhookReceiver(hub, verifier=verifier) as receiver,
            UpscaleClient(emu.api_key, base_url=emu.base_url) as client,
        ):
            accepted = await client.request_message_generation(campaign(receiver.url), [lead(1)])
            await client.await_completion(
                accepted.secure_request_id, hub=hub, poll=HUB_POLL, timeout=10
            )
            await emu.wait_deliveries(5.0)
        outcomes = Counter(d.outcome for d in emu.state.deliveries_for(accepted.secure_request_id))
        assert outcomes["delivered"] + outcomes["duplicate"] == 3
        assert emu.state.endpoint_counts["retrieve_messages"] == 1


async def test_lost_webhooks_complete_through_the_fallback_poll() -> None:
    """Requests whose webhooks are never delivered still complete through the fallback poll."""
    hub = CompletionHub()
    plan = DeliveryPlan(drop_first=100, rate=0.5, seed=3)
    async with Emulator(webhook_time_scale=0.001, webhook_attempts=3, deliveries=plan) as emu:
        verifier = StandardWebhooksVerifier(emu.webhook_secret or "")
        async with (
            WebhookReceiver(hub, verifier=verifier) as receiver,
            UpscaleClient(emu.api_key, base_url=emu.base_url) as client,
        ):
            batch = await client.submit_batch(
                campaign(receiver.url), leads(200), batch=BatchPolicy(chunk_size=10)
            )
            poll = PollPolicy(initial=0.05, fallback_interval=0.3)
            results = await client.await_completion(batch, hub=hub, poll=poll, timeout=20)
        assert all(r.is_complete for r in results)
        dropped = {d.request_id for d in emu.state.deliveries if d.outcome == "dropped"}
        assert dropped  # some events really were lost
        delivered = {d.request_id for d in emu.state.deliveries if d.outcome == "delivered"}
        assert dropped.isdisjoint(delivered)


async def test_deadline_raises_with_pending_ids_and_progress() -> None:
    """After the deadline, CompletionTimeoutError carries the pending ids and last progress."""
    async with Emulator(webhook_secret=None, latency=30.0) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            accepted = await client.request_message_generation(campaign(), [lead(1)])
            with pytest.raises(CompletionTimeoutError) as info:
                await client.await_completion(
                    [accepted.secure_request_id], poll=PollPolicy(initial=0.05), timeout=0.5
                )
    error = info.value
    assert error.pending == [accepted.secure_request_id]
    last = error.last_seen[accepted.secure_request_id]
    assert last is not None
    assert not last.is_complete


async def test_cancellation_leaves_no_waiter_behind() -> None:
    """Cancelling await_completion removes every hub waiter."""
    hub = CompletionHub()
    async with Emulator(webhook_secret=None, latency=30.0) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            batch = await client.submit_batch(
                campaign(), leads(50), batch=BatchPolicy(chunk_size=10)
            )
            with anyio.move_on_after(0.3):
                await client.await_completion(batch, hub=hub, poll=HUB_POLL)
    assert (await hub.stats()).waiters == 0


async def test_generate_yields_every_lead_and_overlaps_submit_and_wait() -> None:
    """generate() yields one outcome per lead, and the first arrive before the last chunk is sent."""
    hub = CompletionHub()
    source = [lead(i) for i in range(600)]
    source[5]["first_name"] = ""
    source[7]["automation_tool_lead_id"] = "lead_000007_nowebpresence"
    async with Emulator(webhook_time_scale=0.001) as emu:
        emu_requests_at_first: int | None = None
        verifier = StandardWebhooksVerifier(emu.webhook_secret or "")
        outcomes: list[LeadOutcome] = []
        async with (
            WebhookReceiver(hub, verifier=verifier) as receiver,
            UpscaleClient(emu.api_key, base_url=emu.base_url) as client,
        ):
            async with client.generate(
                campaign(receiver.url),
                iter(source),
                hub=hub,
                poll=HUB_POLL,
                batch=BatchPolicy(chunk_size=10, concurrency=1),
                timeout=30,
            ) as results:
                async for outcome in results:
                    if emu_requests_at_first is None:
                        emu_requests_at_first = emu.state.accepted
                    outcomes.append(outcome)
    assert len(outcomes) == 600
    assert len({o.lead_id for o in outcomes}) == 600
    by_kind = Counter(o.outcome for o in outcomes)
    assert by_kind == {"generated": 598, "rejected": 1, "failed": 1}
    failed = next(o for o in outcomes if o.outcome == "failed")
    assert failed.lead_id == "lead_000007_nowebpresence"
    assert failed.reason is not None
    assert "web presence" in failed.reason
    generated = next(o for o in outcomes if o.outcome == "generated")
    assert generated.messages["connection_request"]
    assert generated.messages["first_follow_up"]
    assert emu_requests_at_first is not None
    assert emu_requests_at_first < 60  # results came out before the last of 60 chunks was sent


async def test_generate_stops_cleanly_when_closed_early() -> None:
    """Leaving the generate() block early stops submitting and polling: nothing runs after it."""
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:

            def sdk_tasks() -> list[str]:
                names = [t.get_name() for t in asyncio.all_tasks()]
                return [n for n in names if n.startswith("upscale_async.")]

            async with client.generate(
                campaign(),
                leads(5_000),
                poll=PollPolicy(initial=0.02),
                batch=BatchPolicy(chunk_size=10, concurrency=2),
            ) as results:
                async for _ in results:
                    assert sdk_tasks()  # the pipeline runs while the block is open
                    break
            assert sdk_tasks() == []
            counts = dict(emu.state.endpoint_counts)
            await asyncio.sleep(0.3)
            assert dict(emu.state.endpoint_counts) == counts  # no request after the block
            assert counts["request_message_generation"] < 500


async def test_generate_passes_the_consumers_exception_through_unchanged() -> None:
    """An exception raised in the consumer's loop leaves the block as it is, not in a group."""

    class Stop(Exception):
        pass

    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:

            async def consume() -> None:
                async with client.generate(
                    campaign(), leads(200), poll=PollPolicy(initial=0.02)
                ) as results:
                    async for _ in results:
                        raise Stop

            with pytest.raises(Stop):
                await consume()


async def test_generate_accounts_for_every_lead_when_the_key_fails() -> None:
    """A 401 still yields an outcome for every lead seen (not_submitted, rejected), then raises."""
    source = [lead(i) for i in range(120)]
    source[3]["first_name"] = ""
    outcomes: list[LeadOutcome] = []
    async with Emulator(webhook_secret=None, revoked_keys=("revoked",)) as emu:
        async with UpscaleClient("revoked", base_url=emu.base_url) as client:

            async def consume() -> None:
                async with client.generate(
                    campaign(), iter(source), batch=BatchPolicy(chunk_size=50)
                ) as results:
                    async for outcome in results:
                        outcomes.append(outcome)

            with pytest.raises(BatchInterruptedError) as info:
                await consume()
    assert info.value.reason is StopReason.AUTHENTICATION
    assert isinstance(info.value.__cause__, AuthenticationError)
    assert Counter(o.outcome for o in outcomes) == {"not_submitted": 119, "rejected": 1}


async def test_generate_yields_rejected_leads_as_they_are_found() -> None:
    """A rejected lead comes out before the rest of the input has been read."""
    pulled = 0

    def source() -> Iterator[dict[str, object]]:
        nonlocal pulled
        for i in range(1_000):
            pulled += 1
            item = lead(i)
            if i == 0:
                item["lead_linkedin"] = "nope"
            yield item

    async with Emulator(webhook_secret=None, latency=0.2) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            async with client.generate(
                campaign(),
                source(),
                poll=PollPolicy(initial=0.05),
                batch=BatchPolicy(chunk_size=10, concurrency=1),
            ) as results:
                first = await anext(results)
                assert first.outcome == "rejected"
                assert pulled < 1_000
