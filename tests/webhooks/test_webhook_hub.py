"""CompletionHub: early events, duplicates, several waiters, cancellation, timeouts, eviction."""

from __future__ import annotations

import asyncio

import pytest

from upscale_async.webhooks import (
    CompletionBackend,
    CompletionEvent,
    CompletionHub,
    HubStats,
    MemoryBackend,
)


def event(request_id: str = "req-1", webhook_id: str | None = "wh-1") -> CompletionEvent:
    return CompletionEvent(secure_request_id=request_id, status="complete", webhook_id=webhook_id)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def empty(hub: CompletionHub) -> bool:
    stats = hub.stats()
    return stats.waiters == 0 and stats.waiting_ids == 0 and stats.stored_events == 0


async def test_early_event_resolves_later_waiter_at_once() -> None:
    """An event delivered before anyone waits resolves the next waiter without waiting."""
    hub = CompletionHub()
    assert hub.deliver(event()) is True
    assert hub.stats().stored_events == 1
    got = await asyncio.wait_for(hub.wait("req-1"), timeout=0.5)
    assert got == event()
    assert empty(hub)


async def test_waiter_resolved_by_delivery() -> None:
    """A waiter registered first is resolved by the delivery and the hub holds nothing after."""
    hub = CompletionHub()
    task = asyncio.create_task(hub.wait("req-1"))
    await asyncio.sleep(0)
    assert hub.is_waiting("req-1")
    hub.deliver(event())
    assert await task == event()
    assert empty(hub)


async def test_three_deliveries_resolve_once() -> None:
    """The same event delivered three times is new once, then a duplicate twice."""
    hub = CompletionHub()
    task = asyncio.create_task(hub.wait("req-1"))
    await asyncio.sleep(0)
    assert [hub.deliver(event()) for _ in range(3)] == [True, False, False]
    assert await task == event()
    assert empty(hub)


async def test_duplicate_without_webhook_id_uses_triggered_at() -> None:
    """Without webhook-id, the id plus webhook_triggered_at identifies a delivery."""
    hub = CompletionHub()
    first = CompletionEvent(secure_request_id="r", status="complete", webhook_triggered_at="t1")
    assert hub.deliver(first) is True
    assert hub.deliver(first) is False


async def test_duplicate_after_consumption_not_stored() -> None:
    """A redelivery after the waiter got the event is dropped, not kept as an early event."""
    hub = CompletionHub()
    hub.deliver(event())
    await hub.wait("req-1")
    assert hub.deliver(event()) is False
    assert empty(hub)


async def test_several_waiters_on_same_id_all_resolve() -> None:
    """Every waiter for an id is resolved by its one delivery."""
    hub = CompletionHub()
    tasks = [asyncio.create_task(hub.wait("req-1")) for _ in range(3)]
    await asyncio.sleep(0)
    assert hub.stats() == HubStats(waiters=3, waiting_ids=1, stored_events=0, remembered_keys=0)
    hub.deliver(event())
    assert await asyncio.gather(*tasks) == [event()] * 3
    assert empty(hub)


async def test_cancelled_waiter_removed() -> None:
    """Cancelling a waiter removes it from the hub."""
    hub = CompletionHub()
    task = asyncio.create_task(hub.wait("req-1"))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert empty(hub)


async def test_cancelling_one_waiter_leaves_the_others() -> None:
    """Cancelling one of two waiters on an id leaves the other one waiting and resolvable."""
    hub = CompletionHub()
    a = asyncio.create_task(hub.wait("req-1"))
    b = asyncio.create_task(hub.wait("req-1"))
    await asyncio.sleep(0)
    a.cancel()
    await asyncio.sleep(0)
    assert hub.stats().waiters == 1
    hub.deliver(event())
    assert await b == event()
    assert empty(hub)


async def test_timeout_raises_and_removes_waiter() -> None:
    """wait(timeout=...) raises the builtin TimeoutError and leaves nothing behind."""
    hub = CompletionHub()
    with pytest.raises(TimeoutError):
        await hub.wait("req-1", timeout=0.01)
    assert empty(hub)


async def test_event_resolved_while_cancelled_is_kept() -> None:
    """An event that resolved a waiter in the same tick it was cancelled is kept, not lost."""
    hub = CompletionHub()
    task = asyncio.create_task(hub.wait("req-1"))
    await asyncio.sleep(0)
    hub.deliver(event())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await hub.wait("req-1", timeout=0.1) == event()


async def test_unknown_id_delivery_is_acknowledged_and_kept() -> None:
    """An event nobody waits on is accepted (True) and kept for a waiter that may come."""
    hub = CompletionHub()
    assert hub.deliver(event("nobody")) is True
    assert hub.stats().stored_events == 1


async def test_early_event_expires_after_ttl() -> None:
    """An early event older than the TTL is evicted; a later waiter then times out (polls)."""
    clock = FakeClock()
    hub = CompletionHub(ttl=60, clock=clock)
    hub.deliver(event())
    clock.now += 61
    assert hub.stats().stored_events == 0
    with pytest.raises(TimeoutError):
        await hub.wait("req-1", timeout=0.01)


async def test_duplicate_key_forgotten_after_ttl() -> None:
    """A delivery key is remembered for the TTL, then forgotten."""
    clock = FakeClock()
    hub = CompletionHub(ttl=60, clock=clock)
    hub.deliver(event())
    clock.now += 30
    assert hub.deliver(event()) is False
    clock.now += 31
    assert hub.deliver(event()) is True


async def test_size_bound_evicts_oldest_first() -> None:
    """Past max_events, the oldest early event is evicted first."""
    hub = CompletionHub(max_events=2)
    for i in range(3):
        hub.deliver(event(f"r{i}", webhook_id=f"w{i}"))
    assert hub.stats().stored_events == 2
    with pytest.raises(TimeoutError):
        await hub.wait("r0", timeout=0.01)
    assert (await hub.wait("r1")).secure_request_id == "r1"
    assert (await hub.wait("r2")).secure_request_id == "r2"


async def test_seen_keys_bounded() -> None:
    """The dedupe memory is bounded by max_seen, oldest forgotten first."""
    hub = CompletionHub(max_seen=2)
    for i in range(3):
        hub.deliver(event(f"r{i}", webhook_id=f"w{i}"))
    assert hub.stats().remembered_keys == 2
    assert hub.deliver(event("r0", webhook_id="w0")) is True
    assert hub.deliver(event("r2", webhook_id="w2")) is False


def test_hub_constructed_outside_a_loop() -> None:
    """A hub can be built and fed with no running event loop."""
    hub = CompletionHub()
    assert hub.deliver(event()) is True


def test_memory_backend_is_a_completion_backend() -> None:
    """The default backend satisfies the CompletionBackend protocol and can be passed in."""
    backend = MemoryBackend(ttl=10)
    assert isinstance(backend, CompletionBackend)
    assert CompletionHub(backend=backend).backend is backend


def test_bad_backend_settings_rejected() -> None:
    """A non-positive TTL is rejected at construction."""
    with pytest.raises(ValueError, match="ttl"):
        CompletionHub(ttl=0)


def test_hub_serves_successive_event_loops() -> None:
    """One hub, built outside any loop, works in one asyncio.run after another."""
    hub = CompletionHub()

    async def round_trip(request_id: str) -> CompletionEvent:
        task = asyncio.create_task(hub.wait(request_id, timeout=1))
        await asyncio.sleep(0)
        hub.deliver(event(request_id, webhook_id=request_id))
        return await task

    assert asyncio.run(round_trip("a")).secure_request_id == "a"
    assert asyncio.run(round_trip("b")).secure_request_id == "b"
    assert empty(hub)
