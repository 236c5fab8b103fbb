"""Webhook signature verifiers (D9): Standard Webhooks, plain HMAC, and an explicit opt-out.

Every verifier has one method, ``verify(body, headers) -> str | None``: it returns the webhook id
when the scheme signs one (None otherwise) and raises
:class:`~upscale_async.WebhookVerificationError` with a message that says what was wrong. What it
returns becomes ``CompletionEvent.webhook_id`` and so the hub's duplicate key; a verifier never
returns unsigned material (with None, the key comes from the signed body). Comparisons are
constant-time, several secrets may be given (rotation), header names are matched
case-insensitively, and secrets never appear in a repr.
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
from .._spec.signing import Sha256Hmac, decode_secret, signed_content

__all__ = [
    "DEFAULT_TOLERANCE",
    "HmacSignatureVerifier",
    "StandardWebhooksVerifier",
    "UnverifiedWebhooks",
    "WebhookVerifier",
    "get_header",
]

DEFAULT_TOLERANCE = 300.0
"""Seconds a signed timestamp may differ from the local clock, either way (past or future)."""

_DIGITS = re.compile(r"[0-9]{1,12}")


@runtime_checkable
class WebhookVerifier(Protocol):
    """Checks that a webhook's raw body and headers were signed by Upscale."""

    def verify(self, body: bytes, headers: Mapping[str, str]) -> str | None:
        """Return the signed webhook id (None when the scheme signs none); raise on a bad one.

        The result is the hub's duplicate key, so it must come only from signed material.
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


def _check_tolerance(tolerance: float) -> float:
    if not tolerance >= 0:  # also rejects NaN
        raise ValueError(f"tolerance must be a number of seconds >= 0, not {tolerance!r}")
    return float(tolerance)


def _timestamp(value: str, name: str, now: float, tolerance: float) -> int:
    """The Unix seconds in header ``name``; raise unless within ``tolerance`` of ``now``.

    One comparison of the distance, so a timestamp ``tolerance`` seconds in the past and one
    ``tolerance`` seconds in the future are treated alike (both accepted).
    """
    if value.isdigit() and value.isascii() and len(value) <= 12:  # the usual case, at once
        stamp = value
    else:
        stamp = value.strip()
        if not _DIGITS.fullmatch(stamp):
            raise WebhookVerificationError(
                f"{name} must be Unix seconds (digits only), got {stamp[:40]!r}"
            )
    timestamp = int(stamp)
    skew = timestamp - now
    if abs(skew) > tolerance:
        where = "too old" if skew < 0 else "too far in the future"
        side = "in the past" if skew < 0 else "ahead"
        raise WebhookVerificationError(
            f"{name} is {where}: {abs(skew):.0f} s {side} (tolerance {tolerance:g} s)"
        )
    return timestamp


class StandardWebhooksVerifier:
    """Verifies the Standard Webhooks scheme the emulator signs with (D9).

    Headers ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and ``webhook-signature``
    (``v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, possibly several separated by
    spaces). A ``whsec_`` secret is base64-decoded, any other str is used as its UTF-8 bytes.

    What it protects against: a forged or altered body, id or timestamp; a delivery replayed
    after ``tolerance`` seconds (the signed timestamp is too old); and, within the tolerance,
    a replay counted twice (the signed ``webhook-id``, exactly as received, is the hub's
    duplicate key, and a non-UTF-8 id is refused). Keep the hub's ``ttl`` (default 1 h) above
    twice the tolerance so every replay that still verifies is remembered as a duplicate.

    Args:
        secret_or_secrets: one secret, or several (all are tried: rotate without downtime).
        tolerance: seconds the timestamp may be older or newer than ``clock()``.
        clock: returns the current Unix time (injectable for tests).

    Example::

        verifier = StandardWebhooksVerifier(os.environ["UPSCALE_WEBHOOK_SECRET"])
        webhook_id = verifier.verify(body, request.headers)
    """

    __slots__ = ("_clock", "_macs", "tolerance")

    def __init__(
        self,
        secret_or_secrets: str | bytes | Sequence[str | bytes],
        *,
        tolerance: float = DEFAULT_TOLERANCE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.tolerance = _check_tolerance(tolerance)
        self._macs = tuple(Sha256Hmac(key) for key in _keys(secret_or_secrets))
        self._clock = clock

    def __repr__(self) -> str:
        return f"StandardWebhooksVerifier(<{_plural(len(self._macs))}>, tolerance={self.tolerance})"

    def verify(self, body: bytes, headers: Mapping[str, str]) -> str:
        """Return the ``webhook-id`` exactly as received; raise WebhookVerificationError.

        The id is part of the signed content, so it is the duplicate key. An id that is not
        valid UTF-8 (undecodable bytes) is refused: it could not be signed as received.
        """
        msg_id = headers.get("webhook-id")
        stamp = headers.get("webhook-timestamp")
        signature = headers.get("webhook-signature")
        if not (  # the usual case: three non-empty strings under the lower-case names
            type(msg_id) is str
            and type(stamp) is str
            and type(signature) is str
            and msg_id
            and stamp
            and signature
        ):
            msg_id, stamp, signature = _standard_headers(headers)
        try:
            signed_id = msg_id.encode("utf-8")
        except UnicodeEncodeError:
            raise WebhookVerificationError("webhook-id is not valid UTF-8; refused") from None
        timestamp = _timestamp(stamp, "webhook-timestamp", self._clock(), self.tolerance)
        given = _v1_signatures(signature)
        signed = signed_content(signed_id, timestamp, body)
        for mac in self._macs:
            expected = mac.digest(signed)
            for candidate in given:
                if hmac.compare_digest(expected, candidate):
                    return msg_id
        raise WebhookVerificationError(
            f"webhook-signature does not match the body (checked {_plural(len(self._macs))})"
        )


def _standard_headers(headers: Mapping[str, str]) -> tuple[str, str, str]:
    """The three Standard Webhooks headers, matched case-insensitively; raise if one is missing."""
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
    return msg_id, stamp, signature


def _v1_signatures(signature: str) -> list[bytes]:
    """The decoded ``v1,<base64>`` signatures of a ``webhook-signature``; raise if none is."""
    given: list[bytes] = []
    for part in signature.split():
        version, _, value = part.partition(",")
        if version != "v1":
            continue
        try:  # what base64.b64decode(value, validate=True) does, without its wrapper
            given.append(binascii.a2b_base64(value, strict_mode=True))
        except (binascii.Error, ValueError):
            continue
    if not given:
        raise WebhookVerificationError(
            "webhook-signature holds no well-formed v1 signature (expected 'v1,<base64>')"
        )
    return given


class HmacSignatureVerifier:
    """Verifies a plain HMAC of the raw body carried in one header (configurable, D9, §8 #18).

    Upscale has not published its signing scheme; this covers the common "HMAC of the body in a
    header" family. It is unverified against the real service.

    What it protects against: a forged or altered body. Without ``timestamp_header`` nothing
    signed says *when*, so a captured delivery stays valid forever: the hub drops its replay as
    a duplicate only while it remembers the key (``ttl``, default 1 h). With
    ``timestamp_header``, the HMAC covers ``"{timestamp}.{body}"`` and a delivery older or
    newer than ``tolerance`` is refused, so a replay fails once the tolerance has passed.

    The scheme signs no webhook id, so :meth:`verify` returns None and the hub's duplicate
    key comes from the signed body (the request id with ``webhook_triggered_at``, or with
    ``status``): a replay of a captured body, and Upscale's own retry of it, are duplicates.
    An unsigned ``webhook-id`` header is ignored.

    Args:
        secret_or_secrets: one secret, or several for rotation (a ``whsec_`` str is base64,
            another str its UTF-8 bytes; pass bytes to use them as they are).
        header: the header holding the signature, matched case-insensitively.
        digest: a ``hashlib`` algorithm name (``"sha256"``, ``"sha512"``, ``"sha1"``...).
        encoding: ``"hex"`` (case-insensitive) or ``"base64"``.
        prefix: text before the signature in the header, e.g. ``"sha256="``.
        timestamp_header: a header holding the Unix seconds of the delivery, covered by the
            HMAC as ``"{timestamp}.{body}"``; None (the default) signs the body alone.
        tolerance: seconds the timestamp may be older or newer than ``clock()``.
        clock: returns the current Unix time (injectable for tests).

    Example::

        verifier = HmacSignatureVerifier(
            secret, header="X-Upscale-Signature", timestamp_header="X-Upscale-Timestamp"
        )
    """

    __slots__ = (
        "_clock",
        "_keys",
        "digest",
        "encoding",
        "header",
        "prefix",
        "timestamp_header",
        "tolerance",
    )

    def __init__(
        self,
        secret_or_secrets: str | bytes | Sequence[str | bytes],
        *,
        header: str = "X-Upscale-Signature",
        digest: str = "sha256",
        encoding: Literal["hex", "base64"] = "hex",
        prefix: str = "",
        timestamp_header: str | None = None,
        tolerance: float = DEFAULT_TOLERANCE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(header, str) or not header:
            raise ValueError("header must be a non-empty header name")
        if timestamp_header is not None and (
            not isinstance(timestamp_header, str) or not timestamp_header
        ):
            raise ValueError("timestamp_header must be a non-empty header name, or None")
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
        self.timestamp_header = timestamp_header
        self.tolerance = _check_tolerance(tolerance)
        self._clock = clock

    def __repr__(self) -> str:
        stamp = (
            f", timestamp_header={self.timestamp_header!r}, tolerance={self.tolerance:g}"
            if self.timestamp_header
            else ""
        )
        return (
            f"HmacSignatureVerifier(<{_plural(len(self._keys))}>, header={self.header!r}, "
            f"digest={self.digest!r}, encoding={self.encoding!r}, prefix={self.prefix!r}{stamp})"
        )

    def _encode(self, mac: bytes) -> bytes:
        if self.encoding == "hex":
            return binascii.hexlify(mac)
        return base64.b64encode(mac)

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Return None (the scheme signs no webhook id); raise WebhookVerificationError.

        Checks the timestamp first when ``timestamp_header`` is set, then the HMAC.
        """
        value = get_header(headers, self.header)
        if not value:
            raise WebhookVerificationError(f"missing header: {self.header}")
        signed = body
        if self.timestamp_header is not None:
            stamp = get_header(headers, self.timestamp_header)
            if not stamp:
                raise WebhookVerificationError(f"missing header: {self.timestamp_header}")
            when = _timestamp(stamp, self.timestamp_header, self._clock(), self.tolerance)
            signed = b"%d.%s" % (when, body)
        value = value.strip()
        if not value.startswith(self.prefix):
            raise WebhookVerificationError(
                f"{self.header} does not start with the expected prefix {self.prefix!r}"
            )
        given = value[len(self.prefix) :].strip().encode("utf-8", "replace")
        if self.encoding == "hex":
            given = given.lower()
        for key in self._keys:
            expected = self._encode(hmac.new(key, signed, self.digest).digest())
            if hmac.compare_digest(expected, given):
                return None
        raise WebhookVerificationError(
            f"{self.header} does not match the body (HMAC-{self.digest} {self.encoding}, "
            f"checked {_plural(len(self._keys))})"
        )


class UnverifiedWebhooks:
    """Accepts every webhook without checking anything. DANGEROUS: use only in local tests.

    Protects against nothing. Anyone who can reach the receiver can then forge completion
    events. The harm is bounded (completion is always confirmed with ``retrieve_messages``),
    but a forger can still make the SDK retrieve early and often. Returns the unsigned
    ``webhook-id`` header when present, so Upscale's duplicate deliveries are still recognised
    (and a forger can choose the duplicate key: nothing here is signed).
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "UnverifiedWebhooks()"

    def verify(self, body: bytes, headers: Mapping[str, str]) -> str | None:
        """Check nothing; return the ``webhook-id`` header if there is one."""
        return get_header(headers, "webhook-id") or None
