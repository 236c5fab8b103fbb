"""Replays and ids: the duplicate key comes only from signed material; timestamps both ways."""

from __future__ import annotations

import hashlib
import hmac

import orjson
import pytest

from upscale_async.webhooks import (
    HmacSignatureVerifier,
    StandardWebhooksVerifier,
    WebhookVerificationError,
    WebhookVerifier,
    parse_webhook,
)

from .webhook_support import S2_EXAMPLE, SECRET, event_body, sign

NOW = 1_700_000_000.0
KEY = b"k3y"


def fixed_clock() -> float:
    return NOW


def hmac_signed(body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """Headers of a plain-HMAC delivery, with ``X-Upscale-Timestamp`` when given one."""
    signed = body if timestamp is None else b"%d.%s" % (timestamp, body)
    headers = {"X-Upscale-Signature": hmac.new(KEY, signed, hashlib.sha256).hexdigest()}
    if timestamp is not None:
        headers["X-Upscale-Timestamp"] = str(timestamp)
    return headers


def stamped_hmac(tolerance: float = 300.0) -> HmacSignatureVerifier:
    return HmacSignatureVerifier(
        KEY, timestamp_header="X-Upscale-Timestamp", tolerance=tolerance, clock=fixed_clock
    )


def test_non_utf8_webhook_id_is_refused() -> None:
    """A webhook-id holding undecodable bytes is refused, not verified under a mangled id."""
    # A server decodes the bytes b"msg_\xff" as "msg_\udcff"; replacement would sign "msg_?".
    body, headers = sign(S2_EXAMPLE, msg_id="msg_?")
    headers["webhook-id"] = "msg_\udcff"
    with pytest.raises(WebhookVerificationError, match="webhook-id is not valid UTF-8"):
        StandardWebhooksVerifier(SECRET).verify(body, headers)


def test_non_ascii_utf8_webhook_id_is_kept_exactly() -> None:
    """A valid UTF-8 id that is not ASCII verifies and is returned exactly as received."""
    body, headers = sign(S2_EXAMPLE, msg_id="msg_é ü")
    assert StandardWebhooksVerifier(SECRET).verify(body, headers) == "msg_é ü"


def test_hmac_replay_under_fresh_webhook_id_is_the_same_key() -> None:
    """A captured HMAC body replayed with another unsigned webhook-id has the same dedupe key."""
    body = orjson.dumps(event_body("req-1", webhook_triggered_at="2024-02-08T11:30:45Z"))
    verifier = HmacSignatureVerifier(KEY)
    first = parse_webhook(body, {**hmac_signed(body), "webhook-id": "msg_a"}, verifier)
    replay = parse_webhook(body, {**hmac_signed(body), "webhook-id": "msg_b"}, verifier)
    assert first.dedupe_key == replay.dedupe_key


def test_hmac_event_has_no_unsigned_webhook_id() -> None:
    """With the plain HMAC, an unsigned webhook-id header does not become event.webhook_id."""
    body = orjson.dumps(event_body("req-1"))
    headers = {**hmac_signed(body), "webhook-id": "msg_attacker"}
    assert parse_webhook(body, headers, HmacSignatureVerifier(KEY)).webhook_id is None


def test_hmac_timestamp_within_tolerance_verifies() -> None:
    """With timestamp_header, a delivery signed over "{timestamp}.{body}" 299 s old verifies."""
    headers = hmac_signed(S2_EXAMPLE, int(NOW) - 299)
    assert stamped_hmac().verify(S2_EXAMPLE, headers) is None


def test_hmac_stale_timestamp_fails() -> None:
    """With timestamp_header, a correctly signed delivery older than the tolerance fails."""
    headers = hmac_signed(S2_EXAMPLE, int(NOW) - 301)
    with pytest.raises(WebhookVerificationError, match=r"too old: 301 s.*tolerance 300 s"):
        stamped_hmac().verify(S2_EXAMPLE, headers)


def test_hmac_future_timestamp_fails() -> None:
    """With timestamp_header, a correctly signed delivery too far ahead fails."""
    headers = hmac_signed(S2_EXAMPLE, int(NOW) + 301)
    with pytest.raises(WebhookVerificationError, match=r"future: 301 s ahead"):
        stamped_hmac().verify(S2_EXAMPLE, headers)


def test_hmac_timestamp_is_covered_by_the_signature() -> None:
    """A replay with a fresh timestamp header and the old signature fails the HMAC."""
    headers = hmac_signed(S2_EXAMPLE, int(NOW) - 3600)
    headers["X-Upscale-Timestamp"] = str(int(NOW))
    with pytest.raises(WebhookVerificationError, match="does not match"):
        stamped_hmac().verify(S2_EXAMPLE, headers)


def test_hmac_missing_timestamp_header_is_named() -> None:
    """With timestamp_header set, a delivery without that header fails naming it."""
    headers = hmac_signed(S2_EXAMPLE)
    with pytest.raises(WebhookVerificationError, match="missing header: X-Upscale-Timestamp"):
        stamped_hmac().verify(S2_EXAMPLE, headers)


def _verifier_and_signer(kind: str, now: float, tolerance: float) -> tuple[WebhookVerifier, object]:
    if kind == "standard":
        verifier: WebhookVerifier = StandardWebhooksVerifier(
            SECRET, tolerance=tolerance, clock=lambda: now
        )
        return verifier, lambda ts: sign(S2_EXAMPLE, timestamp=ts)[1]
    verifier = HmacSignatureVerifier(
        KEY, timestamp_header="X-Upscale-Timestamp", tolerance=tolerance, clock=lambda: now
    )
    return verifier, lambda ts: hmac_signed(S2_EXAMPLE, ts)


@pytest.mark.parametrize("kind", ["standard", "hmac"])
@pytest.mark.parametrize(
    ("now", "tolerance"),
    [
        pytest.param(NOW, 300.0, id="whole-seconds"),
        pytest.param(NOW + 0.5, 300.5, id="half-seconds"),
        pytest.param(NOW, 0.0, id="zero-tolerance"),
    ],
)
def test_minus_and_plus_tolerance_are_treated_alike(
    kind: str, now: float, tolerance: float
) -> None:
    """A timestamp exactly -tolerance and one exactly +tolerance away are both accepted."""
    verifier, signer = _verifier_and_signer(kind, now, tolerance)
    for ts in (round(now - tolerance), round(now + tolerance)):
        verifier.verify(S2_EXAMPLE, signer(ts))  # type: ignore[operator]
    for ts in (round(now - tolerance) - 1, round(now + tolerance) + 1):
        with pytest.raises(WebhookVerificationError, match="tolerance"):
            verifier.verify(S2_EXAMPLE, signer(ts))  # type: ignore[operator]


def test_parse_webhook_without_verifier_says_what_to_pass() -> None:
    """parse_webhook(body, headers, None) raises a TypeError naming the verifier choices."""
    body, headers = sign(event_body())
    with pytest.raises(TypeError, match=r"StandardWebhooksVerifier.*UnverifiedWebhooks\(\)"):
        parse_webhook(body, headers, None)  # type: ignore[arg-type]
