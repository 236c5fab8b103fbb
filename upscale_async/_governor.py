"""The rate governor: one per client, in front of every request it sends.

Each attempt of each call (submitting, polling, any endpoint, retries included) is admitted by
the client's :class:`RateGovernor` and reports back how it went, so the client as a whole reacts
to an overloaded service instead of each request alone:

- **Pauses.** A 429 pauses every request of the client for as long as the request that got it
  waits before its retry: its ``Retry-After`` (capped and scaled: ``APIError.retry_after``), else
  its backoff; ``burst_errors`` 5xx answers within ``burst_window`` seconds pause it for
  ``burst_pause`` (by default, the backoff of the request whose error completed the burst).
  Requests already in flight finish; none starts until the pause is over.
- **Concurrency (AIMD).** At most ``concurrency_limit`` requests are in flight. It starts at the
  user's maximum; a 429 or a burst halves it (``decrease_factor``, from what was in flight, once
  per window: the requests sent before a decrease cannot decrease it again), and each success
  adds ``1 / limit`` (one per window of successes) back up to the maximum, while the limit is
  in use (at least half of it in flight).
- **Retry budget** (botocore's retry quota): a bucket of ``retry_quota`` tokens; each retry
  takes ``retry_cost`` (``timeout_retry_cost`` after a timeout or dropped connection), a call
  that succeeds at once gives ``success_refund`` back, one that succeeds after retries gives
  back what its last retry took. With the bucket empty an error is raised instead of retried,
  so a failing service cannot multiply the client's traffic by ``RetryPolicy.attempts``.

The governor costs two clock reads and a few comparisons per attempt while nothing is wrong.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Final

import anyio
import attrs

from ._errors import APIError, RequestTimeoutError, TransportError, UpscaleError

__all__ = ["GovernorPolicy", "RateGovernor"]

logger: Final = logging.getLogger("upscale_async")

#: Tokens in the retry budget (botocore's ``RetryQuota.INITIAL_CAPACITY``).
DEFAULT_RETRY_QUOTA: Final = 500


def _positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


def _fraction(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0 < value < 1:
        raise ValueError(f"{attribute.name} must be between 0 and 1 (exclusive), got {value!r}")


@attrs.frozen(kw_only=True)
class GovernorPolicy:
    """How a client's :class:`RateGovernor` paces all its requests together.

    ``max_concurrency`` is the most requests in flight at once across the client (None: the
    client's ``max_connections``); the limit never goes below ``min_concurrency``. A 429 pauses
    every request for as long as the request that got it waits to retry (its ``Retry-After``,
    else its backoff under its ``RetryPolicy``); ``burst_errors`` 5xx answers within
    ``burst_window`` seconds pause every request for ``burst_pause`` seconds (None: the backoff
    of the request that completed the burst). ``retry_quota`` tokens (None: no budget) pay for
    retries: ``retry_cost`` each, ``timeout_retry_cost`` after a timeout or connection error; a
    call that succeeds at once returns ``success_refund``. Pass ``UpscaleClient(governor=None)``
    for no governor at all (each request then retries on its own, as before)::

        client = UpscaleClient(governor=GovernorPolicy(max_concurrency=16, retry_quota=100))
    """

    max_concurrency: int | None = attrs.field(
        default=None, validator=attrs.validators.optional(attrs.validators.ge(1))
    )
    min_concurrency: int = attrs.field(default=1, validator=attrs.validators.ge(1))
    decrease_factor: float = attrs.field(default=0.5, validator=_fraction)
    burst_errors: int = attrs.field(default=5, validator=attrs.validators.ge(1))
    burst_window: float = attrs.field(default=2.0, validator=_positive)
    burst_pause: float | None = attrs.field(
        default=None, validator=attrs.validators.optional(_non_negative)
    )
    retry_quota: int | None = attrs.field(
        default=DEFAULT_RETRY_QUOTA,
        validator=attrs.validators.optional(attrs.validators.ge(0)),  # type: ignore[arg-type]
    )
    retry_cost: int = attrs.field(default=5, validator=attrs.validators.ge(0))
    timeout_retry_cost: int = attrs.field(default=10, validator=attrs.validators.ge(0))
    success_refund: int = attrs.field(default=1, validator=attrs.validators.ge(0))

    def __attrs_post_init__(self) -> None:
        if self.max_concurrency is not None and self.min_concurrency > self.max_concurrency:
            raise ValueError(
                f"min_concurrency ({self.min_concurrency}) must not exceed max_concurrency "
                f"({self.max_concurrency})"
            )


class RateGovernor:
    """The live state of one client's governor (``client.governor``); see :class:`GovernorPolicy`.

    Shared by the client and every view :meth:`UpscaleClient.with_options` makes of it. Read
    :attr:`concurrency_limit`, :attr:`in_flight`, :attr:`paused_for` and
    :attr:`retry_capacity` to see it work; the counters :attr:`pauses`, :attr:`decreases` and
    :attr:`retries_refused` only grow.
    """

    __slots__ = (
        "_capacity",
        "_epoch",
        "_errors",
        "_limit",
        "_max",
        "_min",
        "_paused_until",
        "_slots",
        "_waiters",
        "decreases",
        "in_flight",
        "pauses",
        "policy",
        "retries_refused",
    )

    def __init__(self, policy: GovernorPolicy, *, max_connections: int) -> None:
        self.policy = policy
        self._max = policy.max_concurrency or max_connections
        self._min = min(policy.min_concurrency, self._max)
        self._limit = float(self._max)
        self._slots = self._max
        self._epoch = 0
        self._paused_until = 0.0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._errors: deque[float] = deque()
        self._capacity = policy.retry_quota
        #: Requests admitted and not yet finished.
        self.in_flight = 0
        #: Pauses started (a 429, or a burst of 5xx).
        self.pauses = 0
        #: Multiplicative decreases of the concurrency limit.
        self.decreases = 0
        #: Retries refused because the retry budget was empty.
        self.retries_refused = 0

    def __repr__(self) -> str:
        return (
            f"<RateGovernor limit={self._slots}/{self._max} in_flight={self.in_flight} "
            f"paused_for={self.paused_for:.3g}s retry_capacity={self._capacity}>"
        )

    @property
    def concurrency_limit(self) -> int:
        """The requests the client may have in flight now (between the minimum and maximum)."""
        return self._slots

    @property
    def max_concurrency(self) -> int:
        """The most requests in flight at once, the limit's ceiling."""
        return self._max

    @property
    def paused_for(self) -> float:
        """Seconds until the current pause ends (0.0 when not paused)."""
        return max(0.0, self._paused_until - time.monotonic())

    @property
    def retry_capacity(self) -> int | None:
        """Tokens left in the retry budget (None: no budget)."""
        return self._capacity

    # -- admission ---------------------------------------------------------------------------

    async def admit(self, deadline: float | None, method: str, path: str) -> int:
        """Wait for the pause to end and a free slot; the ticket to report the attempt with.

        Raises RequestTimeoutError when the pause or the wait would pass ``deadline``
        (``time.monotonic()`` seconds; None: no deadline).
        """
        if (
            self.in_flight < self._slots
            and not self._waiters
            and self._paused_until <= time.monotonic()
        ):
            self.in_flight += 1
            return self._epoch
        await self._wait(deadline, method, path)
        self.in_flight += 1
        self._wake_next()
        return self._epoch

    async def _wait(self, deadline: float | None, method: str, path: str) -> None:
        """Sleep through pauses and queue (first come, first served) for a slot."""
        woken = False  # woken by a release: ahead of newcomers, and owes the wake-up if it quits
        try:
            while True:
                now = time.monotonic()
                if self._paused_until > now:
                    if deadline is not None and self._paused_until >= deadline:
                        raise _paused_past_deadline(method, path, self._paused_until - now)
                    await anyio.sleep(self._paused_until - now)
                    continue
                if self.in_flight < self._slots and (woken or not self._waiters):
                    return
                future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                if woken:
                    self._waiters.appendleft(future)
                else:
                    self._waiters.append(future)
                woken = False
                with anyio.move_on_after(None if deadline is None else deadline - now) as scope:
                    try:
                        await future
                    except BaseException:
                        if future.done() and not future.cancelled():
                            woken = True
                        elif future in self._waiters:
                            self._waiters.remove(future)
                        raise
                if scope.cancelled_caught:
                    raise _no_slot_before_deadline(method, path, self._slots)
                woken = True
        except BaseException:
            if woken:
                self._wake_next()  # the slot it was woken for goes to the next in line
            raise

    def _wake_next(self) -> None:
        """Wake the first waiter when a slot is free and no pause runs."""
        waiters = self._waiters
        while waiters and self.in_flight < self._slots:
            future = waiters.popleft()
            if not future.done():
                future.set_result(None)
                return

    # -- outcomes ----------------------------------------------------------------------------

    def succeeded(self, ticket: int, retry_taken: int) -> None:
        """An attempt answered 2xx; ``retry_taken``: what the call's last retry took (0: none)."""
        self.in_flight -= 1
        if self._slots < self._max and self.in_flight * 2 + 2 >= self._slots:
            self._limit = min(float(self._max), self._limit + 1.0 / self._limit)
            self._slots = int(self._limit)
        capacity = self._capacity
        quota = self.policy.retry_quota
        if capacity is not None and quota is not None and capacity < quota:
            refund = retry_taken or self.policy.success_refund
            self._capacity = min(quota, capacity + refund)
        if self._waiters:
            self._wake_next()

    def failed(self, ticket: int, error: UpscaleError, method: str, path: str, wait: float) -> None:
        """An attempt ended in ``error``: pause on a 429 or a burst of 5xx; free its slot.

        ``wait``: the seconds its call waits before retrying (its ``Retry-After``, capped and
        scaled, else its backoff), the length of a pause it starts.
        """
        self.in_flight -= 1
        status = error.status if isinstance(error, APIError) else None
        if status == 429:
            self._pause(wait, f"429 on {method} {path}")
            self._decrease(ticket)
        elif status is not None and status >= 500:
            now = time.monotonic()
            errors = self._errors
            errors.append(now)
            while errors and errors[0] <= now - self.policy.burst_window:
                errors.popleft()
            if len(errors) >= self.policy.burst_errors:
                errors.clear()
                burst_pause = self.policy.burst_pause
                self._pause(
                    wait if burst_pause is None else burst_pause,
                    f"{self.policy.burst_errors} server errors within "
                    f"{self.policy.burst_window:g} s, the last {status} on {method} {path}",
                )
                self._decrease(ticket)
        if self._waiters:
            self._wake_next()

    def released(self, ticket: int) -> None:
        """An attempt ended without an answer to judge (cancelled, or a non-SDK error)."""
        self.in_flight -= 1
        if self._waiters:
            self._wake_next()

    def _pause(self, seconds: float, why: str) -> None:
        until = time.monotonic() + seconds
        if until > self._paused_until:
            self._paused_until = until
            self.pauses += 1
            logger.warning(
                "rate governor: pausing every request of this client for %.3g s after a %s "
                "(concurrency limit %d of %d)",
                seconds,
                why,
                self._slots,
                self._max,
            )

    def _decrease(self, ticket: int) -> None:
        """Multiplicative decrease, once per window (a ticket older than the last is ignored)."""
        if ticket != self._epoch:
            return
        base = min(self._limit, float(self.in_flight + 1))
        self._limit = max(float(self._min), base * self.policy.decrease_factor)
        self._slots = max(self._min, int(self._limit))
        self._epoch += 1
        self.decreases += 1

    # -- the retry budget --------------------------------------------------------------------

    def take_retry(self, error: UpscaleError) -> int | None:
        """Take a retry's tokens from the budget: how many, or None when it is empty."""
        capacity = self._capacity
        if capacity is None:
            return 0
        timed_out = isinstance(error, TransportError | RequestTimeoutError)
        cost = self.policy.timeout_retry_cost if timed_out else self.policy.retry_cost
        if cost > capacity:
            self.retries_refused += 1
            return None
        self._capacity = capacity - cost
        return cost

    def budget_note(self) -> str:
        """Why a retry was refused, for the error's notes."""
        p = self.policy
        return (
            f"not retried: this client's retry budget is spent (GovernorPolicy.retry_quota="
            f"{p.retry_quota}; a retry costs {p.retry_cost}, {p.timeout_retry_cost} after a "
            f"timeout, and each call that succeeds at once gives {p.success_refund} back): the "
            "service has been failing, so the client stopped multiplying its traffic; it "
            "retries again as calls succeed (raise retry_quota, or pass retry_quota=None for "
            "no budget)"
        )


def _paused_past_deadline(method: str, path: str, seconds: float) -> RequestTimeoutError:
    return RequestTimeoutError(
        f"not sent: the client's rate governor is pausing every request for {seconds:.3g} s "
        "more (after a 429 or a burst of 5xx), past this call's overall deadline "
        "(RetryPolicy.timeout); raise the timeout, or lower RetryPolicy.retry_after_max",
        method=method,
        path=path,
    )


def _no_slot_before_deadline(method: str, path: str, limit: int) -> RequestTimeoutError:
    return RequestTimeoutError(
        f"not sent: no request slot of the client's rate governor came free before this "
        f"call's overall deadline (RetryPolicy.timeout; {limit} requests in flight allowed "
        "now); raise the timeout or GovernorPolicy.max_concurrency, or send fewer calls at once",
        method=method,
        path=path,
    )
