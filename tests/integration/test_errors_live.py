"""The SDK client against the emulator: every documented error, dedupe, and 202 -> 200, over HTTP."""

from __future__ import annotations

import pytest

from upscale_async import (
    AuthenticationError,
    InsufficientCreditsError,
    NotFoundError,
    PollPolicy,
    Routes,
    UnprocessableEntityError,
    UpscaleClient,
)
from upscale_async.emulator import Emulator

from .conftest import campaign, lead

NO_CREDITS = (
    "Not enough credits remaining to complete this request. "
    "Please upgrade your plan or purchase a bundle."
)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        pytest.param("not-a-key", "Unauthorized: Invalid API key", id="invalid"),
        pytest.param("revoked", "Unauthorized: API key has been revoked", id="revoked"),
    ],
)
async def test_401_on_generation_and_retrieve(key: str, message: str) -> None:
    """Invalid and revoked keys raise AuthenticationError with the documented message."""
    async with Emulator(webhook_secret=None, revoked_keys=("revoked",)) as emu:
        async with UpscaleClient(key, base_url=emu.base_url) as client:
            with pytest.raises(AuthenticationError) as generation:
                await client.request_message_generation(campaign(), [lead(1)])
            with pytest.raises(AuthenticationError) as retrieve:
                await client.retrieve_messages("3d68ae3b-5957-454d-be1c-8731a4f877f6")
            with pytest.raises(AuthenticationError) as sequences:
                await client.get_sequences()
            with pytest.raises(AuthenticationError) as account:
                await client.get_account()
    assert generation.value.message == message
    assert generation.value.body == {"error": message}
    assert retrieve.value.body == {"error": message, "status": "error"}
    for error in (sequences.value, account.value):
        assert error.body == {
            "error": "Unauthorized: API key invalid or revoked",
            "status": "error",
        }


async def test_402_queues_nothing() -> None:
    """Not enough credits: InsufficientCreditsError with the documented text, nothing queued."""
    async with Emulator(webhook_secret=None, credits=3) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with pytest.raises(InsufficientCreditsError) as info:
                await client.request_message_generation(campaign(), [lead(1), lead(2)])
        assert emu.state.accepted == 0
        assert emu.state.credits() == 3
    assert info.value.message == NO_CREDITS
    assert info.value.status == 402


async def test_server_422_is_split_into_messages() -> None:
    """A type the client lets through (D6 option) but the server refuses: 422 with its messages."""
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(
            emu.api_key, base_url=emu.base_url, allow_unknown_message_types=True
        ) as client:
            with pytest.raises(UnprocessableEntityError) as info:
                await client.request_message_generation(
                    campaign(types=("linkedin_post", "breakup")), [lead(1)]
                )
    assert len(info.value.messages) == 2
    assert info.value.messages[0].startswith("message_sequence[0].messageType must be one of")
    assert info.value.messages[1].startswith("message_sequence[1].messageType must be one of")


async def test_unknown_request_id_is_not_found() -> None:
    """Retrieving an id the server does not know raises NotFoundError."""
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with pytest.raises(NotFoundError):
                await client.retrieve_messages("00000000-0000-4000-8000-000000000000")


async def test_same_request_twice_is_one_request_and_one_charge() -> None:
    """D8: the same body twice returns the same id and charges once."""
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            first = await client.request_message_generation(campaign(), [lead(1), lead(2)])
            again = await client.request_message_generation(campaign(), [lead(1), lead(2)])
            overlap = await client.request_message_generation(campaign(), [lead(2), lead(3)])
        assert first.secure_request_id == again.secure_request_id
        assert overlap.secure_request_id != first.secure_request_id
        assert emu.state.credits_used() == 6  # leads 1, 2, 3 x 2 types
        assert not emu.state.double_charges()


async def test_in_progress_then_complete() -> None:
    """retrieve answers 202 with partial results while generating, then 200 when complete."""
    async with Emulator(webhook_secret=None, messages_per_second=20) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            accepted = await client.request_message_generation(
                campaign(), [lead(i) for i in range(10)]
            )
            partial = await client.retrieve_messages(accepted.secure_request_id)
            [done] = await client.await_completion(
                accepted.secure_request_id, poll=PollPolicy(initial=0.1), timeout=10
            )
    assert partial.http_status == 202
    assert not partial.is_complete
    assert partial.metadata.generation_status == "in_progress"
    assert done.http_status == 200
    assert done.is_complete
    assert done.metadata.generated_messages_count == 20
    assert all(lead.connection_request and lead.first_follow_up for lead in done.leads)


async def test_legacy_routes_work_end_to_end() -> None:
    """The legacy preset (unprefixed paths, string sequences, GET body) works against the emulator."""
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(
            emu.api_key, base_url=emu.base_url, routes=Routes.legacy()
        ) as client:
            accepted = await client.request_message_generation(campaign(), [lead(1)])
            [done] = await client.await_completion(
                accepted.secure_request_id, poll=PollPolicy(initial=0.02), timeout=10
            )
            sequences = await client.get_sequences(sequence_length="short")
            account = await client.get_account()
    assert done.is_complete
    assert done.leads[0].external_prospect_id == "lead_000001"
    assert sequences
    assert account.monthly_credits is not None
