"""Sharing completion, batches and the rate governor across replicas and workers through Redis
(extra ``redis``).

Install with ``pip install 'upscale_async[redis]'``. The URL comes from the argument or
``UPSCALE_REDIS_URL`` (``rediss://`` for TLS, the password in the URL); give each deployment
its own ``namespace``.
"""

from __future__ import annotations

from ._backend import (
    DEFAULT_EVENT_TTL,
    DEFAULT_MAX_EVENT_BYTES,
    DEFAULT_MAX_EVENTS,
    DEFAULT_TIMEOUT,
    RedisBackend,
)
from ._connect import (
    DEFAULT_NAMESPACE,
    REDIS_URL_ENV,
    RedisUnavailableError,
    connect,
    redis_url,
)
from ._governor import DEFAULT_SYNC_INTERVAL, RedisGovernor
from ._ledger import (
    DEFAULT_LEASE_TTL,
    DEFAULT_LEDGER_RETENTION,
    DEFAULT_RECHECK_INTERVAL,
    RedisLedger,
)

__all__ = [
    "DEFAULT_EVENT_TTL",
    "DEFAULT_LEASE_TTL",
    "DEFAULT_LEDGER_RETENTION",
    "DEFAULT_MAX_EVENTS",
    "DEFAULT_MAX_EVENT_BYTES",
    "DEFAULT_NAMESPACE",
    "DEFAULT_RECHECK_INTERVAL",
    "DEFAULT_SYNC_INTERVAL",
    "DEFAULT_TIMEOUT",
    "REDIS_URL_ENV",
    "RedisBackend",
    "RedisGovernor",
    "RedisLedger",
    "RedisUnavailableError",
    "connect",
    "redis_url",
]
