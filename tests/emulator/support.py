"""Helpers for the emulator tests: request bodies and a scriptable webhook receiver."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from typing import Any

from aiohttp import web

from upscale_async.testing import sample_campaign, sample_lead, sample_leads

KEY = "emulator-test-key"
REVOKED = "emulator-revoked-key"
#: A completion URL nothing listens on (webhooks are off in most tests anyway).
NOWHERE = "http://127.0.0.1:9/hook"
GENERATE = "/messages/request_message_generation"
RETRIEVE = "/messages/retrieve_messages"
ID_PARAM = "request_message_generation_secure_request_id"


def make_body(
    n: int = 2,
    *,
    types: Sequence[str] | None = None,
    prefix: str = "lead",
    lead_ids: Iterable[str] | None = None,
    url: str = NOWHERE,
    **extra: Any,
) -> dict[str, Any]:
    """A valid generation body (the sample campaign) with ``n`` leads ``f"{prefix}_{i:03d}"``.

    ``types`` sets the sequence (default: connection request, first follow-up), ``lead_ids``
    names the leads instead, and ``extra`` replaces or adds top-level keys.
    """
    body = sample_campaign(completion_notification_url=url, message_types=types)
    if lead_ids is not None:
        body["lead_data"] = [
            sample_lead(i, automation_tool_lead_id=x) for i, x in enumerate(lead_ids)
        ]
    else:
        body["lead_data"] = sample_leads(n, prefix=prefix, digits=3)
    body.update(extra)
    return body


class Receiver:
    """A webhook receiver on 127.0.0.1 answering a script of statuses (then 200)."""

    def __init__(self, statuses: Iterable[int] = (), *, delays: Iterable[float] = ()) -> None:
        self.statuses = list(statuses)
        self.delays = list(delays)
        self.calls: list[tuple[dict[str, str], bytes, float]] = []
        self.redirected = 0
        self.arrived = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def _hook(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.calls.append((dict(request.headers), body, time.monotonic()))
        if self.delays:
            await asyncio.sleep(self.delays.pop(0))
        status = self.statuses.pop(0) if self.statuses else 200
        self.arrived.set()
        if 300 <= status < 400:
            return web.Response(status=status, headers={"Location": f"{self.url}/redirected"})
        return web.Response(status=status, text="ok")

    async def _redirected(self, request: web.Request) -> web.StreamResponse:
        self.redirected += 1
        return web.Response(text="followed")

    async def start(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        app.router.add_route("*", "/hook/redirected", self._redirected)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
