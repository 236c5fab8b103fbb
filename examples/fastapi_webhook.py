"""Receive Upscale's completion webhooks in FastAPI: parse_webhook with the raw request body.

    pip install fastapi uvicorn
    python examples/fastapi_webhook.py     # serves the route, and awaits a request through it
                                           # (with a local emulator when UPSCALE_API_KEY is unset)

In your own service, mount the route and set UPSCALE_WEBHOOK_SECRET (your account's whsec_
secret); the coroutines that await generation use the same ``hub``. FastAPI is needed only to
run this file: upscale_async itself does not depend on it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
from contextlib import AsyncExitStack

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from upscale_async import MessageType, PollPolicy, UpscaleClient
from upscale_async.testing import make_campaign, make_leads
from upscale_async.webhooks import (
    CompletionHub,
    StandardWebhooksVerifier,
    WebhookPayloadError,
    WebhookVerificationError,
    parse_webhook,
)

app = FastAPI()
hub = CompletionHub()  # in memory: needs no opening (enter a shared backend's hub in a lifespan)
_verifiers: dict[str, StandardWebhooksVerifier] = {}


def verifier() -> StandardWebhooksVerifier:
    if "default" not in _verifiers:
        _verifiers["default"] = StandardWebhooksVerifier(os.environ["UPSCALE_WEBHOOK_SECRET"])
    return _verifiers["default"]


@app.post("/upscale/webhook")
async def upscale_webhook(request: Request) -> JSONResponse:
    body = await request.body()  # the raw bytes, exactly as sent: the signature covers them
    try:
        event = parse_webhook(body, request.headers, verifier())
    except WebhookVerificationError as exc:
        return JSONResponse({"ok": False, "error": str(exc)}, status_code=401)
    except WebhookPayloadError as exc:
        return JSONResponse({"ok": False, "error": str(exc)}, status_code=400)
    await hub.deliver(event)  # cheap; the waiter confirms with retrieve_messages, not this one
    return JSONResponse({"ok": True})


async def main(api_key: str | None, base_url: str | None, public_url: str | None) -> None:
    async with AsyncExitStack() as stack:
        if not (api_key or os.environ.get("UPSCALE_API_KEY")):
            from upscale_async.emulator import Emulator

            emu = await stack.enter_async_context(Emulator(latency=0.2, webhook_time_scale=0.01))
            api_key, base_url = emu.api_key, emu.base_url
            _verifiers["default"] = StandardWebhooksVerifier(emu.webhook_secret or "")
            print(f"no UPSCALE_API_KEY: using a local emulator at {base_url}")

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            while not server.started:  # noqa: ASYNC110 (uvicorn offers no "started" event)
                await asyncio.sleep(0.01)
            url = public_url or f"http://127.0.0.1:{port}/upscale/webhook"
            print(f"FastAPI route receiving webhooks at {url}")
            campaign = make_campaign(
                completion_notification_url=url,
                automation_tool_campaign_id="campaign_fastapi",
                message_types=[MessageType.CONNECTION_REQUEST],
            )
            [lead] = make_leads(1)
            async with UpscaleClient(api_key, base_url=base_url) as client:
                accepted = await client.request_message_generation(campaign, [lead])
                [result] = await client.await_completion(
                    accepted.secure_request_id,
                    hub=hub,
                    poll=PollPolicy(fallback_interval=30.0),
                    timeout=300,
                )
            print(f"webhook received and confirmed: {result.secure_request_id}")
            print(result.leads[0].connection_request)
        finally:
            server.should_exit = True
            await serving


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-key", help="default: $UPSCALE_API_KEY (else a local emulator)")
    parser.add_argument("--base-url", help="default: $UPSCALE_BASE_URL (else Upscale)")
    parser.add_argument("--public-url", help="the webhook URL as Upscale reaches it")
    args = parser.parse_args()
    asyncio.run(main(args.api_key, args.base_url, args.public_url))
