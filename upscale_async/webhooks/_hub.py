"""CompletionHub: the ledger between webhook deliveries and the coroutines awaiting them.

Waiters are plain loop futures kept in a dict by ``secure_request_id``; the events that arrive
before anyone waits, and the keys of deliveries already seen, live in a :class:`CompletionBackend`
(in memory by default). asyncio only: aiohttp, which receives the webhooks, runs on asyncio.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import attrs

from .._models import CompletionEvent

__all__ = [
    "DEFAULT_EVENT_TTL",
    "DEFAULT_MAX_EVENTS",
    "DEFAULT_MAX_SEEN",
    "CompletionBackend",
    "CompletionHub",
    "HubStats",
    "MemoryBackend",
]

DEFAULT_EVENT_TTL = 3600.0
"""Seconds an early event, and the key of a delivery already seen, are kept."""
DEFAULT_MAX_EVENTS = 100_000
"""Most early events kept at once; the oldest is evicted first."""
DEFAULT_MAX_SEEN = 100_000
"""Most delivery keys remembered for duplicate detection; the oldest is forgotten first."""


@runtime_checkable
class CompletionBackend(Protocol):
    """Where a hub keeps early events and the keys of deliveries already seen.

    The in-memory :class:`MemoryBackend` is the default. A shared store (for example Redis,
    when webhooks land on one replica and the waiter lives on another) implements the same
    four methods; they are synchronous and must not block the event loop. ``now`` is the
    hub's clock, passed in so a backend needs no clock of its own.
    """

    def remember(self, key: str, now: float) -> bool:
        """Record a delivery key; True when it was not seen before (within the TTL)."""
        ...

    def keep(self, event: CompletionEvent, now: float) -> None:
        """Keep an event that nobody waits for yet (replacing one for the same id)."""
        ...

    def take(self, secure_request_id: str, now: float) -> CompletionEvent | None:
        """Remove and return the kept event for this id, if there is a live one."""
        ...

    def counts(self, now: float) -> tuple[int, int]:
        """``(events kept, delivery keys remembered)``, after dropping expired entries."""
        ...


class MemoryBackend:
    """The default in-process backend: two insertion-ordered maps with a TTL and a size bound.

    Evicting an early event is harmless: its waiter, when it comes, falls back to polling.
    Forgetting a delivery key is harmless too: a late redelivery is then treated as new, and
    completion is confirmed by ``retrieve_messages`` anyway.
    """

    __slots__ = ("_events", "_seen", "max_events", "max_seen", "ttl")

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_EVENT_TTL,
        max_events: int = DEFAULT_MAX_EVENTS,
        max_seen: int = DEFAULT_MAX_SEEN,
    ) -> None:
        if not ttl > 0:
            raise ValueError(f"ttl must be a number of seconds > 0, not {ttl!r}")
        if max_events < 0 or max_seen < 0:
            raise ValueError("max_events and max_seen must be >= 0")
        self.ttl = float(ttl)
        self.max_events = max_events
        self.max_seen = max_seen
        # Values are (expiry, ...); insertion order is expiry order because the TTL is fixed
        # and the clock is monotonic, so expired entries are always at the front.
        self._events: OrderedDict[str, tuple[float, CompletionEvent]] = OrderedDict()
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __repr__(self) -> str:
        return (
            f"MemoryBackend(ttl={self.ttl:g}, max_events={self.max_events}, "
            f"max_seen={self.max_seen}, events={len(self._events)}, seen={len(self._seen)})"
        )

    def _expire(self, now: float) -> None:
        events, seen = self._events, self._seen
        while events and next(iter(events.values()))[0] <= now:
            events.popitem(last=False)
        while seen and next(iter(seen.values())) <= now:
            seen.popitem(last=False)

    def remember(self, key: str, now: float) -> bool:
        self._expire(now)
        if key in self._seen:
            return False
        if self.max_seen:
            self._seen[key] = now + self.ttl
            while len(self._seen) > self.max_seen:
                self._seen.popitem(last=False)
        return True

    def keep(self, event: CompletionEvent, now: float) -> None:
        self._expire(now)
        if not self.max_events:
            return
        self._events.pop(event.secure_request_id, None)
        self._events[event.secure_request_id] = (now + self.ttl, event)
        while len(self._events) > self.max_events:
            self._events.popitem(last=False)

    def take(self, secure_request_id: str, now: float) -> CompletionEvent | None:
        self._expire(now)
        entry = self._events.pop(secure_request_id, None)
        return None if entry is None else entry[1]

    def counts(self, now: float) -> tuple[int, int]:
        self._expire(now)
        return len(self._events), len(self._seen)


@attrs.frozen
class HubStats:
    """What a hub holds: waiter futures, ids waited on, early events, delivery keys."""

    waiters: int
    waiting_ids: int
    stored_events: int
    remembered_keys: int


class CompletionHub:
    """Matches completion webhooks to the coroutines awaiting them.

    - An event that arrives before anyone waits is kept (TTL and size bound, oldest evicted
      first) and resolves the next :meth:`wait` for its id at once. An evicted event only
      means that waiter falls back to polling.
    - A duplicate delivery (same ``event.dedupe_key``: the ``webhook-id``, or the id with
      ``webhook_triggered_at``) is dropped.
    - Every waiter registered when an event is delivered is resolved, once; the event is then
      consumed (not kept). A cancelled or timed-out waiter leaves nothing behind.

    Safe to construct outside a running loop; each waiter binds to the loop it runs on.

    Args:
        backend: where early events and delivery keys live (default: a :class:`MemoryBackend`
            built from ``ttl``, ``max_events`` and ``max_seen``).
        clock: a monotonic clock in seconds (injectable for tests).

    Example::

        hub = CompletionHub()
        async with WebhookReceiver(hub, verifier=StandardWebhooksVerifier(secret)):
            event = await hub.wait(accepted.secure_request_id, timeout=600)
    """

    __slots__ = ("_backend", "_clock", "_waiters")

    def __init__(
        self,
        *,
        backend: CompletionBackend | None = None,
        ttl: float = DEFAULT_EVENT_TTL,
        max_events: int = DEFAULT_MAX_EVENTS,
        max_seen: int = DEFAULT_MAX_SEEN,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._backend: CompletionBackend = (
            backend
            if backend is not None
            else MemoryBackend(ttl=ttl, max_events=max_events, max_seen=max_seen)
        )
        self._clock = clock
        self._waiters: dict[str, list[asyncio.Future[CompletionEvent]]] = {}

    def __repr__(self) -> str:
        s = self.stats()
        return (
            f"CompletionHub(waiters={s.waiters}, stored_events={s.stored_events}, "
            f"remembered_keys={s.remembered_keys})"
        )

    @property
    def backend(self) -> CompletionBackend:
        return self._backend

    def stats(self) -> HubStats:
        """Counts of what the hub holds now."""
        stored, seen = self._backend.counts(self._clock())
        return HubStats(
            waiters=sum(len(w) for w in self._waiters.values()),
            waiting_ids=len(self._waiters),
            stored_events=stored,
            remembered_keys=seen,
        )

    def is_waiting(self, secure_request_id: str) -> bool:
        """True when at least one coroutine is waiting for this id."""
        return secure_request_id in self._waiters

    def deliver(self, event: CompletionEvent) -> bool:
        """Hand an event to the hub; True when it was new, False for a duplicate delivery.

        Resolves every waiter for ``event.secure_request_id``, or keeps the event for the
        next one when nobody waits. Call it from the hub's event loop thread.
        """
        now = self._clock()
        if not self._backend.remember(event.dedupe_key, now):
            return False
        resolved = False
        for future in self._waiters.pop(event.secure_request_id, ()):
            if not future.done():
                future.set_result(event)
                resolved = True
        if not resolved:
            self._backend.keep(event, now)
        return True

    async def wait(self, secure_request_id: str, timeout: float | None = None) -> CompletionEvent:
        """Wait for the completion event of ``secure_request_id``.

        Returns at once when the event arrived earlier. Raises the builtin ``TimeoutError``
        after ``timeout`` seconds (None: no limit). On timeout or cancellation the waiter is
        removed.
        """
        event = self._backend.take(secure_request_id, self._clock())
        if event is not None:
            return event
        future: asyncio.Future[CompletionEvent] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.get(secure_request_id)
        if waiters is None:
            self._waiters[secure_request_id] = [future]
        else:
            waiters.append(future)
        try:
            if timeout is None:
                return await future
            async with asyncio.timeout(timeout):
                return await future
        except BaseException:
            self._discard(secure_request_id, future)
            raise

    def _discard(self, secure_request_id: str, future: asyncio.Future[CompletionEvent]) -> None:
        waiters = self._waiters.get(secure_request_id)
        if waiters is not None and future in waiters:
            waiters.remove(future)
            if not waiters:
                del self._waiters[secure_request_id]
        if future.done() and not future.cancelled():
            # Resolved in the same tick as our cancellation or timeout: keep the event for
            # the next waiter rather than lose it.
            self._backend.keep(future.result(), self._clock())
        else:
            future.cancel()
