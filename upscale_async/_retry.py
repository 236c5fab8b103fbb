"""The retry loop: which errors are retried, how long to wait, and one deadline for a whole call.

Kept apart from the transport (which sends once and translates) so each step is a named,
testable decision, in the shape of stamina and openai-python: :func:`retry_decision` says
whether an error is transient and, for 429/503 with ``Retry-After``, how long the server asked
to wait; :func:`call_with_retries` owns the counting, backoff, jitter, logging and deadline.
Cancellation is never caught here.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import anyio

from ._config import RetryPolicy
from ._errors import APIError, RequestTimeoutError, TransportError, UpscaleError
from ._governor import RateGovernor

__all__ = ["call_with_retries", "retry_decision"]

logger: Final = logging.getLogger("upscale_async")

T = TypeVar("T")

_RETRY_STATUSES: Final = frozenset({408, 429})
"""Retried besides every 5xx (D11: 408/429/5xx); 400, 401, 402, 404 and 422 never are."""

Send = Callable[[float | None], Awaitable[T]]
"""One attempt, given the seconds it may take at most (None: the client's own timeout)."""
OnRetry = Callable[[UpscaleError, int, float], Awaitable[None]]
"""Told of each retry: the error, the attempt that failed (1-based) and the wait before the next."""


def retry_decision(error: BaseException) -> bool | float:
    """False: raise ``error`` now; True: retry after the backoff; a float: retry after that wait.

    Connection errors and timeouts are transient; so are 408, 429 and 5xx. A ``Retry-After``
    on any of them replaces the backoff (:func:`call_with_retries` has already capped it at
    ``retry_after_max`` and scaled it by ``time_scale`` in ``error.retry_after``).
    """
    if isinstance(error, TransportError):
        return True
    if isinstance(error, APIError) and _is_transient_status(error.status):
        return True if error.retry_after is None else error.retry_after
    return False


def _is_transient_status(status: int | None) -> bool:
    """408, 429 and every status from 500 up (D11), not only 500 and 502-504."""
    return status is not None and (status in _RETRY_STATUSES or status >= 500)


# Long: one loop owns the attempts, the governor's ticket of each and the retry budget.
async def call_with_retries(
    send: Send[T],
    policy: RetryPolicy,
    *,
    method: str,
    path: str,
    rng: random.Random,
    on_retry: OnRetry | None = None,
    governor: RateGovernor | None = None,
) -> T:
    """Run ``send`` until it succeeds, the error is not transient, or attempts or time run out.

    No attempt starts, and no wait begins, that would end past ``policy.timeout``; an attempt
    in flight at the deadline is bounded by the time left and raises
    :class:`RequestTimeoutError`. ``on_retry`` (hooks, telemetry) is awaited before each wait.
    With a ``governor`` (the client's) each attempt waits for its admission (pauses, the
    concurrency limit) and reports how it went, and each retry is paid from its retry budget.
    """
    deadline = None if policy.timeout is None else time.monotonic() + policy.timeout
    attempt = 1
    taken = 0  # the retry budget's tokens the last retry of this call took
    while True:
        ticket = 0 if governor is None else await governor.admit(deadline, method, path)
        left = None if deadline is None else deadline - time.monotonic()
        try:
            result = await send(left)
        except UpscaleError as error:
            _cap_retry_after(error, policy)
            decision = retry_decision(error)
            if decision is True:
                delay = policy.backoff(attempt, rng.random()) * policy.time_scale
            else:
                delay = float(decision)  # already capped and scaled (False: not retried)
            if governor is not None:
                governor.failed(ticket, error, method, path, delay)
            if decision is False or attempt >= policy.attempts:
                raise
            if deadline is not None and time.monotonic() + delay >= deadline:
                logger.warning(
                    "giving up on %s %s after %d attempts: the retry deadline of %g s would "
                    "pass during the next wait; last error: %s",
                    method,
                    path,
                    attempt,
                    policy.timeout,
                    error,
                    extra=_fields(method, path, attempt, error),
                )
                raise
            if governor is not None:
                cost = governor.take_retry(error)
                if cost is None:
                    logger.warning("not retrying %s %s: the retry budget is spent", method, path)
                    error.add_note(governor.budget_note())
                    raise
                taken = cost
            logger.warning(
                "retrying %s %s in %.2f s (attempt %d of %d) after: %s",
                method,
                path,
                delay,
                attempt + 1,
                policy.attempts,
                error,
                extra=_fields(method, path, attempt, error),
            )
            if on_retry is not None:
                await on_retry(error, attempt, delay)
            attempt += 1
            await anyio.sleep(delay)
        except BaseException:
            if governor is not None:
                governor.released(ticket)
            raise
        else:
            if governor is not None:
                governor.succeeded(ticket, taken)
            return result


def _fields(method: str, path: str, attempt: int, error: UpscaleError) -> dict[str, object]:
    """The structured fields of a retry log line (as on the request lines of ``UPSCALE_LOG``)."""
    api_error = error if isinstance(error, APIError) else None
    return {
        "method": method,
        "path": path,
        "status": api_error.status if api_error else None,
        "attempt": attempt,
        "request_id": api_error.request_id if api_error else None,
        "secure_request_id": None,
    }


def _cap_retry_after(error: UpscaleError, policy: RetryPolicy) -> None:
    """Make ``error.retry_after`` the wait actually used: capped, then scaled (once per error).

    The server's own value stays readable in ``error.retry_after_header``.
    """
    if isinstance(error, APIError) and error.retry_after is not None:
        error.retry_after = min(error.retry_after, policy.retry_after_max) * policy.time_scale


def deadline_error(method: str, path: str, seconds: float) -> RequestTimeoutError:
    """The error for an attempt cut short by the overall retry deadline."""
    return RequestTimeoutError(
        f"no answer before the call's overall deadline (RetryPolicy.timeout, {seconds:.3g} s "
        "left for this attempt); raise RetryPolicy(timeout=...) if the service is slow",
        method=method,
        path=path,
    )
