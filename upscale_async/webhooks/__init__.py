"""Completion webhooks: verify them, parse them, and hand them to the coroutines awaiting them.

::

    async with (
        CompletionHub() as hub,
        WebhookReceiver(hub, verifier=StandardWebhooksVerifier(secret)) as receiver,
    ):
        # send requests with completion_notification_url=receiver.url, then:
        event = await hub.wait(secure_request_id, timeout=600)

- Verifiers (D9): :class:`StandardWebhooksVerifier` (what the emulator signs with),
  :class:`HmacSignatureVerifier` (a plain HMAC of the body in one header), and
  :class:`UnverifiedWebhooks` (checks nothing: an explicit, dangerous choice).
- :func:`parse_webhook` works with any framework's raw body and headers.
- :class:`CompletionHub` keeps early events, drops duplicate deliveries and resolves waiters;
  where it keeps them is a :class:`CompletionBackend` (:class:`MemoryBackend` by default; a
  shared store lets several hubs, one per replica, wake each other's waiters).
- :func:`webhook_handler` (aiohttp.web) and :class:`WebhookReceiver` (a small server, bounded
  under abuse by :class:`ReceiverLimits`).

A webhook is only a hint: completion is always confirmed with ``retrieve_messages``.
asyncio only, like aiohttp.
"""

from __future__ import annotations

from .._errors import WebhookPayloadError, WebhookVerificationError
from .._models import CompletionEvent
from ._guard import ReceiverLimits
from ._hub import (
    DEFAULT_EVENT_TTL,
    DEFAULT_MAX_EVENT_BYTES,
    DEFAULT_MAX_EVENTS,
    DEFAULT_MAX_SEEN,
    CompletionBackend,
    CompletionHub,
    HubLink,
    HubStats,
    MemoryBackend,
)
from ._receiver import (
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_WEBHOOK_PATH,
    WebhookHandler,
    WebhookReceiver,
    parse_webhook,
    webhook_handler,
)
from ._verifiers import (
    DEFAULT_TOLERANCE,
    HmacSignatureVerifier,
    StandardWebhooksVerifier,
    UnverifiedWebhooks,
    WebhookVerifier,
)

__all__ = [
    "CompletionBackend",
    "CompletionEvent",
    "CompletionHub",
    "DEFAULT_EVENT_TTL",
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_MAX_EVENTS",
    "DEFAULT_MAX_EVENT_BYTES",
    "DEFAULT_MAX_SEEN",
    "DEFAULT_TOLERANCE",
    "DEFAULT_WEBHOOK_PATH",
    "HmacSignatureVerifier",
    "HubLink",
    "HubStats",
    "MemoryBackend",
    "ReceiverLimits",
    "StandardWebhooksVerifier",
    "UnverifiedWebhooks",
    "WebhookHandler",
    "WebhookPayloadError",
    "WebhookReceiver",
    "WebhookVerificationError",
    "WebhookVerifier",
    "parse_webhook",
    "webhook_handler",
]

for _name in __all__:
    _obj = globals()[_name]
    # Objects defined by this module's private parts show as upscale_async.webhooks.X; the
    # shared models and errors keep their upscale_async.X.
    if getattr(_obj, "__module__", "").startswith(
        (
            "upscale_async.webhooks._guard",
            "upscale_async.webhooks._hub",
            "upscale_async.webhooks._receiver",
            "upscale_async.webhooks._verifiers",
        )
    ):
        _obj.__module__ = __name__
del _name, _obj
