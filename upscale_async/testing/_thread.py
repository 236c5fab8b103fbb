"""EmulatorThread: the emulator on a background thread with its own event loop.

Installed with the package (entry point ``pytest11``), it provides the ``upscale_emulator``
fixture: a local emulator running on its own thread and event loop, usable from sync and async
tests alike::

    def test_generate(upscale_emulator):
        client = UpscaleClient(upscale_emulator.api_key, base_url=upscale_emulator.base_url)
        ...

    @pytest.mark.upscale_emulator(credits=5, messages_per_second=100)
    async def test_small_account(upscale_emulator): ...

``signed_webhook_headers`` signs a body the way the emulator (Standard Webhooks, D9) does, for
tests of your own webhook receiver. This module imports nothing heavy until a fixture runs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

if TYPE_CHECKING:
    from ..emulator import DeliveryPlan, Emulator, EmulatorState, FaultInjector

__all__ = ["EmulatorThread"]

T = TypeVar("T")
_MARKER = "upscale_emulator"


class EmulatorThread:
    """An ``Emulator`` running on a background thread with its own event loop.

    Keyword arguments are those of ``Emulator`` (``EmulatorConfig`` fields). Use as a context
    manager, or ``start()`` / ``stop()``; after ``stop()`` it can be started again, with a new
    emulator (fresh state, new port). Reads of ``state`` are safe from the test's thread;
    changes go through the methods here, which run on the emulator's loop.
    """

    def __init__(self, **config: Any) -> None:
        self._config = config
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._emulator: Emulator | None = None

    # -- lifecycle --------------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> Self:
        """Start the thread and wait until the emulator listens (``with`` calls this).

        After ``stop()`` this starts a new emulator (fresh state, new port) and waits for it.

        Raises:
            RuntimeError: it is already running, or the emulator did not start in time
                (or failed to start).
        """
        if self._thread is not None:
            raise RuntimeError("the emulator thread was already started; stop() it first")
        # A new emulator each time: nothing of a previous run (stopped or failed) is kept.
        self._ready = threading.Event()
        self._error = self._emulator = self._loop = self._stop = None
        thread = threading.Thread(target=self._run, name="upscale-emulator", daemon=True)
        self._thread = thread
        thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"the emulator did not start within {timeout} s")
        if self._error is not None:
            thread.join(timeout)
            if not thread.is_alive():
                self._thread = None  # nothing runs: start() may be tried again
            raise RuntimeError("the emulator failed to start") from self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the emulator and join the thread; a no-op when it is not running.

        Afterwards ``emulator``, ``base_url``, ``state`` and the methods raise RuntimeError
        until ``start()`` runs a new emulator.

        Raises:
            RuntimeError: the thread did not stop in time, or the emulator failed while running.
        """
        loop, stop, thread = self._loop, self._stop, self._thread
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                loop.call_soon_threadsafe(stop.set)
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                raise RuntimeError(f"the emulator thread did not stop within {timeout} s")
        error, emulator = self._error, self._emulator
        self._thread = self._emulator = self._loop = self._stop = self._error = None
        if error is not None and emulator is not None:
            raise RuntimeError("the emulator failed while running") from error

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start(); the thread must not die noisily
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        from ..emulator import Emulator

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with Emulator(**self._config) as emulator:
            self._emulator = emulator
            self._ready.set()
            await self._stop.wait()

    # -- handles ----------------------------------------------------------------------------
    @property
    def emulator(self) -> Emulator:
        """The running :class:`~upscale_async.emulator.Emulator` (RuntimeError if not running)."""
        return self._running()[1]

    def _running(self) -> tuple[asyncio.AbstractEventLoop, Emulator]:
        """The emulator's loop and the emulator; RuntimeError when it is not running."""
        loop, emulator = self._loop, self._emulator
        if loop is None or emulator is None or loop.is_closed():
            raise RuntimeError("the emulator thread is not running: start() it first")
        return loop, emulator

    def _submit(
        self, loop: asyncio.AbstractEventLoop, coroutine: Coroutine[Any, Any, T]
    ) -> concurrent.futures.Future[T]:
        """Schedule ``coroutine`` on ``loop``; if the loop has just closed, close it unrun."""
        try:
            return asyncio.run_coroutine_threadsafe(coroutine, loop)
        except RuntimeError:  # the loop closed since _running() looked: stopped meanwhile
            coroutine.close()  # never scheduled: no "was never awaited" warning
            raise RuntimeError("the emulator thread is not running: start() it first") from None

    @property
    def base_url(self) -> str:
        """The API base URL, ``http://127.0.0.1:PORT/api/v2``."""
        return self.emulator.base_url

    @property
    def api_key(self) -> str:
        """The first valid API key."""
        return self.emulator.api_key

    @property
    def webhook_secret(self) -> str | None:
        """The secret webhooks are signed with (None: no webhooks)."""
        return self.emulator.webhook_secret

    @property
    def state(self) -> EmulatorState:
        """The emulator's state (requests, credits, deliveries); read it, do not change it."""
        return self.emulator.state

    @property
    def faults(self) -> _ThreadFaults:
        """``set`` / ``clear`` fault plans from the test's thread (see ``FaultInjector``)."""
        return _ThreadFaults(self)

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``function(*args, **kwargs)`` on the emulator's loop and return its result.

        Raises:
            RuntimeError: the emulator is not running (before ``start()``, after ``stop()``).
        """
        loop, _ = self._running()

        async def run() -> T:
            return function(*args, **kwargs)

        return self._submit(loop, run()).result(timeout=10)

    def add_credits(self, n: int, *, api_key: str | None = None) -> int:
        """Give ``n`` more credits to ``api_key`` (default: the first key); return the total."""
        return self.call(self.emulator.add_credits, n, api_key=api_key)

    def set_delivery_plan(self, plan: DeliveryPlan) -> None:
        """Tamper with the webhook events triggered from now on (drop / duplicate)."""
        self.call(self.emulator.set_delivery_plan, plan)

    def wait_deliveries(self, timeout: float = 10.0) -> None:
        """Block until every webhook event so far is delivered or out of attempts.

        Raises:
            RuntimeError: the emulator is not running (before ``start()``, after ``stop()``).
        """
        loop, emulator = self._running()
        future = self._submit(loop, emulator.wait_deliveries(timeout))
        try:
            future.result(timeout + 1)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise

    def __repr__(self) -> str:
        emulator, where = self._emulator, "not running"
        if emulator is not None:
            with contextlib.suppress(RuntimeError):  # it closed (failed) before stop() ran
                where = emulator.base_url
        return f"<EmulatorThread {where}>"


class _ThreadFaults:
    def __init__(self, owner: EmulatorThread) -> None:
        self._owner = owner

    def _injector(self) -> FaultInjector:
        return self._owner.emulator.faults

    def set(self, endpoint: str, plan: Any) -> None:
        self._owner.call(self._injector().set, endpoint, plan)

    def clear(self, endpoint: str = "*") -> None:
        self._owner.call(self._injector().clear, endpoint)
