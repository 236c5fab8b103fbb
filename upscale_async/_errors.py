"""The exception tree of upscale_async.

::

    UpscaleError
    ├── ConfigurationError (also ValueError)   no API key, bad base URL
    ├── ClientClosedError (also RuntimeError)  a closed client was used
    ├── ValidationError (also ValueError)      client-side checks failed, before any request
    ├── APIError                               the server answered with an error status
    │   ├── BadRequestError           400
    │   ├── AuthenticationError       401
    │   ├── InsufficientCreditsError  402
    │   ├── NotFoundError             404
    │   ├── UnprocessableEntityError  422 (the server's messages split back apart)
    │   ├── RateLimitError            429 (``retry_after``)
    │   └── ServerError               5xx
    ├── TransportError                         the request did not complete (connection, DNS, ...)
    │   └── RequestTimeoutError
    ├── ResponseValidationError                a 2xx body that does not fit the contract
    ├── CompletionError                        some waits failed: ``.completed``, ``.errors``,
    │   │                                      ``.pending``  (in _results)
    │   └── CompletionTimeoutError (also TimeoutError)  await_completion's deadline passed
    ├── BatchInterruptedError                  a batch stopped early: ``.partial``, ``.reason``
    │                                          (in _results: both carry results, and this
    │                                          module imports nothing of the package)
    ├── WebhookVerificationError               bad or stale webhook signature
    └── WebhookPayloadError                    a webhook body that is not a completion event
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "ConfigurationError",
    "InsufficientCreditsError",
    "NotFoundError",
    "RateLimitError",
    "RequestTimeoutError",
    "ResponseValidationError",
    "ServerError",
    "TransportError",
    "UnprocessableEntityError",
    "UpscaleError",
    "ValidationError",
    "WebhookPayloadError",
    "WebhookVerificationError",
]


def _rebuild(cls: type[UpscaleError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class UpscaleError(Exception):
    """Base class of every error raised by upscale_async.

    Every error pickles with its fields (process pools and multiprocessing queues pickle
    exceptions): the message and the attributes are restored without calling ``__init__``.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


class ConfigurationError(UpscaleError, ValueError):
    """The client was configured wrongly (for example, no API key could be found)."""


class ClientClosedError(UpscaleError, RuntimeError):
    """A request was made on an :class:`UpscaleClient` after ``aclose()``."""


class ValidationError(UpscaleError, ValueError):
    """Client-side validation failed; nothing was sent.

    ``errors`` holds every problem as ``(path, message)`` pairs, in the server's order, e.g.
    ``("lead_data[3].first_name", "lead_data[3].first_name is required but was missing or blank")``.
    """

    def __init__(self, errors: Sequence[tuple[str, str]]) -> None:
        self.errors: list[tuple[str, str]] = list(errors)
        self.messages: list[str] = [message for _, message in self.errors]
        count = len(self.errors)
        shown = "\n".join(f"  - {m}" for m in self.messages[:20])
        more = f"\n  ... and {count - 20} more" if count > 20 else ""
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{count} validation {noun}:\n{shown}{more}")


class APIError(UpscaleError):
    """The Upscale API answered with an error status.

    Attributes: ``status``, ``message`` (the body's ``error``), ``body`` (parsed JSON, or the
    text when it was not JSON), ``method`` and ``path`` of the request, ``request_id`` when
    the server sent an ``X-Request-Id`` header. When it sent a readable ``Retry-After``,
    ``retry_after`` is the wait the SDK used for it (seconds, capped at
    ``RetryPolicy.retry_after_max``, then multiplied by ``time_scale``) and
    ``retry_after_header`` the header as the server sent it (seconds or an HTTP date).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        body: Any = None,
        method: str = "",
        path: str = "",
        request_id: str | None = None,
        retry_after: float | None = None,
        retry_after_header: str | None = None,
    ) -> None:
        self.message = message
        self.retry_after = retry_after
        self.retry_after_header = retry_after_header
        self.status = status
        self.body = body
        self.method = method
        self.path = path
        self.request_id = request_id
        where = f" ({method} {path})" if method else ""
        rid = f" [request id {request_id}]" if request_id else ""
        super().__init__(f"HTTP {status}{where}: {message}{rid}")


class BadRequestError(APIError):
    """400: the server could not read the request (for example, malformed JSON)."""


class AuthenticationError(APIError):
    """401: the API key is missing, invalid or revoked.

    Set ``UPSCALE_API_KEY`` or pass ``api_key=`` with a valid, non-revoked key. In a batch it
    is the ``__cause__`` of the :class:`BatchInterruptedError` that carries the partial result.
    """


class InsufficientCreditsError(APIError):
    """402: not enough credits for the request; nothing was queued. Never retried."""


class NotFoundError(APIError):
    """404: the server does not know the resource (for example, a ``secure_request_id``)."""


class UnprocessableEntityError(APIError):
    """422: the server rejected the request; ``messages`` holds each of its messages."""

    def __init__(self, message: str, *, messages: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.messages: list[str] = list(messages) or [message]


class RateLimitError(APIError):
    """429: too many requests; ``retry_after`` is the wait used (capped, scaled), if any.

    ``retry_after_header`` keeps the server's ``Retry-After`` exactly as it was sent.
    """


class ServerError(APIError):
    """5xx: the server failed; retried with backoff before this is raised."""


class TransportError(UpscaleError):
    """The request did not complete: connection refused or dropped, DNS, TLS, ..."""

    def __init__(self, message: str, *, method: str = "", path: str = "") -> None:
        self.method = method
        self.path = path
        where = f" ({method} {path})" if method else ""
        super().__init__(f"{message}{where}")


class RequestTimeoutError(TransportError):
    """The request took longer than the configured timeout."""


class ResponseValidationError(UpscaleError):
    """A successful response whose body does not fit the API contract.

    ``status`` is the HTTP status of an answer whose body could not be read at all: a 2xx
    body that is not JSON, or any body over ``max_response_size``. Hooks, logs and telemetry
    report that status with this error. It is None when the body was read and its fields did
    not fit the contract. ``body`` is the raw body, when it was kept.
    """

    status: int | None = None  # also what an error pickled before it had a status reads

    def __init__(self, message: str, *, body: Any = None, status: int | None = None) -> None:
        self.body = body
        self.status = status
        super().__init__(message)


class WebhookVerificationError(UpscaleError):
    """A webhook's signature is missing, wrong, or its timestamp is outside the tolerance."""


class WebhookPayloadError(UpscaleError):
    """A webhook body is not a completion event (not JSON, wrong shape, or too large)."""
