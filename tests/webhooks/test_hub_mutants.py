"""CompletionHub behaviour that mutation testing showed no other test pinned down.

Each test asserts one observable promise of ``webhooks/_hub.py`` (a repr, a log line, what a
failing store does to waiters and deliveries) that a surviving mutant broke.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from upscale_async.webhooks import CompletionEvent, CompletionHub, HubLink, MemoryBackend


def event(request_id: str = "req-1", webhook_id: str | None = "wh-1") -> CompletionEvent:
    return CompletionEvent(secure_request_id=request_id, status="complete", webhook_id=webhook_id)


async def remember(backend: MemoryBackend, key: str, now: float) -> bool:
    """Record a delivery whose key is ``key`` (and keep nothing): True when the key was new."""
    return await backend.record(event("req-key", key), now, keep=False)


class FailingKeep(MemoryBackend):
    """A MemoryBackend whose ``keep`` fails, like a store that went away."""

    __slots__ = ()

    async def keep(self, event: CompletionEvent, now: float) -> None:
        raise ConnectionError("store down")


class FailingTake(MemoryBackend):
    """A MemoryBackend whose ``take`` fails, like a store that cannot be reached."""

    __slots__ = ()

    async def take(self, secure_request_id: str, now: float) -> CompletionEvent | None:
        raise ConnectionError("store down")


class FailingRecord(MemoryBackend):
    """A MemoryBackend whose ``record`` fails, like a store that cannot be reached."""

    __slots__ = ()

    async def record(self, event: CompletionEvent, now: float, *, keep: bool) -> bool:
        raise ConnectionError("store down")


async def test_the_repr_of_a_hub_that_is_not_open_ends_with_its_backend() -> None:
    """A hub that is not open says so by saying nothing after its backend."""
    hub = CompletionHub()
    assert repr(hub) == f"CompletionHub(waiters=0, waiting_ids=0, backend={hub.backend!r})"
    async with hub:
        assert repr(hub) == (
            f"CompletionHub(waiters=0, waiting_ids=0, backend={hub.backend!r}, open)"
        )


async def test_a_store_error_while_rescuing_logs_what_happens_next(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The warning for a rescued event the store cannot keep names the id and the fallback."""
    hub = CompletionHub(backend=FailingKeep())
    waiter = asyncio.create_task(hub.wait("req-1"))
    await asyncio.sleep(0.01)
    await hub.deliver(event())  # resolves the waiter...
    waiter.cancel()  # ...in the tick it is cancelled
    with caplog.at_level(logging.WARNING, logger="upscale_async.webhooks"):
        with pytest.raises(asyncio.CancelledError):
            await waiter
    [record] = caplog.records
    assert record.getMessage() == (
        "could not keep the event of req-1 after its waiter left; a later waiter will poll for it"
    )


@pytest.mark.parametrize("timeout", [None, 5.0])
async def test_a_failed_store_lookup_leaves_the_waiter_waiting(
    caplog: pytest.LogCaptureFixture, timeout: float | None
) -> None:
    """When ``take`` fails the failure is logged and a later delivery still resolves the wait."""
    hub = CompletionHub(backend=FailingTake())
    with caplog.at_level(logging.WARNING, logger="upscale_async.webhooks"):
        waiter = asyncio.create_task(hub.wait("req-1", timeout=timeout))
        await asyncio.sleep(0.01)
        assert not waiter.done()
        assert hub.is_waiting("req-1")
        assert await hub.deliver(event()) is True
        got = await asyncio.wait_for(waiter, 5)
    assert got == event()
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "the completion store failed in take for req-1 (ConnectionError: store down); the "
        "waiter goes on waiting and falls back to polling at its timeout"
    )
    assert not hub.is_waiting("req-1")


async def test_a_failed_store_lookup_still_times_out() -> None:
    """A wait whose lookup failed still ends with TimeoutError at its timeout, leaving nothing."""
    hub = CompletionHub(backend=FailingTake())
    with pytest.raises(TimeoutError):
        await hub.wait("req-1", timeout=0.05)
    assert not hub.is_waiting("req-1")
    assert (await hub.stats()).waiters == 0


async def test_failed_store_lookups_are_logged_at_most_ten_times_a_second(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Twelve waiters whose lookups fail in the same second write ten lines, not twelve."""
    hub = CompletionHub(backend=FailingTake())
    with caplog.at_level(logging.WARNING, logger="upscale_async.webhooks"):
        waiters = [asyncio.create_task(hub.wait(f"req-{i}", timeout=5)) for i in range(12)]
        await asyncio.sleep(0.05)
        for i in range(12):
            await hub.deliver(event(f"req-{i}", f"wh-{i}"))
        await asyncio.wait_for(asyncio.gather(*waiters), 5)
    lines = [r for r in caplog.records if "completion store failed" in r.getMessage()]
    assert len(lines) == 10


async def test_the_store_error_log_opens_again_after_one_second(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The ten-lines window is one second: a failure 1.2 s after a full window is written."""
    hub = CompletionHub(backend=FailingTake())

    async def fail(prefix: str, n: int) -> None:
        waiters = [asyncio.create_task(hub.wait(f"{prefix}{i}", timeout=5)) for i in range(n)]
        await asyncio.sleep(0.02)
        for i in range(n):
            await hub.deliver(event(f"{prefix}{i}", f"wh-{prefix}{i}"))
        await asyncio.wait_for(asyncio.gather(*waiters), 5)

    with caplog.at_level(logging.WARNING, logger="upscale_async.webhooks"):
        await fail("a-", 12)  # ten written, two suppressed
        await asyncio.sleep(1.2)  # past one second: a new window (two seconds would not be)
        await fail("b-", 1)
    lines = [r.getMessage() for r in caplog.records if "completion store failed" in r.getMessage()]
    assert len(lines) == 11
    assert "b-0" in lines[-1]


async def test_a_failed_record_still_wakes_local_waiters_and_raises() -> None:
    """A store that cannot record the delivery raises, after this hub's waiters are resolved."""
    hub = CompletionHub(backend=FailingRecord())
    waiter = asyncio.create_task(hub.wait("req-1", timeout=5))
    await asyncio.sleep(0.01)
    with pytest.raises(ConnectionError, match="store down"):
        await hub.deliver(event())
    assert await asyncio.wait_for(waiter, 5) == event()
    assert not hub.is_waiting("req-1")


async def test_an_early_events_weight_is_its_texts_plus_a_fixed_overhead() -> None:
    """The byte estimate of an event is 512 plus the length of each of its texts."""
    backend = MemoryBackend()
    await backend.keep(event("req-12345", "wh-1"), 0.0)
    assert backend.event_bytes == 512 + len("req-12345") + len("complete") + len("wh-1")


async def test_extra_fields_json_cannot_encode_weigh_their_repr() -> None:
    """Extra fields orjson cannot encode (a non-string key) are weighed by their repr."""
    extra = {1: "x" * 100}
    backend = MemoryBackend()
    await backend.keep(
        CompletionEvent(secure_request_id="req-1", status="complete", extra=extra), 0.0
    )
    assert backend.event_bytes == 512 + len("req-1") + len("complete") + len(repr(extra))


class Capturing(MemoryBackend):
    """A MemoryBackend that keeps the link its hub hands it when opened."""

    __slots__ = ("link",)

    async def open(self, link: HubLink) -> None:
        self.link = link


def test_a_ttl_under_one_second_is_allowed() -> None:
    """Any positive TTL is accepted, fractions of a second included."""
    assert MemoryBackend(ttl=0.5).ttl == 0.5
    assert CompletionHub(ttl=0.25).backend.ttl == 0.25  # type: ignore[attr-defined]


async def test_expiry_drops_only_the_oldest_event() -> None:
    """When the oldest early event expires, a younger one is still there to take."""
    backend = MemoryBackend(ttl=10)
    await backend.keep(event("old", "wh-old"), 0.0)
    await backend.keep(event("young", "wh-young"), 5.0)
    assert await backend.counts(11.0) == (1, 0)
    assert await backend.take("young", 11.0) == event("young", "wh-young")
    assert backend.event_bytes == 0


async def test_expiry_forgets_only_the_oldest_delivery_key() -> None:
    """When the oldest delivery key expires, a younger one is still recognised as a duplicate."""
    backend = MemoryBackend(ttl=10)
    assert await remember(backend, "old", 0.0) is True
    assert await remember(backend, "young", 5.0) is True
    assert await backend.counts(11.0) == (0, 1)
    assert await remember(backend, "young", 11.0) is False
    assert await remember(backend, "old", 11.0) is True


async def test_the_default_backend_is_used_without_its_coroutines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Deliveries to a hub on the default MemoryBackend take the synchronous path (no coroutine
    per delivery); a subclass's coroutines are used (they may be overridden)."""
    called: list[str] = []

    async def record(
        self: MemoryBackend, event: CompletionEvent, now: float, *, keep: bool
    ) -> bool:
        called.append(event.dedupe_key)
        return self._remember(event.dedupe_key, now)

    monkeypatch.setattr(MemoryBackend, "record", record)
    hub = CompletionHub()
    assert await hub.deliver(event("req-1", "wh-1")) is True
    assert await hub.deliver(event("req-1", "wh-1")) is False
    assert called == []
    sub = CompletionHub(backend=Capturing())
    assert await sub.deliver(event("req-1", "wh-1")) is True
    assert called == ["wh-1"]


async def test_announce_says_whether_it_resolved_a_waiter() -> None:
    """HubLink.announce returns False (a bool) unless it resolved a live waiter."""
    backend = Capturing()
    async with CompletionHub(backend=backend) as hub:
        announce = backend.link.announce
        assert announce(event("nobody")) is False
        gone = asyncio.create_task(hub.wait("req-1", timeout=5))
        await asyncio.sleep(0.01)
        assert backend.link.waiting_ids() == ("req-1",)
        gone.cancel()  # its future is cancelled now; the waiter is discarded on the next tick
        assert announce(event("req-1")) is False
        with pytest.raises(asyncio.CancelledError):
            await gone
        live = asyncio.create_task(hub.wait("req-2", timeout=5))
        await asyncio.sleep(0.01)
        assert announce(event("req-2", "wh-2")) is True
        assert await live == event("req-2", "wh-2")


async def test_a_delivery_in_the_tick_its_only_waiter_is_cancelled_is_kept() -> None:
    """An event delivered just after its only waiter was cancelled is kept for the next waiter."""
    hub = CompletionHub()
    gone = asyncio.create_task(hub.wait("req-1", timeout=5))
    await asyncio.sleep(0.01)
    gone.cancel()
    assert await hub.deliver(event()) is True  # the same tick: the cancelled waiter is listed
    with pytest.raises(asyncio.CancelledError):
        await gone
    assert await hub.wait("req-1", timeout=1) == event()


async def test_memory_backend_record_keeps_what_is_new_and_drops_duplicates() -> None:
    """MemoryBackend.record (used by its subclasses): a new key is remembered and the event kept
    when asked, from ``now``; a duplicate is False and changes nothing."""
    backend = MemoryBackend(ttl=10)
    assert await backend.record(event("req-1", "wh-1"), 100.0, keep=True) is True
    assert await backend.record(event("req-1", "wh-1"), 101.0, keep=True) is False
    assert await backend.counts(109.9) == (1, 1)
    assert await backend.counts(110.0) == (0, 0)  # kept and remembered at 100: gone at 110
    assert await backend.record(event("req-2", "wh-2"), 200.0, keep=False) is True
    assert await backend.take("req-2", 200.0) is None
    assert await backend.record(event("req-3", "wh-3"), 200.0, keep=True) is True
    assert await backend.take("req-3", 200.0) == event("req-3", "wh-3")
