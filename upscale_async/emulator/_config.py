"""The emulator's settings: one frozen attrs class, validated on construction."""

from __future__ import annotations

import base64
from collections.abc import Callable, Collection
from typing import Any, Final

import attrs

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_BODY_TIMEOUT",
    "DEFAULT_CREDITS",
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_WEBHOOK_ATTEMPTS",
    "DEFAULT_WEBHOOK_SECRET",
    "DEFAULT_WEBHOOK_TIMEOUT",
    "DeliveryPlan",
    "EmulatorConfig",
]

#: The API key the emulator accepts unless told otherwise.
DEFAULT_API_KEY: Final = "upscale-emulator-key"
#: A fixed Standard Webhooks secret (``whsec_`` + base64 of 32 bytes), so runs are reproducible.
DEFAULT_WEBHOOK_SECRET: Final = (
    "whsec_" + base64.b64encode(b"upscale-emulator-webhook-secret!").decode()
)
#: Credits each account starts with (one credit per generated message).
DEFAULT_CREDITS: Final = 1_000_000
#: The largest request body read (bytes); a larger one is answered 413 without being read.
DEFAULT_MAX_BODY_SIZE: Final = 16 * 1024 * 1024
#: Seconds a client has to send a whole request body; a slower one is answered 408.
DEFAULT_BODY_TIMEOUT: Final = 30.0
#: D10: 25 attempts (1 + 24 retries), 10 s per attempt.
DEFAULT_WEBHOOK_ATTEMPTS: Final = 25
DEFAULT_WEBHOOK_TIMEOUT: Final = 10.0

RequestSelector = Callable[[str], bool] | Collection[str] | None


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0 seconds, got {value!r}")


def _share(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be between 0 and 1, got {value!r}")


@attrs.frozen
class DeliveryPlan:
    """Which webhook events to tamper with, and how (for completion tests).

    An event is *chosen* when ``request_ids`` selects its ``secure_request_id`` (a set of ids or a
    predicate; None selects every event) and a seeded draw falls under ``rate``.

    - ``drop_first``: the first N attempts of a chosen event are not sent at all (logged with
      outcome ``"dropped"``) and count as failures, so the retry schedule carries on; a value of at
      least ``webhook_attempts`` means the event is never delivered.
    - ``duplicates``: a chosen event that was delivered (2xx) is POSTed this many times in all,
      with the same ``webhook-id`` and body (outcome ``"duplicate"`` for the extra sends).
    """

    drop_first: int = attrs.field(default=0, validator=_non_negative)
    duplicates: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    request_ids: RequestSelector = None
    rate: float = attrs.field(default=1.0, validator=_share)
    seed: int = 0

    @property
    def is_noop(self) -> bool:
        """True when the plan changes nothing (no drops, one delivery each)."""
        return self.drop_first == 0 and self.duplicates == 1


def _keys(value: Collection[str] | str) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


@attrs.frozen(kw_only=True)
class EmulatorConfig:
    """Everything the emulator can be told. Every field is also a keyword of ``Emulator(...)``.

    Seconds are floats. ``messages_per_second=0`` generates instantly; ``webhook_secret=None``
    sends no webhooks (as the real service does for an account without a secret).

    Safety: webhooks go only to loopback targets (``localhost``, 127.0.0.0/8, ``::1``) unless
    ``allow_external_webhooks=True``; any other target is refused without a connection or a DNS
    lookup, logged as a warning and recorded in ``state.deliveries`` (outcome ``"refused"``).
    Request bodies larger than ``max_body_size`` bytes are answered 413 and bodies not received
    within ``body_timeout`` seconds 408, on every route. ``verbose=True`` logs each request and
    each webhook attempt at INFO on the ``upscale_async.emulator`` logger.
    """

    host: str = "127.0.0.1"
    port: int = 0
    api_keys: tuple[str, ...] = attrs.field(default=(DEFAULT_API_KEY,), converter=_keys)
    revoked_keys: tuple[str, ...] = attrs.field(default=(), converter=_keys)
    credits: int = attrs.field(default=DEFAULT_CREDITS, validator=_non_negative)
    webhook_secret: str | None = DEFAULT_WEBHOOK_SECRET
    messages_per_second: float = attrs.field(default=0.0, validator=_non_negative)
    latency: float = attrs.field(default=0.0, validator=_non_negative)
    failure_rate: float = attrs.field(default=0.0, validator=_share)
    seed: int = 0
    webhook_time_scale: float = attrs.field(default=1.0, validator=_non_negative)
    webhook_timeout: float = attrs.field(default=DEFAULT_WEBHOOK_TIMEOUT, validator=_non_negative)
    webhook_attempts: int = attrs.field(
        default=DEFAULT_WEBHOOK_ATTEMPTS, validator=attrs.validators.ge(1)
    )
    deliveries: DeliveryPlan = DeliveryPlan()
    max_body_size: int = attrs.field(
        default=DEFAULT_MAX_BODY_SIZE, validator=attrs.validators.ge(1)
    )
    body_timeout: float = attrs.field(default=DEFAULT_BODY_TIMEOUT, validator=_positive)
    allow_external_webhooks: bool = False
    verbose: bool = False
    max_leads_per_request: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.ge(1))
    )
    require_campaign_name: bool = True
    allow_unknown_message_types: bool = False
    emit_singular_counts: bool = False
    doc_examples: bool = False

    def __attrs_post_init__(self) -> None:
        if not self.api_keys:
            raise ValueError("api_keys must name at least one valid key")
        overlap = set(self.api_keys) & set(self.revoked_keys)
        if overlap:
            raise ValueError(f"keys cannot be both valid and revoked: {sorted(overlap)}")
        if self.webhook_secret == "":
            raise ValueError("webhook_secret must be a secret or None (no webhooks)")
