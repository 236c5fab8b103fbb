"""submit_batch's edges against the emulator: input kinds, set-aside messages, stops, progress."""

from __future__ import annotations

from collections import UserDict
from collections.abc import AsyncIterator
from typing import Any

import pytest

from upscale_async import (
    BatchInterruptedError,
    BatchPolicy,
    BatchProgress,
    Lead,
    RetryPolicy,
    StopReason,
    UpscaleClient,
)
from upscale_async.emulator import Emulator, Fault

from .conftest import campaign, lead

ONE_TRY = RetryPolicy(attempts=1)


def lid(i: int) -> str:
    return str(lead(i)["automation_tool_lead_id"])


@pytest.mark.parametrize(
    ("leads", "message"),
    [
        pytest.param("lead", "not a single str; wrap one lead in a list", id="str"),
        pytest.param(b"lead", "not a single bytes; wrap one lead in a list", id="bytes"),
        pytest.param(lead(1), "not a single dict; wrap one lead in a list", id="mapping"),
        pytest.param(
            Lead.from_mapping(lead(1)), "not a single Lead; wrap one lead in a list", id="lead"
        ),
        pytest.param(5, "leads must be an iterable or async iterable of leads, not int", id="int"),
    ],
)
async def test_leads_must_be_an_iterable_of_leads(leads: Any, message: str) -> None:
    """A single lead, a string or a non-iterable is a TypeError saying what to pass."""
    async with UpscaleClient("k", base_url="http://127.0.0.1:9") as client:
        with pytest.raises(TypeError, match=message):
            await client.submit_batch(campaign(), leads)


async def test_leads_of_every_kind_are_sent_and_set_aside_with_their_messages() -> None:
    """Lead models and other mappings are sent; non-mappings and repeats are set aside, named."""
    model = Lead.from_mapping(lead(1))
    source: list[Any] = [model, UserDict(lead(2)), 7, dict(lead(1)), lead(3)]
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            batch = await client.submit_batch(
                campaign(), source, batch=BatchPolicy(chunk_size=2, concurrency=1)
            )
    assert [list(r.lead_ids) for r in batch.accepted] == [[lid(1), lid(2)], [lid(3)]]
    assert [r.first_index for r in batch.accepted] == [0, 4]
    assert [(r.index, r.messages) for r in batch.rejected] == [
        (2, ["lead_data[2] must be a Lead or a mapping with the wire keys, not int"]),
        (
            3,
            [
                f"lead_data[3].automation_tool_lead_id must be unique in a batch but "
                f"{lid(1)!r} was seen before"
            ],
        ),
    ]
    assert batch.rejected[0].lead == 7
    assert batch.complete


async def test_a_repeat_within_one_chunk_is_set_aside() -> None:
    """A lead id repeated inside one chunk is set aside on the repeat; the first is sent."""
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            batch = await client.submit_batch(campaign(), [lead(1), lead(2), dict(lead(1))])
    assert [list(r.lead_ids) for r in batch.accepted] == [[lid(1), lid(2)]]
    assert [r.index for r in batch.rejected] == [2]


async def test_a_rejected_lead_keeps_the_object_given() -> None:
    """A lead set aside is kept as the object the caller passed, not its wire form."""
    source: list[Any] = [{**lead(1), "first_name": " "}]
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            batch = await client.submit_batch(campaign(), source)
    assert batch.rejected[0].lead is source[0]
    assert batch.rejected[0].errors == (
        ("lead_data[0].first_name", "lead_data[0].first_name is required but was missing or blank"),
    )
    assert batch.accepted == []


@pytest.mark.parametrize(
    "faults",
    [
        pytest.param([Fault.http(402), Fault.http(401)], id="401-after-402"),
        pytest.param([Fault.http(401), Fault.http(402)], id="402-after-401"),
    ],
)
async def test_a_refused_key_wins_over_running_out_of_credits(faults: list[Fault]) -> None:
    """When a 401 and a 402 both stop a batch, the reason is the 401, whichever came first."""
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url, retry=ONE_TRY) as client:
            emu.faults.set("request_message_generation", faults)
            with pytest.raises(BatchInterruptedError) as info:
                await client.submit_batch(
                    campaign(),
                    [lead(i) for i in range(4)],
                    batch=BatchPolicy(chunk_size=1, concurrency=2),
                )
    assert info.value.reason is StopReason.AUTHENTICATION
    assert info.value.partial.stopped_by is StopReason.AUTHENTICATION
    assert "the API key was refused (401)" in str(info.value)


async def test_the_stop_message_accounts_for_every_lead() -> None:
    """The early-stop message says why, after how many leads, and counts each bucket."""
    source = [lead(i) for i in range(5)]
    source[1] = {**source[1], "first_name": ""}
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url, retry=ONE_TRY) as client:
            emu.faults.set("request_message_generation", [Fault.http(402)])
            with pytest.raises(BatchInterruptedError) as info:
                await client.submit_batch(
                    campaign(), source, batch=BatchPolicy(chunk_size=2, concurrency=1)
                )
    message = str(info.value)
    assert message.startswith(
        "the batch stopped early after 5 leads: the account ran out of credits (402) "
        "(InsufficientCreditsError: "
    )
    assert "0 accepted, 1 rejected, 0 failed, 4 not submitted" in message
    assert info.value.partial.not_submitted == [source[0], *source[2:]]


async def test_the_breaker_counts_consecutive_failures_only() -> None:
    """A success resets the count: the breaker trips only after N failures in a row."""
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url, retry=ONE_TRY) as client:
            emu.faults.set(
                "request_message_generation",
                [Fault.http(500), None, Fault.http(500), Fault.http(500)],
            )
            with pytest.raises(BatchInterruptedError) as info:
                await client.submit_batch(
                    campaign(),
                    [lead(i) for i in range(6)],
                    batch=BatchPolicy(chunk_size=1, concurrency=1, max_consecutive_failures=2),
                )
    partial = info.value.partial
    assert info.value.reason is StopReason.SERVICE_UNAVAILABLE
    assert "2 chunks in a row failed after retries, so the service looks down" in str(info.value)
    assert [c.first_index for c in partial.failed] == [0, 2, 3]
    assert [c.status for c in partial.failed] == [500, 500, 500]
    assert [c.error_type for c in partial.failed] == ["ServerError"] * 3
    assert partial.accepted_count == 1
    assert partial.not_submitted == [lead(4), lead(5)]


async def test_progress_reports_every_count() -> None:
    """on_progress gets a snapshot after each chunk; the last one counts every lead."""
    seen: list[BatchProgress] = []
    source = [lead(i) for i in range(5)]
    source[4] = {**source[4], "last_name": ""}
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url, retry=ONE_TRY) as client:
            emu.faults.set("request_message_generation", [None, Fault.http(503)])
            await client.submit_batch(
                campaign(),
                source,
                batch=BatchPolicy(chunk_size=2, concurrency=1),
                on_progress=seen.append,
            )
    assert [p.chunks_done for p in seen] == [1, 2, 2]
    last = seen[-1]
    assert last == BatchProgress(
        leads_seen=5,
        leads_accepted=2,
        leads_rejected=1,
        leads_failed=2,
        leads_not_submitted=0,
        total=5,
        chunks_in_flight=0,
        chunks_done=2,
        requests_accepted=1,
        errors=1,
    )


async def test_progress_of_an_async_source_has_no_total() -> None:
    """An async source has no known total; progress says None."""
    seen: list[BatchProgress] = []

    async def source() -> AsyncIterator[dict[str, Any]]:
        for i in range(3):
            yield lead(i)

    async def on_progress(progress: BatchProgress) -> None:
        seen.append(progress)

    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            batch = await client.submit_batch(
                campaign(), source(), batch=BatchPolicy(chunk_size=2), on_progress=on_progress
            )
    assert batch.accepted_count == 3
    assert {p.total for p in seen} == {None}
    assert seen[-1].leads_seen == 3


async def test_leads_after_a_stop_are_read_in_large_pulls_and_checked() -> None:
    """After a 402 the rest of a long source is still read to its end and handed back."""
    n = 2_500
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url, retry=ONE_TRY) as client:
            emu.faults.set("request_message_generation", [Fault.http(402)])
            with pytest.raises(BatchInterruptedError) as info:
                await client.submit_batch(
                    campaign(),
                    (lead(i) for i in range(n)),
                    batch=BatchPolicy(chunk_size=1, concurrency=1),
                )
    partial = info.value.partial
    assert len(partial.not_submitted) == n
    assert partial.not_submitted[-1] == lead(n - 1)
    assert "after 2500 leads" in str(info.value)
