"""Sign webhook bodies the way the emulator (and Upscale, D9) does, for tests of a receiver."""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from .._spec.signing import decode_secret, standard_headers

__all__ = ["signed_webhook", "signed_webhook_headers"]


def signed_webhook_headers(
    body: bytes,
    secret: str | bytes,
    *,
    webhook_id: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """The Standard Webhooks headers the emulator would send with ``body``.

    ``secret`` is a ``whsec_`` secret (base64) or raw bytes; ``timestamp`` defaults to now.
    """
    webhook_id = webhook_id or f"msg_{uuid.uuid4().hex}"
    timestamp = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json",
        **standard_headers(decode_secret(secret), webhook_id, timestamp, body),
    }


def signed_webhook(
    payload: Mapping[str, Any],
    secret: str | bytes,
    *,
    webhook_id: str | None = None,
    timestamp: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A JSON body for ``payload`` and its signed headers, ready to POST to a receiver."""
    body = orjson.dumps(payload)
    return body, signed_webhook_headers(body, secret, webhook_id=webhook_id, timestamp=timestamp)
