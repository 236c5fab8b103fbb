"""Verifiers: Standard Webhooks (checked against the reference package), plain HMAC, opt-out."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from upscale_async.webhooks import (
    HmacSignatureVerifier,
    StandardWebhooksVerifier,
    UnverifiedWebhooks,
    WebhookVerificationError,
    WebhookVerifier,
)

from .webhook_support import OTHER_SECRET, S2_EXAMPLE, SECRET, sign

NOW = 1_700_000_000.0


def fixed_clock() -> float:
    return NOW


def test_reference_signature_verifies() -> None:
    """A signature made by the standardwebhooks package verifies and returns the webhook id."""
    body, headers = sign(S2_EXAMPLE, msg_id="msg_abc")
    assert StandardWebhooksVerifier(SECRET).verify(body, headers) == "msg_abc"


def test_tampered_body_fails() -> None:
    """A body changed after signing fails with a signature-mismatch message."""
    body, headers = sign(S2_EXAMPLE)
    with pytest.raises(WebhookVerificationError, match="does not match"):
        StandardWebhooksVerifier(SECRET).verify(body.replace(b"12", b"13"), headers)


def test_wrong_secret_fails() -> None:
    """A signature made with another secret fails with a signature-mismatch message."""
    body, headers = sign(S2_EXAMPLE, secret=OTHER_SECRET)
    with pytest.raises(WebhookVerificationError, match=r"does not match.*1 secret"):
        StandardWebhooksVerifier(SECRET).verify(body, headers)


def test_old_timestamp_fails_saying_too_old() -> None:
    """A timestamp older than the tolerance fails with how old it is and the tolerance."""
    body, headers = sign(S2_EXAMPLE, timestamp=NOW - 301)
    verifier = StandardWebhooksVerifier(SECRET, clock=fixed_clock)
    with pytest.raises(WebhookVerificationError, match=r"too old: 301 s.*tolerance 300 s"):
        verifier.verify(body, headers)


def test_future_timestamp_fails_saying_future() -> None:
    """A timestamp too far ahead fails with how far and the tolerance."""
    body, headers = sign(S2_EXAMPLE, timestamp=NOW + 400)
    verifier = StandardWebhooksVerifier(SECRET, clock=fixed_clock)
    with pytest.raises(WebhookVerificationError, match=r"future: 400 s ahead.*tolerance 300 s"):
        verifier.verify(body, headers)


def test_timestamp_within_tolerance_verifies() -> None:
    """A timestamp 299 s old, inside a 300 s tolerance, verifies."""
    body, headers = sign(S2_EXAMPLE, timestamp=NOW - 299)
    assert StandardWebhooksVerifier(SECRET, clock=fixed_clock).verify(body, headers) == "msg_1"


def test_custom_tolerance_applies() -> None:
    """A smaller tolerance rejects a timestamp the default would accept."""
    body, headers = sign(S2_EXAMPLE, timestamp=NOW - 20)
    verifier = StandardWebhooksVerifier(SECRET, tolerance=10, clock=fixed_clock)
    with pytest.raises(WebhookVerificationError, match="tolerance 10 s"):
        verifier.verify(body, headers)


def test_rotation_second_secret_verifies() -> None:
    """With two secrets, a body signed with the second one verifies."""
    body, headers = sign(S2_EXAMPLE, secret=OTHER_SECRET)
    assert StandardWebhooksVerifier([SECRET, OTHER_SECRET]).verify(body, headers) == "msg_1"


def test_several_signatures_in_header_any_matches() -> None:
    """A header with several space-separated signatures verifies when one of them matches."""
    body, headers = sign(S2_EXAMPLE)
    _, other = sign(S2_EXAMPLE, secret=OTHER_SECRET)
    headers["webhook-signature"] = (
        f"v1,AAAA {other['webhook-signature']} {headers['webhook-signature']}"
    )
    assert StandardWebhooksVerifier(SECRET).verify(body, headers) == "msg_1"


@pytest.mark.parametrize(
    "missing", ["webhook-id", "webhook-timestamp", "webhook-signature"], ids=lambda h: h
)
def test_missing_header_is_named(missing: str) -> None:
    """A missing Standard Webhooks header is named in the error."""
    body, headers = sign(S2_EXAMPLE)
    del headers[missing]
    with pytest.raises(WebhookVerificationError, match=f"missing header.*{missing}"):
        StandardWebhooksVerifier(SECRET).verify(body, headers)


def test_non_numeric_timestamp_fails() -> None:
    """A webhook-timestamp that is not digits fails clearly."""
    body, headers = sign(S2_EXAMPLE)
    headers["webhook-timestamp"] = "1e9"
    with pytest.raises(WebhookVerificationError, match="digits only"):
        StandardWebhooksVerifier(SECRET).verify(body, headers)


def test_no_v1_signature_fails() -> None:
    """A signature header without any v1 entry fails saying so."""
    body, headers = sign(S2_EXAMPLE)
    headers["webhook-signature"] = "v2,abc"
    with pytest.raises(WebhookVerificationError, match="no well-formed v1"):
        StandardWebhooksVerifier(SECRET).verify(body, headers)


@pytest.mark.parametrize(
    "transform",
    [
        pytest.param(str.upper, id="upper"),
        pytest.param(str.title, id="title"),
        pytest.param(lambda k: k, id="lower"),
    ],
)
def test_header_names_case_insensitive_in_plain_dict(transform: object) -> None:
    """Header names in a plain dict match whatever their case."""
    body, headers = sign(S2_EXAMPLE)
    cased = {transform(k): v for k, v in headers.items()}  # type: ignore[operator]
    assert StandardWebhooksVerifier(SECRET).verify(body, cased) == "msg_1"


def test_aiohttp_headers_accepted() -> None:
    """aiohttp's CIMultiDictProxy works as the headers mapping."""
    body, headers = sign(S2_EXAMPLE)
    proxy = CIMultiDictProxy(CIMultiDict({k.upper(): v for k, v in headers.items()}))
    assert StandardWebhooksVerifier(SECRET).verify(body, proxy) == "msg_1"


def test_raw_string_secret_is_utf8_key() -> None:
    """A secret without the whsec_ prefix is used as its UTF-8 bytes."""
    body = S2_EXAMPLE
    ts = int(time.time())
    mac = hmac.new(b"plain-secret", b"m.%d.%s" % (ts, body), hashlib.sha256).digest()
    headers = {
        "webhook-id": "m",
        "webhook-timestamp": str(ts),
        "webhook-signature": "v1," + base64.b64encode(mac).decode(),
    }
    assert StandardWebhooksVerifier("plain-secret").verify(body, headers) == "m"


def test_secret_not_in_repr() -> None:
    """Neither verifier shows its secret in its repr."""
    for verifier in (StandardWebhooksVerifier(SECRET), HmacSignatureVerifier("s3cr3t-value")):
        assert SECRET not in repr(verifier)
        assert "s3cr3t" not in repr(verifier)
        assert "secret" in repr(verifier)


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("", id="empty"),
        pytest.param([], id="no-secrets"),
        pytest.param("whsec_!!!", id="bad-base64"),
        pytest.param(42, id="not-a-string"),
    ],
)
def test_bad_secret_rejected_at_construction(bad: object) -> None:
    """An unusable secret is rejected when the verifier is built."""
    with pytest.raises((ValueError, TypeError)):
        StandardWebhooksVerifier(bad)  # type: ignore[arg-type]


def hmac_headers(value: str, header: str = "X-Upscale-Signature") -> dict[str, str]:
    return {header: value}


def _verifies_and_rejects_a_changed_body(
    verifier: HmacSignatureVerifier, headers: dict[str, str]
) -> None:
    # The plain HMAC has no webhook id: verify() returns None, and the hub's dedupe key then
    # comes from the signed body. One changed byte must fail, or nothing was checked.
    assert verifier.verify(S2_EXAMPLE, headers) is None
    with pytest.raises(WebhookVerificationError):
        verifier.verify(S2_EXAMPLE.replace(b"complete", b"COMPLETE"), headers)


def test_hmac_hex_verifies() -> None:
    """A hex HMAC-SHA256 of the body in X-Upscale-Signature verifies."""
    mac = hmac.new(b"k3y", S2_EXAMPLE, hashlib.sha256).hexdigest()
    _verifies_and_rejects_a_changed_body(HmacSignatureVerifier("k3y"), hmac_headers(mac))


def test_hmac_hex_uppercase_verifies() -> None:
    """Hex signatures compare case-insensitively."""
    mac = hmac.new(b"k3y", S2_EXAMPLE, hashlib.sha256).hexdigest().upper()
    _verifies_and_rejects_a_changed_body(HmacSignatureVerifier("k3y"), hmac_headers(mac))


def test_hmac_base64_sha512_verifies() -> None:
    """A base64 HMAC-SHA512 verifies when configured so."""
    mac = base64.b64encode(hmac.new(b"k3y", S2_EXAMPLE, hashlib.sha512).digest()).decode()
    verifier = HmacSignatureVerifier("k3y", digest="sha512", encoding="base64")
    _verifies_and_rejects_a_changed_body(verifier, hmac_headers(mac))


def test_hmac_prefix_and_custom_header_verify() -> None:
    """A prefixed signature in a custom header (GitHub style) verifies, any header case."""
    mac = hmac.new(b"k3y", S2_EXAMPLE, hashlib.sha256).hexdigest()
    verifier = HmacSignatureVerifier("k3y", header="X-Hub-Signature-256", prefix="sha256=")
    _verifies_and_rejects_a_changed_body(verifier, {"x-hub-signature-256": f"sha256={mac}"})


def test_hmac_missing_prefix_fails() -> None:
    """A signature without the configured prefix fails saying so."""
    mac = hmac.new(b"k3y", S2_EXAMPLE, hashlib.sha256).hexdigest()
    verifier = HmacSignatureVerifier("k3y", prefix="sha256=")
    with pytest.raises(WebhookVerificationError, match="prefix"):
        verifier.verify(S2_EXAMPLE, hmac_headers(mac))


def test_hmac_tampered_body_fails() -> None:
    """A changed body fails the HMAC check."""
    mac = hmac.new(b"k3y", S2_EXAMPLE, hashlib.sha256).hexdigest()
    with pytest.raises(WebhookVerificationError, match="does not match"):
        HmacSignatureVerifier("k3y").verify(S2_EXAMPLE + b" ", hmac_headers(mac))


def test_hmac_missing_header_named() -> None:
    """A missing signature header is named."""
    with pytest.raises(WebhookVerificationError, match="missing header: X-Upscale-Signature"):
        HmacSignatureVerifier("k3y").verify(S2_EXAMPLE, {})


def test_hmac_rotation_second_secret_verifies() -> None:
    """The HMAC verifier accepts a signature made with any of its secrets."""
    mac = hmac.new(b"new", S2_EXAMPLE, hashlib.sha256).hexdigest()
    _verifies_and_rejects_a_changed_body(HmacSignatureVerifier(["old", "new"]), hmac_headers(mac))


def test_hmac_non_ascii_signature_fails_cleanly() -> None:
    """A non-ASCII signature value raises the SDK error, not a TypeError."""
    with pytest.raises(WebhookVerificationError):
        HmacSignatureVerifier("k3y").verify(S2_EXAMPLE, hmac_headers("é\udcff"))


def test_hmac_unknown_digest_rejected() -> None:
    """An unknown digest name is rejected at construction."""
    with pytest.raises(ValueError, match="hashlib"):
        HmacSignatureVerifier("k3y", digest="sha999")


def test_unverified_accepts_anything_and_returns_id() -> None:
    """UnverifiedWebhooks accepts any body and passes the webhook-id header through."""
    assert UnverifiedWebhooks().verify(b"junk", {"Webhook-Id": "w1"}) == "w1"
    assert UnverifiedWebhooks().verify(b"junk", {}) is None


def test_verifiers_satisfy_protocol() -> None:
    """All three verifiers satisfy the WebhookVerifier protocol."""
    for verifier in (
        StandardWebhooksVerifier(SECRET),
        HmacSignatureVerifier("k"),
        UnverifiedWebhooks(),
    ):
        assert isinstance(verifier, WebhookVerifier)
