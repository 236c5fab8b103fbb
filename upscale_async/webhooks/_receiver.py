"""Reading completion webhooks: parse_webhook (any framework), an aiohttp handler, a server.

The request path does three cheap things (verify, parse, ``await hub.deliver``) and answers at
once; it never calls the API. Completion is confirmed later by ``retrieve_messages``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType

import orjson
from aiohttp import web

from .._errors import WebhookPayloadError, WebhookVerificationError
from .._hooks import EventHooks, WebhookAcceptedEvent, WebhookRejectedEvent, fire
from .._models import CompletionEvent
from .._telemetry import Telemetry
from .._wire import structure_event
from ._guard import FloodLog, Gate, Guard, ReceiverLimits, not_found, post_only, tracked
from ._hub import CompletionHub
from ._verifiers import WebhookVerifier

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_WEBHOOK_PATH",
    "ReceiverLimits",
    "WebhookHandler",
    "WebhookReceiver",
    "parse_webhook",
    "webhook_handler",
]

logger = logging.getLogger("upscale_async.webhooks")

DEFAULT_MAX_BODY_SIZE = 64 * 1024
"""Largest webhook body accepted, in bytes (a completion event is a few hundred)."""
DEFAULT_WEBHOOK_PATH = "/upscale/webhook"
"""The route a :class:`WebhookReceiver` serves unless given another ``path``."""
_READ_TIMEOUT = 10.0  # Upscale gives up on an attempt after 10 s (D10)
_SHUTDOWN_TIMEOUT = 2.0  # handlers answer in milliseconds; do not wait aiohttp's default 60 s
_MAX_LINE = 8190  # aiohttp's default cap on the request line and on each header
_BACKLOG = 128  # aiohttp's TCPSite default
# Descriptors left for a burst of accepts (up to the backlog before the guard sees them),
# the listener, the loop, logs, the hub's store...
_FD_HEADROOM = 256


def _connection_bound(requested: int) -> int:
    """``requested``, lowered (with a warning) to leave descriptors under the process's limit."""
    if sys.platform == "win32":
        return requested
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or requested <= soft - _FD_HEADROOM:
        return requested
    bound = max(1, soft - _FD_HEADROOM)
    logger.warning(
        "max_connections=%d lowered to %d: the open-file limit is %d (raise it with "
        "'ulimit -n' to allow more connections)",
        requested,
        bound,
        soft,
    )
    return bound


def parse_webhook(
    body: bytes,
    headers: Mapping[str, str],
    verifier: WebhookVerifier,
    *,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
) -> CompletionEvent:
    """Verify and parse one completion webhook, from any web framework.

    Pass the raw request body (bytes, exactly as received: the signature covers them) and
    the request headers (any mapping; names are matched case-insensitively).

    Returns a :class:`~upscale_async.CompletionEvent`; its ``webhook_id`` is what the
    verifier returned: the signed webhook id, or None when the scheme signs none (the hub then
    dedupes on the signed body). Unknown keys are kept in ``extra``.

    Raises:
        TypeError: ``verifier`` is None or has no ``verify``: pass a verifier, or
            ``UnverifiedWebhooks()`` to knowingly accept unsigned webhooks.
        WebhookPayloadError: the body is larger than ``max_body_size`` (checked first), or,
            after a good signature, not a JSON completion event (the message names the field).
        WebhookVerificationError: the signature is missing, wrong or stale.

    Example (Starlette/FastAPI)::

        event = parse_webhook(await request.body(), request.headers, verifier)
        await hub.deliver(event)
    """
    _check_verifier(verifier)
    if not isinstance(body, bytes | bytearray | memoryview):
        raise TypeError(f"body must be the raw request bytes, not {type(body).__name__}")
    size = body.nbytes if isinstance(body, memoryview) else len(body)
    if size > max_body_size:
        raise WebhookPayloadError(
            f"webhook body is {size} bytes, more than the limit of {max_body_size}"
        )
    return _parse(bytes(body), headers, verifier)


def _parse(body: bytes, headers: Mapping[str, str], verifier: WebhookVerifier) -> CompletionEvent:
    """:func:`parse_webhook` once its arguments are checked (the handler checks them once)."""
    # Only what the verifier vouches for: an unsigned webhook-id header must not become the
    # duplicate key, or one captured body replays under fresh ids as new deliveries.
    webhook_id = verifier.verify(body, headers)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise WebhookPayloadError(f"webhook body is not valid JSON: {exc}") from None
    return structure_event(data, webhook_id)


def _check_verifier(verifier: object) -> None:
    if not callable(getattr(verifier, "verify", None)):
        raise TypeError(
            f"verifier must have verify(body, headers), not {verifier!r}; pass "
            "StandardWebhooksVerifier(secret) or HmacSignatureVerifier(secret, ...), or "
            "UnverifiedWebhooks() to knowingly accept unsigned webhooks"
        )


WebhookHandler = Callable[[web.Request], Awaitable[web.Response]]
"""The type of the aiohttp.web handler that :func:`webhook_handler` returns."""

OnRejected = Callable[[WebhookVerificationError | WebhookPayloadError], object]
"""The type of ``on_rejected``: called with the error of each webhook rejected (401, 400, 413)."""

_OK = b'{"ok":true}'
_DUPLICATE = b'{"ok":true,"duplicate":true}'


def _error(status: int, message: str) -> web.Response:
    return web.Response(
        status=status,
        body=orjson.dumps({"ok": False, "error": message}),
        content_type="application/json",
    )


async def _read_capped(request: web.Request, limit: int) -> bytes | None:
    """The body, or None when it is longer than ``limit`` (never reads more than limit + 1)."""
    length = request.content_length
    if length is not None:  # already checked against the limit; the stream ends there
        return await request.read()
    chunks: list[bytes] = []  # chunked: cap the read ourselves
    size = 0
    while chunk := await request.content.read(min(65536, limit + 1 - size)):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def webhook_handler(
    hub: CompletionHub,
    verifier: WebhookVerifier,
    *,
    max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    on_rejected: OnRejected | None = None,
    hooks: EventHooks | None = None,
    telemetry: Telemetry | None = None,
) -> WebhookHandler:
    """An aiohttp.web handler that verifies completion webhooks and delivers them to ``hub``.

    The hub is the caller's to open and close (``async with hub:``); the handler only awaits
    ``hub.deliver``. When that raises (a shared store such as Redis cannot be reached; the hub
    has then woken its own waiters for the id), the handler logs it and answers 503, so that
    Upscale retries the webhook and the retry reaches every replica once the store is back.

    Answers 200 ``{"ok": true}`` for a good event (also a duplicate, or an id nobody waits on:
    it is kept for a waiter that may register a moment later), 401 for a bad or stale
    signature, 400 for a body that is not a JSON completion event, 413 for a body over
    ``max_body_size`` (Content-Length is checked before reading, and the read is capped). The
    Content-Type is not checked: the signature covers the raw body, which must be JSON.
    Its log lines (one per rejected webhook, at INFO) are rate-limited: at most 10 a second,
    then a count of those suppressed. To act on rejections (a wrong secret rejects every
    delivery), pass ``on_rejected``: it is called in the request, before the answer, with the
    :class:`~upscale_async.WebhookVerificationError` (401) or
    :class:`~upscale_async.WebhookPayloadError` (400, 413) of each rejected webhook; what it
    raises is logged, and the answer stays the same. ``hooks`` (an
    :class:`~upscale_async.EventHooks`) have ``on_webhook_accepted`` called for each verified
    webhook handed to the hub and ``on_webhook_rejected`` for each rejected one (a hook that
    raises is logged; the answer stays the same); ``telemetry`` (e.g.
    ``upscale_async.otel.OpenTelemetry``) counts them as received, duplicate or rejected.

    Example::

        app.router.add_post("/upscale/webhook", webhook_handler(hub, verifier))
    """
    _check_verifier(verifier)
    if max_body_size < 1:
        raise ValueError(f"max_body_size must be >= 1, not {max_body_size!r}")
    _check_callback(on_rejected, hooks, telemetry)
    defaults = ReceiverLimits()
    log = FloodLog(logger, defaults.max_log_lines, defaults.log_period)
    listeners = _Listeners(on_rejected, hooks, telemetry)
    return _make_handler(hub, verifier, max_body_size, log, listeners)


def _check_callback(on_rejected: object, hooks: object = None, telemetry: object = None) -> None:
    if on_rejected is not None and not callable(on_rejected):
        raise TypeError(f"on_rejected must be callable or None, not {on_rejected!r}")
    if hooks is not None and not isinstance(hooks, EventHooks):
        raise TypeError(f"hooks must be an upscale_async.EventHooks, not {type(hooks).__name__}")
    if telemetry is not None and not isinstance(telemetry, Telemetry):
        raise TypeError(
            "telemetry must be a Telemetry such as upscale_async.otel.OpenTelemetry(...), "
            f"not {type(telemetry).__name__}"
        )


class _Listeners:
    """Who hears of each webhook: ``on_rejected``, the event hooks and the telemetry."""

    __slots__ = ("accepted_hook", "on_rejected", "quiet", "rejected_hook", "telemetry")

    def __init__(
        self,
        on_rejected: OnRejected | None,
        hooks: EventHooks | None,
        telemetry: Telemetry | None,
    ) -> None:
        self.on_rejected = on_rejected
        self.accepted_hook = hooks.on_webhook_accepted if hooks is not None else None
        self.rejected_hook = hooks.on_webhook_rejected if hooks is not None else None
        self.telemetry = telemetry
        # Nobody hears of an accepted webhook but the debug log: the handler skips the call.
        self.quiet = telemetry is None and self.accepted_hook is None

    async def accepted(self, event: CompletionEvent, new: bool) -> None:
        """A verified webhook went to the hub (``new``: not a duplicate)."""
        if logger.isEnabledFor(logging.DEBUG):  # UPSCALE_LOG=debug
            logger.debug(
                "webhook %s for %s accepted (%s)",
                event.webhook_id,
                event.secure_request_id,
                "new" if new else "duplicate",
                extra={"secure_request_id": event.secure_request_id, "status": 200},
            )
        if self.telemetry is not None:
            self.telemetry.webhook("received" if new else "duplicate", 200)
        if self.accepted_hook is not None:
            info = WebhookAcceptedEvent(event=event, duplicate=not new)
            await fire(self.accepted_hook, "on_webhook_accepted", info)


async def _rejected(
    log: FloodLog,
    listeners: _Listeners,
    status: int,
    error: WebhookVerificationError | WebhookPayloadError,
    remote: str | None,
) -> web.Response:
    """Log a rejected webhook, tell ``on_rejected`` and the hooks, and answer ``status``."""
    log.info("webhook from %s rejected (%d): %s", remote, status, error)
    if listeners.on_rejected is not None:
        try:
            listeners.on_rejected(error)
        except Exception:
            log.exception("on_rejected raised for a webhook rejected (%d)", status)
    if listeners.telemetry is not None:
        listeners.telemetry.webhook("rejected", status)
    if listeners.rejected_hook is not None:
        info = WebhookRejectedEvent(status=status, error=error, remote=remote)
        await fire(listeners.rejected_hook, "on_webhook_rejected", info)
    return _error(status, str(error))


def _not_delivered(log: FloodLog, event: CompletionEvent, error: Exception) -> web.Response:
    """Answer 503 for a webhook the hub could not share (its store failed): retried later."""
    log.warning(
        "webhook for %s answered 503, to be retried by its sender: the hub could not deliver "
        "it (%s: %s); this replica's own waiters for it were woken",
        event.secure_request_id,
        type(error).__name__,
        error,
    )
    return _error(503, "the completion store is unavailable; retry later")


def _make_handler(
    hub: CompletionHub,
    verifier: WebhookVerifier,
    limit: int,
    log: FloodLog,
    listeners: _Listeners,
) -> WebhookHandler:
    too_large = f"webhook body is larger than the limit of {limit} bytes"

    async def handle_upscale_webhook(request: web.Request) -> web.Response:
        length = request.content_length
        if length is not None and length > limit:
            return await _rejected(
                log, listeners, 413, WebhookPayloadError(too_large), request.remote
            )
        if length is not None and request.content.is_eof():  # all here already: no wait
            body: bytes | None = await request.read()
        else:
            try:
                async with asyncio.timeout(_READ_TIMEOUT):  # a trickling sender cannot hold us
                    body = await _read_capped(request, limit)
            except TimeoutError:
                return _error(408, f"webhook body not received within {_READ_TIMEOUT:g} s")
        if body is None:
            return await _rejected(
                log, listeners, 413, WebhookPayloadError(too_large), request.remote
            )
        try:  # the body is bytes of at most ``limit``: read above under that cap
            event = _parse(body, request.headers, verifier)
        except WebhookVerificationError as exc:
            return await _rejected(log, listeners, 401, exc, request.remote)
        except WebhookPayloadError as exc:
            return await _rejected(log, listeners, 400, exc, request.remote)
        try:
            new = await hub.deliver(event)
        except Exception as exc:
            return _not_delivered(log, event, exc)
        if not listeners.quiet or logger.isEnabledFor(logging.DEBUG):
            await listeners.accepted(event, new)
        return web.Response(body=_OK if new else _DUPLICATE, content_type="application/json")

    return handle_upscale_webhook


async def _stop_accepting(server: asyncio.Server) -> None:
    """Stop accepting, then close ``server`` once the connections it accepted have transports.

    asyncio accepts a connection in one turn of the loop and makes its transport in a later
    one, and a server closed in between fails that step (``Server._attach``), leaving the
    accepted socket open. So the listening sockets leave the selector first; two turns let
    the pending accepts make their transports (and run ``connection_made``), so the gate and
    the runner close them with the rest.
    """
    loop = asyncio.get_running_loop()
    try:
        for sock in server.sockets:
            loop.remove_reader(sock.fileno())
    except NotImplementedError:  # a loop without readers (Windows' proactor): close at once
        server.close()
        return
    try:
        await asyncio.sleep(0)  # pending accepts make their transports
        await asyncio.sleep(0)  # and their protocols' connection_made runs
    finally:
        server.close()  # even when cancelled in between: the listener never leaks


class WebhookReceiver:
    """An aiohttp.web server that feeds completion webhooks into a hub (async context manager).

    ``verifier`` is required (D9); to accept unsigned webhooks, say so with
    ``verifier=UnverifiedWebhooks()``. ``port=0`` picks a free port; ``.port`` and ``.url``
    give the real one once started.

    Under abuse (``limits``, a :class:`ReceiverLimits`): a connection that has not sent a
    complete request head within 10 s, or sends a head over 16 KiB, is closed; an idle
    keep-alive connection is closed after 60 s; at most 1,024 connections are open at once
    (one more is closed as soon as it is accepted, so file descriptors remain); a body is
    read within 10 s and up to ``max_body_size``; and the receiver's log lines are limited
    to 10 a second, then one line counting those suppressed. ``on_rejected`` is called with
    the error of each rejected webhook, and ``hooks`` and ``telemetry`` hear of each webhook,
    as in :func:`webhook_handler`.

    Example::

        async with (
            CompletionHub() as hub,
            WebhookReceiver(hub, verifier=StandardWebhooksVerifier(secret), port=8081) as rx,
        ):
            print("completion_notification_url =", rx.url)
            event = await hub.wait(request_id)
    """

    def __init__(
        self,
        hub: CompletionHub,
        *,
        verifier: WebhookVerifier,
        host: str = "127.0.0.1",
        port: int = 0,
        path: str = DEFAULT_WEBHOOK_PATH,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        limits: ReceiverLimits = ReceiverLimits(),
        on_rejected: OnRejected | None = None,
        hooks: EventHooks | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', not {path!r}")
        if not isinstance(limits, ReceiverLimits):
            raise TypeError(f"limits must be a ReceiverLimits, not {type(limits).__name__}")
        # Checks the arguments.
        webhook_handler(
            hub,
            verifier,
            max_body_size=max_body_size,
            on_rejected=on_rejected,
            hooks=hooks,
            telemetry=telemetry,
        )
        self.hub = hub
        self.host = host
        self.path = path
        self._requested_port = port
        self.max_body_size = max_body_size
        self.limits = limits
        self._log = FloodLog(logger, limits.max_log_lines, limits.log_period)
        listeners = _Listeners(on_rejected, hooks, telemetry)
        self._handler = _make_handler(hub, verifier, max_body_size, self._log, listeners)
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        self._gate: Gate | None = None
        self._port: int | None = None

    def __repr__(self) -> str:
        where = self.url if self._port is not None else "not started"
        return f"WebhookReceiver({where})"

    @property
    def port(self) -> int:
        """The bound port (raises RuntimeError before the receiver is started)."""
        if self._port is None:
            raise RuntimeError("WebhookReceiver is not started; use 'async with receiver:'")
        return self._port

    @property
    def open_connections(self) -> int:
        """Connections open now (0 when not started)."""
        return 0 if self._gate is None else len(self._gate.guards)

    @property
    def refused_connections(self) -> int:
        """Connections closed on arrival since the start, because ``max_connections`` were open."""
        return 0 if self._gate is None else self._gate.refused

    @property
    def url(self) -> str:
        """The full URL of the webhook route, with the real port."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{self.path}"

    async def start(self) -> None:
        """Start serving (``async with`` calls this)."""
        if self._runner is not None:
            raise RuntimeError("WebhookReceiver is already started")
        limits = self.limits
        app = web.Application(client_max_size=self.max_body_size + 1)
        app.router.add_post(self.path, tracked(self._handler))
        app.router.add_route("*", self.path, tracked(post_only))
        app.router.add_route("*", "/{tail:.*}", tracked(not_found))
        line = min(_MAX_LINE, limits.max_header_size)
        runner = web.AppRunner(
            app,
            access_log=None,
            handle_signals=False,
            shutdown_timeout=_SHUTDOWN_TIMEOUT,
            keepalive_timeout=limits.keepalive_timeout,
            max_line_size=line,
            max_field_size=line,
            logger=self._log,  # aiohttp's "Error handling request" lines, rate-limited too
        )
        await runner.setup()
        try:
            factory = runner.server
            assert factory is not None
            gate = Gate(factory, limits, self._log, _connection_bound(limits.max_connections))
            loop = asyncio.get_running_loop()
            # Our own listener rather than a TCPSite: each connection goes through a Guard.
            server = await loop.create_server(
                lambda: Guard(gate), self.host, self._requested_port, backlog=_BACKLOG
            )
            self._port = int(server.sockets[0].getsockname()[1])
        except BaseException:
            await runner.cleanup()
            raise
        self._runner, self._server, self._gate = runner, server, gate

    async def aclose(self) -> None:
        """Stop serving and close every connection (idempotent)."""
        runner, self._runner = self._runner, None
        server, self._server = self._server, None
        gate = self._gate
        self._port = None
        if server is not None:
            await _stop_accepting(server)
        if runner is not None:
            await runner.cleanup()  # lets requests in flight finish, then closes
        if gate is not None:
            gate.abort_all()  # connections refused or still in their head
            await asyncio.sleep(0)  # their connection_lost runs; their sockets close
        self._log.flush()

    async def __aenter__(self) -> WebhookReceiver:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
