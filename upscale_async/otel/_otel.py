"""OpenTelemetry: the :class:`~upscale_async.Telemetry` seam on opentelemetry-api."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

try:
    from opentelemetry import metrics, trace
except ImportError as exc:  # pragma: no cover - the extra is installed in the tests
    raise ImportError(
        "upscale_async.otel needs the 'otel' extra (opentelemetry-api): "
        "pip install 'upscale_async[otel]'"
    ) from exc

from .._errors import APIError
from .._telemetry import Telemetry
from .._version import __version__

__all__ = ["OpenTelemetry"]

_SCOPE = "upscale_async"
_METHOD = "http.request.method"
_PATH = "url.path"
_STATUS = "http.response.status_code"
_ERROR = "error.type"


class OpenTelemetry(Telemetry):
    """Spans and metrics of the SDK on OpenTelemetry (``UpscaleClient(telemetry=...)``).

    ``tracer_provider`` and ``meter_provider`` default to the global ones
    (``opentelemetry.trace.set_tracer_provider``...); with neither set, the API's no-op
    providers record nothing. The instrumentation scope is ``upscale_async``.

    Spans (kind CLIENT for calls, INTERNAL otherwise):

    - ``{METHOD} {path}`` for each API call, e.g. ``POST /messages/request_message_generation``:
      attributes ``http.request.method``, ``url.path``, ``http.response.status_code``,
      ``upscale.attempts``, ``upscale.request_id`` (when sent) and ``upscale.secure_request_id``;
      one ``retry`` event per retry (``upscale.attempt``, ``upscale.retry.delay``,
      ``error.type``); a call that fails records its exception and an error status.
    - ``upscale.batch`` around each ``submit_batch`` (and the batch of ``generate``):
      ``upscale.batch.chunk_size``, ``upscale.batch.leads`` (when the input has a length).
    - ``upscale.chunk`` around the POST of each chunk (its call span is a child):
      ``upscale.chunk.start``, ``upscale.chunk.size``.
    - ``upscale.wait`` around the wait for each request's completion (its retrieve calls are
      children): ``upscale.secure_request_id``.

    Metrics (attributes in brackets):

    - ``upscale.client.requests`` (counter): HTTP attempts sent [``http.request.method``,
      ``url.path``, ``http.response.status_code``; ``error.type`` ``no_response`` instead when
      there was no answer, and ``error.type`` as well when the answer's body could not be read
      (``ResponseValidationError``: a 2xx that is not JSON, a body over the size cap)].
    - ``upscale.client.request.duration`` (histogram, s): each attempt's time [the same].
    - ``upscale.client.retries`` (counter): retries [method, path, ``error.type``].
    - ``upscale.client.rate_limited`` (counter): 429 answers [method, path].
    - ``upscale.webhooks.received``, ``upscale.webhooks.duplicate`` (counters): verified
      webhooks, new and repeated; ``upscale.webhooks.rejected`` (counter)
      [``http.response.status_code``: 401, 400 or 413].
    - ``upscale.completion.fallback_polls`` (counter): fallback polls that found a request
      complete whose webhook had not come.
    - ``upscale.leads`` (counter): leads out of ``generate`` [``upscale.lead.outcome``:
      generated, failed, rejected, not_submitted, submit_failed, timed_out].
    """

    def __init__(
        self,
        *,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        self._tracer = trace.get_tracer(_SCOPE, __version__, tracer_provider=tracer_provider)
        meter = metrics.get_meter(_SCOPE, __version__, meter_provider=meter_provider)
        self._requests = meter.create_counter(
            "upscale.client.requests", unit="{request}", description="HTTP attempts sent"
        )
        self._duration = meter.create_histogram(
            "upscale.client.request.duration", unit="s", description="Time of each attempt"
        )
        self._retries = meter.create_counter(
            "upscale.client.retries", unit="{retry}", description="Attempts retried"
        )
        self._rate_limited = meter.create_counter(
            "upscale.client.rate_limited", unit="{response}", description="429 answers"
        )
        self._webhooks = {
            result: meter.create_counter(
                f"upscale.webhooks.{result}", unit="{webhook}", description=f"Webhooks {result}"
            )
            for result in ("received", "duplicate", "rejected")
        }
        self._fallback = meter.create_counter(
            "upscale.completion.fallback_polls",
            unit="{poll}",
            description="Fallback polls that found a request complete before its webhook",
        )
        self._leads = meter.create_counter(
            "upscale.leads", unit="{lead}", description="Leads out of generate, by outcome"
        )

    def __repr__(self) -> str:
        return "OpenTelemetry()"

    def call(self, method: str, path: str) -> AbstractContextManager[Any]:
        """A CLIENT span ``{METHOD} {path}`` around one API call."""
        return self._tracer.start_as_current_span(
            f"{method} {path}",
            kind=trace.SpanKind.CLIENT,
            attributes={_METHOD: method, _PATH: path},
        )

    def call_ended(
        self,
        call: Any,
        *,
        status: int | None,
        attempts: int,
        request_id: str | None,
        secure_request_id: str | None,
    ) -> None:
        """Set the call span's status code, attempts and ids."""
        attributes: dict[str, Any] = {"upscale.attempts": attempts}
        if status is not None:
            attributes[_STATUS] = status
        if request_id is not None:
            attributes["upscale.request_id"] = request_id
        if secure_request_id is not None:
            attributes["upscale.secure_request_id"] = secure_request_id
        call.set_attributes(attributes)

    def attempt_ended(
        self, call: Any, method: str, path: str, status: int | None, seconds: float
    ) -> None:
        """Count the attempt, record its time, count a 429."""
        self._attempt(method, path, status, seconds, None)

    def attempt_failed(
        self,
        call: Any,
        method: str,
        path: str,
        status: int | None,
        seconds: float,
        error: Exception,
    ) -> None:
        """As :meth:`attempt_ended`. An answer whose body could not be read (a 2xx that is not
        JSON, a body over the size cap) keeps its status and also gets ``error.type``, the
        error's type name: the status alone would not show that the attempt failed."""
        unread = status is not None and not isinstance(error, APIError)
        self._attempt(method, path, status, seconds, type(error).__name__ if unread else None)

    def _attempt(
        self, method: str, path: str, status: int | None, seconds: float, error_type: str | None
    ) -> None:
        attributes: dict[str, Any] = {_METHOD: method, _PATH: path}
        if status is None:
            attributes[_ERROR] = "no_response"
        else:
            attributes[_STATUS] = status
            if error_type is not None:
                attributes[_ERROR] = error_type
        self._requests.add(1, attributes)
        self._duration.record(seconds, attributes)
        if status == 429:
            self._rate_limited.add(1, {_METHOD: method, _PATH: path})

    def retrying(
        self, call: Any, method: str, path: str, attempt: int, delay: float, error: Exception
    ) -> None:
        """A ``retry`` event on the call span, and the retries counter."""
        kind = type(error).__name__
        call.add_event(
            "retry", {"upscale.attempt": attempt, "upscale.retry.delay": delay, _ERROR: kind}
        )
        self._retries.add(1, {_METHOD: method, _PATH: path, _ERROR: kind})

    def batch(self, chunk_size: int, total: int | None) -> AbstractContextManager[Any]:
        """The ``upscale.batch`` span."""
        attributes: dict[str, Any] = {"upscale.batch.chunk_size": chunk_size}
        if total is not None:
            attributes["upscale.batch.leads"] = total
        return self._tracer.start_as_current_span("upscale.batch", attributes=attributes)

    def chunk(self, start: int, size: int) -> AbstractContextManager[Any]:
        """The ``upscale.chunk`` span."""
        return self._tracer.start_as_current_span(
            "upscale.chunk", attributes={"upscale.chunk.start": start, "upscale.chunk.size": size}
        )

    def wait(self, secure_request_id: str) -> AbstractContextManager[Any]:
        """The ``upscale.wait`` span."""
        return self._tracer.start_as_current_span(
            "upscale.wait", attributes={"upscale.secure_request_id": secure_request_id}
        )

    def fallback_poll_found(self, secure_request_id: str) -> None:
        """Count a fallback poll that found a completion."""
        self._fallback.add(1)

    def leads(self, outcome: str, count: int = 1) -> None:
        """Count leads by outcome."""
        self._leads.add(count, {"upscale.lead.outcome": outcome})

    def webhook(self, result: str, status: int) -> None:
        """Count a webhook received, duplicate or rejected."""
        attributes = {_STATUS: status} if result == "rejected" else None
        self._webhooks[result].add(1, attributes)
