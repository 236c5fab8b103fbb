"""Verifier edges: exact messages, tolerance boundaries, header lookup, secrets, reprs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Callable, Iterator, Mapping

import pytest

from upscale_async.webhooks import (
    HmacSignatureVerifier,
    StandardWebhooksVerifier,
    UnverifiedWebhooks,
    WebhookVerificationError,
)
from upscale_async.webhooks._verifiers import get_header

from .webhook_support import OTHER_SECRET, S2_EXAMPLE, SECRET, sign

NOW = 1_700_000_000.0
KEY = b"k3y"


def clock() -> float:
    return NOW


def standard(tolerance: float = 300.0) -> StandardWebhooksVerifier:
    return StandardWebhooksVerifier(SECRET, tolerance=tolerance, clock=clock)


def refused(verifier: object, body: bytes, headers: Mapping[str, str]) -> str:
    with pytest.raises(WebhookVerificationError) as info:
        verifier.verify(body, headers)  # type: ignore[attr-defined]
    return str(info.value)


class OnlyExactKeys(Mapping[str, str]):
    """A header mapping whose ``get`` is exact (case-sensitive), like a plain dict."""

    def __init__(self, items: dict[object, object]) -> None:
        self._items = items

    def __getitem__(self, key: str) -> str:
        return self._items[key]  # type: ignore[return-value]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)  # type: ignore[arg-type]

    def __len__(self) -> int:
        return len(self._items)


# -- get_header --------------------------------------------------------------------------------


def test_get_header_finds_any_case() -> None:
    """get_header finds a header under its exact name, lower case, or any other case."""
    assert get_header({"Webhook-Id": "a"}, "Webhook-Id") == "a"
    assert get_header({"webhook-id": "b"}, "Webhook-Id") == "b"
    assert get_header({"WEBHOOK-ID": "c"}, "webhook-id") == "c"


def test_get_header_skips_keys_that_are_not_strings_and_values_that_are_not() -> None:
    """Non-string keys are skipped while scanning, and a non-string value counts as missing."""
    assert get_header(OnlyExactKeys({1: "x", "X-Sig": "y"}), "x-sig") == "y"
    assert get_header({"X-Sig": b"bytes"}, "x-sig") is None  # type: ignore[dict-item]
    assert get_header({}, "x-sig") is None


# -- Standard Webhooks -------------------------------------------------------------------------


def test_missing_headers_are_all_named() -> None:
    """Every missing (or empty) Standard Webhooks header is named, in order."""
    assert refused(standard(), b"{}", {"webhook-timestamp": ""}) == (
        "missing header(s): webhook-id, webhook-timestamp, webhook-signature"
    )


def test_a_timestamp_that_is_not_digits_is_quoted_to_40_characters() -> None:
    """A timestamp that is not Unix seconds is refused, quoting at most 40 characters."""
    body, headers = sign(S2_EXAMPLE, timestamp=NOW)
    headers["webhook-timestamp"] = " 12.5" + "x" * 60
    assert refused(standard(), body, headers) == (
        f"webhook-timestamp must be Unix seconds (digits only), got {('12.5' + 'x' * 60)[:40]!r}"
    )


def test_a_padded_timestamp_is_read() -> None:
    """Whitespace around the timestamp is ignored."""
    body, headers = sign(S2_EXAMPLE, timestamp=NOW)
    headers["webhook-timestamp"] = f" {int(NOW)} "
    assert standard().verify(body, headers) == "msg_1"


@pytest.mark.parametrize(
    ("offset", "message"),
    [
        pytest.param(
            -301, "webhook-timestamp is too old: 301 s in the past (tolerance 300 s)", id="old"
        ),
        pytest.param(
            301,
            "webhook-timestamp is too far in the future: 301 s ahead (tolerance 300 s)",
            id="new",
        ),
    ],
)
def test_a_timestamp_past_the_tolerance_says_by_how_much(offset: int, message: str) -> None:
    """A timestamp one second past the tolerance, either way, is refused with the distance."""
    body, headers = sign(S2_EXAMPLE, timestamp=NOW + offset)
    assert refused(standard(), body, headers) == message


@pytest.mark.parametrize("offset", [-300, 0, 300])
def test_the_tolerance_is_inclusive(offset: int) -> None:
    """A timestamp exactly at the tolerance (past or future) verifies."""
    body, headers = sign(S2_EXAMPLE, timestamp=NOW + offset)
    assert standard().verify(body, headers) == "msg_1"


def test_a_zero_tolerance_accepts_only_now() -> None:
    """With tolerance 0 only the current second verifies."""
    body, headers = sign(S2_EXAMPLE, timestamp=NOW)
    assert standard(tolerance=0).verify(body, headers) == "msg_1"
    body, headers = sign(S2_EXAMPLE, timestamp=NOW - 1)
    assert "too old: 1 s in the past (tolerance 0 s)" in refused(standard(0), body, headers)


@pytest.mark.parametrize(
    "bad", [pytest.param(-1.0, id="negative"), pytest.param(float("nan"), id="nan")]
)
def test_a_bad_tolerance_is_refused(bad: float) -> None:
    """A negative or NaN tolerance is refused at construction, for both verifiers."""
    with pytest.raises(ValueError, match="tolerance must be a number of seconds >= 0"):
        StandardWebhooksVerifier(SECRET, tolerance=bad)
    with pytest.raises(ValueError, match="tolerance must be a number of seconds >= 0"):
        HmacSignatureVerifier(KEY, timestamp_header="X-T", tolerance=bad)


def test_malformed_and_foreign_signatures_are_skipped() -> None:
    """Signatures of another version or bad base64 are skipped; a good v1 after them verifies."""
    body, headers = sign(S2_EXAMPLE, timestamp=NOW)
    good = headers["webhook-signature"]
    headers["webhook-signature"] = f"v2,{good[3:]} v1,@@@ {good}"
    assert standard().verify(body, headers) == "msg_1"


def test_only_malformed_signatures_say_so() -> None:
    """A header with no well-formed v1 signature says what form is expected."""
    body, headers = sign(S2_EXAMPLE, timestamp=NOW)
    headers["webhook-signature"] = "v1,@@@ v2,abcd"
    assert refused(standard(), body, headers) == (
        "webhook-signature holds no well-formed v1 signature (expected 'v1,<base64>')"
    )


def test_a_mismatch_counts_the_secrets_checked() -> None:
    """A signature matching no secret says how many secrets were checked."""
    body, headers = sign(S2_EXAMPLE, timestamp=NOW, secret=OTHER_SECRET)
    assert refused(standard(), body, headers) == (
        "webhook-signature does not match the body (checked 1 secret)"
    )
    two = StandardWebhooksVerifier([SECRET, SECRET + "x"], clock=clock)
    assert refused(two, body, headers).endswith("(checked 2 secrets)")


def test_the_repr_counts_secrets_and_shows_the_tolerance() -> None:
    """The repr shows how many secrets and the tolerance, never the secret."""
    assert repr(StandardWebhooksVerifier([SECRET, OTHER_SECRET], tolerance=60)) == (
        "StandardWebhooksVerifier(<2 secrets>, tolerance=60.0)"
    )
    assert repr(StandardWebhooksVerifier(SECRET)) == (
        "StandardWebhooksVerifier(<1 secret>, tolerance=300.0)"
    )


# -- secrets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secrets", "error", "message"),
    [
        pytest.param(
            42,
            TypeError,
            "secret must be a str or bytes, or a list of them (several secrets allow rotation), "
            "not int",
            id="int",
        ),
        pytest.param(
            ["ok", 3], TypeError, "secret #2 must be a str or bytes, not int", id="second-int"
        ),
        pytest.param(
            ["ok", "whsec_a"],
            ValueError,
            "secret #2 starts with 'whsec_' but the rest is not valid base64",
            id="second-bad-base64",
        ),
        pytest.param(
            ["", "ok"],
            ValueError,
            "secret #1 is empty; pass the webhook secret from Upscale",
            id="first-empty",
        ),
        pytest.param((), ValueError, "at least one webhook secret is required", id="none"),
    ],
)
def test_bad_secrets_say_which_and_why(
    secrets: object, error: type[Exception], message: str
) -> None:
    """Each unusable secret is refused naming its position and what is wrong with it."""
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        StandardWebhooksVerifier(secrets)  # type: ignore[arg-type]


def test_bytes_and_a_tuple_of_secrets_are_used_as_given() -> None:
    """Secrets as bytes in a tuple: each is tried, as raw key bytes."""
    body = b"{}"
    mac = hmac.new(b"second", body, hashlib.sha256).hexdigest()
    verifier = HmacSignatureVerifier((b"first", b"second"))
    assert verifier.verify(body, {"X-Upscale-Signature": mac}) is None


# -- plain HMAC --------------------------------------------------------------------------------


def hmac_sig(body: bytes, key: bytes = KEY, digest: str = "sha256") -> str:
    return hmac.new(key, body, digest).hexdigest()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"header": ""}, "header must be a non-empty header name", id="header"),
        pytest.param(
            {"encoding": "base32"}, "encoding must be 'hex' or 'base64', not 'base32'", id="enc"
        ),
        pytest.param(
            {"digest": "nope"},
            "digest 'nope' is not a hashlib algorithm (try 'sha256' or 'sha512')",
            id="digest",
        ),
        pytest.param(
            {"timestamp_header": ""},
            "timestamp_header must be a non-empty header name, or None",
            id="timestamp-header",
        ),
    ],
)
def test_hmac_settings_are_checked(kwargs: dict[str, object], message: str) -> None:
    """Each bad HmacSignatureVerifier setting is refused with a message saying how to fix it."""
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        HmacSignatureVerifier(KEY, **kwargs)  # type: ignore[arg-type]


def test_hmac_signature_is_trimmed_after_its_prefix() -> None:
    """Whitespace around the header and after the prefix is ignored."""
    body = b'{"a":1}'
    verifier = HmacSignatureVerifier(KEY, prefix="sha256=")
    header = f"  sha256= {hmac_sig(body)}  "
    assert verifier.verify(body, {"x-upscale-signature": header}) is None


def test_base64_signatures_are_case_sensitive() -> None:
    """A base64 signature is compared as given (only hex is case-insensitive)."""
    body = b"{}"
    mac = base64.b64encode(hmac.new(KEY, body, hashlib.sha256).digest()).decode()
    verifier = HmacSignatureVerifier(KEY, encoding="base64")
    assert verifier.verify(body, {"X-Upscale-Signature": mac}) is None
    swapped = mac.swapcase()
    assert "does not match" in refused(verifier, body, {"X-Upscale-Signature": swapped})


def test_an_hmac_mismatch_names_the_scheme() -> None:
    """A mismatch names the header, the digest, the encoding and how many secrets were checked."""
    verifier = HmacSignatureVerifier([KEY, b"other"], digest="sha512", encoding="base64")
    assert refused(verifier, b"{}", {"X-Upscale-Signature": "AAAA"}) == (
        "X-Upscale-Signature does not match the body (HMAC-sha512 base64, checked 2 secrets)"
    )


def test_hmac_missing_or_unprefixed_header_messages() -> None:
    """A missing header, or one without the prefix, is refused naming the header and prefix."""
    verifier = HmacSignatureVerifier(KEY, header="X-Sig", prefix="sha256=")
    assert refused(verifier, b"{}", {}) == "missing header: X-Sig"
    assert refused(verifier, b"{}", {"X-Sig": "md5=abc"}) == (
        "X-Sig does not start with the expected prefix 'sha256='"
    )


def test_hmac_with_a_timestamp_signs_it_with_the_body() -> None:
    """With timestamp_header, the HMAC covers "{timestamp}.{body}" and the distance is checked."""
    body = b"{}"
    verifier = HmacSignatureVerifier(KEY, timestamp_header="X-T", tolerance=10, clock=clock)
    stamp = int(NOW) - 10
    headers = {"X-Upscale-Signature": hmac_sig(b"%d.%s" % (stamp, body)), "X-T": str(stamp)}
    assert verifier.verify(body, headers) is None
    stale = {"X-Upscale-Signature": hmac_sig(b"%d.%s" % (stamp - 1, body)), "X-T": str(stamp - 1)}
    assert refused(verifier, body, stale) == "X-T is too old: 11 s in the past (tolerance 10 s)"
    assert refused(verifier, body, {"X-Upscale-Signature": "00"}) == "missing header: X-T"


def test_hmac_reprs() -> None:
    """The HMAC repr shows every setting but the secret, and the timestamp ones when set."""
    assert repr(HmacSignatureVerifier(KEY)) == (
        "HmacSignatureVerifier(<1 secret>, header='X-Upscale-Signature', digest='sha256', "
        "encoding='hex', prefix='')"
    )
    assert repr(HmacSignatureVerifier([KEY, KEY], timestamp_header="X-T", tolerance=5)) == (
        "HmacSignatureVerifier(<2 secrets>, header='X-Upscale-Signature', digest='sha256', "
        "encoding='hex', prefix='', timestamp_header='X-T', tolerance=5)"
    )


# -- unverified --------------------------------------------------------------------------------


def test_unverified_returns_none_without_an_id() -> None:
    """UnverifiedWebhooks returns None when there is no (or an empty) webhook-id."""
    assert UnverifiedWebhooks().verify(b"", {}) is None
    assert UnverifiedWebhooks().verify(b"", {"webhook-id": ""}) is None
    assert UnverifiedWebhooks().verify(b"", {"Webhook-Id": "w"}) == "w"
    assert repr(UnverifiedWebhooks()) == "UnverifiedWebhooks()"


@pytest.mark.parametrize("case", [str.title, str.upper, str.lower])
def test_standard_headers_in_a_plain_dict_are_found_in_any_case(
    case: Callable[[str], str],
) -> None:
    """The lower-case lookup is only the usual case: other spellings verify the same."""
    body, headers = sign(b'{"secure_request_id": "r1", "status": "complete"}', msg_id="msg_c")
    spelled = {case(name): value for name, value in headers.items()}
    assert StandardWebhooksVerifier(SECRET).verify(body, spelled) == "msg_c"


def test_a_non_string_standard_header_counts_as_missing() -> None:
    body, headers = sign(b"{}", msg_id="msg_n")
    odd: dict[str, object] = {**headers, "webhook-timestamp": 1_700_000_000}
    message = refused(StandardWebhooksVerifier(SECRET), body, odd)  # type: ignore[arg-type]
    assert message == "missing header(s): webhook-timestamp"


@pytest.mark.parametrize(
    ("stamp", "read"),
    [
        ("1700000000", 1_700_000_000),
        ("001700000000", 1_700_000_000),  # 12 digits: the most read
        (" 1700000000\t", 1_700_000_000),  # padded: stripped first
        ("0017000000000", None),  # 13 digits
        ("١٧٠٠٠٠٠٠٠٠", None),  # digits, but not ASCII ones
        ("17000000.0", None),
        ("-1700000000", None),
    ],
)
def test_a_timestamp_is_one_to_twelve_ascii_digits(stamp: str, read: int | None) -> None:
    from upscale_async.webhooks._verifiers import _timestamp

    if read is None:
        with pytest.raises(WebhookVerificationError, match="must be Unix seconds"):
            _timestamp(stamp, "webhook-timestamp", NOW, 300.0)
    else:
        assert _timestamp(stamp, "webhook-timestamp", NOW, 300.0) == read
