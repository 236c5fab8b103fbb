"""Standard Webhooks signing (D9), shared by the emulator (signs) and the verifiers (check).

``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{raw body}">``; a secret of the
form ``whsec_<base64>`` is decoded, any other secret is used as its UTF-8 bytes. The signature is
computed in one place, :func:`standard_signature`; :func:`sign_standard` and
:func:`standard_headers` format it for sending. The verifier computes the same digest of the
same :func:`signed_content` with :class:`Sha256Hmac`, which hashes each key's pads once instead
of once per webhook.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

__all__ = [
    "Sha256Hmac",
    "decode_secret",
    "sign_standard",
    "signed_content",
    "standard_headers",
    "standard_signature",
]

_PREFIX = "whsec_"
_BLOCK = 64  # SHA-256's block size in bytes
_IPAD = bytes(x ^ 0x36 for x in range(256))  # RFC 2104's pads, as translation tables
_OPAD = bytes(x ^ 0x5C for x in range(256))


def decode_secret(secret: str | bytes) -> bytes:
    """The HMAC key for a secret: ``whsec_``-prefixed secrets are base64, others are raw."""
    if isinstance(secret, bytes):
        return secret
    if secret.startswith(_PREFIX):
        encoded = secret[len(_PREFIX) :]
        # Pad like the reference implementation, so an unpadded secret works as it does there.
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4))
    return secret.encode()


def standard_signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> bytes:
    """The raw HMAC-SHA256 digest of ``"{msg_id}.{timestamp}.{body}"`` under ``key``.

    ``msg_id`` is signed exactly as given, as UTF-8. One that is not valid UTF-8 text (a lone
    surrogate, which is how a server decodes undecodable header bytes) raises
    ``UnicodeEncodeError``: encoding it with replacement would make several ids sign alike, so
    a replay under a mangled id would verify as a new delivery. Verifiers refuse such ids first.
    """
    signed = signed_content(msg_id.encode("utf-8"), timestamp, body)
    return hmac.digest(key, signed, "sha256")  # OpenSSL's one-shot HMAC: no Python object


def signed_content(msg_id: bytes, timestamp: int, body: bytes) -> bytes:
    """What a Standard Webhooks signature covers: ``b"{msg_id}.{timestamp}.{body}"``."""
    return b"%s.%d.%s" % (msg_id, timestamp, body)


class Sha256Hmac:
    """HMAC-SHA256 under one key (RFC 2104), with the key's two padded blocks hashed once.

    ``Sha256Hmac(key).digest(msg) == hmac.digest(key, msg, "sha256")`` for every key and
    message; each digest then costs two copies of a hash state instead of a new HMAC.
    """

    __slots__ = ("_inner", "_outer")

    def __init__(self, key: bytes) -> None:
        if len(key) > _BLOCK:
            key = hashlib.sha256(key).digest()
        key = key.ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(key.translate(_IPAD))
        self._outer = hashlib.sha256(key.translate(_OPAD))

    def digest(self, msg: bytes) -> bytes:
        """The 32-byte HMAC-SHA256 of ``msg``."""
        inner = self._inner.copy()
        inner.update(msg)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()


def sign_standard(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value (``v1,<base64>``) for one delivery."""
    return "v1," + base64.b64encode(standard_signature(key, msg_id, timestamp, body)).decode()


def standard_headers(key: bytes, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three signed headers of one delivery: ``webhook-id``, ``-timestamp``, ``-signature``."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign_standard(key, msg_id, timestamp, body),
    }
