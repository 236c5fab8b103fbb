"""``Emulator``: the server's lifecycle (bind, background tasks, clean shutdown) and its handles."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from types import TracebackType
from typing import Any, Self

import attrs
from aiohttp import web

from ._app import API_PREFIX, build_app
from ._config import DeliveryPlan, EmulatorConfig
from ._faults import FaultInjector
from ._generation import Engine, utc_now
from ._state import Account, EmulatorState, GenerationRequest
from ._webhooks import WebhookSender

__all__ = ["Emulator"]


async def _stop_accepting(server: asyncio.Server) -> None:
    """Stop accepting, then close ``server`` once the connections it accepted have transports.

    asyncio makes an accepted connection's transport a turn of the loop after accepting it,
    and fails to if the server closed in between, leaving the socket open (a ResourceWarning).
    So the listening sockets leave the selector first, and two turns let pending accepts
    finish; the runner's cleanup then closes those connections with the rest. (The webhook
    receiver does the same; the emulator imports nothing of the SDK's but the contract.)
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


class Emulator:
    """A local Upscale API server on aiohttp.web, for development, tests and benchmarks.

    Keyword arguments are the fields of ``EmulatorConfig`` (or pass ``config=``; keywords then
    override it)::

        async with Emulator(credits=100, messages_per_second=50) as emu:
            client = UpscaleClient(emu.api_key, base_url=emu.base_url)
            ...
            assert not emu.state.double_charges()
    """

    def __init__(self, config: EmulatorConfig | None = None, **overrides: Any) -> None:
        base = config or EmulatorConfig()
        self.config: EmulatorConfig = attrs.evolve(base, **overrides) if overrides else base
        self.state = EmulatorState(
            accounts={
                key: Account(key, self.config.credits, self.config.credits)
                for key in self.config.api_keys
            }
        )
        self.faults = FaultInjector(self.state.fault_log)
        self.webhooks = WebhookSender(self.config, self.state)
        self.engine = Engine(self.config, self.state, self.webhooks.notify)
        self.created_at = utc_now()
        self._runner: web.AppRunner | None = None
        self._server: asyncio.Server | None = None
        self._scheduler: asyncio.Task[None] | None = None
        self._port: int | None = None

    # -- handles ----------------------------------------------------------------------------
    @property
    def api_key(self) -> str:
        """The first valid API key (after :meth:`rotate_key`, its replacement)."""
        return next(iter(self.state.accounts))

    @property
    def webhook_secret(self) -> str | None:
        """The Standard Webhooks secret deliveries are signed with (None: no webhooks)."""
        return self.config.webhook_secret

    @property
    def port(self) -> int:
        """The port it listens on (127.0.0.1).

        Raises:
            RuntimeError: the emulator is not running.
        """
        if self._port is None:
            raise RuntimeError("the emulator is not running; use `async with Emulator() as emu:`")
        return self._port

    @property
    def url(self) -> str:
        """``http://host:port`` (no API prefix)."""
        return f"http://{self.config.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The API base URL, ``http://127.0.0.1:PORT/api/v2``."""
        return self.url + API_PREFIX

    # -- control ----------------------------------------------------------------------------
    def add_credits(self, n: int, *, api_key: str | None = None) -> int:
        """Give ``n`` more credits to ``api_key`` (default: the first key); return the total."""
        account = self.state.accounts[api_key or self.api_key]
        account.credits += n
        account.allowance += n
        return account.credits

    def rotate_key(self, new_key: str | None = None, *, old_key: str | None = None) -> str:
        """Replace a valid key (default: the first) by ``new_key`` (default: a random one).

        The account, its credits and its requests move to the new key; the old key is revoked
        at once (answered 401 "revoked", like a key revoked in the Upscale dashboard). Returns
        the new key.

        Raises:
            ValueError: ``old_key`` is not a valid key, or ``new_key`` is already in use or
                was revoked.
        """
        old = old_key if old_key is not None else self.api_key
        new = new_key if new_key is not None else f"emu-key-{secrets.token_hex(8)}"
        state = self.state
        if old not in state.accounts:
            raise ValueError(f"rotate_key: {old!r} is not a valid key of this emulator")
        if not new.strip() or new in state.accounts or new in state.revoked_keys:
            raise ValueError(f"rotate_key: the new key {new!r} is blank, in use or revoked")
        account = state.accounts[old]
        account.api_key = new
        # Rebuilt rather than re-inserted: the first key stays first (the default account).
        state.accounts = {new if k == old else k: v for k, v in state.accounts.items()}
        for request in state.requests.values():
            if request.api_key == old:
                request.api_key = new
        state.revoked_keys.add(old)
        return new

    def set_delivery_plan(self, plan: DeliveryPlan) -> None:
        """Tamper with the webhook events triggered from now on (drop / duplicate)."""
        self.webhooks.plan = plan

    def request(self, request_id: str) -> GenerationRequest:
        """The stored request behind a ``secure_request_id``."""
        return self.state.requests[request_id]

    async def wait_deliveries(self, timeout: float | None = 10.0) -> None:
        """Wait until every webhook event so far is delivered or out of attempts."""
        await self.webhooks.drain(timeout)

    # -- lifecycle --------------------------------------------------------------------------
    async def start(self) -> None:
        """Start listening (``async with Emulator()`` calls this).

        Raises:
            RuntimeError: it is already running.
        """
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        if self.config.doc_examples:
            self.engine.add_doc_example(self.api_key)
        runner = web.AppRunner(
            build_app(self.config, self.state, self.engine, self.faults, self.created_at),
            access_log=None,
            handle_signals=False,
            shutdown_timeout=0.5,
            # After an early answer (413, 408) the unread rest of a body is discarded for at
            # most this long, then the connection is closed: never read into memory, never
            # for longer than the body itself was given.
            lingering_time=self.config.body_timeout,
        )
        await runner.setup()
        try:
            factory = runner.server
            assert factory is not None
            # Our own listener rather than a TCPSite, so that closing can stop accepting first.
            server = await asyncio.get_running_loop().create_server(
                factory, self.config.host, self.config.port, reuse_address=True
            )
        except BaseException:
            await runner.cleanup()
            raise
        self._runner, self._server = runner, server
        self._port = int(server.sockets[0].getsockname()[1])
        self._scheduler = asyncio.get_running_loop().create_task(self.engine.run())

    async def aclose(self) -> None:
        """Stop serving, cancel generation and pending deliveries, close the webhook session.

        ``port``, ``url`` and ``base_url`` then raise RuntimeError until ``start()`` again.
        """
        self._port = None
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            scheduler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await scheduler
        runner, self._runner = self._runner, None
        server, self._server = self._server, None
        if server is not None:
            await _stop_accepting(server)
        if runner is not None:
            await runner.cleanup()
        await self.webhooks.aclose()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        where = self.base_url if self._port is not None else "not running"
        return f"<Emulator {where}>"
