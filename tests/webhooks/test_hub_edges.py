"""CompletionHub and MemoryBackend edges: open/close states, messages, TTL boundary, logging."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from upscale_async.webhooks import CompletionEvent, CompletionHub, HubLink, MemoryBackend


def event(request_id: str = "req-1", webhook_id: str | None = "wh-1") -> CompletionEvent:
    return CompletionEvent(secure_request_id=request_id, status="complete", webhook_id=webhook_id)


async def remember(backend: MemoryBackend, key: str, now: float) -> bool:
    """Record a delivery whose key is ``key`` (and keep nothing): True when the key was new."""
    return await backend.record(event("req-key", key), now, keep=False)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class NeedsOpening(MemoryBackend):
    """A MemoryBackend that, like a network store, must be opened before use."""

    __slots__ = ()
    needs_open = True

    async def open(self, link: HubLink) -> None:
        pass


class FailingKeep(MemoryBackend):
    """A MemoryBackend whose ``keep`` fails, like a store that went away."""

    __slots__ = ()

    async def keep(self, event: CompletionEvent, now: float) -> None:
        raise ConnectionError("store down")


async def test_the_repr_says_when_the_hub_is_open() -> None:
    """The repr ends with ", open" while the hub is open, and not otherwise."""
    hub = CompletionHub()
    assert not repr(hub).endswith(", open)")
    async with hub:
        assert repr(hub).endswith(", open)")
    assert not repr(hub).endswith(", open)")


async def test_opening_twice_says_so() -> None:
    """Opening an open hub raises RuntimeError("CompletionHub is already open")."""
    async with CompletionHub() as hub:
        with pytest.raises(RuntimeError, match=r"^CompletionHub is already open$"):
            await hub.open()


async def test_an_unopened_hub_says_how_to_open_it() -> None:
    """A hub whose backend needs opening refuses wait and deliver, saying how to open it."""
    hub = CompletionHub(backend=NeedsOpening())
    expected = (
        "CompletionHub is not open and its backend NeedsOpening needs opening: use "
        "'async with CompletionHub(backend=...) as hub:' (or 'await hub.open()' at startup and "
        "'await hub.aclose()' at shutdown)"
    )
    with pytest.raises(RuntimeError) as info:
        await hub.wait("req-1", timeout=1)
    assert str(info.value) == expected
    with pytest.raises(RuntimeError) as info:
        await hub.deliver(event())
    assert str(info.value) == expected


async def test_a_backend_needing_opening_works_only_while_open() -> None:
    """With a backend that needs opening, the hub works once opened and refuses once closed."""
    hub = CompletionHub(backend=NeedsOpening())
    async with hub:
        assert await hub.deliver(event()) is True
        assert await hub.wait("req-1", timeout=1) == event()
    with pytest.raises(RuntimeError, match="is not open"):
        await hub.deliver(event("req-2", "wh-2"))


async def test_a_memory_hub_still_waits_after_it_is_closed() -> None:
    """Closing a hub with the in-memory backend leaves it usable without reopening."""
    hub = CompletionHub()
    async with hub:
        pass
    assert await hub.deliver(event()) is True
    assert await hub.wait("req-1", timeout=1) == event()


async def test_a_backend_subclass_tells_different_deliveries_apart() -> None:
    """Through a MemoryBackend subclass, deliveries with different keys are each new."""

    class Sub(MemoryBackend):
        __slots__ = ()

    hub = CompletionHub(backend=Sub())
    assert await hub.deliver(event("req-1", "wh-1")) is True
    assert await hub.deliver(event("req-2", "wh-2")) is True
    assert await hub.deliver(event("req-1", "wh-1")) is False


async def test_a_store_error_while_rescuing_is_logged_with_its_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An event rescued after its waiter left, that the store cannot keep, is logged with the error."""
    hub = CompletionHub(backend=FailingKeep())
    waiter = asyncio.create_task(hub.wait("req-1"))
    await asyncio.sleep(0.01)
    await hub.deliver(event())  # resolves the waiter...
    waiter.cancel()  # ...in the tick it is cancelled
    with caplog.at_level(logging.WARNING, logger="upscale_async.webhooks"):
        with pytest.raises(asyncio.CancelledError):
            await waiter
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.args == ("req-1",)
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ConnectionError)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"ttl": 0}, "ttl must be a number of seconds > 0, not 0", id="ttl-zero"),
        pytest.param(
            {"max_events": -1},
            "max_events, max_seen and max_event_bytes must be >= 0",
            id="max-events",
        ),
        pytest.param(
            {"max_seen": -1}, "max_events, max_seen and max_event_bytes must be >= 0", id="seen"
        ),
        pytest.param(
            {"max_event_bytes": -1},
            "max_events, max_seen and max_event_bytes must be >= 0",
            id="bytes",
        ),
    ],
)
def test_bad_memory_backend_settings(kwargs: dict[str, float], message: str) -> None:
    """Each bad MemoryBackend setting is refused with its message."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        MemoryBackend(**kwargs)  # type: ignore[arg-type]


async def test_zero_bounds_keep_nothing() -> None:
    """max_events=0 keeps no early event and max_seen=0 remembers no delivery key."""
    backend = MemoryBackend(max_events=0, max_seen=0, max_event_bytes=0)
    assert await remember(backend, "k", 0.0) is True
    assert await remember(backend, "k", 0.0) is True
    await backend.keep(event(), 0.0)
    assert await backend.take("req-1", 0.0) is None
    assert await backend.counts(0.0) == (0, 0)


async def test_entries_expire_exactly_at_their_ttl() -> None:
    """An early event and a delivery key are gone exactly ttl seconds after they were stored."""
    backend = MemoryBackend(ttl=10)
    await backend.keep(event(), 100.0)
    assert await remember(backend, "k", 100.0) is True
    assert await backend.counts(109.999) == (1, 1)
    assert await remember(backend, "k", 109.999) is False
    assert await backend.counts(110.0) == (0, 0)
    assert await backend.take("req-1", 110.0) is None
    assert await remember(backend, "k", 110.0) is True


async def test_keeping_an_id_again_replaces_and_refreshes_it() -> None:
    """Keeping a second event for the same id replaces the first and counts its bytes once."""
    backend = MemoryBackend(ttl=10)
    await backend.keep(event(webhook_id="a"), 0.0)
    once = backend.event_bytes
    await backend.keep(event(webhook_id="b"), 5.0)
    assert backend.event_bytes == once
    assert await backend.counts(12.0) == (1, 0)  # refreshed at 5.0: lives until 15.0
    taken = await backend.take("req-1", 12.0)
    assert taken is not None
    assert taken.webhook_id == "b"
    assert backend.event_bytes == 0


async def test_an_event_exactly_at_the_byte_bound_is_kept() -> None:
    """An event whose estimated size equals max_event_bytes is kept; one byte less is not."""
    probe = MemoryBackend()
    await probe.keep(event(), 0.0)
    size = probe.event_bytes
    exact = MemoryBackend(max_event_bytes=size)
    await exact.keep(event(), 0.0)
    assert await exact.counts(0.0) == (1, 0)
    short = MemoryBackend(max_event_bytes=size - 1)
    await short.keep(event(), 0.0)
    assert await short.counts(0.0) == (0, 0)


async def test_an_event_with_extra_fields_weighs_more() -> None:
    """The byte estimate of an early event grows with its extra fields and optional texts."""
    plain, rich = MemoryBackend(), MemoryBackend()
    await plain.keep(event(), 0.0)
    await rich.keep(
        CompletionEvent(
            secure_request_id="req-1",
            status="complete",
            webhook_id="wh-1",
            completed_at="2024-01-01T00:00:00Z",
            extra={"note": "x" * 100},
        ),
        0.0,
    )
    assert rich.event_bytes >= plain.event_bytes + 100 + len("2024-01-01T00:00:00Z")


def test_memory_backend_repr() -> None:
    """The MemoryBackend repr shows its bounds and what it holds."""
    assert repr(MemoryBackend(ttl=5, max_events=3, max_seen=4, max_event_bytes=1000)) == (
        "MemoryBackend(ttl=5, max_events=3, max_seen=4, max_event_bytes=1000, events=0, "
        "event_bytes=0, seen=0)"
    )


async def test_stats_count_waiters_and_what_the_backend_holds() -> None:
    """stats() counts waiter futures, ids waited on, early events and delivery keys."""
    clock = FakeClock()
    hub = CompletionHub(clock=clock)
    await hub.deliver(event("early", "wh-early"))
    tasks = [asyncio.create_task(hub.wait("req-1")) for _ in range(2)]
    tasks.append(asyncio.create_task(hub.wait("req-2")))
    await asyncio.sleep(0.01)
    stats = await hub.stats()
    assert (stats.waiters, stats.waiting_ids, stats.stored_events, stats.remembered_keys) == (
        3,
        2,
        1,
        1,
    )
    assert hub.is_waiting("req-1")
    assert not hub.is_waiting("early")
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert not hub.is_waiting("req-1")
