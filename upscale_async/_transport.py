"""The HTTP transport: one aiohttp session, the only place aiohttp errors are translated, retries.

Every request goes through :meth:`Transport.request`, which retries connection errors,
timeouts, 408, 429 and 5xx with exponential backoff and jitter (honouring ``Retry-After``),
and turns every other failure into the SDK's typed errors. Cancellation is never swallowed.
The API key is sent in the ``Api-Key`` header and appears nowhere else (not in logs, reprs or
exception text).
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import time
from collections.abc import Mapping
from typing import Any, Final

import aiohttp
import attrs
import orjson
from yarl import URL

from ._config import DEFAULT_MAX_CONNECTIONS, RetryPolicy
from ._errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    InsufficientCreditsError,
    NotFoundError,
    RateLimitError,
    RequestTimeoutError,
    ResponseValidationError,
    ServerError,
    TransportError,
    UnprocessableEntityError,
    UpscaleError,
)
from ._spec.validation import split_messages
from ._version import __version__

logger: Final = logging.getLogger("upscale_async")

_RETRY_STATUSES: Final = frozenset({408, 429, 500, 502, 503, 504})
_STATUS_ERRORS: Final[dict[int, type[APIError]]] = {
    400: BadRequestError,
    401: AuthenticationError,
    402: InsufficientCreditsError,
    404: NotFoundError,
    422: UnprocessableEntityError,
    429: RateLimitError,
}
_USER_AGENT: Final = f"upscale-async/{__version__} aiohttp/{aiohttp.__version__}"


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
    """Owns (or borrows) the aiohttp session and sends every request with retries."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: str,
        timeout: float | None,
        retry: RetryPolicy,
        session: aiohttp.ClientSession | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._urls: dict[str, URL] = {}
        self._retry = retry
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session = session
        self._owns_session = session is None
        self._max_connections = max_connections
        self._closed = False
        self._random = random.Random()
        self._get_headers = {"Api-Key": api_key, "Accept": "application/json"}
        if session is None or "User-Agent" not in session.headers:
            self._get_headers["User-Agent"] = _USER_AGENT
        self._body_headers = {**self._get_headers, "Content-Type": "application/json"}

    def __repr__(self) -> str:
        return f"<Transport base_url={self._base!r}>"

    @property
    def base_url(self) -> str:
        return self._base

    @property
    def closed(self) -> bool:
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

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        retry: RetryPolicy | None = None,
    ) -> Response:
        """Send one request, retrying transient failures; returns a 2xx :class:`Response`."""
        session = self._get_session()
        policy = retry or self._retry
        url = self._url(path)
        headers = self._get_headers if body is None else self._body_headers
        attempt = 1
        while True:
            retry_after: float | None = None
            try:
                async with session.request(
                    method,
                    url,
                    params=params,
                    data=body,
                    headers=headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                ) as resp:
                    raw = await resp.read()
                    status = resp.status
                    resp_headers = resp.headers
            except TimeoutError as exc:
                error: UpscaleError = RequestTimeoutError(
                    f"no answer within {self._timeout.total} s", method=method, path=path
                )
                error.__cause__ = exc
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
                error = TransportError(
                    f"connection failed: {type(exc).__name__}: {exc}", method=method, path=path
                )
                error.__cause__ = exc
            except aiohttp.ClientError as exc:
                raise TransportError(
                    f"request failed: {type(exc).__name__}: {exc}", method=method, path=path
                ) from exc
            else:
                if 200 <= status < 300:
                    return Response(status, self._decode(raw, status, method, path), resp_headers)
                error = self._status_error(status, raw, resp_headers, method, path)
                if status not in _RETRY_STATUSES:
                    raise error
                retry_after = parse_retry_after(resp_headers.get("Retry-After"))
            if attempt >= policy.attempts:
                raise error
            if retry_after is not None:
                delay = min(retry_after, policy.retry_after_max)
            else:
                delay = policy.backoff(attempt, self._random.random())
            delay *= policy.time_scale
            logger.warning(
                "retrying %s %s in %.2f s (attempt %d of %d) after: %s",
                method,
                path,
                delay,
                attempt + 1,
                policy.attempts,
                error,
            )
            attempt += 1
            await asyncio.sleep(delay)

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
        }
        if status == 422:
            return UnprocessableEntityError(message, messages=split_messages(message), **kwargs)
        if status == 429:
            return RateLimitError(
                message, retry_after=parse_retry_after(headers.get("Retry-After")), **kwargs
            )
        if status >= 500:
            return ServerError(message, **kwargs)
        return _STATUS_ERRORS.get(status, APIError)(message, **kwargs)
