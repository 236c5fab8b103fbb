"""RedisBackend against a real Redis: two hubs sharing one namespace, bounds, and outages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest
import redis as redis_sync

from upscale_async import CompletionEvent, ConfigurationError, PollPolicy, UpscaleClient
from upscale_async.emulator import Emulator
from upscale_async.redis._backend import (
    _KEEP,
    DEFAULT_EVENT_TTL,
    DEFAULT_MAX_EVENT_BYTES,
    DEFAULT_MAX_EVENTS,
    RedisBackend,
    _encode,
)
from upscale_async.redis._connect import RedisUnavailableError
from upscale_async.testing import make_campaign, sample_lead
from upscale_async.webhooks import (
    CompletionBackend,
    CompletionHub,
    StandardWebhooksVerifier,
    WebhookReceiver,
)
from upscale_async.webhooks import _hub as hub_module

from ..webhooks.webhook_support import SECRET, event_body, sign
from .conftest import RedisServer, free_port

Pair = tuple[CompletionHub, CompletionHub, RedisBackend, RedisBackend]


def event(
    request_id: str = "req-1", webhook_id: str | None = "wh-1", **extra: Any
) -> CompletionEvent:
    return CompletionEvent(
        secure_request_id=request_id, status="complete", webhook_id=webhook_id, extra=extra
    )


@contextlib.asynccontextmanager
async def hubs(url: str, namespace: str, **options: Any) -> AsyncIterator[Pair]:
    a = RedisBackend(url, namespace=namespace, **options)
    b = RedisBackend(url, namespace=namespace, **options)
    async with CompletionHub(backend=a) as hub_a, CompletionHub(backend=b) as hub_b:
        yield hub_a, hub_b, a, b


@pytest.fixture
async def pair(redis_url: str, redis_namespace: str) -> AsyncIterator[Pair]:
    async with hubs(redis_url, redis_namespace) as pair:
        yield pair


async def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait (bounded) until ``condition()`` holds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


async def waiting(hub: CompletionHub, request_id: str) -> None:
    await until(lambda: hub.is_waiting(request_id))


# -- construction ----------------------------------------------------------------------------


def test_redis_backend_is_a_completion_backend() -> None:
    """RedisBackend satisfies the CompletionBackend protocol and needs opening."""
    backend = RedisBackend("redis://127.0.0.1:6379/0")
    assert isinstance(backend, CompletionBackend)
    assert backend.needs_open is True


def test_defaults_are_the_in_memory_hubs() -> None:
    """The TTL and bounds default to the in-memory backend's."""
    assert DEFAULT_EVENT_TTL == hub_module.DEFAULT_EVENT_TTL
    assert DEFAULT_MAX_EVENTS == hub_module.DEFAULT_MAX_EVENTS
    assert DEFAULT_MAX_EVENT_BYTES == hub_module.DEFAULT_MAX_EVENT_BYTES


def test_repr_names_the_url_without_password_and_the_state() -> None:
    """The repr shows the URL (password hidden), the namespace, the bounds and 'closed'."""
    backend = RedisBackend("redis://:hunter2@10.0.0.1:6380/2", namespace="upscale:prod", ttl=60)
    assert repr(backend) == (
        "RedisBackend('redis://***@10.0.0.1:6380/2', namespace='upscale:prod', ttl=60, "
        "max_events=100000, max_event_bytes=67108864, closed)"
    )


def test_the_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without url=, UPSCALE_REDIS_URL is used; without either, ConfigurationError says so."""
    monkeypatch.setenv("UPSCALE_REDIS_URL", "redis://127.0.0.1:6390/1")
    assert RedisBackend().url == "redis://127.0.0.1:6390/1"
    monkeypatch.delenv("UPSCALE_REDIS_URL")
    with pytest.raises(ConfigurationError, match=r"pass url=\.\.\. or set UPSCALE_REDIS_URL"):
        RedisBackend()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        pytest.param({"ttl": 0}, "ttl must be a number of seconds > 0", id="ttl"),
        pytest.param({"timeout": -1}, "timeout must be a number of seconds > 0", id="timeout"),
        pytest.param({"max_events": -1}, "max_events and max_event_bytes must be >= 0", id="max"),
        pytest.param({"namespace": "a b"}, "namespace must be 1-100 characters", id="namespace"),
    ],
)
def test_bad_arguments_are_refused_at_construction(options: dict[str, Any], message: str) -> None:
    """Each bad argument raises at construction, with a message saying what is allowed."""
    with pytest.raises(ValueError, match=message):
        RedisBackend("redis://127.0.0.1:6379/0", **options)


def test_an_event_round_trips_through_its_encoding() -> None:
    """Every field of an event, extra keys included, survives the JSON stored and published."""
    from upscale_async.redis._backend import _decode

    original = CompletionEvent(
        secure_request_id="req-9",
        status="complete",
        completed_at="2024-02-08T11:30:45Z",
        requested_messages_count=12,
        generated_messages_count=11,
        webhook_triggered_at="2024-02-08T11:30:46Z",
        webhook_id="msg_abc",
        extra={"campaign": {"id": 7}, "note": None},
    )
    assert _decode(_encode(original, "me")) == ("me", original)


# -- opening -------------------------------------------------------------------------------


async def test_unreachable_url_raises_naming_it_with_the_password_hidden() -> None:
    """Entering a hub on an unreachable Redis raises RedisUnavailableError naming the URL."""
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    hub = CompletionHub(backend=RedisBackend(url, timeout=1))
    with pytest.raises(RedisUnavailableError) as caught:
        async with hub:
            pass
    assert "cannot reach Redis at redis://***@127.0.0.1:" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    with pytest.raises(RuntimeError, match="not open"):
        await hub.deliver(event())


async def test_a_given_client_is_used_and_left_open(redis_url: str, redis_namespace: str) -> None:
    """With client=, the backend uses that client and does not close it."""
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    try:
        backend = RedisBackend(client=client, namespace=redis_namespace)
        assert "redis://127.0.0.1:" in repr(backend) or "redis://" in repr(backend)
        async with CompletionHub(backend=backend) as hub:
            assert await hub.deliver(event()) is True
            assert repr(backend).endswith(", open)")
        assert await client.ping() is True
        assert await client.exists(f"{redis_namespace}:completion:seen:wh-1") == 1
    finally:
        await client.aclose()


async def test_a_backend_serves_one_hub_at_a_time(redis_url: str, redis_namespace: str) -> None:
    """Opening a backend twice raises, saying each hub needs its own."""
    backend = RedisBackend(redis_url, namespace=redis_namespace)
    async with CompletionHub(backend=backend):
        with pytest.raises(RuntimeError, match="each hub needs its own RedisBackend"):
            async with CompletionHub(backend=backend):
                pass


# -- sharing between two hubs ------------------------------------------------------------------


async def test_delivery_to_hub_a_wakes_a_waiter_on_hub_b(pair: Pair) -> None:
    """A delivery received by hub A resolves the waiter on hub B; the kept copy is consumed."""
    hub_a, hub_b, _, _ = pair
    waiter = asyncio.create_task(hub_b.wait("req-1", timeout=5))
    await waiting(hub_b, "req-1")
    assert await hub_a.deliver(event()) is True
    assert await waiter == event()
    await until(lambda: not hub_b.is_waiting("req-1"))
    async with asyncio.timeout(5):
        while (await hub_a.stats()).stored_events:
            await asyncio.sleep(0.01)


async def test_waiters_on_both_hubs_all_resolve(pair: Pair) -> None:
    """Waiters for one id on both hubs are all resolved by one delivery to A."""
    hub_a, hub_b, _, _ = pair
    waiters = [asyncio.create_task(h.wait("req-1", timeout=5)) for h in (hub_a, hub_b, hub_b)]
    await waiting(hub_a, "req-1")
    await waiting(hub_b, "req-1")
    await hub_a.deliver(event())
    assert await asyncio.gather(*waiters) == [event()] * 3


async def test_early_event_is_kept_and_taken_by_a_waiter_on_the_other_hub(pair: Pair) -> None:
    """An event A received before anyone waited resolves a later waiter on B at once, once."""
    hub_a, hub_b, _, _ = pair
    await hub_a.deliver(event(campaign="c1"))
    assert (await hub_b.stats()).stored_events == 1
    assert await hub_b.wait("req-1", timeout=1) == event(campaign="c1")
    assert (await hub_a.stats()).stored_events == 0
    with pytest.raises(TimeoutError):
        await hub_a.wait("req-1", timeout=0.1)


async def test_duplicate_on_the_other_hub_is_dropped(pair: Pair) -> None:
    """A redelivery to hub B of what hub A received is a duplicate (one SET NX)."""
    hub_a, hub_b, _, _ = pair
    assert await hub_a.deliver(event()) is True
    assert await hub_b.deliver(event()) is False
    stats = await hub_b.stats()
    assert (stats.stored_events, stats.remembered_keys) == (1, 1)


async def test_concurrent_redeliveries_across_hubs_are_new_exactly_once(pair: Pair) -> None:
    """Twenty copies of one delivery, raced over both hubs, are new exactly once."""
    hub_a, hub_b, _, _ = pair
    results = await asyncio.gather(*(h.deliver(event()) for h in (hub_a, hub_b) * 10))
    assert sorted(results) == [False] * 19 + [True]


async def test_kept_events_expire_after_the_ttl(redis_url: str, redis_namespace: str) -> None:
    """An early event and its delivery key are gone after the TTL (Redis's clock)."""
    async with hubs(redis_url, redis_namespace, ttl=0.3) as (hub_a, hub_b, _, _):
        await hub_a.deliver(event())
        assert (await hub_b.stats()).stored_events == 1
        await asyncio.sleep(0.5)
        assert await hub_b.backend.take("req-1", 0.0) is None
        assert await hub_b.stats() == hub_module.HubStats(0, 0, 0, 0)
        assert await hub_b.deliver(event()) is True  # the key expired: new again


async def test_the_count_bound_evicts_the_oldest(redis_url: str, redis_namespace: str) -> None:
    """With max_events=3, five early events leave the three newest."""
    async with hubs(redis_url, redis_namespace, max_events=3) as (hub_a, hub_b, _, b):
        for i in range(5):
            await hub_a.deliver(event(f"req-{i}", f"wh-{i}"))
            await asyncio.sleep(0.002)  # distinct milliseconds: a strict age order
        assert (await hub_b.stats()).stored_events == 3
        assert await b.take("req-0", 0.0) is None
        assert await b.take("req-1", 0.0) is None
        assert [(await b.take(f"req-{i}", 0.0)) is not None for i in (2, 3, 4)] == [True] * 3


async def test_the_byte_bound_evicts_the_oldest(redis_url: str, redis_namespace: str) -> None:
    """The stored JSON's bytes stay under max_event_bytes; an event larger than it is not kept."""
    size = len(_encode(event("req-0", "wh-0", pad="x" * 400), "0" * 32))
    async with hubs(redis_url, redis_namespace, max_event_bytes=2 * size + 10) as pair:
        hub_a, hub_b, _, b = pair
        for i in range(4):
            await hub_a.deliver(event(f"req-{i}", f"wh-{i}", pad="x" * 400))
            await asyncio.sleep(0.002)
        assert (await hub_b.stats()).stored_events == 2
        assert [(await b.take(f"req-{i}", 0.0)) is not None for i in range(4)] == [
            False,
            False,
            True,
            True,
        ]
        await hub_a.deliver(event("req-big", "wh-big", pad="x" * (3 * size)))
        assert (await hub_b.stats()).stored_events == 0


async def test_namespaces_do_not_share(redis_url: str, redis_namespace: str) -> None:
    """A hub on another namespace neither hears the delivery nor sees it as a duplicate."""
    async with (
        hubs(redis_url, redis_namespace) as (hub_a, _, _, _),
        hubs(redis_url, redis_namespace + "-other") as (hub_c, _, _, _),
    ):
        waiter = asyncio.create_task(hub_c.wait("req-1", timeout=0.3))
        await waiting(hub_c, "req-1")
        await hub_a.deliver(event())
        with pytest.raises(TimeoutError):
            await waiter
        assert await hub_c.deliver(event()) is True
    client = redis_sync.Redis.from_url(redis_url)
    try:
        client.delete(*client.keys(f"{redis_namespace}-other*") or ["none"])
    finally:
        client.close()


async def test_two_receivers_share_one_redis(pair: Pair) -> None:
    """A webhook POSTed to replica A wakes replica B's waiter; its redelivery to B is a dup."""
    hub_a, hub_b, _, _ = pair
    verifier = StandardWebhooksVerifier(SECRET)
    async with (
        WebhookReceiver(hub_a, verifier=verifier) as rx_a,
        WebhookReceiver(hub_b, verifier=verifier) as rx_b,
        aiohttp.ClientSession() as session,
    ):
        waiter = asyncio.create_task(hub_b.wait("req-1", timeout=5))
        await waiting(hub_b, "req-1")
        body, headers = sign(event_body("req-1"), msg_id="msg_shared")
        answers = []
        for url in (rx_a.url, rx_b.url):
            async with session.post(url, data=body, headers=headers) as response:
                answers.append((response.status, await response.json()))
        assert answers == [(200, {"ok": True}), (200, {"ok": True, "duplicate": True})]
        assert (await waiter).secure_request_id == "req-1"


# -- Redis going away and coming back ----------------------------------------------------------


@pytest.fixture
async def owned(
    redis_server_factory: Callable[[], RedisServer],
) -> AsyncIterator[tuple[RedisServer, Pair]]:
    """Two hubs on a test-owned redis-server that the test may stop and start."""
    server = redis_server_factory()
    async with hubs(server.url, "upscale-test:owned", timeout=1) as pair:
        yield server, pair


async def test_a_waiter_falls_back_to_polling_when_redis_is_killed(
    owned: tuple[RedisServer, Pair],
) -> None:
    """Redis killed while a waiter waits on B, the webhook landing on A: B resolves by polling."""
    server, (hub_a, hub_b, a, b) = owned
    async with Emulator(messages_per_second=20, webhook_time_scale=0.001) as emu:
        verifier = StandardWebhooksVerifier(emu.webhook_secret or "")
        async with (
            WebhookReceiver(hub_a, verifier=verifier) as rx_a,
            UpscaleClient(emu.api_key, base_url=emu.base_url) as client,
        ):
            campaign = make_campaign(completion_notification_url=rx_a.url)
            accepted = await client.request_message_generation(
                campaign, [sample_lead(i) for i in range(10)]
            )
            waiter = asyncio.create_task(
                client.await_completion(
                    accepted.secure_request_id,
                    hub=hub_b,
                    poll=PollPolicy(fallback_interval=0.5),
                    timeout=20,
                )
            )
            await waiting(hub_b, accepted.secure_request_id)
            server.stop()
            await until(lambda: not a.available and not b.available)
            (result,) = await waiter
    assert result.is_complete
    assert [d.status for d in emu.state.deliveries][:1] == [503]


async def test_a_webhook_while_redis_is_down_wakes_local_waiters_and_answers_503(
    owned: tuple[RedisServer, Pair], caplog: pytest.LogCaptureFixture
) -> None:
    """While Redis is down, A's own waiter wakes and the webhook is answered 503 (retried)."""
    server, (hub_a, _, a, _) = owned
    async with (
        WebhookReceiver(hub_a, verifier=StandardWebhooksVerifier(SECRET)) as rx_a,
        aiohttp.ClientSession() as session,
    ):
        waiter = asyncio.create_task(hub_a.wait("req-1", timeout=5))
        await waiting(hub_a, "req-1")
        server.stop()
        await until(lambda: not a.available)
        body, headers = sign(event_body("req-1"), msg_id="msg_down")
        with caplog.at_level(logging.WARNING):
            async with session.post(rx_a.url, data=body, headers=headers) as response:
                status, answer = response.status, await response.json()
    assert (status, answer["ok"]) == (503, False)
    assert "retry later" in answer["error"]
    assert (await waiter).secure_request_id == "req-1"
    assert "answered 503, to be retried by its sender" in caplog.text


async def test_restart_resubscribes_and_announces_what_was_kept_meanwhile(
    owned: tuple[RedisServer, Pair],
) -> None:
    """After a restart, B subscribes again and takes the kept event of the id it waits on."""
    server, (hub_a, hub_b, a, b) = owned
    waiter = asyncio.create_task(hub_b.wait("req-1", timeout=15))
    await waiting(hub_b, "req-1")
    server.stop()
    await until(lambda: not b.available)
    await asyncio.sleep(0.3)  # B is between reconnection attempts
    server.start()
    # Kept while B cannot hear it (nothing published), before B's loop runs again: the
    # synchronous client blocks the loop, so B's reconnection cannot come first.
    with redis_sync.Redis.from_url(server.url) as sync:
        keys = [f"upscale-test:owned:completion:{k}" for k in ("events", "order", "bytes")]
        sync.eval(_KEEP, 3, *keys, 60_000, "req-1", _encode(event(), "elsewhere"), 10, 10**6)
    assert not b.available
    assert await waiter == event()
    assert b.reconnects == 1
    await until(lambda: a.available)
    # Announcements flow again both ways.
    again = asyncio.create_task(hub_b.wait("req-2", timeout=5))
    await waiting(hub_b, "req-2")
    await hub_a.deliver(event("req-2", "wh-2"))
    assert await again == event("req-2", "wh-2")


async def test_calls_while_down_fail_fast_and_recover(owned: tuple[RedisServer, Pair]) -> None:
    """While Redis is down each call raises RedisUnavailableError at once; then works again."""
    server, (hub_a, _, a, _) = owned
    server.stop()
    await until(lambda: not a.available)
    async with asyncio.timeout(0.5):
        with pytest.raises(RedisUnavailableError, match="is unreachable") as caught:
            await a.record(event(), 0.0, keep=False)
    assert "the backend reconnects by itself" in str(caught.value)
    assert " for " in str(caught.value)  # how long it has been down
    assert repr(a).endswith(", down)")
    server.start()
    await until(lambda: a.available)
    assert await hub_a.deliver(event()) is True


async def test_an_event_kept_without_an_announcement_is_still_written(pair: Pair) -> None:
    """keep alone (as when a waiter left in the tick it was resolved) stores it for every hub."""
    _, hub_b, a, _ = pair
    await a.keep(event(), 0.0)
    async with asyncio.timeout(5):
        while (await hub_b.stats()).stored_events == 0:
            await asyncio.sleep(0.01)
    assert await hub_b.wait("req-1", timeout=1) == event()


async def test_an_event_recorded_then_taken_on_the_same_hub_is_consumed_there(pair: Pair) -> None:
    """take right after record(keep=True) (a waiter that came while record ran) gets it; nothing
    is left for the other hub."""
    _, hub_b, a, _ = pair
    assert await a.record(event(), 0.0, keep=True) is True
    assert await a.take("req-1", 0.0) == event()
    assert (await hub_b.stats()).stored_events == 0


async def test_a_duplicate_record_changes_nothing_on_any_hub(pair: Pair) -> None:
    """A redelivery recorded on the other hub is False there, keeps nothing and announces nothing."""
    _, hub_b, a, b = pair
    # a's announcement of the first delivery must have reached hub_b before the waiter under
    # test registers (else it wakes that waiter): a first waiter on hub_b hears it.
    heard = asyncio.create_task(hub_b.wait("req-1", timeout=10.0))
    await waiting(hub_b, "req-1")
    assert await a.record(event(), 0.0, keep=False) is True
    await heard
    waiter = asyncio.create_task(hub_b.wait("req-1", timeout=0.3))
    await waiting(hub_b, "req-1")
    assert await b.record(event(), 0.0, keep=True) is False
    with pytest.raises(TimeoutError):  # neither announced nor kept: nothing wakes it
        await waiter
    assert (await hub_b.stats()).stored_events == 0


def test_own_announcements_are_skipped_without_parsing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The subscription hears this backend's own announcements back; they are not parsed."""
    from upscale_async.redis import _backend

    backend = RedisBackend("redis://127.0.0.1:1/0")
    own = _encode(event(), backend._sender)
    other = _encode(event(), "elsewhere")

    def refuse(raw: bytes) -> object:
        raise AssertionError(f"parsed {raw!r}")

    monkeypatch.setattr(_backend, "_decode", refuse)
    backend._heard(own)  # skipped by its prefix
    with pytest.raises(AssertionError, match="parsed"):
        backend._heard(other)


async def test_closing_right_after_a_burst_of_announcements_does_not_hang(
    redis_url: str, redis_namespace: str
) -> None:
    """Hubs close promptly while the consuming lookups of 1,000 announcements are in flight."""
    a = RedisBackend(redis_url, namespace=redis_namespace)
    b = RedisBackend(redis_url, namespace=redis_namespace)
    hub_a, hub_b = CompletionHub(backend=a), CompletionHub(backend=b)
    await hub_a.open()
    await hub_b.open()
    try:
        events = [event(f"req-{i}", f"wh-{i}") for i in range(1000)]
        waiters = [asyncio.create_task(hub_b.wait(e.secure_request_id, timeout=30)) for e in events]
        await until(lambda: all(hub_b.is_waiting(e.secure_request_id) for e in events))
        for e in events:
            await hub_a.deliver(e)
        assert await asyncio.gather(*waiters) == events
    finally:
        started = time.monotonic()
        async with asyncio.timeout(10):
            await hub_b.aclose()  # B's lookups consuming A's copies may still be in flight
            await hub_a.aclose()
        closing = time.monotonic() - started
    assert closing < 2.0
    assert repr(b).endswith(", closed)")
