"""Sharing completion and batches across replicas and workers through Redis (extra ``redis``).

Install with ``pip install 'upscale_async[redis]'``. The URL comes from the argument or
``UPSCALE_REDIS_URL`` (``rediss://`` for TLS, the password in the URL); give each deployment
its own ``namespace``.
"""

from __future__ import annotations

from ._connect import (
    DEFAULT_NAMESPACE,
    REDIS_URL_ENV,
    RedisUnavailableError,
    connect,
    redis_url,
)

__all__ = [
    "DEFAULT_NAMESPACE",
    "REDIS_URL_ENV",
    "RedisUnavailableError",
    "connect",
    "redis_url",
]
