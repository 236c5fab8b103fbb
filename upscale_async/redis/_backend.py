"""RedisBackend: a CompletionBackend shared by every replica's hub through one Redis.

A delivery received by any replica wakes every waiter for its id on every replica sharing the
namespace. What lives in Redis, under ``{namespace}:completion:``:

- ``seen:<dedupe key>``: one key per delivery seen, set if absent (``SET NX PX ttl``) by the
  ``record`` script, so a redelivery that lands on another replica is a duplicate there too.
- ``events`` (a hash: id -> event JSON), ``order`` (a sorted set: id -> time stored, from the
  Redis server's clock) and ``bytes`` (their total size): the early events nobody waited for
  yet. ``keep`` and ``take`` are Lua scripts, so the TTL, the count bound (``max_events``) and
  the byte bound (``max_event_bytes``, the bytes of the stored JSON) hold atomically whatever
  the replicas do at once; the oldest event is evicted first, and each call drops up to 1,000
  expired ones. The three keys expire together ``ttl`` after the last ``keep``.
- the channel ``announce``: ``record`` publishes each new delivery there; every other
  replica's subscription announces it to its hub, and a hub that had waiters consumes the
  stored copy.

Round trips: a delivery costs the receiving replica one, the ``record`` script: ``SET NX`` on
its delivery key and, when the key is new, keeping the event (when no waiter of that replica
wants it) and publishing it, atomically (so no replica hears of an event it cannot take yet, and
a crash cannot leave a delivery remembered but neither kept nor announced). Lookups (each
waiter's ``take``, and the consuming of announced events) wait in a queue and go many ids per
script call, so a burst of waiters needs one connection, not one each.

Publish/subscribe rather than streams, measured (this machine, Redis 7.0, one publisher and one
reader, 3,000 messages at 1,000/s, twice): the latency from send to read was the same (p50
0.38-0.40 ms and p99 3.7-5.5 ms for pub/sub; 0.33-0.37 ms and 5.3-5.6 ms for XADD/XREAD BLOCK),
but a stream costs every reader one XREAD per message at that rate (19 us of Redis time each,
against 2.8 us for a PUBLISH) and keeps a copy of every message. What a stream would add,
replaying what a reader missed while disconnected, the kept events already give: after every
(re)subscription the backend takes the stored event of each id its hub waits on.

When Redis cannot be reached, nothing hangs and no waiter is lost for good:

- The subscription task notices the dropped connection, marks the backend *down* and tries
  again (50 ms, doubling to 1 s). While down, every call raises :class:`RedisUnavailableError`
  at once instead of waiting on the network. The hub then keeps its waiters waiting (their
  ``await_completion`` polls every ``fallback_interval``), and a delivery still wakes the waiters
  of the hub that received it before the error reaches the receiver, which answers 503 so that
  Upscale retries the webhook later: the retry reaches the other replicas once Redis is back.
- Once subscribed again, the backend takes the stored event of every id in
  ``link.waiting_ids()`` and announces it (keeping again any that nobody waits for any more).
- A Redis restarted without persistence has lost its kept events and delivery keys: waiters
  whose event was only kept there resolve by their fallback poll; a redelivery is new again
  (harmless: completion is confirmed by ``retrieve_messages``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol

import orjson

from .._errors import WebhookPayloadError
from .._models import CompletionEvent
from .._wire import structure_event
from ._connect import (
    DEFAULT_NAMESPACE,
    RedisUnavailableError,
    check_namespace,
    connect,
    redact_redis_url,
    redis_url,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

__all__ = [
    "DEFAULT_EVENT_TTL",
    "DEFAULT_MAX_EVENTS",
    "DEFAULT_MAX_EVENT_BYTES",
    "DEFAULT_TIMEOUT",
    "RedisBackend",
]

logger = logging.getLogger("upscale_async.redis")

DEFAULT_EVENT_TTL = 3600.0
"""Seconds an early event, and the key of a delivery already seen, are kept in Redis (the
in-memory hub's default too)."""
DEFAULT_MAX_EVENTS = 100_000
"""Most early events kept in Redis at once, for the whole namespace; the oldest is evicted."""
DEFAULT_MAX_EVENT_BYTES = 64 * 1024 * 1024
"""Most bytes of early events (their stored JSON) kept in Redis at once; the oldest is evicted."""
DEFAULT_TIMEOUT = 5.0
"""Seconds to connect to Redis, and for each command's answer, before it counts as unreachable."""

_RETRY_FIRST = 0.05  # seconds before the first attempt to subscribe again, doubling
_RETRY_MAX = 1.0
_IDLE_READ = 1.0  # seconds a read of the subscription waits before it checks the connection
_SWEEP_CHUNK = 1000  # most ids per take script (queued lookups, catching up after a reconnect)
_MAX_CONNECTIONS = 64  # connections the backend's own client may open
_LOG = 10  # log lines a second, at most, about an unreachable Redis

# Shared by the scripts: the server's clock in ms, and dropping one stored event.
_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local function drop(id)
  local body = redis.call('HGET', KEYS[1], id)
  if body then
    redis.call('HDEL', KEYS[1], id)
    redis.call('DECRBY', KEYS[3], string.len(body))
  end
  redis.call('ZREM', KEYS[2], id)
  return body
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - ttl, 'LIMIT', 0, 1000)) do
  drop(id)
end
"""
# KEYS: events, order, bytes. ARGV: ttl ms, id, body, max events, max bytes.
_KEEP_BODY = """
local function keep(id, body)
local max_events, max_bytes = tonumber(ARGV[4]), tonumber(ARGV[5])
drop(id)
if max_events < 1 or string.len(body) > max_bytes then return 0 end
redis.call('HSET', KEYS[1], id, body)
redis.call('ZADD', KEYS[2], now, id)
redis.call('INCRBY', KEYS[3], string.len(body))
local evicted = 0
while redis.call('HLEN', KEYS[1]) > max_events
    or tonumber(redis.call('GET', KEYS[3]) or '0') > max_bytes do
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  if not oldest then redis.call('SET', KEYS[3], 0) break end
  drop(oldest)
  evicted = evicted + 1
end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ttl) end
return 1 + evicted
end
"""
_KEEP = _PRELUDE + _KEEP_BODY + "return keep(ARGV[2], ARGV[3])\n"
# One delivery. KEYS: events, order, bytes, the delivery key. ARGV: ttl ms, id, body, max events,
# max bytes, the channel, "1" to keep the event. Returns 0 for a duplicate (nothing changed),
# else 1: the key set, the event kept when asked and published, all or nothing.
_RECORD = (
    _PRELUDE
    + _KEEP_BODY
    + """
if not redis.call('SET', KEYS[4], 1, 'NX', 'PX', ttl) then return 0 end
if ARGV[7] == '1' then keep(ARGV[2], ARGV[3]) end
redis.call('PUBLISH', ARGV[6], ARGV[3])
return 1
"""
)
# KEYS: events, order, bytes. ARGV: ttl ms, then the ids. Returns each id's live body, or nil.
_TAKE = (
    _PRELUDE
    + """
local out = {}
for i = 2, #ARGV do
  local score = redis.call('ZSCORE', KEYS[2], ARGV[i])
  local body = drop(ARGV[i])
  if body and score and tonumber(score) > now - ttl then
    out[i - 1] = body
  else
    out[i - 1] = false
  end
end
return out
"""
)
# KEYS: events, order, bytes. ARGV: ttl ms. Returns the count of live events.
_COUNT = _PRELUDE + "return redis.call('HLEN', KEYS[1])\n"


class _Link(Protocol):
    """The part of ``upscale_async.webhooks.HubLink`` the backend uses."""

    @property
    def announce(self) -> Callable[[CompletionEvent], bool]: ...

    @property
    def waiting_ids(self) -> Callable[[], tuple[str, ...]]: ...


def _encode(event: CompletionEvent, sender: str) -> bytes:
    """The event as its webhook body (known fields and ``extra``), its id and who sent it."""
    body: dict[str, Any] = dict(event.extra)
    body.update(
        secure_request_id=event.secure_request_id,
        status=event.status,
        completed_at=event.completed_at,
        requested_messages_count=event.requested_messages_count,
        generated_messages_count=event.generated_messages_count,
        webhook_triggered_at=event.webhook_triggered_at,
    )
    return orjson.dumps({"s": sender, "w": event.webhook_id, "e": body}, default=str)


def _decode(raw: bytes) -> tuple[str | None, CompletionEvent]:
    """``(sender, event)`` from :func:`_encode`'s bytes; WebhookPayloadError if it is not one."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise WebhookPayloadError(f"not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("e"), dict):
        raise WebhookPayloadError("not an event written by RedisBackend")
    webhook_id = data.get("w")
    sender = data.get("s")
    return (
        sender if isinstance(sender, str) else None,
        structure_event(data["e"], webhook_id if isinstance(webhook_id, str) else None),
    )


class _Throttled:
    """A warning at most ``_LOG`` times a second, then a count of those left out."""

    def __init__(self) -> None:
        self._window = float("-inf")
        self._passed = 0
        self._skipped = 0

    def warning(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now >= self._window + 1.0:
            if self._skipped:
                logger.warning("%d more Redis warnings left out in the last second", self._skipped)
            self._window, self._passed, self._skipped = now, 0, 0
        if self._passed >= _LOG:
            self._skipped += 1
            return
        self._passed += 1
        logger.warning(message, *args)


class RedisBackend:
    """A :class:`~upscale_async.webhooks.CompletionBackend` shared through Redis by many replicas.

    Give each replica's :class:`~upscale_async.webhooks.CompletionHub` its own ``RedisBackend``
    on the same Redis and ``namespace``: a webhook received by any replica then wakes the
    waiters for its id on all of them, an event that arrives before anyone waits is kept in
    Redis for a waiter on any replica (TTL, count and byte bounds), and a redelivery that lands
    on another replica is dropped as a duplicate. See the module's docstring for what happens
    while Redis is unreachable (in short: waiters fall back to polling, the receiver answers
    503 so Upscale retries, and nothing is lost once Redis is back).

    Args:
        url: ``redis://``, ``rediss://`` (TLS) or ``unix://``, with the password in it; default
            ``$UPSCALE_REDIS_URL``. Not used when ``client`` is given.
        namespace: the key prefix and channel name; one per deployment.
        ttl: seconds an early event and a delivery key are kept.
        max_events: most early events kept at once (0: none are kept).
        max_event_bytes: most bytes of early events kept at once (their JSON).
        timeout: seconds to connect and to wait for each answer.
        client: an existing ``redis.asyncio.Redis`` to use instead of connecting to ``url``;
            the backend never closes it. (Its own retry settings then apply to each command.)

    Raises:
        ConfigurationError: no URL (argument or environment), a URL of another scheme, or a
            namespace with other characters than letters, digits and ``_ . : -``.
        ValueError: ``ttl`` or ``timeout`` not > 0, or a negative bound.

    Example::

        async with (
            CompletionHub(backend=RedisBackend(namespace="upscale:prod")) as hub,
            WebhookReceiver(hub, verifier=verifier, host="0.0.0.0", port=8081),
        ):
            event = await hub.wait(request_id, timeout=600)
    """

    needs_open = True
    """A RedisBackend connects and subscribes: its hub must be opened (``async with hub:``)."""

    # Long: the constructor checks and stores every argument, and sets the runtime state
    def __init__(
        self,
        url: str | None = None,
        *,
        namespace: str = DEFAULT_NAMESPACE,
        ttl: float = DEFAULT_EVENT_TTL,
        max_events: int = DEFAULT_MAX_EVENTS,
        max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        timeout: float = DEFAULT_TIMEOUT,
        client: Redis | None = None,
    ) -> None:
        if not ttl > 0:
            raise ValueError(f"ttl must be a number of seconds > 0, not {ttl!r}")
        if not timeout > 0:
            raise ValueError(f"timeout must be a number of seconds > 0, not {timeout!r}")
        if max_events < 0 or max_event_bytes < 0:
            raise ValueError(
                f"max_events and max_event_bytes must be >= 0, not {max_events!r} and "
                f"{max_event_bytes!r}"
            )
        self.namespace = check_namespace(namespace)
        self.url: str | None = None if client is not None else redis_url(url)
        self.ttl = float(ttl)
        self.max_events = max_events
        self.max_event_bytes = max_event_bytes
        self.timeout = float(timeout)
        self._given = client
        self._client: Redis | None = None
        self._shown = redact_redis_url(self.url) if self.url else _client_address(client)
        prefix = f"{namespace}:completion:"
        self._seen_prefix = prefix + "seen:"
        self._keys = [prefix + "events", prefix + "order", prefix + "bytes"]
        self._channel = prefix + "announce"
        self._ttl_ms = max(1, round(self.ttl * 1000))
        self._sender = uuid.uuid4().hex
        # What this backend's own announcements start with (``_encode`` writes the sender
        # first): the subscription skips them without parsing.
        self._own_prefix = orjson.dumps({"s": self._sender})[:-1]
        self._scripts: dict[str, Any] = {}
        self._errors: tuple[type[BaseException], ...] = (OSError,)
        self._link: _Link | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._down: str | None = None
        self._down_since = 0.0
        # Lookups wait in ``_takes`` and go to Redis many ids per script call (``_take_loop``):
        # (id, the take's future, or None to consume the copy of an event announced here).
        self._takes: list[tuple[str, asyncio.Future[bytes | None] | None]] = []
        self._take_ready: asyncio.Event | None = None
        self._commands: asyncio.Semaphore | None = None  # bounds the pool's connections in use
        self._sweep = False
        self._wake: asyncio.Event | None = None
        self._closing = False
        self._log = _Throttled()
        self._reconnects = 0

    def __repr__(self) -> str:
        state = "closed" if self._link is None else ("down" if self._down else "open")
        return (
            f"RedisBackend({self._shown!r}, namespace={self.namespace!r}, ttl={self.ttl:g}, "
            f"max_events={self.max_events}, max_event_bytes={self.max_event_bytes}, {state})"
        )

    @property
    def available(self) -> bool:
        """True while open and subscribed; False when closed or while Redis is unreachable."""
        return self._link is not None and self._down is None

    @property
    def reconnects(self) -> int:
        """How many times the subscription was made again after the connection dropped."""
        return self._reconnects

    # -- opening and closing ---------------------------------------------------------------

    async def open(self, link: _Link) -> None:
        """Connect (or check the given client), subscribe, and start announcing to ``link``.

        Raises :class:`RedisUnavailableError`, naming the URL (password hidden), when Redis
        cannot be reached; ``RuntimeError`` when already open.
        """
        if self._link is not None:
            raise RuntimeError(f"{self!r} is already open; each hub needs its own RedisBackend")
        import redis.exceptions

        self._errors = (OSError, redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)
        client = await self._connect()
        try:
            self._scripts = {
                name: client.register_script(source)
                for name, source in (
                    ("keep", _KEEP),
                    ("record", _RECORD),
                    ("take", _TAKE),
                    ("count", _COUNT),
                )
            }
            pubsub = await self._subscribe(client)
        except self._errors as exc:
            if self._given is None:
                await client.aclose()
            raise self._cannot(exc) from exc
        self._client, self._link, self._down, self._closing = client, link, None, False
        self._wake, self._take_ready = asyncio.Event(), asyncio.Event()
        pool = getattr(client.connection_pool, "max_connections", _MAX_CONNECTIONS)
        # The subscription, the lookups and the catch-up each hold a connection too.
        self._commands = asyncio.Semaphore(max(1, min(_MAX_CONNECTIONS, pool) - 4))
        self._tasks = [
            asyncio.create_task(self._listen(pubsub), name="RedisBackend listen"),
            asyncio.create_task(self._take_loop(), name="RedisBackend take"),
            asyncio.create_task(self._work(), name="RedisBackend work"),
        ]

    async def _connect(self) -> Redis:
        if self._given is None:
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            # One immediate retry, no backoff: a pooled connection that a restart closed is
            # replaced at once, and a Redis that is down is reported at once (no call hangs).
            # A subscription reconnected this way is caught up by ``_reconnected``.
            return await connect(
                self.url,
                timeout=self.timeout,
                socket_timeout=self.timeout,
                retry=Retry(NoBackoff(), 1),
                max_connections=_MAX_CONNECTIONS,
            )
        try:
            await self._given.ping()
        except self._errors as exc:
            raise self._cannot(exc) from exc
        return self._given

    def _cannot(self, exc: BaseException) -> RedisUnavailableError:
        return RedisUnavailableError(
            f"cannot reach Redis at {self._shown}: {type(exc).__name__}: {exc}; check that the "
            "server runs and that the URL (argument or UPSCALE_REDIS_URL) names it, with the "
            "password in the URL if it needs one",
            url=self._shown,
        )

    async def aclose(self) -> None:
        """Unsubscribe, stop the background tasks and disconnect (a given client stays open).

        Idempotent; the events and delivery keys kept in Redis stay for the other replicas.
        """
        tasks, self._tasks = self._tasks, []
        # Each loop also stops at its next turn when it sees ``_closing``: a cancellation that a
        # library call swallows (seen with redis-py inside a command) cannot leave aclose waiting.
        self._closing = True
        for event in (self._take_ready, self._wake):
            if event is not None:
                event.set()
        for task in tasks:
            task.cancel()
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self.timeout)
            for task in late:
                logger.warning("RedisBackend: %s did not stop within %g s", task, self.timeout)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                logger.warning("RedisBackend: %s failed", task, exc_info=task.exception())
        client, self._client = self._client, None
        self._link = None
        takes, self._takes = self._takes, []
        closed = RuntimeError("the RedisBackend was closed while this lookup waited")
        for _, future in takes:
            if future is not None and not future.done():
                future.set_exception(closed)
        if client is not None and self._given is None:
            await client.aclose()

    # -- the subscription --------------------------------------------------------------------

    async def _subscribe(self, client: Redis) -> PubSub:
        """A PubSub subscribed to the channel, once Redis confirmed it (so nothing is missed)."""
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(self._channel)
            async with asyncio.timeout(self.timeout):
                while True:
                    message = await pubsub.get_message(timeout=self.timeout)
                    if message is not None and message["type"] == "subscribe":
                        break
        except BaseException:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            raise
        assert pubsub.connection is not None
        pubsub.connection.register_connect_callback(self._reconnected)
        return pubsub

    def _reconnected(self, connection: object) -> None:
        """The subscription's connection connected again inside redis-py (its retry), which
        subscribed again: catch up on the ids waited on, as after any reconnection."""
        if self._down is None:  # an outage nobody saw: _up counts only those it ends
            self._reconnects += 1
        self._up()

    async def _listen(self, pubsub: PubSub | None) -> None:
        """Read announcements; on a dropped connection, mark down and subscribe again."""
        delay = _RETRY_FIRST
        try:
            while not self._closing:
                try:
                    if pubsub is None:
                        assert self._client is not None
                        pubsub = await self._subscribe(self._client)
                        self._up()
                        delay = _RETRY_FIRST
                    await self._read(pubsub)  # returns when closing
                    continue
                except Exception as exc:  # connection errors, and anything else: never die
                    self._mark_down(exc)
                if pubsub is not None:
                    await self._close(pubsub)
                    pubsub = None
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX)
        finally:
            if pubsub is not None:
                await self._close(pubsub)

    async def _read(self, pubsub: PubSub) -> None:
        while not self._closing:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=_IDLE_READ)
            if message is not None and message["type"] == "message":
                self._heard(message["data"])

    async def _close(self, pubsub: PubSub) -> None:
        if pubsub.connection is not None:
            pubsub.connection.deregister_connect_callback(self._reconnected)
        with contextlib.suppress(Exception):
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    def _heard(self, raw: bytes) -> None:
        """Announce another replica's delivery; a hub that had waiters consumes the copy."""
        if raw.startswith(self._own_prefix):  # our own announcement, heard back
            return
        try:
            sender, event = _decode(raw)
        except WebhookPayloadError as exc:
            self._log.warning(
                "ignored a message on %s that is not an event: %s", self._channel, exc
            )
            return
        link = self._link
        if sender == self._sender or link is None:
            return
        if link.announce(event) and self._take_ready is not None:
            self._takes.append((event.secure_request_id, None))  # consume the kept copy
            self._take_ready.set()

    def _mark_down(self, exc: BaseException) -> None:
        if self._down is None:
            self._down_since = time.monotonic()
            logger.warning(
                "Redis at %s is unreachable (%s: %s): waiters fall back to polling and "
                "webhooks are answered 503 until it is back; reconnecting",
                self._shown,
                type(exc).__name__,
                exc,
            )
        self._down = f"{type(exc).__name__}: {exc}"

    def _up(self) -> None:
        if self._down is not None:
            logger.warning(
                "Redis at %s is reachable again after %.1f s; catching up on the waited ids",
                self._shown,
                time.monotonic() - self._down_since,
            )
            self._reconnects += 1
        self._down = None
        self._sweep = True
        if self._wake is not None:
            self._wake.set()

    # -- background work: lookups in batches, catching up after a reconnect ---------------------

    async def _take_loop(self) -> None:
        """Run the queued lookups, up to ``_SWEEP_CHUNK`` ids per script call.

        Under load the waiters' lookups and the consuming of announced events share round
        trips, and a burst of waiters never needs more than one connection.
        """
        assert self._take_ready is not None
        while not self._closing:
            await self._take_ready.wait()
            self._take_ready.clear()
            while self._takes and not self._closing:
                batch = self._takes[:_SWEEP_CHUNK]
                del self._takes[:_SWEEP_CHUNK]
                await self._run_takes(batch)

    async def _run_takes(
        self, batch: list[tuple[str, asyncio.Future[bytes | None] | None]]
    ) -> None:
        try:
            bodies = await self._take_many([request_id for request_id, _ in batch])
        except Exception as exc:
            error = (
                self._unavailable("take", f"{type(exc).__name__}: {exc}")
                if isinstance(exc, self._errors)
                else exc
            )
            for _, future in batch:
                if future is not None and not future.done():
                    future.set_exception(error)
            return
        left: list[bytes] = []  # taken for a waiter that left meanwhile (timeout, cancel)
        for (_, future), body in zip(batch, bodies, strict=True):
            if future is None:
                continue  # consumed: the announcement already woke this hub's waiters
            if not future.done():
                future.set_result(body)
            elif body is not None:
                left.append(body)
        for body in left:
            await self._announce_or_keep(body)

    async def _announce_or_keep(self, body: bytes) -> None:
        """Announce a taken event to this hub; keep it again in Redis if nobody waits here."""
        _, event = _decode(body)
        link = self._link
        if link is None or not link.announce(event):
            try:
                await self._keep_body(event.secure_request_id, body)
            except Exception as exc:
                self._log.warning(
                    "Redis at %s: could not keep the event of %s again (%s: %s); a later "
                    "waiter for it falls back to polling",
                    self._shown,
                    event.secure_request_id,
                    type(exc).__name__,
                    exc,
                )

    async def _work(self) -> None:
        assert self._wake is not None
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            try:
                if self._sweep:
                    self._sweep = False
                    await self._catch_up()
            except Exception as exc:  # the task must live on; Redis errors are the usual ones
                self._log.warning(
                    "Redis at %s: could not catch up on the kept events of the waited ids "
                    "(%s: %s); those waiters fall back to polling",
                    self._shown,
                    type(exc).__name__,
                    exc,
                )

    async def _catch_up(self) -> None:
        """Take the kept event of every id the hub waits on; announce it, or keep it again."""
        link = self._link
        if link is None:
            return
        ids = link.waiting_ids()
        for start in range(0, len(ids), _SWEEP_CHUNK):
            bodies = await self._take_many(ids[start : start + _SWEEP_CHUNK])
            for body in bodies:
                if body is not None:
                    await self._announce_or_keep(body)

    async def _take_many(self, ids: Iterable[str]) -> list[bytes | None]:
        assert self._client is not None
        result = await self._scripts["take"](
            keys=self._keys, args=[self._ttl_ms, *ids], client=self._client
        )
        return list(result)

    async def _keep_body(self, secure_request_id: str, body: bytes) -> None:
        assert self._client is not None
        await self._scripts["keep"](
            keys=self._keys,
            args=[self._ttl_ms, secure_request_id, body, self.max_events, self.max_event_bytes],
            client=self._client,
        )

    # -- the CompletionBackend calls ------------------------------------------------------

    def _check(self, call: str) -> None:
        if self._link is None:
            raise RuntimeError(
                f"{call} on a RedisBackend that is not open; open its hub first "
                "('async with CompletionHub(backend=RedisBackend(...)) as hub:')"
            )
        if self._down is not None:
            raise self._unavailable(call, self._down)

    def _unavailable(self, call: str, reason: str) -> RedisUnavailableError:
        down = self._down is not None
        since = f" for {time.monotonic() - self._down_since:.1f} s" if down else ""
        return RedisUnavailableError(
            f"{call}: Redis at {self._shown} is unreachable{since} ({reason}); the backend "
            "reconnects by itself",
            url=self._shown,
        )

    async def record(self, event: CompletionEvent, now: float, *, keep: bool) -> bool:
        """One delivery, in one script (one round trip): True when no replica saw its key.

        A new key is set (``SET NX PX ttl``), the event kept when ``keep`` (TTL and bounds) and
        published on the namespace's channel, atomically: no replica hears of an event before
        it can be taken, and a crash cannot leave the key set with the event neither kept nor
        announced. A duplicate changes nothing.
        """
        self._check("record")
        client, commands = self._client, self._commands
        assert client is not None
        assert commands is not None
        body = _encode(event, self._sender)
        limits = (self.max_events, self.max_event_bytes, self._channel, "1" if keep else "0")
        args = [self._ttl_ms, event.secure_request_id, body, *limits]
        try:
            async with commands:
                new = await self._scripts["record"](
                    keys=[*self._keys, self._seen_prefix + event.dedupe_key],
                    args=args,
                    client=client,
                )
        except self._errors as exc:
            raise self._unavailable("record", f"{type(exc).__name__}: {exc}") from exc
        return bool(new)

    async def keep(self, event: CompletionEvent, now: float) -> None:
        """Keep an event in Redis for any replica's next waiter (TTL and bounds)."""
        self._check("keep")
        assert self._commands is not None
        try:
            async with self._commands:
                await self._keep_body(event.secure_request_id, _encode(event, self._sender))
        except self._errors as exc:
            raise self._unavailable("keep", f"{type(exc).__name__}: {exc}") from exc

    async def take(self, secure_request_id: str, now: float) -> CompletionEvent | None:
        """Remove and return the live event kept for this id by any replica, if there is one."""
        self._check("take")
        assert self._take_ready is not None
        future: asyncio.Future[bytes | None] = asyncio.get_running_loop().create_future()
        self._takes.append((secure_request_id, future))
        self._take_ready.set()
        body = await future  # see _take_loop: many lookups share one script call
        return None if body is None else _decode(body)[1]

    async def counts(self, now: float) -> tuple[int, int]:
        """``(events kept, delivery keys remembered)`` in the namespace, across all replicas.

        Counting the keys scans the namespace (``SCAN``): meant for diagnostics and tests.
        """
        self._check("counts")
        client = self._client
        assert client is not None
        try:
            events = int(
                await self._scripts["count"](keys=self._keys, args=[self._ttl_ms], client=client)
            )
            seen = 0
            async for _ in client.scan_iter(match=self._seen_prefix + "*", count=1000):
                seen += 1
        except self._errors as exc:
            raise self._unavailable("counts", f"{type(exc).__name__}: {exc}") from exc
        return events, seen


def _client_address(client: Redis | None) -> str:
    """Where a given client connects, for messages (no password)."""
    if client is None:
        return "?"
    kwargs = client.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"unix://{kwargs['path']}"
    return f"redis://{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"
