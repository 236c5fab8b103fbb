"""Standard Webhooks signing (D9), shared by the emulator (signs) and the verifiers (check).

``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{raw body}">``; a secret of the
form ``whsec_<base64>`` is decoded, any other secret is used as its UTF-8 bytes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

__all__ = ["decode_secret", "sign_standard"]

_PREFIX = "whsec_"


def decode_secret(secret: str | bytes) -> bytes:
    """The HMAC key for a secret: ``whsec_``-prefixed secrets are base64, others are raw."""
    if isinstance(secret, bytes):
        return secret
    if secret.startswith(_PREFIX):
        encoded = secret[len(_PREFIX) :]
        # Pad like the reference implementation, so an unpadded secret works as it does there.
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    return secret.encode()


def sign_standard(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value (``v1,<base64>``) for one delivery."""
    signed = b"%s.%d.%s" % (msg_id.encode(), timestamp, body)
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()
