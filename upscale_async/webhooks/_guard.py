"""What keeps a WebhookReceiver serving under abuse: limits per connection and in all.

aiohttp's server, left at its defaults, has no deadline for a request's head, keeps idle
connections for an hour, accepts connections until the process runs out of file descriptors,
and logs every bad request. Here:

- :class:`ReceiverLimits`: the knobs, validated on construction.
- ``Guard``: an ``asyncio.Protocol`` in front of each aiohttp connection. At
  ``max_connections`` open, a new connection closes the oldest one that is not in a request
  (still sending its head, or idle), or is itself closed when every one is in a request; so
  descriptors remain, and a flood of idle or slow sockets cannot lock out a sender that
  sends its request at once. It closes a connection whose request head (request line and
  headers) is not complete within ``header_timeout`` or grows past ``max_header_size``, and
  otherwise passes every byte through.
  ``tracked`` (a wrapper of every route's handler) tells it when a request has been handled,
  so the next head on a keep-alive connection is timed again; an idle keep-alive connection is
  aiohttp's to close, after ``keepalive_timeout``.
- ``FloodLog``: a logger adapter that lets at most ``max_log_lines`` records through per
  ``log_period`` seconds and then logs how many it suppressed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from aiohttp import web

__all__ = ["ReceiverLimits"]

_HEAD_ENDS = (b"\n\r\n", b"\n\n")  # the blank line after the headers (CRLF, or bare LF)


def _positive(instance: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:  # also rejects NaN
        raise ValueError(f"{attribute.name} must be > 0, not {value!r}")


@attrs.frozen(kw_only=True)
class ReceiverLimits:
    """How long and how much a :class:`WebhookReceiver` lets clients hold (all validated).

    Attributes:
        header_timeout: seconds a connection may take to send a complete request head
            (request line and headers), counted from its opening or from the first byte of its
            next request; then it is closed. Upscale's sender sends its head at once.
        keepalive_timeout: seconds an idle keep-alive connection is kept open.
        max_connections: connections open at once. One more closes the oldest connection
            that is not in a request (sending its head, or idle), or is itself closed at once
            when all are in a request; so a flood cannot take every file descriptor, nor the
            place of a sender that sends its request at once. Lowered at start, with a
            warning, to leave 256 descriptors under the process's open-file limit.
        max_header_size: bytes of one request head (request line and every header); a
            larger head closes the connection. Each line is also capped at 8190 bytes.
        max_log_lines: log records the receiver writes per ``log_period`` at most; the rest
            are counted and summarised in one line ("N log lines suppressed").
        log_period: the window of ``max_log_lines``, in seconds.

    Example::

        WebhookReceiver(hub, verifier=verifier, limits=ReceiverLimits(max_connections=256))
    """

    header_timeout: float = attrs.field(default=10.0, validator=_positive)
    keepalive_timeout: float = attrs.field(default=60.0, validator=_positive)
    max_connections: int = attrs.field(default=1024, validator=_positive)
    max_header_size: int = attrs.field(default=16 * 1024, validator=_positive)
    max_log_lines: int = attrs.field(default=10, validator=_positive)
    log_period: float = attrs.field(default=1.0, validator=_positive)


class FloodLog(logging.LoggerAdapter[logging.Logger]):
    """A logger that passes at most ``lines`` records per ``period`` s, then one summary.

    Every level goes through :meth:`log` (``info``, ``exception``... included), so it also
    serves as aiohttp's server logger. The summary is written when the next window opens with
    a record, and by :meth:`flush`.
    """

    def __init__(
        self,
        logger: logging.Logger,
        lines: int,
        period: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(logger, {})
        self._lines = lines
        self._period = period
        self._clock = clock
        self._window_end = float("-inf")
        self._passed = 0
        self.suppressed = 0

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        """Log the record unless ``lines`` records already passed in this window."""
        if not self.logger.isEnabledFor(level):
            return
        now = self._clock()
        if now >= self._window_end:
            self.flush()
            self._window_end = now + self._period
            self._passed = 0
        if self._passed >= self._lines:
            self.suppressed += 1
            return
        self._passed += 1
        self.logger.log(level, msg, *args, **kwargs)

    def flush(self) -> None:
        """Write the count of records suppressed since the last summary, if any."""
        if self.suppressed:
            count, self.suppressed = self.suppressed, 0
            self.logger.warning(
                "%d webhook receiver log lines suppressed (more than %d in %g s)",
                count,
                self._lines,
                self._period,
            )


class Gate:
    """What a receiver's connections share: the bound, the count and aiohttp's factory."""

    __slots__ = (
        "evicted",
        "factory",
        "guards",
        "limits",
        "log",
        "max_connections",
        "refused",
        "waiting",
    )

    def __init__(
        self,
        factory: Callable[[], asyncio.Protocol],
        limits: ReceiverLimits,
        log: FloodLog,
        max_connections: int,
    ) -> None:
        self.factory = factory
        self.limits = limits
        self.log = log
        self.max_connections = max_connections
        self.guards: set[Guard] = set()
        # The connections not in a request (sending a head, or idle), oldest first: the ones
        # to close when the bound is reached.
        self.waiting: dict[Guard, None] = {}
        self.refused = 0
        self.evicted = 0

    def admit(self) -> bool:
        """Make room for one more connection; False when every open one is in a request."""
        if len(self.guards) < self.max_connections:
            return True
        if not self.waiting:
            self.refused += 1
            self.log.warning(
                "refused a connection: %d are open and in a request (max_connections)",
                len(self.guards),
            )
            return False
        oldest = next(iter(self.waiting))
        self.evicted += 1
        self.log.info(
            "closed the oldest connection not in a request: %d are open (max_connections)",
            len(self.guards),
        )
        oldest.abort()
        return True

    def abort_all(self) -> None:
        """Abort every connection still open (the last step of closing the receiver)."""
        for guard in list(self.guards):
            guard.abort()


class Guard(asyncio.Protocol):
    """One connection: bounded in count, in head size and in head time; else aiohttp's."""

    __slots__ = (
        "_gate",
        "_head",
        "_head_bytes",
        "_head_due",
        "_idle",
        "_inner",
        "_tail",
        "_timer",
        "_transport",
    )

    def __init__(self, gate: Gate) -> None:
        self._gate = gate
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._head = False  # a request head is being received
        self._idle = False  # the last request was handled; the next byte starts a head
        self._head_bytes = 0
        self._head_due = 0.0  # loop time by which the current head must be complete
        self._tail = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Refuse the connection beyond the bound; else start timing its first head."""
        gate = self._gate
        assert isinstance(transport, asyncio.Transport)
        if not gate.admit():
            transport.abort()  # the descriptor is freed now; no handler, no task
            return
        gate.guards.add(self)
        self._transport = transport
        self._start_head()
        self._inner = inner = gate.factory()
        inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        """Forget the connection and tell aiohttp."""
        self._gate.guards.discard(self)
        self._gate.waiting.pop(self, None)
        self._cancel_timer()
        inner, self._inner = self._inner, None
        if inner is not None:
            inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """Count and time the bytes of a request head, then hand every byte to aiohttp."""
        inner = self._inner
        if inner is None:
            return
        if self._idle:
            self._start_head()
        if self._head and not self._scan_head(data):
            return
        inner.data_received(data)

    def eof_received(self) -> bool | None:
        """Hand the end of the stream to aiohttp."""
        return None if self._inner is None else self._inner.eof_received()

    def pause_writing(self) -> None:
        """Flow control: hand on to aiohttp."""
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        """Flow control: hand on to aiohttp."""
        if self._inner is not None:
            self._inner.resume_writing()

    def request_done(self, body_read: bool) -> None:
        """A request was handled: the next byte, if any, starts a new head.

        When its body was not read to the end, the bytes that follow may be the rest of it,
        not a head: they are left to aiohttp (which closes the connection after its lingering
        time unless they end).
        """
        self._head = False
        self._idle = body_read
        if self._inner is not None:
            self._gate.waiting[self] = None  # idle: the newest to close at the bound

    def abort(self) -> None:
        """Close the connection at once; it stops counting against the bound now."""
        self._gate.waiting.pop(self, None)
        self._gate.guards.discard(self)
        if self._transport is not None:
            self._transport.abort()

    def _start_head(self) -> None:
        self._head = True
        self._idle = False
        self._head_bytes = 0
        self._tail = b""
        waiting = self._gate.waiting
        waiting.pop(self, None)
        waiting[self] = None  # re-inserted: the newest
        loop = asyncio.get_running_loop()
        self._head_due = loop.time() + self._gate.limits.header_timeout
        # One timer at a time, not one per request: a timer that fires early (set for an
        # earlier head) moves itself to this head's deadline (_check_head).
        if self._timer is None:
            self._timer = loop.call_at(self._head_due, self._check_head)

    def _check_head(self) -> None:
        """The head deadline timer: close the connection if its head is late, else re-arm."""
        self._timer = None
        if not self._head:
            return  # between requests: the next head arms a timer again
        loop = asyncio.get_running_loop()
        if loop.time() < self._head_due:
            self._timer = loop.call_at(self._head_due, self._check_head)
            return
        self._head_timed_out()

    def _scan_head(self, data: bytes) -> bool:
        """Count head bytes; False (and the connection aborted) when the head is too large."""
        buf = self._tail + data if self._tail else data
        crlf, lf = buf.find(_HEAD_ENDS[0]), buf.find(_HEAD_ENDS[1])
        if crlf >= 0 or lf >= 0:  # the head ends here; what follows is the body, aiohttp's
            end = min(crlf, lf) if crlf >= 0 and lf >= 0 else max(crlf, lf)
            self._head_bytes += max(0, end + 2 - len(self._tail))
            self._head = False  # its timer, if due first, finds no head and stops
            self._gate.waiting.pop(self, None)  # in a request now: not to be closed
        else:
            self._head_bytes += len(data)
            self._tail = buf[-2:]
        limit = self._gate.limits.max_header_size
        if self._head_bytes <= limit:
            return True
        self._gate.log.info(
            "closed a connection from %s: request head over %d bytes", self._peer(), limit
        )
        self.abort()
        return False

    def _head_timed_out(self) -> None:
        self._gate.log.info(
            "closed a connection from %s: no complete request head within %g s",
            self._peer(),
            self._gate.limits.header_timeout,
        )
        self.abort()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _peer(self) -> str:
        peer = None if self._transport is None else self._transport.get_extra_info("peername")
        return str(peer[0]) if isinstance(peer, tuple) and peer else "?"


_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def tracked(handler: _Handler) -> _Handler:
    """``handler``, telling the connection's guard when each of its requests has been handled.

    A receiver wraps every route in it (its webhook route and the catch-all ones that answer
    404 and 405), so the next head on a keep-alive connection is timed again. A wrapper
    rather than an aiohttp middleware: aiohttp runs a middleware chain for every request,
    at several times the cost.
    """

    async def handle_tracked(request: web.Request) -> web.StreamResponse:
        transport = request.transport
        guard = None if transport is None else transport.get_protocol()
        try:
            return await handler(request)
        finally:
            if isinstance(guard, Guard):
                guard.request_done(request.content.at_eof())

    return handle_tracked


async def not_found(request: web.Request) -> web.StreamResponse:
    """The catch-all route: 404, as aiohttp answers a path it has no route for."""
    raise web.HTTPNotFound()


async def post_only(request: web.Request) -> web.StreamResponse:
    """The webhook path's other methods: 405, as aiohttp answers a method it has no route for."""
    raise web.HTTPMethodNotAllowed(request.method, ["POST"])
