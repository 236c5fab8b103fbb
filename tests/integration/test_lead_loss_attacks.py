"""Attacks that used to lose leads or break the clean exit of ``generate`` (2026-12-02 audit)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from upscale_async import (
    AcceptedRequest,
    BatchInterruptedError,
    BatchJournal,
    BatchPolicy,
    BatchSubmission,
    PollPolicy,
    StopReason,
    UpscaleClient,
)
from upscale_async.emulator import Emulator

from .conftest import campaign, lead

FAST_POLL = PollPolicy(initial=0.02, factor=1.5, max_interval=0.1)


def placed(batch: BatchSubmission) -> Counter[str]:
    """How many buckets of ``batch`` hold each lead id."""
    found: Counter[str] = Counter()
    for request in batch.accepted:
        found.update(request.lead_ids)
    found.update(str(r.lead["automation_tool_lead_id"]) for r in batch.rejected)
    for chunk in batch.failed:
        found.update(str(x["automation_tool_lead_id"]) for x in chunk.leads)
    found.update(str(x["automation_tool_lead_id"]) for x in batch.not_submitted)
    return found


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_generate_gives_out_the_leads_of_a_request_whose_on_accepted_raised(
    asynchronous: bool,
) -> None:
    """Upscale accepted the request; the callback failing must not lose its leads."""
    given = [lead(i) for i in range(30)]

    def fail(request: AcceptedRequest) -> None:
        raise OSError("disk full")

    async def fail_async(request: AcceptedRequest) -> None:
        await anyio.lowlevel.checkpoint()
        raise OSError("disk full")

    outcomes: list[Any] = []
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with pytest.raises(BatchInterruptedError) as stopped:
                async with client.generate(
                    campaign(),
                    given,
                    poll=FAST_POLL,
                    batch=BatchPolicy(chunk_size=10, concurrency=1),
                    on_accepted=fail_async if asynchronous else fail,
                ) as stream:
                    outcomes = [o async for o in stream]
    assert stopped.value.reason is StopReason.CALLBACK_ERROR
    counts = Counter(o.lead_id for o in outcomes)
    assert sorted(counts) == sorted(str(x["automation_tool_lead_id"]) for x in given)
    assert set(counts.values()) == {1}
    assert Counter(o.outcome for o in outcomes) == {"generated": 10, "not_submitted": 20}


async def test_leaving_generate_early_with_break_raises_nothing() -> None:
    """``break`` while the pipeline is sending an outcome (a full buffer) ends the block cleanly."""
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            for trial in range(5):
                given = [lead(i, prefix=f"t{trial}") for i in range(300)]
                seen = 0
                async with client.generate(
                    campaign(),
                    given,
                    poll=FAST_POLL,
                    batch=BatchPolicy(chunk_size=5, concurrency=5),
                ) as stream:
                    async for _ in stream:
                        seen += 1
                        if seen == 20:
                            break
                assert seen == 20


async def test_a_cancelled_resume_of_a_ledger_chunk_held_as_several_requests_places_them_all(
    tmp_path: Path,
) -> None:
    """A chunk the journal holds as 4 requests, cancelled in the first ``on_accepted``: all 40
    leads are in ``into.accepted`` (30 were in no bucket)."""
    given = [lead(i) for i in range(40)]
    path = tmp_path / "run.journal"
    into = BatchSubmission()

    async def slow(request: AcceptedRequest) -> None:
        await anyio.sleep(5)

    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with BatchJournal(path, fsync=False) as journal:
                await client.submit_batch(
                    campaign(), given, batch=BatchPolicy(chunk_size=10), ledger=journal
                )
            with BatchJournal(path, fsync=False) as journal:
                with anyio.move_on_after(0.3) as scope:
                    await client.submit_batch(
                        campaign(),
                        given,
                        batch=BatchPolicy(chunk_size=40),
                        ledger=journal,
                        on_accepted=slow,
                        into=into,
                    )
            posts = emu.state.endpoint_counts["request_message_generation"]
    assert scope.cancelled_caught
    assert placed(into) == Counter(str(x["automation_tool_lead_id"]) for x in given)
    assert posts == 4  # the first run's requests only: nothing was sent again
