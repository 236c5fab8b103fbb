"""submit_batch against the emulator: every lead accounted for, nothing charged twice."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from upscale_async import (
    AcceptedRequest,
    AuthenticationError,
    BatchInterruptedError,
    BatchPolicy,
    BatchProgress,
    BatchSubmission,
    InsufficientCreditsError,
    Lead,
    RetryPolicy,
    ServerError,
    StopReason,
    UpscaleClient,
)
from upscale_async.emulator import Emulator, Fault, FaultPlan

from .conftest import FAST_RETRY, campaign, lead, leads


def emulator_ids(emu: Emulator, request_id: str) -> list[str]:
    return [row[0] for row in emu.request(request_id).leads]


async def test_20000_leads_from_a_generator() -> None:
    """20,000 leads, chunk 100, concurrency 8: 200 requests, and the emulator agrees lead by lead."""
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            batch = await client.submit_batch(
                campaign(), leads(20_000), batch=BatchPolicy(chunk_size=100, concurrency=8)
            )
        assert len(batch.accepted) == 200
        assert batch.accepted_count + batch.rejected_count == 20_000
        assert batch.complete
        assert emu.state.accepted == 200
        seen: list[str] = []
        for request in batch.accepted:
            assert list(request.lead_ids) == emulator_ids(emu, request.secure_request_id)
            seen.extend(request.lead_ids)
        assert seen == [f"lead_{i:06d}" for i in range(20_000)]
        assert not emu.state.double_charges()


async def test_invalid_and_duplicate_leads_are_set_aside() -> None:
    """Invalid leads and repeated ids are rejected with messages; the rest go on."""
    source: list[Any] = [lead(i) for i in range(250)]
    source[3]["first_name"] = " "
    source[120]["lead_linkedin"] = "linkedin.com/in/x"
    source[200] = dict(source[10])
    source[201] = 42
    source[202] = Lead.from_mapping(lead(9999))
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            batch = await client.submit_batch(
                campaign(), iter(source), batch=BatchPolicy(chunk_size=100)
            )
    assert [r.index for r in batch.rejected] == [3, 120, 200, 201]
    assert batch.rejected[0].messages == [
        "lead_data[3].first_name is required but was missing or blank"
    ]
    assert batch.rejected[1].messages == ["lead_data[120].lead_linkedin must be a valid URL"]
    assert "must be unique in a batch" in batch.rejected[2].messages[0]
    assert "must be a Lead or a mapping" in batch.rejected[3].messages[0]
    assert batch.accepted_count == 246
    assert batch.total == 250
    assert "lead_009999" in [i for r in batch.accepted for i in r.lead_ids]


async def test_402_hands_back_every_lead_not_accepted_and_resume_completes() -> None:
    """Credits for 5,000 messages, 4,000 leads x 2 types: resume after buying credits."""
    async with Emulator(webhook_secret=None, credits=5_000) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with pytest.raises(BatchInterruptedError) as info:
                await client.submit_batch(campaign(), leads(4_000))
            assert info.value.reason is StopReason.INSUFFICIENT_CREDITS
            assert isinstance(info.value.__cause__, InsufficientCreditsError)
            first = info.value.partial
            assert first.stopped_by == "insufficient_credits"
            assert first.accepted_count == 2_500
            assert not first.failed
            not_submitted_ids = [d["automation_tool_lead_id"] for d in first.not_submitted]
            accepted_ids = [i for _, i in first.accepted_lead_ids()]
            everything = Counter(accepted_ids + not_submitted_ids)
            assert set(everything) == {f"lead_{i:06d}" for i in range(4_000)}
            assert max(everything.values()) == 1
            assert not_submitted_ids == sorted(not_submitted_ids)  # handed back in order
            emu.add_credits(3_000)
            second = await client.submit_batch(campaign(), first.not_submitted)
        assert second.complete
        assert second.accepted_count == 1_500
        assert emu.state.credits() == 0
        assert not emu.state.double_charges()
        assert len(emu.state.charge_counts()) == 8_000


async def test_faults_lose_no_lead_and_charge_nothing_twice(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """10% 503s and 5% connections dropped after processing: every lead accepted once."""
    caplog.set_level(logging.WARNING, logger="upscale_async")
    async with Emulator(webhook_secret=None) as emu:
        emu.faults.set(
            "request_message_generation",
            FaultPlan(
                rate=0.15,
                choices=(Fault.http(503),) * 2 + (Fault.drop_after(),),
                seed=7,
            ),
        )
        async with UpscaleClient(emu.api_key, base_url=emu.base_url, retry=FAST_RETRY) as client:
            batch = await client.submit_batch(
                campaign(), leads(5_000), batch=BatchPolicy(chunk_size=100)
            )
        assert batch.complete
        assert batch.accepted_count == 5_000
        assert len(set(batch.request_ids)) == 50
        assert emu.state.accepted == 50
        assert not emu.state.double_charges()
        injected = Counter(r.fault for r in emu.state.faults)
        assert injected[Fault.http(503)] > 0
        assert injected[Fault.drop_after()] > 0
    assert "retrying POST /messages/request_message_generation" in caplog.text


async def test_a_chunk_failing_after_retries_is_recorded_and_others_go_on() -> None:
    """A chunk that still fails after retries is in `failed` with its error; the rest go on."""
    async with Emulator(webhook_secret=None) as emu:
        emu.faults.set("request_message_generation", [Fault.http(500)] * 3)
        retry = RetryPolicy(attempts=3, time_scale=0.0)
        async with UpscaleClient(emu.api_key, base_url=emu.base_url, retry=retry) as client:
            batch = await client.submit_batch(
                campaign(), leads(500), batch=BatchPolicy(concurrency=1)
            )
    assert len(batch.failed) == 1
    assert batch.failed[0].status == 500
    assert batch.failed[0].error_type == "ServerError"
    assert batch.failed_count == 100
    assert batch.accepted_count == 400
    resubmit = [d["automation_tool_lead_id"] for d in batch.failed_leads()]
    assert resubmit == [f"lead_{i:06d}" for i in range(100)]


async def test_401_stops_and_attaches_the_partial_result() -> None:
    """A revoked key raises BatchInterruptedError (caused by the 401) with the partial result."""
    async with Emulator(webhook_secret=None, revoked_keys=("revoked",)) as emu:
        async with UpscaleClient("revoked", base_url=emu.base_url) as client:
            with pytest.raises(BatchInterruptedError) as info:
                await client.submit_batch(campaign(), leads(300))
    assert info.value.reason is StopReason.AUTHENTICATION
    assert isinstance(info.value.__cause__, AuthenticationError)
    partial = info.value.partial
    assert partial is not None
    assert partial.accepted_count == 0
    assert partial.not_submitted_count == 300
    assert info.value.__cause__.message == "Unauthorized: API key has been revoked"


async def test_async_source_and_progress() -> None:
    """An async iterator is pulled lazily; on_progress reports after each chunk."""
    pulled = 0
    in_memory_peak = 0
    seen: list[BatchProgress] = []

    async def source() -> AsyncIterator[dict[str, Any]]:
        nonlocal pulled
        for item in leads(1_000):
            pulled += 1
            yield item

    def on_progress(progress: BatchProgress) -> None:
        nonlocal in_memory_peak
        seen.append(progress)
        in_memory_peak = max(in_memory_peak, pulled - progress.leads_accepted)

    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            batch = await client.submit_batch(
                campaign(),
                source(),
                batch=BatchPolicy(chunk_size=50, concurrency=4),
                on_progress=on_progress,
            )
    assert batch.accepted_count == 1_000
    assert len(seen) == 20
    assert seen[-1].leads_submitted == 1_000
    assert seen[-1].total is None
    assert in_memory_peak <= 50 * 4


async def test_lead_source_error_keeps_what_was_accepted() -> None:
    """A lead source that raises ends the batch with BatchInterruptedError and the partial result."""

    def broken() -> Any:
        yield from leads(250)
        raise OSError("disk gone")

    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with pytest.raises(BatchInterruptedError, match="disk gone") as info:
                await client.submit_batch(
                    campaign(), broken(), batch=BatchPolicy(chunk_size=100, concurrency=1)
                )
    assert info.value.reason is StopReason.SOURCE_ERROR
    assert info.value.partial.accepted_count == 200


async def test_cancellation_keeps_what_was_accepted() -> None:
    """Cancelling a batch keeps every accepted request in the BatchSubmission passed as into=."""
    into = BatchSubmission()
    async with Emulator(webhook_secret=None) as emu:
        emu.faults.set(
            "request_message_generation", FaultPlan(script=[None] * 5 + [Fault.slow(5.0)] * 50)
        )
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with anyio.move_on_after(1.0):
                await client.submit_batch(
                    campaign(),
                    leads(2_000),
                    batch=BatchPolicy(chunk_size=100, concurrency=2),
                    into=into,
                )
    assert into.stopped_by is StopReason.CANCELLED
    assert into.accepted_count == 500
    assert into.failed_count == 200  # the two in flight when cancelled
    assert all(chunk.error_type == "Cancelled" for chunk in into.failed)


def test_batch_submission_round_trips_through_json() -> None:
    """to_json/from_json keep every lead's fate."""
    from upscale_async import AcceptedRequest, FailedChunk, RejectedLead

    batch = BatchSubmission(
        accepted=[AcceptedRequest("id-1", ("a", "b"), 0)],
        rejected=[RejectedLead(2, lead(2), (("p", "m"),))],
        failed=[FailedChunk((lead(3),), "boom", "ServerError", 503, 3)],
        not_submitted=[lead(4)],
        stopped_by="insufficient_credits",
    )
    again = BatchSubmission.from_json(batch.to_json())
    assert again == batch
    with pytest.raises(ValueError, match="not a saved BatchSubmission"):
        BatchSubmission.from_json(b"{}")


async def test_a_down_service_is_not_hammered() -> None:
    """Against a service that always fails, the breaker bounds the requests and reports every lead."""
    attempts, concurrency, threshold = 4, 8, 3
    async with Emulator(webhook_secret=None) as emu:
        emu.faults.set(
            "request_message_generation", FaultPlan(rate=1.0, choices=(Fault.http(503),))
        )
        retry = RetryPolicy(attempts=attempts, time_scale=0.0)
        async with UpscaleClient(emu.api_key, base_url=emu.base_url, retry=retry) as client:
            policy = BatchPolicy(concurrency=concurrency, max_consecutive_failures=threshold)
            with pytest.raises(BatchInterruptedError) as info:
                await client.submit_batch(campaign(), leads(10_000), batch=policy)
        sent = emu.state.endpoint_counts["request_message_generation"]
    assert info.value.reason is StopReason.SERVICE_UNAVAILABLE
    assert isinstance(info.value.__cause__, ServerError)
    batch = info.value.partial
    assert batch.stopped_by == "service_unavailable"
    assert attempts <= sent <= (concurrency + threshold) * attempts
    assert batch.failed_count + batch.not_submitted_count == 10_000
    assert len(batch.failed) <= concurrency + threshold


async def test_leads_left_after_402_are_still_checked() -> None:
    """After a 402, an invalid lead among those left is rejected, not handed back to resubmit."""
    source = [lead(i) for i in range(300)]
    source[250]["first_name"] = ""
    async with Emulator(webhook_secret=None, credits=200) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with pytest.raises(BatchInterruptedError) as info:
                await client.submit_batch(
                    campaign(), iter(source), batch=BatchPolicy(concurrency=1)
                )
    batch = info.value.partial
    assert batch.stopped_by == "insufficient_credits"
    assert batch.accepted_count == 100
    assert [r.index for r in batch.rejected] == [250]
    assert batch.not_submitted_count == 199
    assert batch.total == 300


async def test_a_failing_callback_stops_the_batch_with_the_partial_result() -> None:
    """on_accepted raising (say, a full disk) stops the batch; nothing accepted is lost."""
    seen: list[str] = []

    def record(request: AcceptedRequest) -> None:
        seen.append(request.secure_request_id)
        if len(seen) == 3:
            raise OSError("No space left on device")

    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with pytest.raises(BatchInterruptedError, match="No space left") as info:
                await client.submit_batch(
                    campaign(), leads(2_000), batch=BatchPolicy(concurrency=1), on_accepted=record
                )
    partial = info.value.partial
    assert partial.stopped_by == "callback_error"
    assert partial.request_ids == seen
    assert partial.accepted_count + partial.not_submitted_count == 2_000
