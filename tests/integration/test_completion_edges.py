"""await_completion's edges against the emulator: early webhooks, failed polls, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import anyio
import pytest
from aiohttp import web

from upscale_async import (
    BatchInterruptedError,
    BatchPolicy,
    CompletionError,
    CompletionEvent,
    CompletionTimeoutError,
    LeadOutcome,
    NotFoundError,
    PollPolicy,
    RetryPolicy,
    UpscaleClient,
)
from upscale_async._completion import _leaf
from upscale_async.emulator import Emulator, Fault
from upscale_async.webhooks import CompletionHub

from .conftest import FAST_RETRY, campaign, lead


def lid(i: int) -> str:
    return str(lead(i)["automation_tool_lead_id"])


@pytest.fixture
async def serve_fake_upscale() -> AsyncIterator[Callable[[list[dict[str, Any]]], Awaitable[str]]]:
    """A loopback stand-in for Upscale that accepts any request and answers one retrieve body."""
    runners: list[web.AppRunner] = []

    async def start(leads_data: list[dict[str, Any]]) -> str:
        async def generation(request: web.Request) -> web.Response:
            return web.json_response({"secure_request_id": "req-fake", "message": "ok"})

        async def retrieve(request: web.Request) -> web.Response:
            return web.json_response(
                {
                    "metadata": {
                        "request_message_generation_api_request_secure_request_id": "req-fake",
                        "generation_status": "complete",
                    },
                    "campaign": {"leads_data": leads_data},
                }
            )

        app = web.Application()
        app.router.add_post("/messages/request_message_generation", generation)
        app.router.add_get("/messages/retrieve_messages", retrieve)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        return f"http://127.0.0.1:{runner.addresses[0][1]}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_a_webhook_before_retrieve_agrees_keeps_the_waiter_polling() -> None:
    """A webhook that arrives while retrieve still says in progress does not end the wait."""
    hub = CompletionHub()
    async with Emulator(webhook_secret=None, latency=0.6) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            accepted = await client.request_message_generation(campaign(), [lead(1)])
            request_id = accepted.secure_request_id
            await hub.deliver(CompletionEvent(secure_request_id=request_id, status="completed"))
            with anyio.fail_after(10):
                [result] = await client.await_completion(
                    request_id,
                    hub=hub,
                    poll=PollPolicy(initial=0.05, fallback_interval=30.0),
                    timeout=10,
                )
        assert result.is_complete
        assert emu.state.endpoint_counts["retrieve_messages"] >= 2


FAST_POLL = PollPolicy(initial=0.02, factor=1.5, max_interval=0.1)
UNKNOWN = "00000000-0000-4000-8000-0000000000{:02d}"


async def test_repeated_ids_get_their_result_at_each_place() -> None:
    """An id given twice is waited for once and its result comes back at both places."""
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            a = (await client.request_message_generation(campaign(), [lead(1)])).secure_request_id
            b = (await client.request_message_generation(campaign(), [lead(2)])).secure_request_id
            results = await client.await_completion([a, b, a], poll=FAST_POLL, timeout=10)
        assert [r.secure_request_id for r in results] == [a, b, a]
        assert emu.state.endpoint_counts["retrieve_messages"] == 2


async def test_one_id_as_a_string() -> None:
    """A single secure_request_id may be passed as a string."""
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            a = (await client.request_message_generation(campaign(), [lead(1)])).secure_request_id
            [result] = await client.await_completion(a, poll=FAST_POLL, timeout=10)
    assert result.secure_request_id == a


@pytest.mark.parametrize("bad", [pytest.param("", id="empty"), pytest.param(3, id="number")])
async def test_ids_must_be_non_empty_strings(bad: object) -> None:
    """An id that is not a non-empty string is a TypeError naming it, before any request."""
    async with UpscaleClient("k", base_url="http://127.0.0.1:9") as client:
        with pytest.raises(TypeError, match=f"must be non-empty strings, got {bad!r}"):
            await client.await_completion(["ok", bad], timeout=1)  # type: ignore[list-item]


async def test_a_poll_that_fails_after_retries_is_polled_again() -> None:
    """A retrieve that still fails after its retries (a 503) is logged and polled again."""
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(
            emu.api_key, base_url=emu.base_url, retry=RetryPolicy(attempts=1)
        ) as client:
            a = (await client.request_message_generation(campaign(), [lead(1)])).secure_request_id
            emu.faults.set("retrieve_messages", [Fault.http(503), Fault.http(502)])
            [result] = await client.await_completion(a, poll=FAST_POLL, timeout=10)
        assert result.is_complete
        assert emu.state.endpoint_counts["retrieve_messages"] == 3


async def test_a_failed_poll_after_a_webhook_still_polls_on() -> None:
    """With a hub, a retrieve that fails right after the webhook does not end the wait."""
    hub = CompletionHub()
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(
            emu.api_key, base_url=emu.base_url, retry=RetryPolicy(attempts=1)
        ) as client:
            a = (await client.request_message_generation(campaign(), [lead(1)])).secure_request_id
            emu.faults.set("retrieve_messages", [Fault.http(503)])
            await hub.deliver(CompletionEvent(secure_request_id=a, status="completed"))
            poll = PollPolicy(initial=0.02, fallback_interval=30.0)
            with anyio.fail_after(10):
                [result] = await client.await_completion(a, hub=hub, poll=poll, timeout=10)
        assert result.is_complete


async def test_many_failed_ids_are_summed_up() -> None:
    """With more than three failed ids, the message lists three and counts the rest."""
    unknown = [UNKNOWN.format(i) for i in range(5)]
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with pytest.raises(CompletionError) as info:
                await client.await_completion(unknown, poll=FAST_POLL, timeout=10)
    message = str(info.value)
    assert message.startswith(
        "waiting for completion failed: 0 of 5 requests completed; 5 failed ("
    )
    assert "(and 2 more)" in message
    assert message.count("NotFoundError: ") == 3
    assert info.value.pending == []
    assert "not awaited" not in message


async def test_the_timeout_message_counts_what_is_pending() -> None:
    """The deadline's error says how many requests were still pending after how long."""
    async with Emulator(webhook_secret=None, latency=30.0) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            a = (await client.request_message_generation(campaign(), [lead(1)])).secure_request_id
            with pytest.raises(CompletionTimeoutError) as info:
                await client.await_completion([a], poll=FAST_POLL, timeout=0.3)
    assert str(info.value).startswith(
        "1 of 1 requests were not complete after 0.3 s (0 of 1 requests completed); "
    )
    assert info.value.errors == {}
    assert info.value.__cause__ is None


async def test_generate_reports_leads_upscale_could_not_personalise() -> None:
    """generate hands out a lead with no message as failed, with the retrieve's reason."""
    async with Emulator(webhook_secret=None, failure_rate=1.0) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            async with client.generate(
                campaign(), [lead(1), lead(2)], poll=FAST_POLL, timeout=10
            ) as outcomes:
                found = [outcome async for outcome in outcomes]
    assert [o.outcome for o in found] == ["failed", "failed"]
    for outcome in found:
        assert outcome.reason
        assert outcome.reason != "no message was generated"
        assert outcome.result is not None
        assert outcome.secure_request_id
        assert list(outcome.messages) == ["connection_request", "first_follow_up"]
        assert set(outcome.messages.values()) == {None}


async def test_generate_hands_out_timed_out_leads() -> None:
    """Leads of a request not complete by the deadline come out as timed_out with their id."""
    async with Emulator(webhook_secret=None, latency=30.0) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            async with client.generate(
                campaign(), [lead(1), lead(2)], poll=FAST_POLL, timeout=0.4
            ) as outcomes:
                found = [outcome async for outcome in outcomes]
    assert [o.outcome for o in found] == ["timed_out", "timed_out"]
    assert [o.lead_id for o in found] == [
        lead(1)["automation_tool_lead_id"],
        lead(2)["automation_tool_lead_id"],
    ]
    assert found[0].reason == "not complete after 0.4 s; retrieve it later"
    assert found[0].secure_request_id == found[1].secure_request_id is not None


async def test_generate_hands_out_leads_never_sent_with_the_stop_reason() -> None:
    """Leads left unsent when credits run out come out as not_submitted, saying why."""
    async with Emulator(webhook_secret=None, credits=2) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            found: list[LeadOutcome] = []
            with pytest.raises(BatchInterruptedError):
                async with client.generate(
                    campaign(),
                    [lead(i) for i in range(4)],
                    poll=FAST_POLL,
                    batch=BatchPolicy(chunk_size=1, concurrency=1),
                    timeout=10,
                ) as outcomes:
                    found.extend([outcome async for outcome in outcomes])
    unsent = [o for o in found if o.outcome == "not_submitted"]
    assert len(unsent) == 3
    assert unsent[0].reason == "not submitted (insufficient_credits); resubmit it"
    assert unsent[0].lead == lead(1)
    assert unsent[0].lead_id == lid(1)
    assert [o.outcome for o in found if o.outcome != "not_submitted"] == ["generated"]


async def test_generate_hands_out_chunks_that_failed_after_retries() -> None:
    """Leads of a chunk that failed after retries come out as submit_failed with the error."""
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(
            emu.api_key, base_url=emu.base_url, retry=RetryPolicy(attempts=1)
        ) as client:
            emu.faults.set("request_message_generation", [Fault.http(500)])
            async with client.generate(
                campaign(),
                [lead(1), lead(2)],
                poll=FAST_POLL,
                batch=BatchPolicy(chunk_size=1, concurrency=1),
                timeout=10,
            ) as outcomes:
                found = {o.lead_id: o async for o in outcomes}
    failed = found[lead(1)["automation_tool_lead_id"]]
    assert failed.outcome == "submit_failed"
    assert failed.reason is not None
    assert failed.reason.startswith("ServerError: ")
    assert failed.lead == lead(1)
    assert found[lead(2)["automation_tool_lead_id"]].outcome == "generated"


async def test_three_failed_ids_are_listed_in_full() -> None:
    """Up to three failed ids are each listed (id, error type, error), separated by '; '."""
    unknown = [UNKNOWN.format(i) for i in range(3)]
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with pytest.raises(CompletionError) as info:
                await client.await_completion(unknown, poll=FAST_POLL, timeout=10)
    errors = info.value.errors
    assert sorted(errors) == unknown
    listed = "; ".join(f"{i}: NotFoundError: {e}" for i, e in errors.items())  # as they failed
    assert str(info.value) == (
        f"waiting for completion failed: 0 of 3 requests completed; 3 failed ({listed}); "
        "`completed` keeps the results retrieved, `errors` maps each failed id to its error, "
        "`pending` lists the ids to wait for again (after fixing the API key for a 401; a 404 "
        "id is unknown to Upscale)"
    )


async def test_the_deadline_keeps_what_completed_and_what_failed() -> None:
    """At the deadline the error also carries the results completed and the ids that failed."""
    async with Emulator(webhook_secret=None, messages_per_second=20) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            small = await client.request_message_generation(campaign(), [lead(1)])
            big = await client.request_message_generation(
                campaign(), [lead(i, prefix="big") for i in range(200)]
            )
            ids = [small.secure_request_id, UNKNOWN.format(9), big.secure_request_id]
            with pytest.raises(CompletionTimeoutError) as info:
                await client.await_completion(ids, poll=FAST_POLL, timeout=1.5)
    error = info.value
    assert [r.secure_request_id for r in error.completed] == [small.secure_request_id]
    assert error.pending == [big.secure_request_id]
    assert list(error.errors) == [UNKNOWN.format(9)]
    assert isinstance(error.__cause__, NotFoundError)
    assert str(error).startswith(
        "1 of 3 requests were not complete after 1.5 s (1 of 3 requests completed; 1 failed ("
    )
    last = error.last_seen[big.secure_request_id]
    assert last is not None
    assert not last.is_complete


async def test_generate_accounts_for_leads_missing_from_the_answer(
    serve_fake_upscale: Callable[[list[dict[str, Any]]], Awaitable[str]],
) -> None:
    """A lead absent from the answer is failed, saying so; one without messages or reason too."""
    answer = [
        {"external_prospect_id": lid(1), "outreach_message": None, "first_follow_up_message": None},
        {"external_prospect_id": lid(3), "outreach_message": "Hi", "first_follow_up_message": None},
    ]
    base = await serve_fake_upscale(answer)
    async with UpscaleClient("k", base_url=base) as client:
        async with client.generate(
            campaign(), [lead(1), lead(2), lead(3)], poll=FAST_POLL, timeout=10
        ) as outcomes:
            found = {o.lead_id: o async for o in outcomes}
    no_message, missing, generated = found[lid(1)], found[lid(2)], found[lid(3)]
    assert (no_message.outcome, no_message.reason) == ("failed", "no message was generated")
    assert no_message.result is not None
    assert missing.outcome == "failed"
    assert missing.reason == "the lead is missing from the retrieve_messages answer"
    assert missing.secure_request_id == "req-fake"
    assert missing.result is None
    assert (no_message.lead, missing.lead, generated.lead) == (lead(1), lead(2), None)
    assert generated.outcome == "generated"
    assert generated.reason is None
    assert generated.messages == {"connection_request": "Hi", "first_follow_up": None}
    assert generated.secure_request_id == "req-fake"


async def test_generate_hands_out_rejected_leads_with_their_messages() -> None:
    """A lead set aside by validation comes out as rejected with its id, messages and the lead."""
    bad = {**lead(1), "first_name": "", "last_name": " "}
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            async with client.generate(campaign(), [bad], poll=FAST_POLL, timeout=10) as outcomes:
                [found] = [outcome async for outcome in outcomes]
    messages = (
        "lead_data[0].first_name is required but was missing or blank",
        "lead_data[0].last_name is required but was missing or blank",
    )
    assert found.outcome == "rejected"
    assert found.lead_id == bad["automation_tool_lead_id"]
    assert found.errors == messages
    assert found.reason == "; ".join(messages)
    assert found.lead is bad


async def test_generate_names_the_request_whose_wait_failed() -> None:
    """A lead whose request's wait failed comes out as failed, naming the request and the error."""
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url, retry=FAST_RETRY) as client:
            emu.faults.set("retrieve_messages", [Fault.http(404)])
            async with client.generate(campaign(), [lead(1)], poll=FAST_POLL, timeout=10) as out:
                [found] = [outcome async for outcome in out]
    assert found.outcome == "failed"
    assert found.secure_request_id is not None
    assert found.reason is not None
    assert found.reason.startswith(
        f"waiting for request {found.secure_request_id} failed: NotFoundError: "
    )
    assert found.reason.endswith("; retrieve it later with retrieve_messages")


def test_an_exception_group_becomes_its_first_error_noting_the_others() -> None:
    """generate raises one error, never a group: the first, with a note for each other one."""
    first, second = ValueError("a"), KeyError("b")
    error = _leaf(ExceptionGroup("g", [first, second]))
    assert error is first
    assert first.__notes__ == ["also raised: KeyError: 'b'"]
