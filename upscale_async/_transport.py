"""The HTTP transport: one aiohttp session, and the only place aiohttp errors are translated.

:meth:`Transport.send` sends one request once and turns every failure into the SDK's typed
errors (the status-to-error map lives here); retrying is ``_retry``'s job.
Cancellation is never swallowed. The API key is sent in the ``Api-Key`` header and appears
nowhere else (not in logs, reprs or exception text). Several clients made by
``UpscaleClient.with_options`` share one transport, and so one session.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any, Final

import aiohttp
import attrs
import orjson
from yarl import URL

from ._config import DEFAULT_MAX_CONNECTIONS
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
        api_key: str,
        session: aiohttp.ClientSession | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._urls: dict[str, URL] = {}
        self._timeouts: dict[float | None, aiohttp.ClientTimeout] = {}
        self._session = session
        self._owns_session = session is None
        self._max_connections = max_connections
        self._closed = False
        self._get_headers = {"Api-Key": api_key, "Accept": "application/json"}
        if session is None or "User-Agent" not in session.headers:
            self._get_headers["User-Agent"] = _USER_AGENT
        self._body_headers = {**self._get_headers, "Content-Type": "application/json"}

    def __repr__(self) -> str:
        return f"<Transport base_url={self._base!r}>"

    @property
    def base_url(self) -> str:
        """The base URL every path is joined to (no trailing slash)."""
        return self._base

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
    ) -> Response:
        """Send one request once; a 2xx :class:`Response`, else the typed error (never retries)."""
        session = self._get_session()
        headers = self._get_headers if body is None else self._body_headers
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
                raw = await resp.read()
                status = resp.status
                resp_headers = resp.headers
        except TimeoutError as exc:
            raise RequestTimeoutError(
                f"no answer within {timeout} s", method=method, path=path
            ) from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise TransportError(
                f"connection failed: {type(exc).__name__}: {exc}", method=method, path=path
            ) from exc
        except aiohttp.ClientError as exc:
            raise TransportError(
                f"request failed: {type(exc).__name__}: {exc}", method=method, path=path
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
        }
        if status == 422:
            return UnprocessableEntityError(message, messages=split_messages(message), **kwargs)
        if status >= 500:
            return ServerError(message, **kwargs)
        return _STATUS_ERRORS.get(status, APIError)(message, **kwargs)
