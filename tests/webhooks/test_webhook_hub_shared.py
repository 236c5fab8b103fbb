"""The async backend seam: two hubs linked by one store, opening, and the windows of a network."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest

from upscale_async.webhooks import (
    CompletionBackend,
    CompletionEvent,
    CompletionHub,
    StandardWebhooksVerifier,
    WebhookReceiver,
)

from .linked_backend import Hold, LinkedBackend, SharedStore
from .webhook_support import SECRET, event_body, sign


def event(request_id: str = "req-1", webhook_id: str | None = "wh-1") -> CompletionEvent:
    return CompletionEvent(secure_request_id=request_id, status="complete", webhook_id=webhook_id)


Pair = tuple[CompletionHub, CompletionHub, LinkedBackend, LinkedBackend]


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    store = SharedStore()
    a, b = LinkedBackend(store, "a"), LinkedBackend(store, "b")
    async with CompletionHub(backend=a) as hub_a, CompletionHub(backend=b) as hub_b:
        yield hub_a, hub_b, a, b


async def empty(*hubs: CompletionHub) -> bool:
    for hub in hubs:
        stats = await hub.stats()
        if stats.waiters or stats.waiting_ids or stats.stored_events:
            return False
    return True


async def test_linked_backend_is_a_completion_backend() -> None:
    """The test backend satisfies the CompletionBackend protocol."""
    assert isinstance(LinkedBackend(SharedStore(), "x"), CompletionBackend)


async def test_delivery_to_one_hub_wakes_a_waiter_on_the_other(pair: Pair) -> None:
    """A delivery received by hub A resolves the waiter on hub B, and the event is consumed."""
    hub_a, hub_b, _, _ = pair
    waiter = asyncio.create_task(hub_b.wait("req-1", timeout=2))
    await asyncio.sleep(0.01)
    assert hub_b.is_waiting("req-1")
    assert await hub_a.deliver(event()) is True
    assert await waiter == event()
    assert await empty(hub_a, hub_b)


async def test_duplicate_on_the_other_hub_is_dropped(pair: Pair) -> None:
    """A redelivery to hub B of what hub A received is a duplicate, and resolves nothing."""
    hub_a, hub_b, _, _ = pair
    assert await hub_a.deliver(event()) is True
    assert await hub_b.deliver(event()) is False
    assert (await hub_b.stats()).stored_events == 1  # the one copy, kept by A


async def test_early_event_on_one_hub_found_by_a_later_waiter_on_the_other(pair: Pair) -> None:
    """An event hub A received before anyone waited resolves a later waiter on hub B at once."""
    hub_a, hub_b, _, _ = pair
    await hub_a.deliver(event())
    assert await hub_b.wait("req-1", timeout=1) == event()
    assert await empty(hub_a, hub_b)


async def test_waiters_on_both_hubs_all_resolve(pair: Pair) -> None:
    """Waiters for one id on both hubs are all resolved by one delivery."""
    hub_a, hub_b, _, _ = pair
    waiters = [asyncio.create_task(h.wait("req-1", timeout=2)) for h in (hub_a, hub_b, hub_b)]
    await asyncio.sleep(0.01)
    await hub_a.deliver(event())
    assert await asyncio.gather(*waiters) == [event()] * 3
    assert await empty(hub_a, hub_b)


async def test_one_stored_event_resolves_every_local_waiter(pair: Pair) -> None:
    """Two waiters registered together on B both get the stored event that one of them took."""
    hub_a, hub_b, _, _ = pair
    await hub_a.deliver(event())
    waiters = [asyncio.create_task(hub_b.wait("req-1", timeout=1)) for _ in range(2)]
    assert await asyncio.gather(*waiters) == [event()] * 2
    assert await empty(hub_a, hub_b)


async def test_announcement_during_take_is_not_lost(pair: Pair) -> None:
    """A delivery on A while B's waiter is between its store lookup and its answer wakes it."""
    hub_a, hub_b, _, b = pair
    hold = b.hold_after["take"] = Hold()  # B's take has looked (nothing yet) and is in flight
    waiter = asyncio.create_task(hub_b.wait("req-1", timeout=2))
    await hold.reached.wait()
    await hub_a.deliver(event())
    hold.released.set()
    assert await waiter == event()
    assert await empty(hub_a, hub_b)


async def test_waiter_registered_while_keep_is_in_flight_is_resolved(pair: Pair) -> None:
    """A waiter that looks while the hub is still storing the event is resolved after the store."""
    hub_a, hub_b, a, _ = pair
    hold = a.hold_before["record"] = Hold()  # A has no waiter yet; its record has not landed
    delivery = asyncio.create_task(hub_a.deliver(event()))
    await hold.reached.wait()
    waiter = asyncio.create_task(hub_a.wait("req-1", timeout=2))
    for _ in range(10):  # the waiter registers and its take finds nothing
        await asyncio.sleep(0)
    assert hub_a.is_waiting("req-1")
    hold.released.set()
    assert await delivery is True
    assert await waiter == event()
    assert await empty(hub_a, hub_b)


async def test_event_is_kept_when_the_waiters_leave_while_record_is_in_flight(
    pair: Pair,
) -> None:
    """A waiter here when the delivery came (so the event was not kept) but gone when ``record``
    answered (its timeout): the event is kept after all, for the next waiter on any hub."""
    hub_a, hub_b, a, _ = pair
    waiter = asyncio.create_task(hub_a.wait("req-1", timeout=2))
    await asyncio.sleep(0.01)
    hold = a.hold_after["record"] = Hold()  # recorded, keep=False: a waiter was here
    delivery = asyncio.create_task(hub_a.deliver(event()))
    await hold.reached.wait()
    waiter.cancel()  # it leaves before the answer
    with pytest.raises(asyncio.CancelledError):
        await waiter
    hold.released.set()
    assert await delivery is True
    assert await hub_b.wait("req-1", timeout=1) == event()
    assert await empty(hub_a, hub_b)


async def test_reconnect_catches_up_on_missed_announcements(pair: Pair) -> None:
    """After a lost subscription, re-subscribing and checking the waited ids wakes the waiter."""
    hub_a, hub_b, _, b = pair
    waiter = asyncio.create_task(hub_b.wait("req-1", timeout=2))
    await asyncio.sleep(0.01)
    b.drop_subscription()
    await hub_a.deliver(event())  # nobody hears it: kept in the store
    await asyncio.sleep(0.01)
    assert not waiter.done()
    await b.reconnect()
    assert await waiter == event()
    assert await empty(hub_a, hub_b)


async def test_closed_hub_hears_nothing_and_the_event_is_kept(pair: Pair) -> None:
    """Closing a hub unsubscribes its backend; the other hub's deliveries are kept instead."""
    hub_a, hub_b, _, b = pair
    await hub_b.aclose()
    assert b.closed == 1
    await hub_a.deliver(event())
    assert (await hub_a.stats()).stored_events == 1


async def test_backend_needing_opening_refuses_an_unopened_hub() -> None:
    """wait and deliver on a hub whose backend needs opening raise, naming 'async with'."""
    hub = CompletionHub(backend=LinkedBackend(SharedStore(), "x"))
    with pytest.raises(RuntimeError, match=r"needs opening: use 'async with CompletionHub"):
        await hub.deliver(event())
    with pytest.raises(RuntimeError, match="LinkedBackend needs opening"):
        await hub.wait("req-1", timeout=1)
    assert not hub.is_waiting("req-1")
    async with hub:
        assert await hub.deliver(event()) is True
    with pytest.raises(RuntimeError, match="not open"):
        await hub.wait("req-1", timeout=1)


async def test_entering_opens_and_exiting_closes_the_backend() -> None:
    """async with opens the backend once with the hub's link and closes it once."""
    backend = LinkedBackend(SharedStore(), "x")
    async with CompletionHub(backend=backend) as hub:
        assert (backend.opened, backend.closed) == (1, 0)
        assert backend.link is not None
        assert backend.link.waiting_ids() == ()
        waiter = asyncio.create_task(hub.wait("req-1", timeout=1))
        await asyncio.sleep(0.01)
        assert backend.link.waiting_ids() == ("req-1",)
        await hub.deliver(event())
        await waiter
    assert (backend.opened, backend.closed) == (1, 1)


async def test_failed_open_leaves_the_hub_closed() -> None:
    """A backend that cannot connect makes entering fail, and the hub stays unusable."""
    backend = LinkedBackend(SharedStore(), "x")
    backend.fail.add("open")
    hub = CompletionHub(backend=backend)
    with pytest.raises(ConnectionError):
        async with hub:
            pass
    with pytest.raises(RuntimeError, match="not open"):
        await hub.deliver(event())


async def test_cancelled_waiter_on_a_linked_hub_leaves_nothing(pair: Pair) -> None:
    """A waiter cancelled while its take is in flight leaves no future and no event behind."""
    hub_a, hub_b, _, b = pair
    hold = b.hold_before["take"] = Hold()
    waiter = asyncio.create_task(hub_b.wait("req-1"))
    await hold.reached.wait()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert await empty(hub_a, hub_b)


async def test_timeout_covers_the_store_lookup(pair: Pair) -> None:
    """wait(timeout=...) also bounds a store call that hangs, and cleans up."""
    _, hub_b, _, b = pair
    b.hold_before["take"] = Hold()  # never released
    with pytest.raises(TimeoutError):
        await hub_b.wait("req-1", timeout=0.05)
    assert not hub_b.is_waiting("req-1")


async def test_store_error_while_rescuing_keeps_the_cancellation(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    """An event resolved in the tick of a cancellation is re-kept; a store error is only logged."""
    _, hub_b, _, b = pair
    waiter = asyncio.create_task(hub_b.wait("req-1"))
    await asyncio.sleep(0.01)
    b.fail.add("keep")
    assert b.link is not None
    assert b.link.announce(event())  # as B's subscription reader would, on A's delivery
    waiter.cancel()  # same tick: the waiter never saw its result
    with caplog.at_level(logging.WARNING, logger="upscale_async.webhooks"):
        with pytest.raises(asyncio.CancelledError):
            await waiter
    assert "could not keep the event of req-1" in caplog.text


async def test_event_resolved_while_cancelled_is_kept_in_the_shared_store(pair: Pair) -> None:
    """The same-tick rescue puts the event back in the shared store, for a waiter on any hub."""
    hub_a, hub_b, _, b = pair
    waiter = asyncio.create_task(hub_b.wait("req-1"))
    await asyncio.sleep(0.01)
    assert b.link is not None
    assert b.link.announce(event())  # as B's subscription reader would, on A's delivery
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert await hub_a.wait("req-1", timeout=1) == event()


async def test_two_receivers_share_one_store() -> None:
    """A webhook POSTed to replica A wakes the waiter of replica B; its redelivery to B is a dup."""
    store = SharedStore()
    verifier = StandardWebhooksVerifier(SECRET)
    async with (
        CompletionHub(backend=LinkedBackend(store, "a")) as hub_a,
        CompletionHub(backend=LinkedBackend(store, "b")) as hub_b,
        WebhookReceiver(hub_a, verifier=verifier) as rx_a,
        WebhookReceiver(hub_b, verifier=verifier) as rx_b,
        aiohttp.ClientSession() as session,
    ):
        waiter = asyncio.create_task(hub_b.wait("req-1", timeout=5))
        body, headers = sign(event_body("req-1"), msg_id="msg_shared")
        answers = []
        for url in (rx_a.url, rx_b.url):
            async with session.post(url, data=body, headers=headers) as response:
                answers.append((response.status, await response.json()))
        assert answers == [(200, {"ok": True}), (200, {"ok": True, "duplicate": True})]
        assert (await waiter).secure_request_id == "req-1"
        assert await empty(hub_a, hub_b)
