"""CompletionHub: the ledger between webhook deliveries and the coroutines awaiting them.

Waiters are plain loop futures kept in a dict by ``secure_request_id``; the events that arrive
before anyone waits, and the keys of deliveries already seen, live in a :class:`CompletionBackend`
(in memory by default). The backend's methods are coroutines, so a shared store (Redis) can
implement them without blocking the loop, and :meth:`CompletionBackend.record` lets it wake
the waiters of every other hub sharing it. asyncio only: aiohttp, which receives the webhooks,
runs on asyncio.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from types import TracebackType
from typing import Protocol, runtime_checkable

import attrs
import orjson

from .._models import CompletionEvent
from ._guard import FloodLog

__all__ = [
    "DEFAULT_EVENT_TTL",
    "DEFAULT_MAX_EVENTS",
    "DEFAULT_MAX_EVENT_BYTES",
    "DEFAULT_MAX_SEEN",
    "CompletionBackend",
    "CompletionHub",
    "HubLink",
    "HubStats",
    "MemoryBackend",
]

logger = logging.getLogger("upscale_async.webhooks")

DEFAULT_EVENT_TTL = 3600.0
"""Seconds an early event, and the key of a delivery already seen, are kept."""
DEFAULT_MAX_EVENTS = 100_000
"""Most early events kept at once; the oldest is evicted first."""
DEFAULT_MAX_EVENT_BYTES = 64 * 1024 * 1024
"""Most bytes of early events kept at once (an estimate: each event's fields and ``extra``
as JSON, plus a fixed overhead); the oldest is evicted first."""
DEFAULT_MAX_SEEN = 100_000
"""Most delivery keys remembered for duplicate detection; the oldest is forgotten first."""

_EVENT_OVERHEAD = 512  # the event object, its entry in the map, and the key, roughly


def _event_size(event: CompletionEvent) -> int:
    """An estimate of the bytes an early event holds: what its body carried, plus overhead."""
    size = _EVENT_OVERHEAD + len(event.secure_request_id) + len(event.status)
    for text in (event.completed_at, event.webhook_triggered_at, event.webhook_id):
        if text is not None:
            size += len(text)
    if event.extra:
        try:
            size += len(orjson.dumps(event.extra, default=repr))
        except (TypeError, orjson.JSONEncodeError):  # not from a webhook body: a rough guess
            size += len(repr(event.extra))
    return size


@attrs.frozen
class HubLink:
    """What a :class:`CompletionHub` hands its backend in :meth:`CompletionBackend.open`.

    A backend keeps it for as long as it is open and calls it from the hub's event loop
    (for example from the task that reads its subscription); never from another thread.

    Attributes:
        announce: ``announce(event) -> bool`` resolves this hub's waiters for
            ``event.secure_request_id`` with an event that another hub sharing the store
            received (and already recorded: it is not checked for duplicates nor kept).
            Returns True when it resolved at least one waiter; the backend may then drop its
            stored copy of the event, which is consumed.
        waiting_ids: ``waiting_ids()`` is a snapshot of the ids this hub's coroutines wait on.
            After a reconnect, announcements may have been missed: the backend re-subscribes,
            then ``take``\\ s the stored event of each of these ids and announces the ones found
            (keeping again any that ``announce`` returns False for).
        clock: the hub's monotonic clock, for the ``now`` of the backend's own calls.
    """

    announce: Callable[[CompletionEvent], bool]
    waiting_ids: Callable[[], tuple[str, ...]]
    clock: Callable[[], float]


@runtime_checkable
class CompletionBackend(Protocol):
    """Where a hub keeps early events and delivery keys, and how it hears of other hubs.

    The in-memory :class:`MemoryBackend` is the default. A shared store (for example Redis, when
    webhooks land on one replica and the waiter lives on another) implements the same methods;
    they are coroutines, so a network round trip does not block the event loop. ``now`` is the
    hub's clock, passed in so an in-process backend needs no clock of its own (a store with
    its own expiry may ignore it).

    How the hub uses it, for one delivery: one ``record`` call, which remembers the delivery
    key, keeps the event when nobody waits for it on this hub, and announces it to the other
    hubs, atomically (a duplicate changes nothing); then the hub resolves its own waiters. A
    waiter registers its future first, then calls ``take``: so whichever of ``take`` and the
    announcement comes second finds the event, and no wake-up is lost while a call is in
    flight.
    """

    needs_open: bool
    """True when the backend holds a connection or a subscription: a hub using it must be
    opened (``async with hub:``) before ``wait`` and ``deliver``. False for an in-process
    backend that works without opening, like :class:`MemoryBackend`."""

    async def open(self, link: HubLink) -> None:
        """Connect and subscribe; from now on announce other hubs' deliveries through ``link``."""
        ...

    async def aclose(self) -> None:
        """Unsubscribe and disconnect; ``link`` is no longer called. Idempotent."""
        ...

    async def record(self, event: CompletionEvent, now: float, *, keep: bool) -> bool:
        """Record one delivery; True when it is new, False for a duplicate (changes nothing).

        New means ``event.dedupe_key`` was not seen within the TTL: the key is remembered, the
        event is kept when ``keep`` (nobody waits for it on the calling hub; it replaces one
        kept for the same id), and it is announced to every other hub sharing the store
        (through their links; a hub whose waiters it resolved consumes the kept copy). Across
        hubs sharing the store this must be atomic: a crash part-way must not leave the key
        remembered and the event neither kept nor announced (the sender's retry would then be
        dropped as a duplicate). A backend that serves one hub announces nothing.
        """
        ...

    async def keep(self, event: CompletionEvent, now: float) -> None:
        """Keep an event that nobody waits for any more (replacing one for the same id)."""
        ...

    async def take(self, secure_request_id: str, now: float) -> CompletionEvent | None:
        """Remove and return the kept event for this id, if there is a live one."""
        ...

    async def counts(self, now: float) -> tuple[int, int]:
        """``(events kept, delivery keys remembered)``, after dropping expired entries."""
        ...


class MemoryBackend:
    """The default in-process backend: two insertion-ordered maps with a TTL and size bounds.

    Early events are bounded by count (``max_events``) and by bytes (``max_event_bytes``, an
    estimate from each event's body), so a few large bodies cannot hold more memory than
    many small ones; the oldest is evicted first, and an event larger than the whole byte
    bound is not kept.

    It serves one hub, needs no opening, and :meth:`record` announces nothing (no other hub
    shares it). Evicting an early event is harmless: its waiter, when it comes, falls back to
    polling. Forgetting a delivery key is harmless too: a late redelivery is then treated as
    new, and completion is confirmed by ``retrieve_messages`` anyway.
    """

    __slots__ = (
        "_event_bytes",
        "_events",
        "_seen",
        "max_event_bytes",
        "max_events",
        "max_seen",
        "ttl",
    )

    needs_open = False
    """A MemoryBackend works without opening: a hub using it may be used without ``async with``."""

    def __init__(
        self,
        *,
        ttl: float = DEFAULT_EVENT_TTL,
        max_events: int = DEFAULT_MAX_EVENTS,
        max_seen: int = DEFAULT_MAX_SEEN,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
    ) -> None:
        if not ttl > 0:
            raise ValueError(f"ttl must be a number of seconds > 0, not {ttl!r}")
        if max_events < 0 or max_seen < 0 or max_event_bytes < 0:
            raise ValueError("max_events, max_seen and max_event_bytes must be >= 0")
        self.ttl = float(ttl)
        self.max_events = max_events
        self.max_seen = max_seen
        self.max_event_bytes = max_event_bytes
        # Values are (expiry, ...); insertion order is expiry order because the TTL is fixed
        # and the clock is monotonic, so expired entries are always at the front.
        self._events: OrderedDict[str, tuple[float, CompletionEvent, int]] = OrderedDict()
        self._event_bytes = 0
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __repr__(self) -> str:
        return (
            f"MemoryBackend(ttl={self.ttl:g}, max_events={self.max_events}, "
            f"max_seen={self.max_seen}, max_event_bytes={self.max_event_bytes}, "
            f"events={len(self._events)}, event_bytes={self._event_bytes}, "
            f"seen={len(self._seen)})"
        )

    @property
    def event_bytes(self) -> int:
        """The estimated bytes of the early events kept now (expired ones included until the
        next call drops them)."""
        return self._event_bytes

    def _expire(self, now: float) -> None:
        events, seen = self._events, self._seen
        while events and next(iter(events.values()))[0] <= now:
            self._event_bytes -= events.popitem(last=False)[1][2]
        while seen and next(iter(seen.values())) <= now:
            seen.popitem(last=False)

    async def open(self, link: HubLink) -> None:
        """Nothing to connect to; the link is not needed (no other hub shares this store)."""

    async def aclose(self) -> None:
        """Nothing to disconnect; the events and keys kept stay for the next opening."""

    async def record(self, event: CompletionEvent, now: float, *, keep: bool) -> bool:
        """Remember ``event.dedupe_key`` and, when ``keep``, keep the event; True when the key
        was not seen within the TTL (a duplicate changes nothing). Announces nothing: no other
        hub shares an in-process store."""
        if not self._remember(event.dedupe_key, now):
            return False
        if keep:
            self._keep(event, now)
        return True

    async def keep(self, event: CompletionEvent, now: float) -> None:
        """Keep an early event for the TTL, evicting the oldest past ``max_events``."""
        self._keep(event, now)

    # The synchronous bodies, which the hub also calls directly for the default backend.
    def _remember(self, key: str, now: float) -> bool:
        self._expire(now)
        if key in self._seen:
            return False
        if self.max_seen:
            self._seen[key] = now + self.ttl
            while len(self._seen) > self.max_seen:
                self._seen.popitem(last=False)
        return True

    def _keep(self, event: CompletionEvent, now: float) -> None:
        self._expire(now)
        self._store(event, now)

    def _store(self, event: CompletionEvent, now: float) -> None:
        """``_keep`` once expired entries are dropped (``_remember`` has just dropped them)."""
        events = self._events
        old = events.pop(event.secure_request_id, None)
        if old is not None:
            self._event_bytes -= old[2]
        size = _event_size(event)
        if not self.max_events or size > self.max_event_bytes:
            return
        events[event.secure_request_id] = (now + self.ttl, event, size)
        self._event_bytes += size
        while len(events) > self.max_events or self._event_bytes > self.max_event_bytes:
            self._event_bytes -= events.popitem(last=False)[1][2]

    async def take(self, secure_request_id: str, now: float) -> CompletionEvent | None:
        """Remove and return the live event kept for this id, if any."""
        self._expire(now)
        entry = self._events.pop(secure_request_id, None)
        if entry is None:
            return None
        self._event_bytes -= entry[2]
        return entry[1]

    async def counts(self, now: float) -> tuple[int, int]:
        """``(events kept, delivery keys remembered)``, after dropping expired entries."""
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
    """Matches completion webhooks to the coroutines awaiting them (async context manager).

    - An event that arrives before anyone waits is kept (TTL, and bounds on count and on
      bytes, oldest evicted first) and resolves the next :meth:`wait` for its id at once. An
      evicted event only means that waiter falls back to polling.
    - A duplicate delivery (same ``event.dedupe_key``: the ``webhook-id``, or the id with
      ``webhook_triggered_at``) is dropped.
    - Every waiter registered when an event is delivered is resolved, once; the event is then
      consumed (not kept). A cancelled or timed-out waiter leaves nothing behind.
    - With a shared backend, a delivery received by any hub sharing it resolves the waiters
      of every one of them.

    ``async with hub:`` opens the backend (connection, subscription) and closes it on exit.
    The in-memory default needs no opening: a ``CompletionHub()`` works without ``async with``
    too. A backend that needs opening (``needs_open``) makes :meth:`wait` and :meth:`deliver`
    raise ``RuntimeError`` until the hub is entered.

    Safe to construct outside a running loop; each waiter binds to the loop it runs on.

    Args:
        backend: where early events and delivery keys live (default: a :class:`MemoryBackend`
            built from ``ttl``, ``max_events``, ``max_seen`` and ``max_event_bytes``).
        clock: a monotonic clock in seconds (injectable for tests).

    Example::

        async with (
            CompletionHub() as hub,
            WebhookReceiver(hub, verifier=StandardWebhooksVerifier(secret)),
        ):
            event = await hub.wait(accepted.secure_request_id, timeout=600)
    """

    __slots__ = ("_backend", "_clock", "_log", "_memory", "_open", "_ready", "_waiters")

    def __init__(
        self,
        *,
        backend: CompletionBackend | None = None,
        ttl: float = DEFAULT_EVENT_TTL,
        max_events: int = DEFAULT_MAX_EVENTS,
        max_seen: int = DEFAULT_MAX_SEEN,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._backend: CompletionBackend = (
            backend
            if backend is not None
            else MemoryBackend(
                ttl=ttl,
                max_events=max_events,
                max_seen=max_seen,
                max_event_bytes=max_event_bytes,
            )
        )
        # The default backend exactly (not a subclass, whose coroutines may be overridden):
        # deliver then calls its synchronous bodies, which cannot suspend, and skips the
        # coroutine per call (10,000 deliveries cost what they did when the seam was sync).
        self._memory = self._backend if type(self._backend) is MemoryBackend else None
        self._clock = clock
        self._log = FloodLog(logger, 10, 1.0)  # store errors, one per waiter: rate-limited
        self._waiters: dict[str, list[asyncio.Future[CompletionEvent]]] = {}
        self._open = False
        # Whether wait and deliver may run: always for a backend that needs no opening.
        self._ready = not self._backend.needs_open

    def __repr__(self) -> str:
        waiters = sum(len(w) for w in self._waiters.values())
        state = ", open" if self._open else ""
        return (
            f"CompletionHub(waiters={waiters}, waiting_ids={len(self._waiters)}, "
            f"backend={self._backend!r}{state})"
        )

    @property
    def backend(self) -> CompletionBackend:
        """The backend holding early events and delivery keys."""
        return self._backend

    async def open(self) -> None:
        """Open the backend (``async with hub:`` calls this); for frameworks' startup hooks.

        Raises ``RuntimeError`` when the hub is already open. A hub closed by :meth:`aclose`
        may be opened again.
        """
        if self._open:
            raise RuntimeError("CompletionHub is already open")
        await self._backend.open(HubLink(self._resolve, self._waiting_ids, self._clock))
        self._open = True
        self._ready = True

    async def aclose(self) -> None:
        """Close the backend (``async with hub:`` calls this on exit); idempotent.

        Waiters still pending keep waiting until their timeout (then callers fall back to
        polling); with a backend that needs opening, :meth:`wait` and :meth:`deliver` raise
        until the hub is opened again.
        """
        if not self._open:
            return
        self._open = False
        self._ready = not self._backend.needs_open
        await self._backend.aclose()

    async def __aenter__(self) -> CompletionHub:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _not_open(self) -> RuntimeError:
        return RuntimeError(
            f"CompletionHub is not open and its backend {type(self._backend).__name__} needs "
            "opening: use 'async with CompletionHub(backend=...) as hub:' (or 'await hub.open()' "
            "at startup and 'await hub.aclose()' at shutdown)"
        )

    async def stats(self) -> HubStats:
        """Counts of what the hub holds now (the event and key counts come from the backend)."""
        stored, seen = await self._backend.counts(self._clock())
        return HubStats(
            waiters=sum(len(w) for w in self._waiters.values()),
            waiting_ids=len(self._waiters),
            stored_events=stored,
            remembered_keys=seen,
        )

    def is_waiting(self, secure_request_id: str) -> bool:
        """True when at least one coroutine of this hub is waiting for this id."""
        return secure_request_id in self._waiters

    def _waiting_ids(self) -> tuple[str, ...]:
        return tuple(self._waiters)

    def _resolve(self, event: CompletionEvent) -> bool:
        """Resolve (and forget) every local waiter for the event's id; True if there was one.

        Also the hub's ``HubLink.announce``: an event another hub received resolves the
        waiters here the same way.
        """
        waiters = self._waiters.pop(event.secure_request_id, None)
        if waiters is None:
            return False
        resolved = False
        for future in waiters:
            if not future.done():
                future.set_result(event)
                resolved = True
        return resolved

    async def deliver(self, event: CompletionEvent) -> bool:
        """Hand an event to the hub; True when it was new, False for a duplicate delivery.

        Records it with the backend (one call: the delivery key is remembered, the event is
        kept for the next waiter when nobody waits here, and it is announced to the other
        hubs sharing the backend), then resolves every waiter for ``event.secure_request_id``
        here. Call it from the hub's event loop. Raises ``RuntimeError`` when the backend
        needs opening and the hub is not open.

        When a backend call raises (a shared store that cannot be reached), this hub's own
        waiters for the id are resolved all the same, then the error propagates: the receiver
        answers 503, so the sender retries and the retry reaches the other hubs once the
        store is back.
        """
        memory = self._memory
        if memory is not None:  # record's steps, none of which can suspend; nothing to announce
            now = self._clock()
            if not memory._remember(event.dedupe_key, now):
                return False
            if not self._resolve(event):
                memory._store(event, now)  # _remember has dropped what expired by ``now``
            return True
        if not self._ready:
            raise self._not_open()
        backend = self._backend
        now = self._clock()
        request_id = event.secure_request_id
        waiting = request_id in self._waiters
        try:
            new = await backend.record(event, now, keep=not waiting)
        except BaseException:
            # The store cannot be reached (or the call was cancelled): the event is not
            # shared, but this hub's own waiters still wake (retrieve confirms completion).
            # The error goes on, so the receiver answers 503 and the sender retries later.
            self._resolve(event)
            raise
        if not new:
            return False
        if self._resolve(event):
            if not waiting:
                # A waiter that registered while ``record`` was in flight may have looked
                # before the event was stored: it is resolved now; consume the copy just kept.
                await backend.take(request_id, now)
        elif waiting:
            # The waiters left (timeout, cancellation) while ``record`` was in flight, so the
            # event was not kept: keep it for the next waiter.
            await self._keep_rescued(event)
        return True

    async def wait(self, secure_request_id: str, timeout: float | None = None) -> CompletionEvent:
        """Wait for the completion event of ``secure_request_id``.

        Returns at once when the event arrived earlier. Raises the builtin ``TimeoutError``
        after ``timeout`` seconds (None: no limit). On timeout or cancellation the waiter is
        removed. Raises ``RuntimeError`` when the backend needs opening and the hub is not open.

        When the backend cannot look up a kept event (a shared store that cannot be reached),
        the error is logged (at most 10 lines a second) and the wait goes on: a delivery, or an
        announcement once the store is back, still resolves it, and ``timeout`` still applies
        (``await_completion`` then polls).
        """
        if not self._ready:
            raise self._not_open()
        # Register first, then look for a stored event: a delivery (or an announcement from
        # another hub) arriving while ``take`` is in flight then finds this waiter.
        future: asyncio.Future[CompletionEvent] = asyncio.get_running_loop().create_future()
        waiters = self._waiters.get(secure_request_id)
        if waiters is None:
            self._waiters[secure_request_id] = [future]
        else:
            waiters.append(future)
        backend = self._backend
        try:
            # The two branches are the same but for the timeout (no extra coroutine per wait).
            # A store that cannot be reached must not fail the wait: the waiter stays
            # registered (a delivery here, or an announcement once the store is back, still
            # wakes it) and its timeout sends the caller to its fallback poll.
            if timeout is None:
                try:
                    event = await backend.take(secure_request_id, self._clock())
                except Exception as exc:
                    self._store_failed("take", secure_request_id, exc)
                    event = None
                if event is not None:
                    self._resolve(event)  # every local waiter on the id, this one included
                return await future
            async with asyncio.timeout(timeout):
                try:
                    event = await backend.take(secure_request_id, self._clock())
                except Exception as exc:
                    self._store_failed("take", secure_request_id, exc)
                    event = None
                if event is not None:
                    self._resolve(event)
                return await future
        except BaseException:
            rescued = self._discard(secure_request_id, future)
            if rescued is not None:
                await self._keep_rescued(rescued)
            raise

    def _store_failed(self, call: str, secure_request_id: str, exc: Exception) -> None:
        self._log.warning(
            "the completion store failed in %s for %s (%s: %s); the waiter goes on waiting "
            "and falls back to polling at its timeout",
            call,
            secure_request_id,
            type(exc).__name__,
            exc,
        )

    def _discard(
        self, secure_request_id: str, future: asyncio.Future[CompletionEvent]
    ) -> CompletionEvent | None:
        """Forget a waiter; return its event when it was resolved in the same tick."""
        waiters = self._waiters.get(secure_request_id)
        if waiters is not None and future in waiters:
            waiters.remove(future)
            if not waiters:
                del self._waiters[secure_request_id]
        if future.done() and not future.cancelled():
            return future.result()
        future.cancel()
        return None

    async def _keep_rescued(self, event: CompletionEvent) -> None:
        # Resolved in the same tick as our cancellation or timeout: keep the event for the
        # next waiter rather than lose it. A store error must not replace the cancellation.
        try:
            await self._backend.keep(event, self._clock())
        except Exception:
            logger.warning(
                "could not keep the event of %s after its waiter left; a later waiter "
                "will poll for it",
                event.secure_request_id,
                exc_info=True,
            )
