"""parse_webhook: size limit, verification, payload shape, and a fuzz test of its error surface."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from upscale_async._spec.signing import decode_secret, sign_standard
from upscale_async.webhooks import (
    CompletionEvent,
    StandardWebhooksVerifier,
    UnverifiedWebhooks,
    WebhookPayloadError,
    WebhookVerificationError,
    parse_webhook,
)

from .webhook_support import S2_EXAMPLE, SECRET, event_body, sign

VERIFIER = StandardWebhooksVerifier(SECRET)


def test_s2_example_parses_to_event() -> None:
    """The documented S2 example payload gives an event with its values and the webhook id."""
    body, headers = sign(S2_EXAMPLE, msg_id="msg_s2")
    event = parse_webhook(body, headers, VERIFIER)
    assert event == CompletionEvent(
        secure_request_id="a1b2c3d4-e5f6-7890-abcd-ef1234567890",
        status="complete",
        completed_at="2024-02-08T11:30:45Z",
        requested_messages_count=12,
        generated_messages_count=12,
        webhook_id="msg_s2",
    )
    assert event.dedupe_key == "msg_s2"


def test_unknown_keys_kept_in_extra() -> None:
    """Keys the SDK does not know are kept in ``extra``; webhook_triggered_at is read."""
    body, headers = sign(
        event_body(webhook_triggered_at="2024-02-08T11:30:46Z", failed_messages_count=None, x=1)
    )
    event = parse_webhook(body, headers, VERIFIER)
    assert event.webhook_triggered_at == "2024-02-08T11:30:46Z"
    assert event.extra == {"failed_messages_count": None, "x": 1}


def test_absent_and_null_counts_are_none() -> None:
    """Counts and completed_at may be absent or null."""
    body, headers = sign({"secure_request_id": "r", "status": "complete", "completed_at": None})
    event = parse_webhook(body, headers, VERIFIER)
    assert (event.completed_at, event.requested_messages_count) == (None, None)


def test_oversized_body_rejected_before_verifying() -> None:
    """A body over max_body_size is a payload error even with a bad signature."""
    with pytest.raises(WebhookPayloadError, match="more than the limit of 10"):
        parse_webhook(b"x" * 11, {}, VERIFIER, max_body_size=10)


def test_bad_signature_checked_before_json() -> None:
    """Unsigned garbage is a verification error, not a payload error."""
    with pytest.raises(WebhookVerificationError):
        parse_webhook(b"not json", {}, VERIFIER)


def test_malformed_json_is_payload_error() -> None:
    """A correctly signed body that is not JSON is a payload error."""
    body, headers = sign(b"{not json")
    with pytest.raises(WebhookPayloadError, match="not valid JSON"):
        parse_webhook(body, headers, VERIFIER)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        pytest.param([1, 2], "JSON object, not a JSON array", id="array"),
        pytest.param({"status": "complete"}, "secure_request_id .*missing", id="no-id"),
        pytest.param({"secure_request_id": "", "status": "x"}, "secure_request_id", id="empty-id"),
        pytest.param({"secure_request_id": 5, "status": "x"}, "secure_request_id", id="int-id"),
        pytest.param({"secure_request_id": "r"}, "status must be", id="no-status"),
        pytest.param(
            {**event_body(), "requested_messages_count": "12"},
            "requested_messages_count must be an integer",
            id="string-count",
        ),
        pytest.param(
            {**event_body(), "generated_messages_count": True},
            "generated_messages_count must be an integer",
            id="bool-count",
        ),
        pytest.param(
            {**event_body(), "generated_messages_count": -1},
            "generated_messages_count must be >= 0",
            id="negative-count",
        ),
        pytest.param(
            {**event_body(), "completed_at": 5}, "completed_at must be a string", id="int-date"
        ),
    ],
)
def test_wrong_shape_names_the_field(payload: Any, message: str) -> None:
    """A signed JSON body that is not a completion event names the offending field."""
    body, headers = sign(orjson.dumps(payload))
    with pytest.raises(WebhookPayloadError, match=message):
        parse_webhook(body, headers, VERIFIER)


def test_webhook_id_header_used_when_scheme_has_none() -> None:
    """With a verifier that returns no id, the webhook-id header still becomes webhook_id."""
    event = parse_webhook(orjson.dumps(event_body()), {"Webhook-Id": "w9"}, UnverifiedWebhooks())
    assert event.webhook_id == "w9"


def test_str_body_is_a_type_error() -> None:
    """Passing text instead of the raw bytes is misuse, reported as TypeError."""
    with pytest.raises(TypeError, match="raw request bytes"):
        parse_webhook("{}", {}, UnverifiedWebhooks())  # type: ignore[arg-type]


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
event_like = st.fixed_dictionaries(
    {},
    optional={
        "secure_request_id": json_values,
        "status": json_values,
        "completed_at": json_values,
        "requested_messages_count": json_values,
        "generated_messages_count": json_values,
        "webhook_triggered_at": json_values,
    },
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(orjson.dumps),
    event_like.map(orjson.dumps),
)
header_names = st.sampled_from(
    ["webhook-id", "Webhook-Timestamp", "WEBHOOK-SIGNATURE", "content-type", "x"]
) | st.text(max_size=20)
headers_st = st.dictionaries(header_names, st.text(max_size=60), max_size=5)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies, headers=headers_st, signed=st.booleans(), limit=st.integers(0, 400))
def test_fuzz_raises_only_sdk_errors(
    body: bytes, headers: dict[str, str], signed: bool, limit: int
) -> None:
    """Whatever the bytes and headers, parse_webhook returns an event or raises one of two errors."""
    if signed:
        # Any bytes, not only UTF-8: sign as the emulator does.
        stamp = int(time.time())
        signature = sign_standard(decode_secret(SECRET), "msg_f", stamp, body)
        good = {
            "webhook-id": "msg_f",
            "webhook-timestamp": str(stamp),
            "webhook-signature": signature,
        }
        headers = {**headers, **good}
    try:
        event = parse_webhook(body, headers, VERIFIER, max_body_size=limit)
    except (WebhookVerificationError, WebhookPayloadError):
        return
    assert isinstance(event, CompletionEvent)
    assert event.secure_request_id
