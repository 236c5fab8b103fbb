"""Helpers for the webhook tests: secrets, payloads, and signing by the standardwebhooks package."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime
from typing import Any

import orjson
from standardwebhooks.webhooks import Webhook

SECRET = "whsec_" + base64.b64encode(b"upscale-test-secret-0123456789ab").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"another-secret-for-the-rotation!").decode()

S2_EXAMPLE = (
    b'{"secure_request_id":"a1b2c3d4-e5f6-7890-abcd-ef1234567890","status":"complete",'
    b'"completed_at":"2024-02-08T11:30:45Z","requested_messages_count":12,'
    b'"generated_messages_count":12}'
)


def sign(
    body: bytes | dict[str, Any],
    *,
    secret: str = SECRET,
    msg_id: str = "msg_1",
    timestamp: float | None = None,
) -> tuple[bytes, dict[str, str]]:
    """Sign a body with the standardwebhooks reference package; return (body, headers)."""
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    when = datetime.fromtimestamp(time.time() if timestamp is None else timestamp, tz=UTC)
    signature = Webhook(secret).sign(msg_id, when, raw.decode())
    headers = {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signature,
    }
    return raw, headers


def event_body(request_id: str = "req-1", **extra: Any) -> dict[str, Any]:
    """A completion payload for ``request_id``."""
    return {
        "secure_request_id": request_id,
        "status": "complete",
        "completed_at": "2024-02-08T11:30:45Z",
        "requested_messages_count": 2,
        "generated_messages_count": 2,
        **extra,
    }
