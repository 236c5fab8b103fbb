"""Client configuration: frozen, views by with_options, BatchPolicy, and the overall retry deadline."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
import pytest
from aioresponses import aioresponses

from upscale_async import (
    AcceptedRequest,
    BatchJournal,
    BatchPolicy,
    ClientClosedError,
    PollPolicy,
    RequestTimeoutError,
    RetryPolicy,
    Routes,
    ServerError,
    UpscaleClient,
)
from upscale_async.emulator import Emulator, Fault, FaultPlan

from .conftest import BASE, KEY

ACCOUNT = f"{BASE}/account"


def test_client_configuration_cannot_be_assigned() -> None:
    """Setting client.retry raises (it used to be silently ignored), naming with_options."""
    client = UpscaleClient(KEY, base_url=BASE)
    with pytest.raises(AttributeError, match=r"with_options\(retry=\.\.\.\)"):
        client.retry = RetryPolicy(attempts=1)  # type: ignore[misc]
    assert client.retry == RetryPolicy()


async def test_with_options_changes_the_view_and_not_the_client(mocked: aioresponses) -> None:
    """A view has its own options, shares the session, and closing it leaves the client open."""
    mocked.get(ACCOUNT, status=503, payload={"error": "busy"}, repeat=True)
    async with UpscaleClient(KEY, base_url=BASE, retry=RetryPolicy(time_scale=0.0)) as client:
        view = client.with_options(
            retry=RetryPolicy(attempts=2, time_scale=0.0),
            timeout=5.0,
            poll=PollPolicy(initial=1.0),
            batch=BatchPolicy(chunk_size=7),
            routes=Routes.legacy(),
        )
        assert (view.retry.attempts, view.timeout, view.batch.chunk_size) == (2, 5.0, 7)
        assert view.routes == Routes.legacy()
        assert view.poll.initial == 1.0
        assert (client.retry.attempts, client.timeout, client.batch.chunk_size) == (5, 30.0, 100)
        assert client.with_options(timeout=None).timeout is None
        with pytest.raises(ServerError):
            await client.with_options(retry=RetryPolicy(attempts=2, time_scale=0.0)).get_account()
        assert sum(len(v) for v in mocked.requests.values()) == 2
        await view.aclose()
        assert not client.closed
    assert view.closed  # the view's session is the client's


async def test_a_view_of_a_closed_client_is_closed(mocked: aioresponses) -> None:
    """Closing the client closes every view made from it."""
    client = UpscaleClient(KEY, base_url=BASE)
    view = client.with_options(timeout=1.0)
    await client.aclose()
    with pytest.raises(ClientClosedError):
        await view.get_account()


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"chunk_size": 0}, id="chunk-size-0"),
        pytest.param({"concurrency": 0}, id="concurrency-0"),
        pytest.param({"max_consecutive_failures": 0}, id="breaker-0"),
    ],
)
def test_batch_policy_rejects_nonsense(kwargs: dict[str, int]) -> None:
    """BatchPolicy validates on construction, naming the field."""
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        BatchPolicy(**kwargs)


@pytest.mark.parametrize("timeout", [0.0, -1.0])
def test_retry_timeout_must_be_positive(timeout: float) -> None:
    """RetryPolicy(timeout=...) is > 0 seconds or None."""
    with pytest.raises(ValueError, match="timeout"):
        RetryPolicy(timeout=timeout)


async def test_the_retry_deadline_bounds_a_whole_call() -> None:
    """A service that always answers slowly: one call ends at RetryPolicy.timeout, not 5 x 30 s."""
    async with Emulator(webhook_secret=None) as emu:
        emu.faults.set("account", FaultPlan(rate=1.0, choices=(Fault.slow(10.0),)))
        policy = RetryPolicy(attempts=5, wait_initial=0.01, timeout=1.0)
        async with UpscaleClient(
            emu.api_key, base_url=emu.base_url, timeout=0.4, retry=policy
        ) as client:
            started = time.monotonic()
            with pytest.raises(RequestTimeoutError):
                await client.get_account()
            elapsed = time.monotonic() - started
    assert 0.8 <= elapsed < 3.0  # about the deadline: never 5 attempts of 0.4 s plus waits


async def test_no_retry_wait_runs_past_the_deadline() -> None:
    """A Retry-After longer than the time left ends the call at once with the server's error."""
    async with Emulator(webhook_secret=None) as emu:
        emu.faults.set("account", FaultPlan(rate=1.0, choices=(Fault.http(503, retry_after=30),)))
        policy = RetryPolicy(attempts=5, timeout=2.0)
        async with UpscaleClient(emu.api_key, base_url=emu.base_url, retry=policy) as client:
            started = time.monotonic()
            with pytest.raises(ServerError):
                await client.get_account()
            assert time.monotonic() - started < 1.5
        assert emu.state.endpoint_counts["account"] == 1


async def test_journal_writes_do_not_block_the_event_loop(tmp_path: Path) -> None:
    """record() syncs on a worker thread: the loop keeps running while the disk is slow."""
    journal = BatchJournal(tmp_path / "run.journal")
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await anyio.sleep(0.005)

    def slow_write(request: AcceptedRequest) -> None:
        time.sleep(0.3)  # a slow disk

    async with anyio.create_task_group() as tg:
        tg.start_soon(ticker)
        await anyio.sleep(0.02)
        before = ticks
        journal.record_sync = slow_write  # type: ignore[method-assign]
        await journal.record(AcceptedRequest("id-1", ("a",), 0))
        tg.cancel_scope.cancel()
    assert ticks - before >= 10  # the loop ran during the 0.3 s write


async def test_journal_record_is_durable_and_read_back(tmp_path: Path) -> None:
    """Recorded requests are in the file when record() returns, and a reopened journal has them."""
    path = tmp_path / "run.journal"
    with BatchJournal(path) as journal:
        await journal.record(AcceptedRequest("id-1", ("a", "b"), 0))
        journal.record_sync(AcceptedRequest("id-2", ("c",), 2))
        assert path.read_bytes().count(b"\n") == 2
    again = BatchJournal(path)
    assert again.request_ids() == ["id-1", "id-2"]
    assert again.is_accepted("c")
    assert list(again.skip_accepted([{"automation_tool_lead_id": "a"}, {"x": 1}])) == [{"x": 1}]
