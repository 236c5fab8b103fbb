"""A CompletionBackend that links several hubs in one process, as a shared store (Redis) would.

Every LinkedBackend on one :class:`SharedStore` shares its early events and delivery keys (one
MemoryBackend's maps, so the TTL and size rules are the default's) and its subscribers: ``record``
announces a new delivery to every other open backend's hub, and drops the stored copy when a hub
there had waiters (the event is consumed). Each call suspends once, like a network round trip, and a test
can hold any call before or after it touches the store, to open the windows a real network
leaves between a hub and its store.
"""

from __future__ import annotations

import asyncio

from upscale_async.webhooks import CompletionEvent, HubLink, MemoryBackend


class SharedStore:
    """What linked backends share: the store itself and who is subscribed."""

    def __init__(self, *, ttl: float = 60.0) -> None:
        self.memory = MemoryBackend(ttl=ttl)
        self.subscribers: dict[LinkedBackend, HubLink] = {}


class Hold:
    """Holds one call of a backend at a point until released; says when it got there."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self.released = asyncio.Event()

    async def __call__(self) -> None:
        self.reached.set()
        await self.released.wait()


class LinkedBackend:
    """One hub's view of a :class:`SharedStore` (needs opening, like a network backend)."""

    needs_open = True

    def __init__(self, store: SharedStore, name: str) -> None:
        self.store = store
        self.name = name
        self.link: HubLink | None = None
        self.hold_before: dict[str, Hold] = {}  # call name -> held before touching the store
        self.hold_after: dict[str, Hold] = {}  # call name -> held after touching the store
        self.fail: set[str] = set()  # call names that raise ConnectionError
        self.opened = 0
        self.closed = 0

    def __repr__(self) -> str:
        return f"LinkedBackend({self.name!r})"

    async def _before(self, call: str) -> None:
        await asyncio.sleep(0)  # the request goes out
        if call in self.fail:
            raise ConnectionError(f"{self.name}: store unreachable during {call}")
        hold = self.hold_before.pop(call, None)
        if hold is not None:
            await hold()

    async def _after(self, call: str) -> None:
        hold = self.hold_after.pop(call, None)
        if hold is not None:
            await hold()
        await asyncio.sleep(0)  # the answer comes back

    async def open(self, link: HubLink) -> None:
        """Subscribe: announcements from the other hubs now reach this one."""
        await self._before("open")
        self.link = link
        self.store.subscribers[self] = link
        self.opened += 1

    async def aclose(self) -> None:
        """Unsubscribe."""
        self.store.subscribers.pop(self, None)
        self.link = None
        self.closed += 1

    async def record(self, event: CompletionEvent, now: float, *, keep: bool) -> bool:
        """Set-if-absent on the shared keys; when new, keep (if asked) and announce, at once."""
        await self._before("record")
        new = await self.store.memory.record(event, now, keep=keep)
        if new:
            for backend, link in list(self.store.subscribers.items()):
                if backend is not self and link.announce(event):
                    await self.store.memory.take(event.secure_request_id, link.clock())
        await self._after("record")
        return new

    async def keep(self, event: CompletionEvent, now: float) -> None:
        """Store an early event in the shared map."""
        await self._before("keep")
        await self.store.memory.keep(event, now)
        await self._after("keep")

    async def take(self, secure_request_id: str, now: float) -> CompletionEvent | None:
        """Remove and return the shared early event for this id."""
        await self._before("take")
        event = await self.store.memory.take(secure_request_id, now)
        await self._after("take")
        return event

    async def counts(self, now: float) -> tuple[int, int]:
        """The shared counts."""
        await self._before("counts")
        return await self.store.memory.counts(now)

    def drop_subscription(self) -> None:
        """The connection is lost: announcements stop reaching this hub (it stays open)."""
        self.store.subscribers.pop(self, None)

    async def reconnect(self) -> None:
        """Re-subscribe, then check the stored event of every id this hub still waits on."""
        assert self.link is not None
        link = self.link
        self.store.subscribers[self] = link
        for secure_request_id in link.waiting_ids():
            event = await self.take(secure_request_id, link.clock())
            if event is not None and not link.announce(event):
                await self.keep(event, link.clock())  # nobody waits any more: keep it
