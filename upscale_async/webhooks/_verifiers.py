"""Webhook signature verifiers (D9): Standard Webhooks, plain HMAC, and an explicit opt-out.

Every verifier has one method, ``verify(body, headers) -> str | None``: it returns the webhook id
when the scheme carries one and raises :class:`~upscale_async.WebhookVerificationError` with a
message that says what was wrong. Comparisons are constant-time, several secrets may be given
(rotation), header names are matched case-insensitively, and secrets never appear in a repr.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Literal, Protocol, runtime_checkable

from .._errors import WebhookVerificationError
from .._spec.signing import decode_secret, standard_signature

__all__ = [
    "DEFAULT_TOLERANCE",
    "HmacSignatureVerifier",
    "StandardWebhooksVerifier",
    "UnverifiedWebhooks",
    "WebhookVerifier",
    "get_header",
]

DEFAULT_TOLERANCE = 300.0
"""Seconds a Standard Webhooks timestamp may differ from the local clock, either way."""

_DIGITS = re.compile(r"[0-9]{1,12}")


@runtime_checkable
class WebhookVerifier(Protocol):
    """Checks that a webhook's raw body and headers were signed by Upscale."""

    def verify(self, body: bytes, headers: Mapping[str, str]) -> str | None:
        """Return the webhook id (None when the scheme has none); raise on a bad signature.

        Raises :class:`~upscale_async.WebhookVerificationError`.
        """
        ...


def get_header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name`` in any mapping, matched case-insensitively.

    Works with aiohttp's ``CIMultiDictProxy``, Starlette's ``Headers``, Django's
    ``request.headers`` and plain dicts whatever the case of their keys. A value that is not a
    string counts as missing.
    """
    value = headers.get(name)
    if value is None:
        value = headers.get(name.lower())
    if value is None:
        wanted = name.lower()
        for key, candidate in headers.items():
            if isinstance(key, str) and key.lower() == wanted:
                value = candidate
                break
    return value if isinstance(value, str) else None


def _keys(secret_or_secrets: str | bytes | Sequence[str | bytes]) -> tuple[bytes, ...]:
    if isinstance(secret_or_secrets, str | bytes):
        secrets: list[object] = [secret_or_secrets]
    elif isinstance(secret_or_secrets, Sequence):
        secrets = list(secret_or_secrets)
    else:
        raise TypeError(
            "secret must be a str or bytes, or a list of them (several secrets allow rotation), "
            f"not {type(secret_or_secrets).__name__}"
        )
    keys: list[bytes] = []
    for i, secret in enumerate(secrets):
        if not isinstance(secret, str | bytes):
            raise TypeError(f"secret #{i + 1} must be a str or bytes, not {type(secret).__name__}")
        try:
            key = decode_secret(secret)
        except (binascii.Error, ValueError):
            raise ValueError(
                f"secret #{i + 1} starts with 'whsec_' but the rest is not valid base64"
            ) from None
        if not key:
            raise ValueError(f"secret #{i + 1} is empty; pass the webhook secret from Upscale")
        keys.append(key)
    if not keys:
        raise ValueError("at least one webhook secret is required")
    return tuple(keys)


def _plural(n: int) -> str:
    return "1 secret" if n == 1 else f"{n} secrets"


class StandardWebhooksVerifier:
    """Verifies the Standard Webhooks scheme the emulator signs with (D9).

    Headers ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``
    (``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, possibly several separated by
    spaces). A ``whsec_`` secret is base64-decoded, any other str is used as its UTF-8 bytes.

    Args:
        secret_or_secrets: one secret, or several (all are tried: rotate without downtime).
        tolerance: seconds the timestamp may be older or newer than ``clock()``.
        clock: returns the current Unix time (injectable for tests).

    Example::

        verifier = StandardWebhooksVerifier(os.environ["UPSCALE_WEBHOOK_SECRET"])
        webhook_id = verifier.verify(body, request.headers)
    """

    __slots__ = ("_clock", "_keys", "tolerance")

    def __init__(
        self,
        secret_or_secrets: str | bytes | Sequence[str | bytes],
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not tolerance >= 0:  # also rejects NaN
            raise ValueError(f"tolerance must be a number of seconds >= 0, not {tolerance!r}")
        self._keys = _keys(secret_or_secrets)
        self.tolerance = float(tolerance)
        self._clock = clock

    def __repr__(self) -> str:
        return f"StandardWebhooksVerifier(<{_plural(len(self._keys))}>, tolerance={self.tolerance})"

    def verify(self, body: bytes, headers: Mapping[str, str]) -> str:
        """Return the ``webhook-id``; raise WebhookVerificationError saying what failed."""
        msg_id = get_header(headers, "webhook-id")
        stamp = get_header(headers, "webhook-timestamp")
        signature = get_header(headers, "webhook-signature")
        missing = [
            name
            for name, value in (
                ("webhook-id", msg_id),
                ("webhook-timestamp", stamp),
                ("webhook-signature", signature),
            )
            if not value
        ]
        if missing or msg_id is None or stamp is None or signature is None:
            raise WebhookVerificationError(f"missing header(s): {', '.join(missing)}")
        stamp = stamp.strip()
        if not _DIGITS.fullmatch(stamp):
            raise WebhookVerificationError(
                f"webhook-timestamp must be Unix seconds (digits only), got {stamp[:40]!r}"
            )
        timestamp = int(stamp)
        now = self._clock()
        if timestamp < now - self.tolerance:
            raise WebhookVerificationError(
                f"webhook-timestamp is too old: {now - timestamp:.0f} s in the past "
                f"(tolerance {self.tolerance:g} s)"
            )
        if timestamp > now + self.tolerance:
            raise WebhookVerificationError(
                f"webhook-timestamp is too far in the future: {timestamp - now:.0f} s ahead "
                f"(tolerance {self.tolerance:g} s)"
            )
        given: list[bytes] = []
        for part in signature.split():
            version, _, value = part.partition(",")
            if version != "v1":
                continue
            try:
                given.append(base64.b64decode(value, validate=True))
            except (binascii.Error, ValueError):
                continue
        if not given:
            raise WebhookVerificationError(
                "webhook-signature holds no well-formed v1 signature (expected 'v1,<base64>')"
            )
        for key in self._keys:
            expected = standard_signature(key, msg_id, timestamp, body)
            for candidate in given:
                if hmac.compare_digest(expected, candidate):
                    return msg_id
        raise WebhookVerificationError(
            f"webhook-signature does not match the body (checked {_plural(len(self._keys))})"
        )


class HmacSignatureVerifier:
    """Verifies a plain HMAC of the raw body carried in one header (configurable, D9, §8 #18).

    Upscale has not published its signing scheme; this covers the common "HMAC of the body in a
    header" family. It is unverified against the real service.

    Args:
        secret_or_secrets: one secret, or several for rotation (a ``whsec_`` str is base64,
            another str its UTF-8 bytes; pass bytes to use them as they are).
        header: the header holding the signature, matched case-insensitively.
        digest: a ``hashlib`` algorithm name (``"sha256"``, ``"sha512"``, ``"sha1"``...).
        encoding: ``"hex"`` (case-insensitive) or ``"base64"``.
        prefix: text before the signature in the header, e.g. ``"sha256="``.

    Example::

        verifier = HmacSignatureVerifier(secret, header="X-Hub-Signature-256", prefix="sha256=")
    """

    __slots__ = ("_keys", "digest", "encoding", "header", "prefix")

    def __init__(
        self,
        secret_or_secrets: str | bytes | Sequence[str | bytes],
        *,
        header: str = "X-Upscale-Signature",
        digest: str = "sha256",
        encoding: Literal["hex", "base64"] = "hex",
        prefix: str = "",
    ) -> None:
        if not isinstance(header, str) or not header:
            raise ValueError("header must be a non-empty header name")
        if encoding not in ("hex", "base64"):
            raise ValueError(f"encoding must be 'hex' or 'base64', not {encoding!r}")
        try:
            hashlib.new(digest)
        except (ValueError, TypeError):
            raise ValueError(
                f"digest {digest!r} is not a hashlib algorithm (try 'sha256' or 'sha512')"
            ) from None
        self._keys = _keys(secret_or_secrets)
        self.header = header
        self.digest = digest
        self.encoding = encoding
        self.prefix = prefix

    def __repr__(self) -> str:
        return (
            f"HmacSignatureVerifier(<{_plural(len(self._keys))}>, header={self.header!r}, "
            f"digest={self.digest!r}, encoding={self.encoding!r}, prefix={self.prefix!r})"
        )

    def _encode(self, mac: bytes) -> bytes:
        if self.encoding == "hex":
            return binascii.hexlify(mac)
        return base64.b64encode(mac)

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Return None (the scheme has no webhook id); raise WebhookVerificationError."""
        value = get_header(headers, self.header)
        if not value:
            raise WebhookVerificationError(f"missing header: {self.header}")
        value = value.strip()
        if not value.startswith(self.prefix):
            raise WebhookVerificationError(
                f"{self.header} does not start with the expected prefix {self.prefix!r}"
            )
        given = value[len(self.prefix) :].strip().encode("utf-8", "replace")
        if self.encoding == "hex":
            given = given.lower()
        for key in self._keys:
            expected = self._encode(hmac.new(key, body, self.digest).digest())
            if hmac.compare_digest(expected, given):
                return None
        raise WebhookVerificationError(
            f"{self.header} does not match the body (HMAC-{self.digest} {self.encoding}, "
            f"checked {_plural(len(self._keys))})"
        )


class UnverifiedWebhooks:
    """Accepts every webhook without checking anything. DANGEROUS: use only in local tests.

    Anyone who can reach the receiver can then forge completion events. The harm is bounded
    (completion is always confirmed with ``retrieve_messages``), but a forger can still make
    the SDK retrieve early and often. Returns the ``webhook-id`` header when present, so
    duplicate deliveries are still recognised.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "UnverifiedWebhooks()"

    def verify(self, body: bytes, headers: Mapping[str, str]) -> str | None:
        """Check nothing; return the ``webhook-id`` header if there is one."""
        return get_header(headers, "webhook-id") or None
