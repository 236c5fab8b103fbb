"""RedisLedger: one batch submitted by many workers, every chunk sent by one of them.

Keys, under ``{namespace}:ledger:{{batch}}`` (the braces keep one batch on one cluster slot):

- ``:done``, a hash: chunk index -> its record (its digest, the accepted request, the worker
  that recorded it);
- ``:digests``, a hash: chunk index -> its digest (of its lead ids, the campaign and its leads
  as sent: ``chunk_digest``), set by the first claim, so a worker given other input, or the
  same lead ids with other lead data, is stopped before it posts anything;
- ``:lease:<k>``, a string with a TTL: the token of the worker posting chunk ``k``.

Claim, record, release and renew are each one Lua script, so each is atomic and one round trip:
an uncontended chunk costs two (claim, record), plus one renewal per ``lease_ttl / 3`` for
all the leases a worker holds.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import uuid
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final

import anyio
import anyio.abc
import orjson

from .._errors import ConfigurationError
from .._ledger import Chunk, ChunkClaim, ClaimState, mismatch
from .._results import AcceptedRequest
from ._connect import (
    _NAMESPACE,
    DEFAULT_NAMESPACE,
    REDIS_URL_ENV,
    RedisUnavailableError,
    check_namespace,
    open_client,
    redact_redis_url,
    redis_url,
)

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "DEFAULT_LEASE_TTL",
    "DEFAULT_LEDGER_RETENTION",
    "DEFAULT_RECHECK_INTERVAL",
    "RedisLedger",
]

DEFAULT_LEASE_TTL: Final = 30.0
"""Seconds a chunk's lease lives without renewal: how long the chunks of a worker that died
wait before another worker takes them over. Leases are renewed every third of it."""
DEFAULT_RECHECK_INTERVAL: Final = 1.0
"""At most this many seconds between two claims of a chunk another worker holds (the batch
starts at 20 ms and doubles the wait up to this, or to the lease's expiry if sooner)."""
DEFAULT_LEDGER_RETENTION: Final = 7 * 24 * 3600.0
"""Seconds a batch's records are kept after its last record (None: kept until ``clear()``)."""

logger: Final = logging.getLogger("upscale_async")

# KEYS: done, digests, the chunk's lease. ARGV: chunk, digest, token, lease ms, retention ms.
_CLAIM = """
local known = redis.call('HGET', KEYS[2], ARGV[1])
if known and known ~= ARGV[2] then return {'MISMATCH', known} end
local record = redis.call('HGET', KEYS[1], ARGV[1])
if record then return {'DONE', record} end
if not known then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
  if tonumber(ARGV[5]) > 0 then redis.call('PEXPIRE', KEYS[2], ARGV[5]) end
end
local holder = redis.call('GET', KEYS[3])
if holder and holder ~= ARGV[3] then
  return {'BUSY', tostring(redis.call('PTTL', KEYS[3]))}
end
redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
return {'MINE', ''}
"""
# KEYS: done, digests, the chunk's lease. ARGV: chunk, token, record, retention ms.
_RECORD = """
local holder = redis.call('GET', KEYS[3])
local record = redis.call('HGET', KEYS[1], ARGV[1])
if record then
  if holder == ARGV[2] then redis.call('DEL', KEYS[3]) end
  return {'DONE', record}
end
if holder and holder ~= ARGV[2] then return {'TAKEN', holder} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('DEL', KEYS[3])
if tonumber(ARGV[4]) > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ARGV[4])
end
return {'RECORDED', ''}
"""
# KEYS: a lease. ARGV: token.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return {'RELEASED', redis.call('DEL', KEYS[1])} end
return {'NOT_HELD', 0}
"""
# KEYS: leases. ARGV: lease ms, then the token of each lease.
_RENEW = """
local lost = {}
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[i + 1] then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
  else
    lost[#lost + 1] = i
  end
end
return lost
"""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _check_batch(batch: str) -> str:
    if not isinstance(batch, str) or not _NAMESPACE.fullmatch(batch):
        raise ConfigurationError(
            f"batch must be 1-100 characters of letters, digits and _ . : -, got {batch!r}; "
            "name each batch (for example 'leads-2026-12-01'); every worker of it uses that name"
        )
    return batch


def _check_seconds(name: str, value: float | None, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, int | float) or not value >= 0.001:
        raise ConfigurationError(f"{name} must be a number of seconds >= 0.001, got {value!r}")


class RedisLedger:
    """A batch ledger in Redis, shared by every worker submitting the same batch.

    Give each worker the same input in the same order, the same ``chunk_size`` and the same
    ``batch`` name; each runs ``submit_batch(campaign, leads, ledger=ledger)`` (or
    ``generate``) and every chunk is posted by one of them: a worker claims a chunk with a
    lease (``lease_ttl`` seconds, renewed in the background while it is held) before posting
    it, and records the accepted request atomically, releasing the lease. A worker that dies
    loses its leases when they expire, and another worker takes its chunks over. The one
    window no client can close: a chunk posted by a worker that died before recording the
    answer is posted again by its successor; the API's deduplication (D8) answers with the
    same request id and charges nothing more.

    Each worker's :class:`~upscale_async.BatchSubmission` covers the whole batch (the chunks
    recorded by others count as accepted). :meth:`accepted_requests` lists every accepted
    request, so any worker, or a later run, can await the results.

    Args:
        url: ``redis://``, ``rediss://`` (TLS) or ``unix://``, the password in the URL; default
            ``$UPSCALE_REDIS_URL``.
        batch: the batch's name, the same on every worker of it.
        namespace: the key prefix of the deployment.
        lease_ttl: seconds a lease lives without renewal (the takeover delay after a crash).
        recheck_interval: at most this many seconds between claims of a chunk held elsewhere.
        retention: seconds the records are kept after the last one (None: until
            :meth:`clear`).
        client: a ``redis.asyncio.Redis`` to borrow (never closed here) instead of ``url``.
        timeout: seconds to connect at start.

    Use it as an async context manager: entering connects (:class:`RedisUnavailableError`,
    naming the URL, when Redis cannot be reached) and starts renewing; leaving stops renewing,
    releases the leases still held and closes the connection it opened.

    Example::

        async with RedisLedger(batch="leads-2026-12-01") as ledger:
            batch = await client.submit_batch(campaign, leads, ledger=ledger)
            requests = await ledger.accepted_requests()  # every worker's
        results = await client.await_completion(r.secure_request_id for r in requests)
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        batch: str,
        namespace: str = DEFAULT_NAMESPACE,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        recheck_interval: float = DEFAULT_RECHECK_INTERVAL,
        retention: float | None = DEFAULT_LEDGER_RETENTION,
        client: Redis | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.batch = _check_batch(batch)
        self.namespace = check_namespace(namespace)
        for name, value in (("lease_ttl", lease_ttl), ("recheck_interval", recheck_interval)):
            _check_seconds(name, value)
        _check_seconds("retention", retention, optional=True)
        _check_seconds("timeout", timeout)
        self.lease_ttl = float(lease_ttl)
        self.recheck_interval = float(recheck_interval)
        self.retention = retention
        self.timeout = timeout
        self._given = client
        self.url = redis_url(url) if client is None else (url or "the client passed as client=")
        self._shown = redact_redis_url(self.url)
        base = f"{self.namespace}:ledger:{{{self.batch}}}"
        self._done = f"{base}:done"
        self._digests = f"{base}:digests"
        self._lease_prefix = f"{base}:lease:"
        #: Prefixes every lease token: which worker holds a chunk (host:pid:random).
        self.worker = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._tokens = itertools.count()
        self._held: dict[str, tuple[str, int]] = {}  # token -> (lease key, chunk)
        self._redis: Redis | None = None
        self._scripts: dict[str, Any] = {}
        self._renewer: anyio.abc.TaskGroup | None = None

    def __repr__(self) -> str:
        return f"<RedisLedger batch={self.batch!r} at {self._shown} leases={len(self._held)}>"

    # -- lifetime -----------------------------------------------------------------------------

    async def __aenter__(self) -> RedisLedger:
        if self._redis is not None:
            raise RuntimeError("this RedisLedger is already open: enter it once")
        self._redis = await self._open()
        self._scripts = {
            name: self._redis.register_script(source)
            for name, source in (
                ("claim", _CLAIM),
                ("record", _RECORD),
                ("release", _RELEASE),
                ("renew", _RENEW),
            )
        }
        self._renewer = anyio.create_task_group()
        await self._renewer.__aenter__()
        self._renewer.start_soon(self._keep_leases)
        return self

    async def _open(self) -> Redis:
        return await open_client(
            self.url,
            self._given,
            timeout=self.timeout,
            shown=self._shown,
            who=f"the ledger of batch {self.batch!r}",
        )

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        renewer, self._renewer = self._renewer, None
        if renewer is not None:
            renewer.cancel_scope.cancel()
            await renewer.__aexit__(None, None, None)
        redis, self._redis = self._redis, None
        if redis is None:
            return
        with anyio.CancelScope(shield=True), anyio.move_on_after(self.timeout):
            try:
                for token, (key, _) in list(self._held.items()):
                    await self._scripts["release"](keys=[key], args=[token], client=redis)
            except Exception as error:  # the leases expire by themselves
                logger.warning("ledger %r: releasing leases on close failed: %s", self.batch, error)
            finally:
                self._held.clear()
                if self._given is None:
                    await redis.aclose()

    async def _keep_leases(self) -> None:
        """Renew every lease held, every third of ``lease_ttl``, until the ledger closes."""
        while True:
            await anyio.sleep(self.lease_ttl / 3)
            if self._held:
                try:
                    await self._renew()
                except Exception as exc:  # a later renewal (or the lease's loss) decides
                    logger.warning(
                        "ledger %r: renewing %d leases at %s failed (%s: %s); they expire "
                        "after %g s without renewal",
                        self.batch,
                        len(self._held),
                        self._shown,
                        type(exc).__name__,
                        exc,
                        self.lease_ttl,
                    )

    async def _renew(self) -> None:
        held = list(self._held.items())
        lost = await self._scripts["renew"](
            keys=[key for _, (key, _) in held],
            args=[self._ms(self.lease_ttl), *(token for token, _ in held)],
        )
        for i in lost:
            token, (_, chunk) = held[int(i) - 1]
            if self._held.pop(token, None) is not None:
                logger.warning(
                    "ledger %r: the lease of chunk %d expired before it was renewed (this "
                    "worker stalled for over %g s?); another worker may post it again, which "
                    "D8 makes free, and this worker will not record over it",
                    self.batch,
                    chunk,
                    self.lease_ttl,
                )

    # -- the BatchLedger protocol ---------------------------------------------------------------

    async def claim_chunk(self, chunk: Chunk) -> ChunkClaim:
        """Claim ``chunk``: DONE (recorded), MINE (leased to this worker) or BUSY.

        Raises:
            LedgerMismatchError: another chunk was claimed or recorded at this position.
            RedisUnavailableError: Redis could not be reached.
        """
        token = f"{self.worker}:{next(self._tokens)}"
        lease = f"{self._lease_prefix}{chunk.index}"
        kind, value = await self._run(
            "claim",
            [self._done, self._digests, lease],
            [chunk.index, chunk.digest, token, self._ms(self.lease_ttl), self._retention_ms()],
        )
        kind = _text(kind)
        if kind == "MINE":
            self._held[token] = (lease, chunk.index)
            return ChunkClaim(ClaimState.MINE, chunk, token=token)
        if kind == "DONE":
            request = AcceptedRequest.from_dict(orjson.loads(value)["request"])
            return ChunkClaim(ClaimState.DONE, chunk, requests=(request,))
        if kind == "BUSY":
            left = int(value) / 1000
            wait = self.recheck_interval if left <= 0 else min(left, self.recheck_interval)
            return ChunkClaim(ClaimState.BUSY, chunk, retry_after=wait)
        raise mismatch(chunk, _text(value), f"the ledger of batch {self.batch!r}")

    async def record_chunk(self, claim: ChunkClaim, request: AcceptedRequest) -> bool:
        """Record ``request`` for a chunk claimed MINE and release the lease, atomically.

        False when not recorded by this call: the lease passed to another worker (it posts the
        same body and gets the same request id, D8) or the chunk was recorded meanwhile.

        Raises:
            RedisUnavailableError: Redis could not be reached.
        """
        token = self._token(claim)
        self._held.pop(token, None)
        lease = f"{self._lease_prefix}{claim.chunk.index}"
        record = orjson.dumps(
            {"digest": claim.chunk.digest, "request": request.to_dict(), "worker": token}
        )
        kind, value = await self._run(
            "record",
            [self._done, self._digests, lease],
            [claim.chunk.index, token, record, self._retention_ms()],
        )
        kind = _text(kind)
        if kind == "DONE":
            recorded = orjson.loads(value)["request"]["secure_request_id"]
            if recorded != request.secure_request_id:
                logger.warning(
                    "ledger %r: chunk %d was recorded as request %s, but this worker's post "
                    "was accepted as %s: do the workers use the same API key and campaign? "
                    "(D8 deduplicates only the same body under the same key)",
                    self.batch,
                    claim.chunk.index,
                    recorded,
                    request.secure_request_id,
                )
        return kind == "RECORDED"

    async def release_chunk(self, claim: ChunkClaim) -> None:
        """Release the lease of a chunk claimed MINE that was not accepted (if still held).

        Raises:
            RedisUnavailableError: Redis could not be reached (the lease then expires).
        """
        token = self._token(claim)
        self._held.pop(token, None)
        lease = f"{self._lease_prefix}{claim.chunk.index}"
        await self._run("release", [lease], [token])

    async def accepted_requests(self) -> list[AcceptedRequest]:
        """Every request recorded for this batch, by any worker, in input order.

        Raises:
            RedisUnavailableError: Redis could not be reached.
        """
        redis = self._client()
        try:
            records = [value async for _, value in redis.hscan_iter(self._done, count=1000)]
        except Exception as exc:
            raise self._unavailable("accepted_requests", exc) from exc
        requests = [AcceptedRequest.from_dict(orjson.loads(r)["request"]) for r in records]
        return sorted(requests, key=lambda r: r.first_index)

    async def clear(self) -> None:
        """Delete every record and lease of this batch (to submit it again from scratch).

        Raises:
            RedisUnavailableError: Redis could not be reached.
        """
        redis = self._client()
        try:
            leases = [k async for k in redis.scan_iter(match=f"{self._lease_prefix}*", count=1000)]
            await redis.delete(self._done, self._digests, *leases)
        except Exception as exc:
            raise self._unavailable("clear", exc) from exc
        self._held.clear()

    # -- helpers ------------------------------------------------------------------------------

    def _client(self) -> Redis:
        if self._redis is None:
            raise RuntimeError(
                "the RedisLedger is not open: use it as `async with RedisLedger(...) as "
                "ledger:` and pass ledger= inside the block"
            )
        return self._redis

    async def _run(self, name: str, keys: list[str], args: list[Any]) -> tuple[Any, Any]:
        self._client()
        try:
            reply = await self._scripts[name](keys=keys, args=args)
        except Exception as exc:
            raise self._unavailable(name, exc) from exc
        return reply[0], reply[1]

    def _unavailable(self, call: str, exc: Exception) -> Exception:
        from redis.exceptions import ConnectionError, TimeoutError

        if not isinstance(exc, ConnectionError | TimeoutError | OSError):
            return exc  # a bug or a server refusing the script: shown as it is
        return RedisUnavailableError(
            f"the ledger of batch {self.batch!r} could not {call} at Redis {self._shown}: "
            f"{type(exc).__name__}: {exc}; check the server and the URL (argument or "
            f"{REDIS_URL_ENV}), then run again: the chunks recorded are not sent twice",
            url=self._shown,
        )

    def _token(self, claim: ChunkClaim) -> str:
        if claim.state is not ClaimState.MINE or claim.token is None:
            raise ValueError(
                f"only a chunk claimed MINE can be recorded or released, not {claim.state.name}"
            )
        return claim.token

    @staticmethod
    def _ms(seconds: float) -> int:
        return max(1, round(seconds * 1000))

    def _retention_ms(self) -> int:
        return 0 if self.retention is None else self._ms(self.retention)
