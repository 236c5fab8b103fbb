"""await_completion and generate behaviour that mutation testing showed no other test pinned down.

Each test asserts one promise of ``_completion.py`` (a message, a callback, the hub being used,
the order of message types) that a surviving mutant broke, against the emulator over loopback.
"""

from __future__ import annotations

import anyio
import pytest

from upscale_async import (
    BatchInterruptedError,
    BatchPolicy,
    BatchProgress,
    CompletionError,
    CompletionTimeoutError,
    LeadOutcome,
    PollPolicy,
    Routes,
    Telemetry,
    UpscaleClient,
)
from upscale_async.emulator import Emulator, Fault
from upscale_async.webhooks import CompletionHub, StandardWebhooksVerifier, WebhookReceiver

from .conftest import FAST_RETRY, campaign, lead, leads

FAST_POLL = PollPolicy(initial=0.02, factor=1.5, max_interval=0.2)
UNKNOWN = "00000000-0000-4000-8000-00000000000{}"


async def test_four_failed_ids_list_three_and_count_one_more() -> None:
    """With exactly four failed ids the message lists three and says "(and 1 more)"."""
    unknown = [UNKNOWN.format(i) for i in range(4)]
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with pytest.raises(CompletionError) as info:
                await client.await_completion(unknown, poll=FAST_POLL, timeout=10)
    message = str(info.value)
    assert message.startswith(
        "waiting for completion failed: 0 of 4 requests completed; 4 failed ("
    )
    assert message.count("NotFoundError: ") == 3
    assert " (and 1 more)); `completed` keeps" in message


async def test_the_timeout_message_says_what_to_do() -> None:
    """The deadline's error ends by saying where the ids are and how to go on."""
    async with Emulator(webhook_secret=None, latency=30.0) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            a = (await client.request_message_generation(campaign(), [lead(1)])).secure_request_id
            with pytest.raises(CompletionTimeoutError) as info:
                await client.await_completion([a], poll=FAST_POLL, timeout=0.3)
    assert str(info.value) == (
        "1 of 1 requests were not complete after 0.3 s (0 of 1 requests completed); `pending` "
        "lists them and `last_seen` has the last progress of each; wait again with a larger "
        "timeout, or retrieve them later"
    )


async def test_a_401_says_how_many_ids_it_left_unawaited() -> None:
    """After a 401 the message counts the ids that were not awaited because of it."""
    async with Emulator(webhook_secret=None, latency=30.0) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url, retry=FAST_RETRY) as client:
            batch = await client.submit_batch(campaign(), leads(6), batch=BatchPolicy(chunk_size=2))
            emu.faults.set("retrieve_messages", [Fault.http(401)])
            with pytest.raises(CompletionError) as info:
                await client.await_completion(batch, poll=FAST_POLL, timeout=20)
    assert len(info.value.pending) == 2
    message = str(info.value)
    assert "; 1 failed (" in message
    assert "); 2 not awaited (stopped by the 401); `completed` keeps" in message


async def test_generate_reports_progress() -> None:
    """generate passes on_progress to its batch: one report per chunk, the last counting all."""
    reports: list[BatchProgress] = []
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            async with client.generate(
                campaign(),
                [lead(i) for i in range(3)],
                poll=FAST_POLL,
                batch=BatchPolicy(chunk_size=1, concurrency=1),
                timeout=10,
                on_progress=reports.append,
            ) as outcomes:
                found = [outcome async for outcome in outcomes]
    assert [o.outcome for o in found] == ["generated"] * 3
    assert len(reports) == 3
    assert reports[-1].leads_accepted == 3


async def test_generate_waits_through_the_hub() -> None:
    """generate(hub=) is woken by the webhook, long before its first poll would be due."""
    hub = CompletionHub()
    slow_poll = PollPolicy(initial=30.0, max_interval=30.0, fallback_interval=30.0)
    async with Emulator(webhook_time_scale=0.001, latency=0.05) as emu:
        verifier = StandardWebhooksVerifier(emu.webhook_secret or "")
        async with (
            WebhookReceiver(hub, verifier=verifier) as receiver,
            UpscaleClient(emu.api_key, base_url=emu.base_url) as client,
        ):
            with anyio.fail_after(10):
                async with client.generate(
                    campaign(receiver.url), [lead(1)], hub=hub, poll=slow_poll, timeout=20
                ) as outcomes:
                    found = [outcome async for outcome in outcomes]
    assert [o.outcome for o in found] == ["generated"]
    assert emu.state.endpoint_counts["retrieve_messages"] == 1


async def test_generate_under_the_legacy_routes() -> None:
    """With string sequences on the wire (legacy routes) generate still hands out each message."""
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(
            emu.api_key, base_url=emu.base_url, routes=Routes.legacy()
        ) as client:
            async with client.generate(
                campaign(), [lead(1)], poll=FAST_POLL, timeout=10
            ) as outcomes:
                [found] = [outcome async for outcome in outcomes]
    assert found.outcome == "generated"
    assert list(found.messages) == ["connection_request", "first_follow_up"]
    assert all(found.messages.values())


async def test_generate_lists_documented_message_types_first_then_new_ones() -> None:
    """A new message type (allowed) comes after the documented ones in each outcome."""
    types = ("linkedin_post", "connection_request")
    async with Emulator(webhook_secret=None, allow_unknown_message_types=True) as emu:
        async with UpscaleClient(
            emu.api_key, base_url=emu.base_url, allow_unknown_message_types=True
        ) as client:
            async with client.generate(
                campaign(types=types), [lead(1)], poll=FAST_POLL, timeout=10
            ) as outcomes:
                [found] = [outcome async for outcome in outcomes]
    assert found.outcome == "generated"
    assert list(found.messages) == ["connection_request", "linkedin_post"]


async def test_leaving_generate_early_after_the_batch_stopped_raises_nothing() -> None:
    """Leaving the block early stops the pipeline without raising the batch's stop error."""
    async with Emulator(webhook_secret=None, credits=2) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            first: list[LeadOutcome] = []
            async with client.generate(
                campaign(),
                [lead(i) for i in range(6)],
                poll=PollPolicy(initial=20.0, max_interval=20.0),
                batch=BatchPolicy(chunk_size=1, concurrency=1),
                timeout=30,
            ) as outcomes:
                async for outcome in outcomes:
                    first.append(outcome)
                    break
    assert [o.outcome for o in first] == ["not_submitted"]
    # The whole stream, read to its end, does raise it (the stop is real).
    async with Emulator(webhook_secret=None, credits=2) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with pytest.raises(BatchInterruptedError):
                async with client.generate(
                    campaign(),
                    [lead(i) for i in range(6)],
                    poll=FAST_POLL,
                    batch=BatchPolicy(chunk_size=1, concurrency=1),
                    timeout=10,
                ) as outcomes:
                    rest = [outcome async for outcome in outcomes]
    assert sorted(o.outcome for o in rest) == ["generated"] + ["not_submitted"] * 5


class CountingTelemetry(Telemetry):
    """A Telemetry that counts the leads generate hands out, by outcome."""

    def __init__(self) -> None:
        self.counted: list[tuple[str, int]] = []

    def leads(self, outcome: str, count: int = 1) -> None:
        self.counted.append((outcome, count))


async def test_generate_counts_every_lead_it_hands_out_in_telemetry() -> None:
    """With telemetry, each outcome generate hands out is counted once, by its kind."""
    telemetry = CountingTelemetry()
    source = [lead(i) for i in range(3)]
    source[1]["first_name"] = ""
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url, telemetry=telemetry) as client:
            async with client.generate(campaign(), source, poll=FAST_POLL, timeout=10) as outcomes:
                found = [outcome async for outcome in outcomes]
    assert sorted(o.outcome for o in found) == ["generated", "generated", "rejected"]
    assert sorted(telemetry.counted) == [("generated", 1), ("generated", 1), ("rejected", 1)]
