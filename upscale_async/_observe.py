"""The observed request path: event hooks, request logging and telemetry around each API call.

An :class:`Observer` exists only when the client has hooks, telemetry or ``UPSCALE_LOG``; the
internal ``Api`` then sends each call through :meth:`Api.exchange`, which reports every attempt
here. Without one the plain path runs and nothing of this module is called.

``UPSCALE_LOG=info`` logs one line per attempt (method, path, status, time, attempt);
``UPSCALE_LOG=debug`` also the URL and headers before each attempt. The API key and other
credentials never appear: headers are shown through :func:`redact_headers` and URLs through
``redact_url``. Every line carries structured fields (``extra=``): ``method``, ``path``,
``status``, ``attempt``, ``request_id`` and ``secure_request_id``.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any, Final

from ._errors import APIError, ConfigurationError, UpscaleError
from ._hooks import EventHooks, RequestEvent, ResponseEvent, RetryEvent, fire
from ._spec.contract import RETRIEVE_ID_PARAM
from ._telemetry import Telemetry

__all__ = ["ENV_LOG", "Observer", "log_level_from_env", "redact_headers"]

#: The environment variable that turns on request logging: ``debug`` or ``info``.
ENV_LOG: Final = "UPSCALE_LOG"
_LEVELS: Final = {"debug": logging.DEBUG, "info": logging.INFO}
# Header names whose values are secrets (compared lower-case).
_SECRET_HEADERS: Final = frozenset(
    {
        "api-key",
        "authorization",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "webhook-signature",
        "svix-signature",
        "x-upscale-signature",
        "x-signature",
    }
)

logger: Final = logging.getLogger("upscale_async")


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` with the value of every credential header (``Api-Key``...) shown as ``***``."""
    return {k: "***" if k.lower() in _SECRET_HEADERS else v for k, v in headers.items()}


def log_level_from_env() -> int | None:
    """The level ``UPSCALE_LOG`` asks for (None when unset); sets up the logger once.

    Raises ConfigurationError for a value other than ``debug`` or ``info``.
    """
    value = os.environ.get(ENV_LOG, "").strip().lower()
    if not value:
        return None
    level = _LEVELS.get(value)
    if level is None:
        raise ConfigurationError(
            f"{ENV_LOG}={value!r} is not a log level: set it to 'debug' or 'info', or unset it"
        )
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
    if not logger.handlers and not logging.getLogger().handlers:
        # Nothing would show the lines: give the package's logger a stderr handler of its own.
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
    return level


def _secure_id(params: Mapping[str, str] | None, data: Any) -> str | None:
    if params is not None:
        found = params.get(RETRIEVE_ID_PARAM)
        if found is not None:
            return found
    if isinstance(data, Mapping):
        found = data.get("secure_request_id")
        if isinstance(found, str):
            return found
    return None


class Observer:
    """What one client reports to: its hooks, its log level and its telemetry (each optional)."""

    __slots__ = ("hooks", "level", "telemetry")

    def __init__(
        self, hooks: EventHooks | None, level: int | None, telemetry: Telemetry | None
    ) -> None:
        self.hooks = hooks
        self.level = level
        self.telemetry = telemetry if telemetry is not None else Telemetry()

    @property
    def active(self) -> bool:
        """False when there is nothing to tell (a raw response still counts its attempts)."""
        return (
            self.hooks is not None
            or self.level is not None
            or type(self.telemetry) is not (Telemetry)
        )

    async def attempt_started(
        self,
        method: str,
        path: str,
        attempt: int,
        params: Mapping[str, str] | None,
        url: str,
        headers: Mapping[str, str],
    ) -> None:
        """Before each attempt: the on_request hook, and a DEBUG line."""
        secure_id = _secure_id(params, None)
        if self.level is not None and logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "sending %s %s (attempt %d) headers=%s",
                method,
                url,
                attempt,
                redact_headers(headers),
                extra=_fields(method, path, None, attempt, None, secure_id),
            )
        if self.hooks is not None and self.hooks.on_request is not None:
            event = RequestEvent(
                method=method, path=path, attempt=attempt, secure_request_id=secure_id
            )
            await fire(self.hooks.on_request, "on_request", event)

    # Long: one report per attempt to three listeners, each with its own fields.
    async def attempt_ended(
        self,
        call: Any,
        method: str,
        path: str,
        attempt: int,
        params: Mapping[str, str] | None,
        seconds: float,
        status: int | None,
        headers: Mapping[str, str],
        data: Any = None,
        error: UpscaleError | None = None,
    ) -> str | None:
        """After each attempt: telemetry, an INFO line, the on_response hook; the secure id.

        ``status`` is the answer's, also for a failed attempt that had one (an error status,
        or a 2xx whose body could not be read); None only when nothing was answered.
        """
        if error is None:
            self.telemetry.attempt_ended(call, method, path, status, seconds)
        else:
            self.telemetry.attempt_failed(call, method, path, status, seconds, error)
        request_id = headers.get("X-Request-Id")
        if request_id is None and isinstance(error, APIError):
            request_id = error.request_id
        secure_id = _secure_id(params, data)
        if self.level is not None:
            outcome = str(status) if status is not None else "no answer"
            if error is not None:
                outcome += f" ({type(error).__name__}: {error})"
            logger.info(
                "%s %s -> %s in %.1f ms (attempt %d)%s",
                method,
                path,
                outcome,
                seconds * 1000,
                attempt,
                f" request_id={request_id}" if request_id else "",
                extra=_fields(method, path, status, attempt, request_id, secure_id),
            )
        if self.hooks is not None and self.hooks.on_response is not None:
            event = ResponseEvent(
                method=method,
                path=path,
                attempt=attempt,
                status=status,
                elapsed=seconds,
                request_id=request_id,
                secure_request_id=secure_id,
                error=error,
                headers=headers,
            )
            await fire(self.hooks.on_response, "on_response", event)
        return secure_id

    async def retrying(
        self, call: Any, method: str, path: str, attempt: int, delay: float, error: UpscaleError
    ) -> None:
        """Before the wait to retry: telemetry (a span event) and the on_retry hook."""
        self.telemetry.retrying(call, method, path, attempt, delay, error)
        if self.hooks is not None and self.hooks.on_retry is not None:
            event = RetryEvent(method=method, path=path, attempt=attempt, delay=delay, error=error)
            await fire(self.hooks.on_retry, "on_retry", event)


def _fields(
    method: str,
    path: str,
    status: int | None,
    attempt: int,
    request_id: str | None,
    secure_request_id: str | None,
) -> dict[str, Any]:
    """The structured fields of a request log line (``record.method``, ``record.status``...)."""
    return {
        "method": method,
        "path": path,
        "status": status,
        "attempt": attempt,
        "request_id": request_id,
        "secure_request_id": secure_request_id,
    }
