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


async def empty(hub: CompletionHub) -> bool:
    stats = await hub.stats()
    return stats.waiters == 0 and stats.waiting_ids == 0 and stats.stored_events == 0


async def test_early_event_resolves_later_waiter_at_once() -> None:
    """An event delivered before anyone waits resolves the next waiter without waiting."""
    hub = CompletionHub()
    assert await hub.deliver(event()) is True
    assert (await hub.stats()).stored_events == 1
    got = await asyncio.wait_for(hub.wait("req-1"), timeout=0.5)
    assert got == event()
    assert await empty(hub)


async def test_waiter_resolved_by_delivery() -> None:
    """A waiter registered first is resolved by the delivery and the hub holds nothing after."""
    hub = CompletionHub()
    task = asyncio.create_task(hub.wait("req-1"))
    await asyncio.sleep(0)
    assert hub.is_waiting("req-1")
    await hub.deliver(event())
    assert await task == event()
    assert await empty(hub)


async def test_three_deliveries_resolve_once() -> None:
    """The same event delivered three times is new once, then a duplicate twice."""
    hub = CompletionHub()
    task = asyncio.create_task(hub.wait("req-1"))
    await asyncio.sleep(0)
    assert [await hub.deliver(event()) for _ in range(3)] == [True, False, False]
    assert await task == event()
    assert await empty(hub)


async def test_duplicate_without_webhook_id_uses_triggered_at() -> None:
    """Without webhook-id, the id plus webhook_triggered_at identifies a delivery."""
    hub = CompletionHub()
    first = CompletionEvent(secure_request_id="r", status="complete", webhook_triggered_at="t1")
    assert await hub.deliver(first) is True
    assert await hub.deliver(first) is False


async def test_duplicate_after_consumption_not_stored() -> None:
    """A redelivery after the waiter got the event is dropped, not kept as an early event."""
    hub = CompletionHub()
    await hub.deliver(event())
    await hub.wait("req-1")
    assert await hub.deliver(event()) is False
    assert await empty(hub)


async def test_several_waiters_on_same_id_all_resolve() -> None:
    """Every waiter for an id is resolved by its one delivery."""
    hub = CompletionHub()
    tasks = [asyncio.create_task(hub.wait("req-1")) for _ in range(3)]
    await asyncio.sleep(0)
    assert await hub.stats() == HubStats(
        waiters=3, waiting_ids=1, stored_events=0, remembered_keys=0
    )
    await hub.deliver(event())
    assert await asyncio.gather(*tasks) == [event()] * 3
    assert await empty(hub)


async def test_cancelled_waiter_removed() -> None:
    """Cancelling a waiter removes it from the hub."""
    hub = CompletionHub()
    task = asyncio.create_task(hub.wait("req-1"))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await empty(hub)


async def test_cancelling_one_waiter_leaves_the_others() -> None:
    """Cancelling one of two waiters on an id leaves the other one waiting and resolvable."""
    hub = CompletionHub()
    a = asyncio.create_task(hub.wait("req-1"))
    b = asyncio.create_task(hub.wait("req-1"))
    await asyncio.sleep(0)
    a.cancel()
    await asyncio.sleep(0)
    assert (await hub.stats()).waiters == 1
    await hub.deliver(event())
    assert await b == event()
    assert await empty(hub)


async def test_timeout_raises_and_removes_waiter() -> None:
    """wait(timeout=...) raises the builtin TimeoutError and leaves nothing behind."""
    hub = CompletionHub()
    with pytest.raises(TimeoutError):
        await hub.wait("req-1", timeout=0.01)
    assert await empty(hub)


async def test_event_resolved_while_cancelled_is_kept() -> None:
    """An event that resolved a waiter in the same tick it was cancelled is kept, not lost."""
    hub = CompletionHub()
    task = asyncio.create_task(hub.wait("req-1"))
    await asyncio.sleep(0)
    await hub.deliver(event())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await hub.wait("req-1", timeout=0.1) == event()


async def test_unknown_id_delivery_is_acknowledged_and_kept() -> None:
    """An event nobody waits on is accepted (True) and kept for a waiter that may come."""
    hub = CompletionHub()
    assert await hub.deliver(event("nobody")) is True
    assert (await hub.stats()).stored_events == 1


async def test_early_event_expires_after_ttl() -> None:
    """An early event older than the TTL is evicted; a later waiter then times out (polls)."""
    clock = FakeClock()
    hub = CompletionHub(ttl=60, clock=clock)
    await hub.deliver(event())
    clock.now += 61
    assert (await hub.stats()).stored_events == 0
    with pytest.raises(TimeoutError):
        await hub.wait("req-1", timeout=0.01)


async def test_duplicate_key_forgotten_after_ttl() -> None:
    """A delivery key is remembered for the TTL, then forgotten."""
    clock = FakeClock()
    hub = CompletionHub(ttl=60, clock=clock)
    await hub.deliver(event())
    clock.now += 30
    assert await hub.deliver(event()) is False
    clock.now += 31
    assert await hub.deliver(event()) is True


async def test_size_bound_evicts_oldest_first() -> None:
    """Past max_events, the oldest early event is evicted first."""
    hub = CompletionHub(max_events=2)
    for i in range(3):
        await hub.deliver(event(f"r{i}", webhook_id=f"w{i}"))
    assert (await hub.stats()).stored_events == 2
    with pytest.raises(TimeoutError):
        await hub.wait("r0", timeout=0.01)
    assert (await hub.wait("r1")).secure_request_id == "r1"
    assert (await hub.wait("r2")).secure_request_id == "r2"


def big_event(request_id: str, size: int) -> CompletionEvent:
    return CompletionEvent(
        secure_request_id=request_id,
        status="complete",
        webhook_id=f"wh-{request_id}",
        extra={"padding": "x" * size},
    )


async def test_byte_bound_evicts_oldest_first() -> None:
    """Past max_event_bytes, the oldest early events are evicted first, however few they are."""
    hub = CompletionHub(max_events=1_000, max_event_bytes=50_000)
    for i in range(10):
        await hub.deliver(big_event(f"r{i}", 10_000))
    assert isinstance(hub.backend, MemoryBackend)
    assert 40_000 < hub.backend.event_bytes <= 50_000
    assert (await hub.stats()).stored_events == 4
    with pytest.raises(TimeoutError):
        await hub.wait("r5", timeout=0.01)
    assert (await hub.wait("r9")).secure_request_id == "r9"


async def test_event_larger_than_byte_bound_is_not_kept() -> None:
    """An early event larger than max_event_bytes is not kept and evicts nothing."""
    hub = CompletionHub(max_event_bytes=20_000)
    await hub.deliver(big_event("small", 100))
    await hub.deliver(big_event("huge", 30_000))
    assert (await hub.stats()).stored_events == 1
    assert (await hub.wait("small")).secure_request_id == "small"


async def test_byte_count_returns_to_zero_when_events_are_taken() -> None:
    """Taking, replacing and expiring early events gives their bytes back."""
    clock = FakeClock()
    backend = MemoryBackend(ttl=10)
    hub = CompletionHub(backend=backend, clock=clock)
    await hub.deliver(big_event("a", 1_000))
    await hub.deliver(CompletionEvent(secure_request_id="a", status="complete", webhook_id="w2"))
    await hub.deliver(big_event("b", 1_000))
    await hub.wait("a")
    clock.now += 11
    assert (await hub.stats()).stored_events == 0
    assert backend.event_bytes == 0


async def test_seen_keys_bounded() -> None:
    """The dedupe memory is bounded by max_seen, oldest forgotten first."""
    hub = CompletionHub(max_seen=2)
    for i in range(3):
        await hub.deliver(event(f"r{i}", webhook_id=f"w{i}"))
    assert (await hub.stats()).remembered_keys == 2
    assert await hub.deliver(event("r0", webhook_id="w0")) is True
    assert await hub.deliver(event("r2", webhook_id="w2")) is False


def test_hub_constructed_outside_a_loop() -> None:
    """A hub can be built with no running event loop, then fed in one."""
    hub = CompletionHub()
    assert asyncio.run(hub.deliver(event())) is True


def test_memory_backend_is_a_completion_backend() -> None:
    """The default backend satisfies the CompletionBackend protocol and can be passed in."""
    backend = MemoryBackend(ttl=10)
    assert isinstance(backend, CompletionBackend)
    assert CompletionHub(backend=backend).backend is backend


async def test_memory_hub_works_with_and_without_async_with() -> None:
    """The in-memory default needs no opening; entered, it works the same and can be re-entered."""
    hub = CompletionHub()
    await hub.deliver(event("before"))
    async with hub as entered:
        assert entered is hub
        assert "open" in repr(hub)
        assert (await hub.wait("before", timeout=1)).secure_request_id == "before"
    await hub.deliver(event("after", webhook_id="wh-2"))
    async with hub:
        assert (await hub.wait("after", timeout=1)).secure_request_id == "after"
    assert await empty(hub)


async def test_opening_an_open_hub_is_an_error() -> None:
    """open() on a hub already open raises; aclose() is idempotent."""
    async with CompletionHub() as hub:
        with pytest.raises(RuntimeError, match="already open"):
            await hub.open()
    await hub.aclose()


async def test_repr_needs_no_await() -> None:
    """repr shows the local waiters and the backend without awaiting anything."""
    hub = CompletionHub(ttl=5)
    task = asyncio.create_task(hub.wait("req-1"))
    await asyncio.sleep(0)
    assert repr(hub).startswith("CompletionHub(waiters=1, waiting_ids=1, backend=MemoryBackend(")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_memory_backend_subclass_coroutines_are_used() -> None:
    """A MemoryBackend subclass's overridden coroutines are called (no shortcut around them)."""
    calls: list[str] = []

    class Counting(MemoryBackend):
        __slots__ = ()

        async def record(self, event: CompletionEvent, now: float, *, keep: bool) -> bool:
            calls.append(f"record keep={keep}")
            return await super().record(event, now, keep=keep)

        async def keep(self, event: CompletionEvent, now: float) -> None:
            calls.append("keep")
            await super().keep(event, now)

    hub = CompletionHub(backend=Counting())
    assert await hub.deliver(event()) is True
    assert await hub.deliver(event()) is False
    assert await hub.wait("req-1", timeout=1) == event()
    assert calls == ["record keep=True", "record keep=True"]


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
        await hub.deliver(event(request_id, webhook_id=request_id))
        return await task

    assert asyncio.run(round_trip("a")).secure_request_id == "a"
    assert asyncio.run(round_trip("b")).secure_request_id == "b"
    assert asyncio.run(empty(hub))
