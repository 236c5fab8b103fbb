"""The instrumentation seam: :class:`Telemetry`, whose every method does nothing.

``UpscaleClient(telemetry=...)``, ``WebhookReceiver(telemetry=...)`` and
``webhook_handler(telemetry=...)`` take a subclass (``upscale_async.otel.OpenTelemetry``, or your
own for another metrics system). Without one the SDK never calls it: the client keeps its plain
request path (one ``is None`` test per call), and a batch, chunk or wait opens no span. The
methods are synchronous and called inline, so an implementation must be cheap and must not raise.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any, Final

__all__ = ["Telemetry"]

_NULL: Final[AbstractContextManager[Any]] = nullcontext()


class Telemetry:
    """The instrumentation seam: subclass it and override what you record (all are no-ops here).

    The span methods (:meth:`call`, :meth:`batch`, :meth:`chunk`, :meth:`wait`) return a
    context manager entered around the work (what it yields is passed back to the methods
    that record on it); the others count. Each attempt of a call ends in :meth:`attempt_ended`
    (it succeeded) or :meth:`attempt_failed` (it raised). ``upscale_async.otel.OpenTelemetry``
    is the implementation shipped with the ``otel`` extra.
    """

    def call(self, method: str, path: str) -> AbstractContextManager[Any]:
        """Around one API call, every attempt and retry included."""
        return _NULL

    def call_ended(
        self,
        call: Any,
        *,
        status: int | None,
        attempts: int,
        request_id: str | None,
        secure_request_id: str | None,
    ) -> None:
        """The call ``call`` (what :meth:`call` yielded) succeeded with ``status``."""

    def attempt_ended(
        self, call: Any, method: str, path: str, status: int | None, seconds: float
    ) -> None:
        """One attempt ended with ``status`` (None: no answer) after ``seconds``.

        Called for an attempt that succeeded, and for one that failed unless
        :meth:`attempt_failed` is overridden.
        """

    def attempt_failed(
        self,
        call: Any,
        method: str,
        path: str,
        status: int | None,
        seconds: float,
        error: Exception,
    ) -> None:
        """One attempt failed with ``error`` after ``seconds``.

        ``status`` is the answer's: an error status, or a 2xx whose body could not be read
        (``error`` is then a ``ResponseValidationError``); None when there was no answer. By
        default this calls :meth:`attempt_ended`, so a subclass overriding only that one still
        sees every attempt.
        """
        self.attempt_ended(call, method, path, status, seconds)

    def retrying(
        self, call: Any, method: str, path: str, attempt: int, delay: float, error: Exception
    ) -> None:
        """Attempt ``attempt`` of ``call`` failed with ``error``; a retry follows ``delay`` s."""

    def batch(self, chunk_size: int, total: int | None) -> AbstractContextManager[Any]:
        """Around one ``submit_batch`` (``total``: the number of leads when known)."""
        return _NULL

    def chunk(self, start: int, size: int) -> AbstractContextManager[Any]:
        """Around the POST of one chunk (``start``: its first lead's input index)."""
        return _NULL

    def wait(self, secure_request_id: str) -> AbstractContextManager[Any]:
        """Around the wait for one request's completion."""
        return _NULL

    def fallback_poll_found(self, secure_request_id: str) -> None:
        """A fallback poll (no webhook came in time) found the request complete."""

    def leads(self, outcome: str, count: int = 1) -> None:
        """``count`` leads came out of ``generate`` with ``outcome`` (``LeadOutcome.outcome``)."""

    def webhook(self, result: str, status: int) -> None:
        """A webhook was ``"received"`` (new), ``"duplicate"`` or ``"rejected"`` (``status``)."""
