"""await_completion and generate when one id's wait fails: a typed error, nothing lost."""

from __future__ import annotations

import pickle
from collections import Counter
from contextlib import AbstractAsyncContextManager

import pytest

from upscale_async import (
    AuthenticationError,
    BatchPolicy,
    CompletionError,
    CompletionTimeoutError,
    LeadOutcome,
    NotFoundError,
    Outcomes,
    PollPolicy,
    UpscaleClient,
    UpscaleError,
    ValidationError,
)
from upscale_async.emulator import Emulator, Fault

from .conftest import FAST_RETRY, campaign, leads

FAST_POLL = PollPolicy(initial=0.02, factor=1.5, max_interval=0.2)
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


async def test_a_404_for_one_id_keeps_the_other_results() -> None:
    """A 404 for one id among many raises CompletionError with the others' results in order."""
    async with Emulator(webhook_secret=None, latency=0.05) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url, retry=FAST_RETRY) as client:
            batch = await client.submit_batch(campaign(), leads(6), batch=BatchPolicy(chunk_size=2))
            ids = batch.request_ids
            given = [ids[0], UNKNOWN_ID, ids[1], ids[2]]
            with pytest.raises(CompletionError) as info:
                await client.await_completion(given, poll=FAST_POLL, timeout=30)
    error = info.value
    assert type(error) is CompletionError
    assert [r.secure_request_id for r in error.completed] == ids
    assert all(r.is_complete for r in error.completed)
    assert list(error.errors) == [UNKNOWN_ID]
    assert isinstance(error.errors[UNKNOWN_ID], NotFoundError)
    assert error.pending == []
    assert isinstance(error.__cause__, NotFoundError)
    assert UNKNOWN_ID in str(error)


async def test_a_401_during_the_wait_stops_every_other_wait() -> None:
    """A 401 while waiting raises CompletionError at once, every other id left in pending."""
    async with Emulator(webhook_secret=None, latency=30.0) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url, retry=FAST_RETRY) as client:
            batch = await client.submit_batch(campaign(), leads(6), batch=BatchPolicy(chunk_size=2))
            emu.faults.set("retrieve_messages", [Fault.http(401)])  # the key "rotates" once
            with pytest.raises(UpscaleError) as info:
                await client.await_completion(batch, poll=FAST_POLL, timeout=20)
    error = info.value
    assert type(error) is CompletionError
    assert error.completed == []
    [(failed_id, cause)] = error.errors.items()
    assert isinstance(cause, AuthenticationError)
    assert sorted(error.pending) == sorted(i for i in batch.request_ids if i != failed_id)


async def test_generate_hands_out_the_leads_of_a_failed_wait_as_failed() -> None:
    """In generate, a request whose wait fails gives `failed` leads; the others still complete."""
    async with Emulator(webhook_secret=None, latency=0.05) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url, retry=FAST_RETRY) as client:
            emu.faults.set("retrieve_messages", [Fault.http(404)])
            outcomes: list[LeadOutcome] = []
            async with client.generate(
                campaign(), leads(6), poll=FAST_POLL, batch=BatchPolicy(chunk_size=2), timeout=30
            ) as stream:
                async for outcome in stream:
                    outcomes.append(outcome)
    assert Counter(o.lead_id for o in outcomes) == Counter(f"lead_{i:06d}" for i in range(6))
    failed = [o for o in outcomes if o.outcome == "failed"]
    assert len(failed) == 2
    assert all(isinstance(o.error, NotFoundError) for o in failed)
    assert all("retrieve it later" in (o.reason or "") for o in failed)
    assert Counter(o.outcome for o in outcomes)["generated"] == 4


def test_completion_timeout_error_is_a_builtin_timeout_error() -> None:
    """CompletionTimeoutError is caught by `except TimeoutError` and `except CompletionError`."""
    error = CompletionTimeoutError("late", pending=["a"], last_seen={"a": None})
    assert isinstance(error, TimeoutError)
    assert isinstance(error, CompletionError)


def test_completion_error_pickles_with_its_errors() -> None:
    """A CompletionError pickles with its completed, errors (typed) and pending."""
    cause = NotFoundError("not found: x", status=404, method="GET", path="/r")
    error = CompletionError("failed", completed=[], errors={"x": cause}, pending=["y"])
    again = pickle.loads(pickle.dumps(error))
    assert str(again) == "failed"
    assert again.pending == ["y"]
    assert isinstance(again.errors["x"], NotFoundError)
    assert str(again.errors["x"]) == str(cause)


async def test_generate_raises_a_bad_campaign_as_itself() -> None:
    """A campaign that fails validation in generate raises ValidationError, not a group."""
    bad = {**campaign().to_wire(), "tone_preference": "shouting"}
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with pytest.raises(ValidationError, match="tone_preference"):
                await drain(client.generate(bad, leads(2), poll=FAST_POLL, timeout=10))


async def drain(generate: AbstractAsyncContextManager[Outcomes]) -> list[LeadOutcome]:
    """Every outcome of a generate() block."""
    async with generate as stream:
        return [outcome async for outcome in stream]
