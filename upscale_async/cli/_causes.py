"""Saying why a ``generate`` run went wrong, once: a wrong webhook secret, retries, stops.

- :class:`SignatureAlarm`: webhooks rejected for their signature give one warning, soon.
- :class:`RetryLog`: the SDK's per-retry log lines are counted (``-v`` prints them), so that a
  dead URL ends in one line naming it and the last error instead of a flood of warnings.
- :func:`cause_line`: the summary's line for a run stopped by credits (402), a refused key
  (401) or a service it could not reach, with how many leads and the command that resumes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final

import anyio

from .. import StopReason, WebhookPayloadError, WebhookVerificationError
from .._config import ENV_API_KEY

__all__ = ["ENV_WEBHOOK_SECRET", "RetryLog", "SignatureAlarm", "cause_line"]

ENV_WEBHOOK_SECRET: Final = "UPSCALE_WEBHOOK_SECRET"
#: The SDK's logger; its retry loop (module ``_retry``) logs each retry and each give-up.
SDK_LOGGER: Final = "upscale_async"
#: Error types (as ``FailedChunk.error_type`` names them) that mean "could not reach it".
_UNREACHABLE: Final = ("TransportError", "RequestTimeoutError")
#: Errors the service answers every time for the same request: retrying later cannot help.
_REFUSED: Final = {
    "BadRequestError": 400,
    "NotFoundError": 404,
    "UnprocessableEntityError": 422,
}


class SignatureAlarm:
    """Counts webhooks rejected for their signature, and warns once, soon after the first.

    A wrong secret rejects every delivery: without this the run waits for the fallback poll
    in silence (the receiver logs rejections at INFO only).
    """

    #: How long after the first rejection the warning comes (so that it can count a few).
    DELAY: Final = 1.0

    def __init__(self, fallback_interval: float, say: Callable[[str], None]) -> None:
        self.fallback_interval = fallback_interval
        self.say = say
        self.rejected = 0
        self.first = anyio.Event()

    def on_rejected(self, error: WebhookVerificationError | WebhookPayloadError) -> None:
        """``WebhookReceiver(on_rejected=...)``: count bad signatures (not bad bodies)."""
        if isinstance(error, WebhookVerificationError):
            self.rejected += 1
            self.first.set()

    async def watch(self) -> None:
        """Warn once, ``DELAY`` seconds after the first bad signature (until cancelled)."""
        await self.first.wait()
        await anyio.sleep(self.DELAY)
        n = self.rejected
        self.say(
            f"warning: {n} webhook{'s were' if n != 1 else ' was'} rejected for a bad "
            f"signature: the webhook secret (--webhook-secret / {ENV_WEBHOOK_SECRET}) is "
            "probably not the one Upscale signs with; waiting by polling meanwhile "
            f"(every {self.fallback_interval:g} s)"
        )


class RetryLog(logging.Filter):
    """On the SDK's logger: counts the retry loop's lines, and passes them only when verbose."""

    def __init__(self, *, verbose: bool) -> None:
        super().__init__()
        self.verbose = verbose
        self.retries = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.module != "_retry":
            return True
        if str(record.msg).startswith("retrying"):
            self.retries += 1
        return self.verbose

    @classmethod
    @contextmanager
    def installed(cls, *, verbose: bool) -> Iterator[RetryLog]:
        """Filter the SDK's logger for the time of the ``with`` block."""
        log = cls(verbose=verbose)
        logger = logging.getLogger(SDK_LOGGER)
        logger.addFilter(log)
        try:
            yield log
        finally:
            logger.removeFilter(log)


def cause_line(
    *,
    stop: StopReason | None,
    cause: str | None,
    leads: int,
    base_url: str | None,
    retries: int,
    resume: str | None,
) -> str | None:
    """One line: why ``leads`` leads were not submitted, and what to run next (None: no cause).

    ``cause`` is the last error, as ``"TypeName: message"``; ``resume`` the command that
    continues (None without a journal: the records carry the leads to send again).
    """
    if leads == 0 or cause is None:
        return None
    run = f"run: {resume}" if resume else "send them again (their records carry the lead)"
    if stop is StopReason.INSUFFICIENT_CREDITS:
        return f"credits ran out (402): {leads} leads were not submitted; buy credits, then {run}"
    if stop is StopReason.AUTHENTICATION:
        return (
            f"the API key was refused (401): {leads} leads were not submitted; fix the key "
            f"(--api-key / {ENV_API_KEY}), then {run}"
        )
    refused = _REFUSED.get(cause.partition(":")[0])
    if refused is not None:
        return (
            f"the Upscale API at {base_url} refused the requests ({refused}): {leads} leads were "
            f"not submitted; last error: {cause}; fix what the error names (a smaller "
            f"--chunk-size for a size limit), then {run}"
        )
    tried = f" after {retries} retries" if retries else ""
    if cause.startswith(_UNREACHABLE):
        what = f"cannot reach the Upscale API at {base_url}{tried}"
    else:
        what = f"the Upscale API at {base_url} kept failing{tried}"
    return f"{what}: {leads} leads were not submitted; last error: {cause}; once it answers, {run}"
