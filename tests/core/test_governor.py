"""The rate governor on its own (no network): AIMD, the retry budget, slots, deadlines."""

from __future__ import annotations

import asyncio
import time

import anyio
import pytest

from upscale_async import (
    GovernorPolicy,
    RateGovernor,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    TransportError,
    UpscaleClient,
)

from .conftest import BASE, KEY


def _429(retry_after: float | None = 0.0) -> RateLimitError:
    return RateLimitError("slow down", status=429, retry_after=retry_after)


def _500() -> ServerError:
    return ServerError("boom", status=500)


def governor(**policy: object) -> RateGovernor:
    return RateGovernor(GovernorPolicy(**policy), max_connections=100)  # type: ignore[arg-type]


async def _admit(g: RateGovernor, n: int) -> list[int]:
    return [await g.admit(None, "GET", "/x") for _ in range(n)]


async def test_the_limit_starts_at_the_maximum_and_a_429_halves_what_was_in_flight() -> None:
    """8 in flight under a ceiling of 16: a 429 sets the limit to 4, not 8."""
    g = governor(max_concurrency=16)
    assert g.concurrency_limit == 16
    tickets = await _admit(g, 8)
    g.failed(tickets[0], _429(), "POST", "/x", 0.0)
    assert g.concurrency_limit == 4
    assert g.decreases == 1


async def test_requests_sent_before_a_decrease_do_not_decrease_it_again() -> None:
    """A storm of 429s answering one window's requests decreases the limit once."""
    g = governor(max_concurrency=8)
    tickets = await _admit(g, 8)
    for ticket in tickets:
        g.failed(ticket, _429(), "POST", "/x", 0.0)
    assert g.concurrency_limit == 4
    assert g.decreases == 1
    [late] = await _admit(g, 1)
    g.failed(late, _429(), "POST", "/x", 0.0)
    assert g.concurrency_limit == 1  # the next window's 429 halves again (from 1 in flight)
    assert g.decreases == 2


async def test_successes_add_one_per_window_back_up_to_the_maximum() -> None:
    """Additive increase: 1/limit per success while the limit is in use, capped at the maximum."""
    g = governor(max_concurrency=8)
    tickets = await _admit(g, 8)
    g.failed(tickets[0], _429(), "POST", "/x", 0.0)
    assert g.concurrency_limit == 4
    for ticket in tickets[1:4]:  # the others were released by their own outcomes
        g.released(ticket)
    for ticket in tickets[4:]:
        g.released(ticket)
    successes = 0
    while g.concurrency_limit < 8:
        batch = await _admit(g, g.concurrency_limit)
        for ticket in batch:
            g.succeeded(ticket, 0)
            successes += 1
        assert successes < 100
    assert g.concurrency_limit == 8
    assert successes >= 4 + 5 + 6  # about one window of successes per step
    for ticket in await _admit(g, 8):
        g.succeeded(ticket, 0)
    assert g.concurrency_limit == 8  # never past the maximum


async def test_an_idle_limit_does_not_grow() -> None:
    """One request at a time under a limit of 6 does not raise it (the limit is not in use)."""
    g = governor(max_concurrency=12)
    tickets = await _admit(g, 12)
    g.failed(tickets[0], _429(), "POST", "/x", 0.0)
    for ticket in tickets[1:]:
        g.released(ticket)
    assert g.concurrency_limit == 6
    for _ in range(50):
        [ticket] = await _admit(g, 1)
        g.succeeded(ticket, 0)
    assert g.concurrency_limit == 6


async def test_the_limit_never_goes_below_the_minimum() -> None:
    """Repeated decreases stop at min_concurrency."""
    g = governor(max_concurrency=8, min_concurrency=3)
    for _ in range(5):
        [ticket] = await _admit(g, 1)
        g.failed(ticket, _429(), "POST", "/x", 0.0)
    assert g.concurrency_limit == 3


async def test_a_burst_of_server_errors_pauses_and_decreases() -> None:
    """burst_errors 5xx within the window start a pause; fewer do not."""
    g = governor(burst_errors=3, burst_window=60.0, burst_pause=30.0)
    for _ in range(2):
        [ticket] = await _admit(g, 1)
        g.failed(ticket, _500(), "GET", "/x", 0.0)
    assert g.pauses == 0
    assert g.paused_for == 0.0
    [ticket] = await _admit(g, 1)
    g.failed(ticket, _500(), "GET", "/x", 0.0)
    assert g.pauses == 1
    assert 29.0 < g.paused_for <= 30.0


async def test_a_429_pauses_for_the_wait_of_its_call() -> None:
    """The pause lasts as long as the call that got the 429 waits before its retry."""
    g = governor()
    [ticket] = await _admit(g, 1)
    g.failed(ticket, _429(20.0), "GET", "/x", 20.0)
    assert 19.0 < g.paused_for <= 20.0
    assert g.pauses == 1


async def test_a_burst_pauses_for_the_backoff_unless_burst_pause_is_set() -> None:
    """burst_pause=None: the wait of the call whose error completed the burst."""
    g = governor(burst_errors=1)
    [ticket] = await _admit(g, 1)
    g.failed(ticket, _500(), "GET", "/x", 15.0)
    assert 14.0 < g.paused_for <= 15.0


async def test_a_pause_past_the_deadline_fails_at_once_with_a_clear_message() -> None:
    """admit raises RequestTimeoutError, naming the pause and the deadline, without waiting."""
    g = governor()
    [ticket] = await _admit(g, 1)
    g.failed(ticket, _429(30.0), "GET", "/x", 30.0)
    started = time.monotonic()
    with pytest.raises(RequestTimeoutError, match="pausing every request") as info:
        await g.admit(time.monotonic() + 1.0, "POST", "/messages/request_message_generation")
    assert time.monotonic() - started < 0.5
    assert "RetryPolicy.timeout" in str(info.value)
    assert info.value.path == "/messages/request_message_generation"


async def test_waiters_for_a_slot_start_in_order_as_slots_free() -> None:
    """With 2 slots taken, later admits wait and start first come, first served."""
    g = governor(max_concurrency=2)
    held = await _admit(g, 2)
    order: list[int] = []

    async def wait(n: int) -> None:
        await g.admit(None, "GET", "/x")
        order.append(n)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for n in range(3):
                tg.start_soon(wait, n)
                await anyio.sleep(0.01)
            assert order == []
            g.succeeded(held[0], 0)
            await anyio.sleep(0.01)
            assert order == [0]
            g.succeeded(held[1], 0)
            g.released(0)
            await anyio.sleep(0.01)
            assert order == [0, 1, 2]
    assert g.in_flight == 2


async def test_a_cancelled_waiter_hands_its_slot_to_the_next() -> None:
    """A waiter woken for a slot but cancelled before it runs leaves the slot to the next one.

    (anyio never cancels a task whose wake-up is due; a plain ``task.cancel()`` can.)
    """
    g = governor(max_concurrency=1)
    [held] = await _admit(g, 1)
    first = asyncio.ensure_future(g.admit(None, "GET", "/x"))
    await asyncio.sleep(0.01)
    second = asyncio.ensure_future(g.admit(None, "GET", "/x"))
    await asyncio.sleep(0.01)
    g.succeeded(held, 0)  # wakes the first waiter...
    first.cancel()  # ...which is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await first
    with anyio.fail_after(5):
        await second
    assert g.in_flight == 1
    assert not g._waiters


async def test_a_waiter_gives_up_at_its_deadline() -> None:
    """No slot before the deadline: RequestTimeoutError naming the governor; nothing leaks."""
    g = governor(max_concurrency=1)
    await _admit(g, 1)
    with pytest.raises(RequestTimeoutError, match="no request slot"):
        await g.admit(time.monotonic() + 0.05, "GET", "/x")
    assert g.in_flight == 1
    assert not g._waiters


def test_the_retry_budget_pays_for_retries_and_refuses_when_empty() -> None:
    """12 tokens, 5 a retry: two retries, then None (refused) and the refusal counted."""
    g = governor(retry_quota=12, retry_cost=5)
    assert g.take_retry(_500()) == 5
    assert g.take_retry(_500()) == 5
    assert g.retry_capacity == 2
    assert g.take_retry(_500()) is None
    assert g.retries_refused == 1
    assert "retry budget is spent" in g.budget_note()


def test_a_timeout_or_connection_error_costs_more() -> None:
    """timeout_retry_cost is taken after a connection error or timeout."""
    g = governor(retry_quota=100, timeout_retry_cost=10)
    assert g.take_retry(TransportError("reset")) == 10
    assert g.take_retry(RequestTimeoutError("slow")) == 10
    assert g.retry_capacity == 80


async def test_successes_refund_the_budget_up_to_its_size() -> None:
    """At once: success_refund; after retries: what the last retry took; never past the quota."""
    g = governor(retry_quota=20, retry_cost=5, success_refund=1)
    g.take_retry(_500())
    g.take_retry(_500())
    [ticket] = await _admit(g, 1)
    g.succeeded(ticket, 0)
    assert g.retry_capacity == 11
    [ticket] = await _admit(g, 1)
    g.succeeded(ticket, 5)
    assert g.retry_capacity == 16
    for _ in range(10):
        [ticket] = await _admit(g, 1)
        g.succeeded(ticket, 5)
    assert g.retry_capacity == 20


def test_no_budget_never_refuses() -> None:
    """retry_quota=None: every retry is allowed and costs nothing."""
    g = governor(retry_quota=None)
    assert all(g.take_retry(_500()) == 0 for _ in range(1000))
    assert g.retry_capacity is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"max_concurrency": 0}, "max_concurrency", id="zero-max"),
        pytest.param({"min_concurrency": 4, "max_concurrency": 2}, "must not exceed", id="min>max"),
        pytest.param({"decrease_factor": 1.0}, "between 0 and 1", id="factor-1"),
        pytest.param({"burst_window": 0}, "burst_window", id="zero-window"),
        pytest.param({"retry_quota": -1}, "retry_quota", id="negative-quota"),
    ],
)
def test_a_bad_policy_is_refused_with_a_message(options: dict[str, object], message: str) -> None:
    """GovernorPolicy validates on construction."""
    with pytest.raises(ValueError, match=message):
        GovernorPolicy(**options)  # type: ignore[arg-type]


async def test_the_client_has_one_governor_shared_by_its_views() -> None:
    """client.governor is the same object on with_options views; governor=None has none."""
    async with UpscaleClient(KEY, base_url=BASE, max_connections=7) as client:
        assert client.governor is not None
        assert client.governor.max_concurrency == 7
        assert client.with_options(timeout=3).governor is client.governor
    async with UpscaleClient(KEY, base_url=BASE, governor=None) as client:
        assert client.governor is None
    with pytest.raises(TypeError, match="GovernorPolicy"):
        UpscaleClient(KEY, base_url=BASE, governor=3)  # type: ignore[arg-type]


async def test_one_governor_may_be_shared_by_several_clients() -> None:
    """A RateGovernor passed as governor= is used as it is, by every client given it."""
    shared = RateGovernor(GovernorPolicy(max_concurrency=3), max_connections=100)
    async with (
        UpscaleClient(KEY, base_url=BASE, governor=shared) as one,
        UpscaleClient(KEY, base_url=BASE, governor=shared) as other,
    ):
        assert one.governor is shared
        assert other.governor is shared
        assert shared.max_concurrency == 3
