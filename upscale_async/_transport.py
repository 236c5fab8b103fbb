"""The HTTP transport: one aiohttp session, and the only place aiohttp errors are translated.

:meth:`Transport.send` sends one request once and turns every failure into the SDK's typed
errors (the status-to-error map lives here); retrying is ``_retry``'s job.
Cancellation is never swallowed. The API key is sent in the ``Api-Key`` header and appears
nowhere else (not in logs, reprs or exception text); neither do credentials written in the base
URL (``https://user:pass@host``: :func:`redact_url`). A plain-``http`` base URL to a host that is
not loopback logs one warning when the transport is made. Every body is read under a size cap
(``max_size``), in pieces, and never buffered past it. Several clients made by
``UpscaleClient.with_options`` share one transport, and so one session.
"""

from __future__ import annotations

import email.utils
import inspect
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TypeAlias

import aiohttp
import anyio
import attrs
import orjson
from yarl import URL

from ._config import DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_RESPONSE_SIZE
from ._errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConfigurationError,
    InsufficientCreditsError,
    NotFoundError,
    RateLimitError,
    RequestTimeoutError,
    ResponseValidationError,
    ServerError,
    TransportError,
    UnprocessableEntityError,
)
from ._spec.validation import split_messages
from ._version import __version__

_STATUS_ERRORS: Final[dict[int, type[APIError]]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: InsufficientCreditsError,
    404: NotFoundError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}
_USER_AGENT: Final = f"upscale-async/{__version__} aiohttp/{aiohttp.__version__}"
_LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})

logger: Final = logging.getLogger("upscale_async")

KeyProvider: TypeAlias = Callable[[], str | Awaitable[str]]
"""A function or coroutine function returning the current API key (for a key that rotates)."""


def redact_url(url: str) -> str:
    """``url`` with any ``user:password@`` credentials replaced by ``***@`` (for display)."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    authority, slash, tail = rest.partition("/")
    _, at, host = authority.rpartition("@")
    if not at:
        return url
    return f"{scheme}://***@{host}{slash}{tail}"


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1`` (traffic that never leaves the machine)."""
    if not host:
        return False
    name = host.strip("[]").rstrip(".").lower()
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def warn_if_cleartext(base_url: str) -> None:
    """Log one warning when ``base_url`` is plain ``http`` to a host that is not loopback."""
    try:
        url = URL(base_url)
    except ValueError:
        return
    if url.scheme.lower() == "http" and not is_loopback_host(url.host):
        logger.warning(
            "base_url %s uses plain http to %s, which is not loopback: the API key would "
            "travel in clear text; use an https:// base URL",
            redact_url(base_url),
            url.host,
        )


@attrs.frozen
class Response:
    """A successful (2xx) answer: its status, parsed JSON body and headers."""

    status: int
    data: Any
    headers: Mapping[str, str]


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date (None when unreadable)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_message(data: Any, text: str, status: int) -> str:
    if isinstance(data, Mapping):
        error = data.get("error")
        if isinstance(error, str) and error:
            return error
    return text.strip()[:500] or f"HTTP {status} with an empty body"


class Transport:
    """Owns (or borrows) the aiohttp session and sends each request once."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str | KeyProvider,
        session: aiohttp.ClientSession | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._shown = redact_url(self._base)
        parsed = URL(self._base)
        # The password, as written and decoded, is scrubbed from every message we build.
        self._secrets = tuple({p for p in (parsed.raw_password, parsed.password) if p})
        self._urls: dict[str, URL] = {}
        self._timeouts: dict[float | None, aiohttp.ClientTimeout] = {}
        self._session = session
        self._owns_session = session is None
        self._max_connections = max_connections
        self._closed = False
        # A callable key is asked on first use, and again after a 401 (rotate_key).
        self.key_provider: KeyProvider | None = None if isinstance(api_key, str) else api_key
        self.key_version = 0
        self._key_lock: anyio.Lock | None = None
        self._user_agent = session is None or "User-Agent" not in session.headers
        self._set_key(api_key if isinstance(api_key, str) else "")
        warn_if_cleartext(self._base)

    def _set_key(self, key: str) -> None:
        # New dicts rather than edits: a request being sent keeps the headers it started with.
        get_headers = {"Api-Key": key, "Accept": "application/json"}
        if self._user_agent:
            get_headers["User-Agent"] = _USER_AGENT
        self._get_headers = get_headers
        self._body_headers = {**get_headers, "Content-Type": "application/json"}
        self.key_version += 1

    async def _ask_key(self) -> str:
        assert self.key_provider is not None
        key = self.key_provider()
        if inspect.isawaitable(key):
            key = await key
        if not isinstance(key, str) or not key.strip():
            raise ConfigurationError(
                f"the api_key callable {self.key_provider!r} returned {type(key).__name__} "
                f"{'(blank)' if isinstance(key, str) else ''}; it must return the current "
                "Upscale API key as a non-empty str"
            )
        return key

    async def ensure_key(self) -> int:
        """The key's version, asking the key provider first when no key was fetched yet."""
        if self.key_provider is not None and self.key_version == 1:
            async with self._lock():
                if self.key_version == 1:  # not fetched by another task meanwhile
                    self._set_key(await self._ask_key())
        return self.key_version

    async def rotate_key(self, version: int) -> bool:
        """After a 401 on a request sent with key ``version``: True when a new key is in place.

        Another task may have replaced the key already (True, at once); else the provider is
        asked once more: True when it returned a different key, False when the same.
        """
        if self.key_provider is None:
            return False
        async with self._lock():
            if self.key_version != version:
                return True
            key = await self._ask_key()
            if key == self._get_headers["Api-Key"]:
                return False
            self._set_key(key)
            return True

    def _lock(self) -> anyio.Lock:
        if self._key_lock is None:
            self._key_lock = anyio.Lock()
        return self._key_lock

    def url(self, path: str) -> str:
        """The full URL of ``path``, credentials shown as ``***`` (for log lines)."""
        return redact_url(self._base) + path

    def headers(self, has_body: bool, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The headers an attempt sends (the API key included: redact before showing them)."""
        base = self._body_headers if has_body else self._get_headers
        return {**base, **extra} if extra else base

    def __repr__(self) -> str:
        return f"<Transport base_url={self._shown!r}>"

    @property
    def base_url(self) -> str:
        """The base URL every path is joined to (no trailing slash; credentials as ``***``)."""
        return self._shown

    def _scrub(self, text: str) -> str:
        """``text`` without the base URL's credentials (for exception messages)."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` was called."""
        return self._closed

    def _url(self, path: str) -> URL:
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = URL(self._base + path)
        return url

    def _get_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise ClientClosedError(
                "This UpscaleClient is closed; create a new one, or use it inside "
                "`async with UpscaleClient(...) as client:`"
            )
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections),
            )
        return self._session

    async def aclose(self) -> None:
        """Close the session if this transport owns it (a borrowed session is left open)."""
        self._closed = True
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()

    async def send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        timeout: float | None,
        max_size: int | None = DEFAULT_MAX_RESPONSE_SIZE,
        extra_headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Send one request once; a 2xx :class:`Response`, else the typed error (never retries).

        The body is read under ``max_size`` bytes (None: no cap); past it the connection is
        closed and :class:`ResponseValidationError` says the size seen and the cap.
        ``extra_headers`` (``with_options(headers=...)``) are added to the client's own.
        """
        session = self._get_session()
        headers = self._get_headers if body is None else self._body_headers
        if extra_headers:
            headers = {**headers, **extra_headers}
        try:
            async with session.request(
                method,
                self._url(path),
                params=params,
                data=body,
                headers=headers,
                timeout=self._timeouts.get(timeout) or self._timeout(timeout),
                allow_redirects=False,
            ) as resp:
                status = resp.status
                resp_headers = resp.headers
                raw = await _read_capped(resp, max_size, method, path)
        except TimeoutError as exc:
            raise RequestTimeoutError(
                f"no answer within {timeout} s", method=method, path=path
            ) from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise TransportError(
                self._scrub(f"connection failed: {type(exc).__name__}: {exc}"),
                method=method,
                path=path,
            ) from exc
        except aiohttp.ClientError as exc:
            raise TransportError(
                self._scrub(f"request failed: {type(exc).__name__}: {exc}"),
                method=method,
                path=path,
            ) from exc
        if 200 <= status < 300:
            return Response(status, self._decode(raw, status, method, path), resp_headers)
        raise self._status_error(status, raw, resp_headers, method, path)

    def _timeout(self, seconds: float | None) -> aiohttp.ClientTimeout:
        timeout = aiohttp.ClientTimeout(total=seconds)
        if len(self._timeouts) < 8:  # the client's own timeouts; a deadline's leftovers vary
            self._timeouts[seconds] = timeout
        return timeout

    @staticmethod
    def _decode(raw: bytes, status: int, method: str, path: str) -> Any:
        if not raw:
            return None
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise ResponseValidationError(
                f"{method} {path} answered {status} with a body that is not JSON: {raw[:200]!r}",
                body=raw,
                status=status,
            ) from exc

    @staticmethod
    def _status_error(
        status: int, raw: bytes, headers: Mapping[str, str], method: str, path: str
    ) -> APIError:
        text = raw.decode("utf-8", "replace")
        try:
            data: Any = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            data = text
        message = _error_message(data, text, status)
        kwargs: dict[str, Any] = {
            "status": status,
            "body": data,
            "method": method,
            "path": path,
            "request_id": headers.get("X-Request-Id"),
            "retry_after": parse_retry_after(headers.get("Retry-After")),
            "retry_after_header": headers.get("Retry-After"),
        }
        if status == 422:
            return UnprocessableEntityError(message, messages=split_messages(message), **kwargs)
        if status >= 500:
            return ServerError(message, **kwargs)
        return _STATUS_ERRORS.get(status, APIError)(message, **kwargs)


async def _read_capped(
    resp: aiohttp.ClientResponse, max_size: int | None, method: str, path: str
) -> bytes:
    """The body, read in pieces; ResponseValidationError as soon as it passes ``max_size``.

    A ``Content-Length`` over the cap fails before anything is read; otherwise the decoded bytes
    are counted as they come (a compressed body is capped after decompression).
    """
    if max_size is None:
        return await resp.read()
    declared = resp.content_length
    if declared is not None and declared > max_size:
        resp.close()
        raise _too_large(
            f"{declared} bytes (its Content-Length)", max_size, method, path, resp.status
        )
    pieces: list[bytes] = []
    size = 0
    while piece := await resp.content.readany():
        size += len(piece)
        if size > max_size:
            resp.close()  # stop reading: the rest is never downloaded or buffered
            raise _too_large(f"at least {size} bytes", max_size, method, path, resp.status)
        pieces.append(piece)
    return b"".join(pieces)


def _too_large(
    seen: str, max_size: int, method: str, path: str, status: int
) -> ResponseValidationError:
    return ResponseValidationError(
        f"{method} {path} answered a body of {seen}, over the cap of {max_size} bytes "
        f"(max_response_size); raise it with UpscaleClient(max_response_size=...) or "
        f"client.with_options(max_response_size=...), or None for no cap",
        status=status,
    )
