"""RedisGovernor: one rate governor shared by the replicas of a service through Redis.

Each replica keeps the in-memory :class:`~upscale_async.RateGovernor` on its hot path (admission
stays a few comparisons) and, in the background, syncs two things with the others every
``sync_interval`` seconds, and at once when it starts a pause:

- **pauses**: a pause one replica starts (a 429, a burst of 5xx) is written as
  ``{namespace}:governor:{{name}}:pause`` (a value with a TTL, in Redis's own clock, so replicas'
  clocks need not agree) and every replica pauses until it ends;
- **the retry budget**: ``...:budget`` holds the shared token count; each replica applies what
  it spent and was refunded since its last sync (one Lua script, clamped to ``[0, retry_quota]``)
  and takes the result as its own. Between syncs a replica spends from its copy, so the replicas
  together may overspend by what they retry within one interval.

The concurrency limit (AIMD) stays per replica: each one halves its own on the 429s it sees, and
all of them pause together. When Redis cannot be reached the governor goes on alone (in memory)
and logs one warning; it shares again once Redis answers.
"""

from __future__ import annotations

import logging
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.abc

from .._config import DEFAULT_MAX_CONNECTIONS
from .._governor import GovernorPolicy, RateGovernor
from ._connect import (
    DEFAULT_NAMESPACE,
    check_namespace,
    open_client,
    redact_redis_url,
    redis_url,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["DEFAULT_SYNC_INTERVAL", "RedisGovernor"]

DEFAULT_SYNC_INTERVAL: Final = 0.1
"""Seconds between two syncs of a replica's governor with Redis (one round trip each)."""
#: Seconds an idle budget key lives: a budget nobody touched for an hour starts full again.
_BUDGET_TTL_MS: Final = 3_600_000

logger: Final = logging.getLogger("upscale_async")

# KEYS: budget, pause. ARGV: spent-or-refunded delta, quota (-1: none), pause ms proposed,
# budget TTL ms. Returns {budget (-1: none), pause ms left}.
_SYNC = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local budget = -1
local quota = tonumber(ARGV[2])
if quota >= 0 then
  budget = tonumber(redis.call('GET', KEYS[1]) or quota) + tonumber(ARGV[1])
  budget = math.max(0, math.min(quota, budget))
  redis.call('SET', KEYS[1], budget, 'PX', ARGV[4])
end
local current = tonumber(redis.call('GET', KEYS[2]) or '0')
local proposed = tonumber(ARGV[3])
if proposed > 0 and now + proposed > current then
  current = now + proposed
  redis.call('SET', KEYS[2], current, 'PX', proposed + 1000)
end
return {budget, math.max(0, current - now)}
"""


class RedisGovernor(RateGovernor):
    """A :class:`~upscale_async.RateGovernor` whose pauses and retry budget the replicas share.

    Give every replica's client one, with the same ``name`` and ``namespace``, inside
    ``async with`` (entering connects and starts syncing; before that, and after leaving, it
    governs its own process only)::

        async with RedisGovernor(name="upscale-api", policy=GovernorPolicy()) as governor:
            async with UpscaleClient(governor=governor) as client:
                ...

    Args:
        url: ``redis://``, ``rediss://`` (TLS) or ``unix://``; default ``$UPSCALE_REDIS_URL``.
        name: what the replicas sharing one governor call it.
        namespace: the key prefix of the deployment.
        policy: the :class:`~upscale_async.GovernorPolicy` (the same on every replica).
        max_connections: the ceiling of the concurrency limit when the policy has no
            ``max_concurrency``.
        sync_interval: seconds between two syncs (a new pause is synced at once).
        client: a ``redis.asyncio.Redis`` to borrow (never closed here) instead of ``url``.
        timeout: seconds to connect at start (:class:`RedisUnavailableError` past it).
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        name: str = "default",
        namespace: str = DEFAULT_NAMESPACE,
        policy: GovernorPolicy | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        sync_interval: float = DEFAULT_SYNC_INTERVAL,
        client: Redis | None = None,
        timeout: float = 5.0,
    ) -> None:
        super().__init__(policy or GovernorPolicy(), max_connections=max_connections)
        if not sync_interval > 0:
            raise ValueError(f"sync_interval must be > 0 seconds, got {sync_interval!r}")
        self.name = check_namespace(name)
        self.namespace = check_namespace(namespace)
        self.sync_interval = float(sync_interval)
        self.timeout = timeout
        self._given = client
        self.url = redis_url(url) if client is None else (url or "the client passed as client=")
        self._shown = redact_redis_url(self.url)
        base = f"{self.namespace}:governor:{{{self.name}}}"
        self._keys = [f"{base}:budget", f"{base}:pause"]
        self._redis: Redis | None = None
        self._script: Any = None
        self._syncer: anyio.abc.TaskGroup | None = None
        self._wake = anyio.Event()
        self._synced = self._capacity  # the budget as Redis last said
        self._proposed = 0.0  # monotonic end of a pause started here, not yet synced
        self._down = False
        #: Syncs with Redis that succeeded.
        self.syncs = 0

    def __repr__(self) -> str:
        return f"<RedisGovernor name={self.name!r} at {self._shown} {super().__repr__()}>"

    async def __aenter__(self) -> RedisGovernor:
        if self._redis is not None:
            raise RuntimeError("this RedisGovernor is already open: enter it once")
        self._redis = await self._open()
        self._script = self._redis.register_script(_SYNC)
        await self.sync()
        self._syncer = anyio.create_task_group()
        await self._syncer.__aenter__()
        self._syncer.start_soon(self._keep_syncing)
        return self

    async def _open(self) -> Redis:
        return await open_client(
            self.url,
            self._given,
            timeout=self.timeout,
            shown=self._shown,
            who=f"the governor {self.name!r}",
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        syncer, self._syncer = self._syncer, None
        if syncer is not None:
            syncer.cancel_scope.cancel()
            await syncer.__aexit__(None, None, None)
        redis, self._redis = self._redis, None
        if redis is not None and self._given is None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(self.timeout):
                await redis.aclose()

    def _pause(self, seconds: float, why: str) -> None:
        before = self._paused_until
        super()._pause(seconds, why)
        if self._paused_until > before:
            self._proposed = self._paused_until
            self._wake.set()  # tell the other replicas now, not at the next interval

    async def sync(self) -> None:
        """One round trip: share this replica's pause and budget changes, take the others'."""
        if self._redis is None:
            return
        before = self._capacity
        delta = 0 if before is None or self._synced is None else before - self._synced
        quota = self.policy.retry_quota
        proposed = max(0.0, self._proposed - time.monotonic())
        self._proposed = 0.0
        budget, pause_ms = await self._script(
            keys=self._keys,
            args=[delta, -1 if quota is None else quota, int(proposed * 1000), _BUDGET_TTL_MS],
            client=self._redis,
        )
        if quota is not None and self._capacity is not None and before is not None:
            drift = self._capacity - before  # spent or refunded here during the round trip
            self._synced = int(budget)
            self._capacity = max(0, min(quota, int(budget) + drift))
        until = time.monotonic() + int(pause_ms) / 1000
        if int(pause_ms) > 0 and until > self._paused_until + 0.005:
            self._paused_until = until
            logger.info(
                "rate governor %r: another replica paused every request for %.3g s",
                self.name,
                int(pause_ms) / 1000,
            )
        self.syncs += 1

    async def _keep_syncing(self) -> None:
        while True:
            with anyio.move_on_after(self.sync_interval):
                await self._wake.wait()
            self._wake = anyio.Event()
            try:
                await self.sync()
            except Exception as exc:
                if not self._down:
                    logger.warning(
                        "rate governor %r: cannot sync with Redis at %s (%s: %s); governing "
                        "this replica alone until it answers",
                        self.name,
                        self._shown,
                        type(exc).__name__,
                        exc,
                    )
                self._down = True
            else:
                if self._down:
                    logger.warning("rate governor %r: Redis answers again; sharing", self.name)
                self._down = False
