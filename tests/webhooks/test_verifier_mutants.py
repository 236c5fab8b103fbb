"""Verifier behaviour that mutation testing showed no other test pinned down.

The direction of a timestamp that is off by less than a second, an empty ``webhook-id``, the
message for a non-UTF-8 id, and which copy of a header is read when a plain dict carries it
under several spellings.
"""

from __future__ import annotations

import pytest

from upscale_async import WebhookVerificationError
from upscale_async.webhooks import StandardWebhooksVerifier, UnverifiedWebhooks
from upscale_async.webhooks._verifiers import get_header

from .webhook_support import SECRET, event_body, sign


def headers(msg_id: str, stamp: str = "1000") -> dict[str, str]:
    return {"webhook-id": msg_id, "webhook-timestamp": stamp, "webhook-signature": "v1,AAAA"}


@pytest.mark.parametrize(
    ("now", "message"),
    [
        pytest.param(
            999.5,
            "webhook-timestamp is too far in the future: 0 s ahead (tolerance 0 s)",
            id="ahead",
        ),
        pytest.param(
            1000.5, "webhook-timestamp is too old: 0 s in the past (tolerance 0 s)", id="behind"
        ),
    ],
)
def test_a_timestamp_off_by_less_than_a_second_says_which_way(now: float, message: str) -> None:
    """With no tolerance, half a second ahead is "in the future", half behind "too old"."""
    verifier = StandardWebhooksVerifier(SECRET, tolerance=0, clock=lambda: now)
    with pytest.raises(WebhookVerificationError) as info:
        verifier.verify(b"{}", headers("msg_1"))
    assert str(info.value) == message


def test_an_empty_webhook_id_is_missing() -> None:
    """An empty webhook-id header is reported missing, before anything else is checked."""
    verifier = StandardWebhooksVerifier(SECRET, clock=lambda: 1000.0)
    with pytest.raises(WebhookVerificationError) as info:
        verifier.verify(b"{}", headers(""))
    assert str(info.value) == "missing header(s): webhook-id"


def test_a_webhook_id_that_is_not_utf8_is_refused_saying_so() -> None:
    """An id holding undecodable bytes (a lone surrogate) is refused with its own message."""
    verifier = StandardWebhooksVerifier(SECRET, clock=lambda: 1000.0)
    with pytest.raises(WebhookVerificationError) as info:
        verifier.verify(b"{}", headers("msg_\udcff"))
    assert str(info.value) == "webhook-id is not valid UTF-8; refused"


def test_the_lower_case_spelling_of_each_header_is_the_one_verified() -> None:
    """A plain dict with the headers also under upper-case names: the documented names win."""
    body, signed = sign(event_body(), msg_id="msg_good")
    noisy = {
        **signed,
        "WEBHOOK-ID": "msg_other",
        "WEBHOOK-TIMESTAMP": "12",
        "WEBHOOK-SIGNATURE": "v1,AAAA",
    }
    assert StandardWebhooksVerifier(SECRET).verify(body, noisy) == "msg_good"


def test_without_the_lower_case_names_the_first_spelling_of_each_header_is_verified() -> None:
    """No lower-case name: each header is the first key matching it in any case, never a later
    upper-case one (the slow path of the lookup looks for the documented names)."""
    body, signed = sign(event_body(), msg_id="msg_good")
    noisy = {
        **{name.title(): value for name, value in signed.items()},
        "WEBHOOK-ID": "msg_other",
        "WEBHOOK-TIMESTAMP": "12",
        "WEBHOOK-SIGNATURE": "v1,AAAA",
    }
    assert StandardWebhooksVerifier(SECRET).verify(body, noisy) == "msg_good"


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        pytest.param({"X-Sig": "exact", "x-sig": "lower"}, "exact", id="exact-first"),
        pytest.param({"X-SIG": "upper", "x-sig": "lower"}, "lower", id="then-lower-case"),
        pytest.param({"X-SIG": "first", "x-SiG": "second"}, "first", id="then-first-match"),
    ],
)
def test_get_header_prefers_the_exact_name_then_lower_case_then_the_first_match(
    mapping: dict[str, str], expected: str
) -> None:
    """get_header reads the exact name, else the lower-case name, else the first match."""
    assert get_header(mapping, "X-Sig") == expected


def test_unverified_webhooks_read_the_documented_spelling_of_the_id() -> None:
    """UnverifiedWebhooks returns the webhook-id header as spelled in the docs when a plain
    dict also carries another spelling."""
    assert UnverifiedWebhooks().verify(b"", {"webhook-id": "a", "WEBHOOK-ID": "b"}) == "a"
