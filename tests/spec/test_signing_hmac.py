"""Sha256Hmac, the verifier's HMAC with its pads hashed once, against the standard library."""

from __future__ import annotations

import hmac

from hypothesis import given
from hypothesis import strategies as st

from upscale_async._spec.signing import Sha256Hmac, standard_signature


@given(key=st.binary(min_size=0, max_size=200), msg=st.binary(max_size=300))
def test_digest_equals_hmac_digest_for_any_key_and_message(key: bytes, msg: bytes) -> None:
    """Keys shorter than, equal to and longer than SHA-256's 64-byte block all agree."""
    assert Sha256Hmac(key).digest(msg) == hmac.digest(key, msg, "sha256")


def test_one_instance_gives_the_same_digest_again_and_others_for_other_messages() -> None:
    """Each digest starts from the key's saved state: earlier messages leave no trace."""
    mac = Sha256Hmac(b"k" * 64)
    first = mac.digest(b"a")
    assert mac.digest(b"b") == hmac.digest(b"k" * 64, b"b", "sha256")
    assert mac.digest(b"a") == first


def test_it_signs_what_standard_signature_signs() -> None:
    key = b"secret-key"
    assert Sha256Hmac(key).digest(b"msg_1.1700000000.{}") == standard_signature(
        key, "msg_1", 1700000000, b"{}"
    )
