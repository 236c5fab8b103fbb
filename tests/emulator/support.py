"""Helpers for the emulator tests: request bodies and a scriptable webhook receiver."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from typing import Any

from aiohttp import web

KEY = "emulator-test-key"
REVOKED = "emulator-revoked-key"
TYPES = ("connection_request", "first_follow_up")
#: A completion URL nothing listens on (webhooks are off in most tests anyway).
NOWHERE = "http://127.0.0.1:9/hook"
GENERATE = "/messages/request_message_generation"
RETRIEVE = "/messages/retrieve_messages"
ID_PARAM = "request_message_generation_secure_request_id"


def lead(lead_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "automation_tool_lead_id": lead_id,
        "lead_linkedin": f"https://linkedin.com/in/{lead_id}",
        "lead_company": f"Company {lead_id}",
        "first_name": f"First{lead_id}",
        "last_name": "Last",
        "lead_company_website_url": None,
        "lead_specified_url": None,
        **extra,
    }


def make_body(
    n: int = 2,
    *,
    types: Sequence[str] = TYPES,
    prefix: str = "lead",
    lead_ids: Iterable[str] | None = None,
    url: str = NOWHERE,
    **extra: Any,
) -> dict[str, Any]:
    """A valid generation body (object-style sequence) with ``n`` leads."""
    ids = list(lead_ids) if lead_ids is not None else [f"{prefix}_{i:03d}" for i in range(n)]
    body: dict[str, Any] = {
        "completion_notification_url": url,
        "automation_tool_customer_id": "customer_1",
        "automation_tool_campaign_id": "campaign_1",
        "automation_tool_campaign_name": "Campaign one",
        "proposition_company_name": "Acme Corporation",
        "proposition_company_url": "https://www.acmecorp.com",
        "message_sequence": [
            {"step": step, "messageType": kind} for step, kind in enumerate(types, 1)
        ],
        "lead_data": [lead(lead_id) for lead_id in ids],
    }
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
