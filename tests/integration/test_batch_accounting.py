"""Whatever stops a batch, every lead the source yielded ends in exactly one bucket."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from upscale_async import (
    BatchInterruptedError,
    BatchPolicy,
    BatchSubmission,
    RejectedLead,
    RetryPolicy,
    StopReason,
    UpscaleClient,
)
from upscale_async.emulator import Emulator, Fault, FaultPlan
from upscale_async.testing import iter_sample_leads

from .conftest import campaign

# Every 9th lead is invalid, so the rejected bucket takes part in every check.
INVALID_EVERY = 9


def lead_id_of(lead: Any) -> str:
    return str(lead["automation_tool_lead_id"])


def assert_each_lead_once(yielded: list[str], batch: BatchSubmission) -> None:
    """Every lead id the source yielded is in exactly one bucket; no bucket holds anything else."""
    placed: Counter[str] = Counter()
    for request in batch.accepted:
        placed.update(request.lead_ids)
    placed.update(lead_id_of(rejected.lead) for rejected in batch.rejected)
    for chunk in batch.failed:
        placed.update(lead_id_of(lead) for lead in chunk.leads)
    placed.update(lead_id_of(lead) for lead in batch.not_submitted)
    expected = Counter(yielded)
    missing = sorted((expected - placed).elements())
    extra = sorted((placed - expected).elements())
    counts = batch.counts()
    assert not missing, f"{len(missing)} yielded leads in no bucket: {missing[:5]}...; {counts}"
    assert not extra, f"{len(extra)} placements too many: {extra[:5]}...; {counts}"


def sample(n: int, *, prefix: str = "lead") -> Iterator[dict[str, Any]]:
    return iter_sample_leads(n, prefix=prefix, invalid_every=INVALID_EVERY)


def tracked(n: int, yielded: list[str], *, prefix: str = "lead") -> Iterator[dict[str, Any]]:
    """A sync source of ``n`` leads that notes each id as it yields it."""
    for lead in sample(n, prefix=prefix):
        yielded.append(lead_id_of(lead))
        yield lead


def raising_after(n: int, yielded: list[str]) -> Iterator[dict[str, Any]]:
    """A sync source that yields ``n`` leads, then raises."""
    yield from tracked(n, yielded)
    raise OSError(f"the lead file ended early after {n} leads")


async def araising_after(n: int, yielded: list[str]) -> AsyncIterator[dict[str, Any]]:
    """An async source that yields ``n`` leads, then raises."""
    for lead in sample(n):
        yielded.append(lead_id_of(lead))
        yield lead
    raise OSError(f"the lead file ended early after {n} leads")


@pytest.mark.parametrize(
    "kind", [pytest.param("sync", id="sync"), pytest.param("async", id="async")]
)
async def test_a_source_raising_mid_chunk_loses_no_lead(kind: str) -> None:
    """A source raising after 537 leads (chunk 100): all 537 are in exactly one bucket."""
    yielded: list[str] = []
    source = raising_after(537, yielded) if kind == "sync" else araising_after(537, yielded)
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with pytest.raises(BatchInterruptedError, match="ended early") as info:
                await client.submit_batch(
                    campaign(), source, batch=BatchPolicy(chunk_size=100, concurrency=4)
                )
    assert info.value.reason is StopReason.SOURCE_ERROR
    assert len(yielded) == 537
    assert_each_lead_once(yielded, info.value.partial)


async def test_the_unfinished_chunk_is_checked_before_it_is_handed_back() -> None:
    """The leads of the chunk the source broke in are validated: invalid ones go to rejected."""
    yielded: list[str] = []
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with pytest.raises(BatchInterruptedError) as info:
                await client.submit_batch(
                    campaign(), raising_after(537, yielded), batch=BatchPolicy(chunk_size=100)
                )
    partial = info.value.partial
    tail = set(yielded[500:])
    assert {lead_id_of(lead) for lead in partial.not_submitted} | {
        r.lead_id for r in partial.rejected if r.lead_id in tail
    } == tail
    assert [r.index for r in partial.rejected if r.index >= 500] == [503, 512, 521, 530]
    assert [lead_id_of(lead) for lead in partial.not_submitted] == [
        i for position, i in enumerate(yielded) if position >= 500 and (position + 1) % 9
    ]


async def test_an_async_source_cancelled_mid_pull_loses_no_lead() -> None:
    """Cancelling the batch while an async source is inside a pull keeps the leads pulled."""
    yielded: list[str] = []
    into = BatchSubmission()
    with anyio.CancelScope() as scope:

        async def source() -> AsyncIterator[dict[str, Any]]:
            for position, lead in enumerate(sample(250)):
                if position == 230:
                    scope.cancel()
                    await anyio.lowlevel.checkpoint()  # the cancellation lands inside the pull
                yielded.append(lead_id_of(lead))
                yield lead

        async with Emulator(webhook_secret=None) as emu:
            async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
                await client.submit_batch(
                    campaign(), source(), batch=BatchPolicy(chunk_size=100), into=into
                )
    assert scope.cancelled_caught
    assert into.stopped_by is StopReason.CANCELLED
    assert len(yielded) == 230
    assert_each_lead_once(yielded, into)


async def test_a_batch_cancelled_inside_on_rejected_loses_no_lead() -> None:
    """Cancelled while on_rejected runs, the chunk's valid leads are handed back unsent."""
    yielded: list[str] = []
    into = BatchSubmission()
    with anyio.CancelScope() as scope:

        async def on_rejected(rejected: RejectedLead) -> None:
            scope.cancel()
            await anyio.lowlevel.checkpoint()

        async with Emulator(webhook_secret=None) as emu:
            async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
                await client.submit_batch(
                    campaign(),
                    tracked(100, yielded),
                    batch=BatchPolicy(chunk_size=50, concurrency=1),
                    on_rejected=on_rejected,
                    into=into,
                )
    assert scope.cancelled_caught
    assert into.accepted_count == 0
    assert into.not_submitted_count == 50 - 50 // INVALID_EVERY
    assert_each_lead_once(yielded, into)


async def test_random_cancellations_of_an_async_source_lose_no_lead() -> None:
    """500 seeded cancellations at random points of an async-source batch: none lost or doubled."""
    rng = random.Random(20261201)
    trials, broken = 500, []
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with anyio.fail_after(90):  # bounded in time as well as in count
                for trial in range(trials):
                    yielded: list[str] = []
                    into = BatchSubmission()
                    await cancelled_run(client, rng, trial, yielded, into)
                    try:
                        assert_each_lead_once(yielded, into)
                    except AssertionError as exc:
                        broken.append(f"trial {trial}: {exc}")
    assert not broken, f"{len(broken)} of {trials} runs lost or doubled leads: {broken[:3]}"


async def cancelled_run(
    client: UpscaleClient,
    rng: random.Random,
    trial: int,
    yielded: list[str],
    into: BatchSubmission,
) -> None:
    """One batch from an async source that pauses at random, cancelled after random ticks."""
    n = rng.randint(0, 120)
    pauses = {i for i in range(n) if rng.random() < 0.2}
    ticks = rng.randint(0, 80)
    policy = BatchPolicy(chunk_size=rng.choice((5, 10, 40)), concurrency=rng.choice((1, 2, 4)))

    async def source() -> AsyncIterator[dict[str, Any]]:
        for position, lead in enumerate(sample(n, prefix=f"t{trial}")):
            if position in pauses:
                await anyio.lowlevel.checkpoint()
            yielded.append(lead_id_of(lead))  # noted as it is handed over, not before
            yield lead

    async def on_rejected(rejected: RejectedLead) -> None:
        await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:

        async def cancel_after_ticks() -> None:
            for _ in range(ticks):
                await anyio.lowlevel.checkpoint()
            tg.cancel_scope.cancel()

        tg.start_soon(cancel_after_ticks)
        await client.submit_batch(
            campaign(), source(), batch=policy, on_rejected=on_rejected, into=into
        )
        tg.cancel_scope.cancel()  # finished before the cancellation: stop the canceller


@pytest.mark.parametrize("callback", ["on_accepted", "on_progress", "on_rejected"])
async def test_a_raising_callback_loses_no_lead(callback: str) -> None:
    """A callback raising on its third call stops the batch; every lead is in one bucket."""
    yielded: list[str] = []
    calls = 0

    def failing(_: object) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise OSError("No space left on device")

    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with pytest.raises(BatchInterruptedError, match="No space left") as info:
                await client.submit_batch(
                    campaign(),
                    tracked(1_000, yielded),
                    batch=BatchPolicy(chunk_size=50, concurrency=3),
                    **{callback: failing},  # type: ignore[arg-type]
                )
    assert info.value.reason is StopReason.CALLBACK_ERROR
    assert len(yielded) == 1_000
    assert_each_lead_once(yielded, info.value.partial)


@pytest.mark.parametrize(
    ("stop", "emulator", "key"),
    [
        pytest.param(StopReason.INSUFFICIENT_CREDITS, {"credits": 500}, None, id="402"),
        pytest.param(StopReason.AUTHENTICATION, {"revoked_keys": ("gone",)}, "gone", id="401"),
        pytest.param(StopReason.SERVICE_UNAVAILABLE, {}, None, id="breaker"),
    ],
)
async def test_an_api_stop_loses_no_lead(
    stop: StopReason, emulator: dict[str, Any], key: str | None
) -> None:
    """A 402, a 401 or the breaker stops the batch; every lead is in exactly one bucket."""
    yielded: list[str] = []
    async with Emulator(webhook_secret=None, **emulator) as emu:
        if stop is StopReason.SERVICE_UNAVAILABLE:
            emu.faults.set(
                "request_message_generation", FaultPlan(rate=1.0, choices=(Fault.http(503),))
            )
        retry = RetryPolicy(attempts=2, time_scale=0.0)
        async with UpscaleClient(key or emu.api_key, base_url=emu.base_url, retry=retry) as client:
            with pytest.raises(BatchInterruptedError) as info:
                await client.submit_batch(
                    campaign(), tracked(1_000, yielded), batch=BatchPolicy(chunk_size=50)
                )
    assert info.value.reason is stop
    assert len(yielded) == 1_000
    assert_each_lead_once(yielded, info.value.partial)
