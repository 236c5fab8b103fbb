"""Reaching Redis: the URL (argument or ``UPSCALE_REDIS_URL``), the namespace, a checked connect.

Everything the shared parts (the completion backend, the batch ledger) need to open a
connection is here, so both say the same thing when Redis cannot be reached.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Any

import anyio

from .._errors import ConfigurationError, UpscaleError

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "DEFAULT_NAMESPACE",
    "REDIS_URL_ENV",
    "RedisUnavailableError",
    "check_namespace",
    "connect",
    "open_client",
    "redact_redis_url",
    "redis_url",
]

REDIS_URL_ENV = "UPSCALE_REDIS_URL"
"""The environment variable read when no URL is passed (``redis://``, ``rediss://`` for TLS,
``unix://``; a password goes in the URL: ``redis://:secret@host:6379/0``)."""
DEFAULT_NAMESPACE = "upscale"
"""The key prefix when none is given; give each deployment its own."""

_NAMESPACE = re.compile(r"[A-Za-z0-9_.:\-]{1,100}")
# Up to the last "@": redis-py takes a password holding "@" (it splits the address at the last
# one), and one holding "/" must not show either. A query's password= is hidden too.
_CREDENTIALS = re.compile(r"//.*@", re.DOTALL)
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&#]*", re.IGNORECASE)
_INSTALL = "pip install 'upscale_async[redis]'"


class RedisUnavailableError(UpscaleError, ConnectionError):
    """Redis could not be reached, or refused the connection, when a shared part started.

    Attributes:
        url: the URL tried, with any password replaced by ``***``.
    """

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


def redact_redis_url(url: str) -> str:
    """``url`` with its user and password (if any, in the address or the query) as ``***``."""
    return _QUERY_PASSWORD.sub(r"\1***", _CREDENTIALS.sub("//***@", url, count=1))


def redis_url(url: str | None = None) -> str:
    """The Redis URL to use: ``url``, else ``$UPSCALE_REDIS_URL``; ConfigurationError if neither."""
    chosen = url if url is not None else os.environ.get(REDIS_URL_ENV)
    if not chosen:
        raise ConfigurationError(
            f"no Redis URL: pass url=... or set {REDIS_URL_ENV} "
            "(for example redis://127.0.0.1:6379/0, or rediss://:password@host:6380/0 for TLS)"
        )
    if not chosen.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigurationError(
            f"the Redis URL must start with redis://, rediss:// (TLS) or unix://, "
            f"got {redact_redis_url(chosen)!r}"
        )
    return chosen


def check_namespace(namespace: str) -> str:
    """``namespace`` if it is a usable key prefix; ConfigurationError naming the rule if not."""
    if not isinstance(namespace, str) or not _NAMESPACE.fullmatch(namespace):
        raise ConfigurationError(
            f"namespace must be 1-100 characters of letters, digits and _ . : -, "
            f"got {namespace!r}; give each deployment its own (for example 'upscale:prod')"
        )
    return namespace


def _redis_module() -> Any:
    try:
        import redis.asyncio as redis_asyncio
    except ImportError as exc:  # pragma: no cover - exercised in the runtime-only venv
        raise ImportError(
            f"the Redis parts of upscale_async need the 'redis' extra: {_INSTALL}"
        ) from exc
    return redis_asyncio


async def connect(url: str | None = None, *, timeout: float = 5.0, **options: Any) -> Redis:
    """A connected ``redis.asyncio.Redis`` for ``url`` (or ``$UPSCALE_REDIS_URL``), pinged once.

    ``options`` go to ``Redis.from_url`` (``socket_timeout=`` and the like). Raises
    :class:`RedisUnavailableError`, naming the URL (password hidden), when the server cannot
    be reached or refuses the connection within ``timeout`` seconds.
    """
    chosen = redis_url(url)
    redis_asyncio = _redis_module()
    options.setdefault("socket_connect_timeout", timeout)
    options.setdefault("health_check_interval", 15)
    client = redis_asyncio.Redis.from_url(chosen, **options)
    try:
        await client.ping()
    except Exception as exc:
        await client.aclose()
        shown = redact_redis_url(chosen)
        raise RedisUnavailableError(
            f"cannot reach Redis at {shown}: {type(exc).__name__}: {exc}; check that the server "
            f"runs and that the URL (argument or {REDIS_URL_ENV}) names it, with the password "
            "in the URL if it needs one",
            url=shown,
        ) from exc
    return client  # type: ignore[no-any-return]


async def open_client(
    url: str | None, given: Redis | None, *, timeout: float, shown: str, who: str
) -> Redis:
    """:func:`connect` to ``url``, or check that a client the user gave answers a ping.

    ``who`` names the part opening it in the error (``"the ledger of batch 'b'"``); ``shown``
    is the address to name, its password hidden.
    """
    if given is None:
        return await connect(url, timeout=timeout)
    try:
        with anyio.fail_after(timeout):
            await given.ping()
    except Exception as exc:
        raise RedisUnavailableError(
            f"{who} cannot reach Redis through {shown}: {type(exc).__name__}: {exc}; check "
            "that the server runs and the client points at it",
            url=shown,
        ) from exc
    return given
