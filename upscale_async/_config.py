"""Configuration objects (small frozen attrs classes that validate on construction) and defaults."""

from __future__ import annotations

from typing import Any, Final

import attrs

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_RETRY_TIMEOUT",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_RESPONSE_SIZE",
    "DEFAULT_TIMEOUT",
    "BatchPolicy",
    "PollPolicy",
    "RetryPolicy",
    "Routes",
]

#: The real service (D1); override with ``base_url=`` or ``UPSCALE_BASE_URL``.
DEFAULT_BASE_URL: Final = "https://app.upscaleoutreach.com/api/v2"
#: Seconds one attempt of one request may take.
DEFAULT_TIMEOUT: Final = 30.0
#: Leads per request in a batch (``BatchPolicy.chunk_size``).
DEFAULT_CHUNK_SIZE: Final = 100
#: Requests in flight at once in a batch (``BatchPolicy.concurrency``).
DEFAULT_CONCURRENCY: Final = 8
#: Connections the client's own session may open at once.
DEFAULT_MAX_CONNECTIONS: Final = 100
#: Chunks in a row that may fail before a batch stops (``BatchPolicy``).
DEFAULT_MAX_CONSECUTIVE_FAILURES: Final = 3
#: Seconds one call may take in all, every retry and wait included (``RetryPolicy.timeout``).
DEFAULT_RETRY_TIMEOUT: Final = 120.0
#: Bytes one response body may have (64 MiB; ``UpscaleClient(max_response_size=...)``).
DEFAULT_MAX_RESPONSE_SIZE: Final = 64 * 1024 * 1024

ENV_API_KEY: Final = "UPSCALE_API_KEY"
ENV_BASE_URL: Final = "UPSCALE_BASE_URL"


def check_max_response_size(value: int | None) -> None:
    """Raise ValueError unless ``value`` is a whole number of bytes >= 1, or None (no cap)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"max_response_size must be a number of bytes >= 1, or None for no cap, got "
            f"{value!r} (the default is DEFAULT_MAX_RESPONSE_SIZE, 64 MiB)"
        )


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value <= 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _positive_or_none(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not value > 0:
        raise ValueError(f"{attribute.name} must be > 0 seconds or None (no limit), got {value!r}")


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """How the transport retries connection errors, timeouts, 408, 429 and 5xx.

    The wait before retry ``k`` (1-based) is ``min(wait_max, wait_initial * 2**(k-1))`` plus up
    to ``wait_jitter`` seconds of random jitter; a ``Retry-After`` header replaces it (capped at
    ``retry_after_max``). ``time_scale`` multiplies every wait (use a small value in tests).
    The wait used for a ``Retry-After`` (capped, then scaled) is what the error's
    ``retry_after`` holds; the header as the server sent it is ``retry_after_header``.
    ``timeout`` bounds one call as a whole, every attempt and wait included: no retry starts,
    and no attempt runs, past it (None: no overall limit). 401, 402 and 422 are never retried.
    A retried POST is safe: the API deduplicates (D8).
    """

    attempts: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    wait_initial: float = attrs.field(default=0.5, validator=_non_negative)
    wait_max: float = attrs.field(default=10.0, validator=_non_negative)
    wait_jitter: float = attrs.field(default=0.5, validator=_non_negative)
    retry_after_max: float = attrs.field(default=60.0, validator=_non_negative)
    time_scale: float = attrs.field(default=1.0, validator=_non_negative)
    timeout: float | None = attrs.field(default=DEFAULT_RETRY_TIMEOUT, validator=_positive_or_none)

    def backoff(self, retry: int, jitter: float) -> float:
        """The unscaled wait before retry ``retry`` (1-based), ``jitter`` in [0, 1)."""
        return float(
            min(self.wait_max, self.wait_initial * 2 ** (retry - 1)) + self.wait_jitter * jitter
        )


@attrs.frozen(kw_only=True)
class BatchPolicy:
    """How ``submit_batch`` and ``generate`` cut a batch into requests and send them.

    ``chunk_size`` leads per request, ``concurrency`` requests in flight at once (so at most
    ``chunk_size x concurrency`` leads are held, however long the input). After
    ``max_consecutive_failures`` chunks in a row fail after retries, the service looks down:
    no new chunk starts and the batch stops with ``StopReason.SERVICE_UNAVAILABLE`` (None:
    never stop)::

        await client.submit_batch(campaign, leads, batch=BatchPolicy(chunk_size=50))
    """

    chunk_size: int = attrs.field(default=DEFAULT_CHUNK_SIZE, validator=attrs.validators.ge(1))
    concurrency: int = attrs.field(default=DEFAULT_CONCURRENCY, validator=attrs.validators.ge(1))
    max_consecutive_failures: int | None = attrs.field(
        default=DEFAULT_MAX_CONSECUTIVE_FAILURES,
        validator=attrs.validators.optional(attrs.validators.ge(1)),  # type: ignore[arg-type]
    )


@attrs.frozen(kw_only=True)
class PollPolicy:
    """How ``await_completion`` polls retrieve_messages.

    Without a hub: the first poll ``initial`` seconds after start, then each wait multiplied by
    ``factor`` up to ``max_interval``, each with +-``jitter`` (a fraction) of randomness.
    With a hub (webhooks): polls every ``fallback_interval`` seconds as a safety net.
    ``max_concurrent`` caps retrieve calls in flight across all ids.
    """

    initial: float = attrs.field(default=2.0, validator=_positive)
    factor: float = attrs.field(default=2.0, validator=attrs.validators.ge(1.0))
    max_interval: float = attrs.field(default=60.0, validator=_positive)
    jitter: float = attrs.field(
        default=0.1, validator=[attrs.validators.ge(0.0), attrs.validators.lt(1.0)]
    )
    fallback_interval: float = attrs.field(default=120.0, validator=_positive)
    max_concurrent: int = attrs.field(default=16, validator=attrs.validators.ge(1))

    def interval(self, poll: int, jitter: float) -> float:
        """The wait before poll ``poll`` (1-based); ``jitter`` in [-1, 1]."""
        base = min(self.max_interval, self.initial * self.factor ** (poll - 1))
        return base * (1.0 + self.jitter * jitter)


@attrs.frozen(kw_only=True)
class Routes:
    """The paths of the four endpoints under the base URL (D1), and the legacy wire shapes.

    ``Routes.newest()`` (the default) uses the ``/messages/...`` paths and object sequences;
    ``Routes.legacy()`` the unprefixed paths, string sequences (D3) and the retrieve id also in
    a JSON body on the GET (D2).
    """

    request_message_generation: str = "/messages/request_message_generation"
    retrieve_messages: str = "/messages/retrieve_messages"
    get_sequences: str = "/sequences/get_sequences"
    account: str = "/account"
    sequence_as_strings: bool = False
    retrieve_id_in_body: bool = False

    @classmethod
    def newest(cls) -> Routes:
        """The current ``/messages/...`` paths with object sequences (the default)."""
        return cls()

    @classmethod
    def legacy(cls) -> Routes:
        """The unprefixed paths, string sequences, and the retrieve id also in the body."""
        return cls(
            request_message_generation="/request_message_generation",
            retrieve_messages="/retrieve_messages",
            get_sequences="/get_sequences",
            account="/account",
            sequence_as_strings=True,
            retrieve_id_in_body=True,
        )
