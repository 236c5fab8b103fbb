"""Event hooks: plain callables (sync or async) told of each request, response, retry and webhook.

:class:`EventHooks` groups them; ``UpscaleClient(hooks=...)`` calls the request, response and
retry hooks, ``WebhookReceiver(hooks=...)`` and ``webhook_handler(hooks=...)`` the webhook ones.
A hook runs inline, in the task that makes the call (an async one is awaited there), so keep it
quick. A hook that raises is reported and does not change the call: the exception is logged at
ERROR on the ``upscale_async`` logger with the hook's name and traceback, and the call goes on
exactly as if the hook had returned (a hook cannot fail, retry or alter a request).
Cancellation is never caught.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, TypeAlias

import attrs

from ._errors import UpscaleError, WebhookPayloadError, WebhookVerificationError
from ._models import CompletionEvent

__all__ = [
    "EventHooks",
    "RequestEvent",
    "ResponseEvent",
    "RetryEvent",
    "WebhookAcceptedEvent",
    "WebhookRejectedEvent",
    "fire",
]

logger: Final = logging.getLogger("upscale_async")


@attrs.frozen(kw_only=True)
class RequestEvent:
    """An attempt is about to be sent (``attempt`` is 1 for the first, 2 for the first retry...).

    ``secure_request_id`` is the id a retrieve asks for (None for other calls).
    """

    method: str
    path: str
    attempt: int
    secure_request_id: str | None = None


@attrs.frozen(kw_only=True)
class ResponseEvent:
    """An attempt ended: with an answer (``status``), or without one (``status`` None).

    ``error`` is the typed error of a failed attempt (None for a successful attempt);
    ``elapsed`` the seconds this attempt took; ``request_id`` the ``X-Request-Id`` header when
    the service sent one;
    ``secure_request_id`` the request's id when known (a retrieve's, or a generation's answer);
    ``headers`` the answer's headers (empty for a failed attempt: its error has the details).
    """

    method: str
    path: str
    attempt: int
    status: int | None
    elapsed: float
    request_id: str | None = None
    secure_request_id: str | None = None
    error: UpscaleError | None = attrs.field(default=None, eq=False)
    headers: Mapping[str, str] = attrs.field(factory=dict, eq=False, repr=False)


@attrs.frozen(kw_only=True)
class RetryEvent:
    """Attempt ``attempt`` failed with ``error`` and the call is retried after ``delay`` seconds."""

    method: str
    path: str
    attempt: int
    delay: float
    error: UpscaleError = attrs.field(eq=False)


@attrs.frozen(kw_only=True)
class WebhookAcceptedEvent:
    """A webhook passed verification and was handed to the hub (``duplicate``: seen before)."""

    event: CompletionEvent
    duplicate: bool


@attrs.frozen(kw_only=True)
class WebhookRejectedEvent:
    """A webhook was refused: ``status`` 401 (signature), 400 (payload) or 413 (too large)."""

    status: int
    error: WebhookVerificationError | WebhookPayloadError = attrs.field(eq=False)
    remote: str | None = None


Hook: TypeAlias = Callable[[Any], Awaitable[object] | object]


def _check_hook(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not callable(value):
        raise TypeError(
            f"EventHooks.{attribute.name} must be a function or coroutine function taking one "
            f"event, or None; got {value!r}"
        )


@attrs.frozen(kw_only=True)
class EventHooks:
    """Callables told of what the client and the webhook receiver do; each is optional.

    Each takes one event and may be a plain function or a coroutine function:
    ``on_request`` (:class:`RequestEvent`, before each attempt), ``on_response``
    (:class:`ResponseEvent`, after each attempt, failed ones included), ``on_retry``
    (:class:`RetryEvent`, before each wait to retry), ``on_webhook_accepted``
    (:class:`WebhookAcceptedEvent`) and ``on_webhook_rejected``
    (:class:`WebhookRejectedEvent`). A hook that raises is logged (ERROR, with its name) and
    the call goes on unchanged. Example::

        hooks = EventHooks(on_retry=lambda e: print("retrying", e.path, "after", e.error))
        async with UpscaleClient(hooks=hooks) as client: ...
    """

    on_request: Callable[[RequestEvent], object] | None = attrs.field(
        default=None, validator=_check_hook
    )
    on_response: Callable[[ResponseEvent], object] | None = attrs.field(
        default=None, validator=_check_hook
    )
    on_retry: Callable[[RetryEvent], object] | None = attrs.field(
        default=None, validator=_check_hook
    )
    on_webhook_accepted: Callable[[WebhookAcceptedEvent], object] | None = attrs.field(
        default=None, validator=_check_hook
    )
    on_webhook_rejected: Callable[[WebhookRejectedEvent], object] | None = attrs.field(
        default=None, validator=_check_hook
    )


async def fire(hook: Callable[[Any], object] | None, name: str, event: object) -> None:
    """Call ``hook`` with ``event`` (awaiting what it returns); log what it raises, never raise."""
    if hook is None:
        return
    try:
        result = hook(event)
        if inspect.isawaitable(result):
            await result
    except Exception:
        logger.exception(
            "event hook %s raised while handling %s; the exception is ignored and the call "
            "goes on unchanged (fix the hook)",
            name,
            type(event).__name__,
        )
