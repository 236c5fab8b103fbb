"""An aiohttp service that receives Upscale's completion webhooks and awaits many campaigns.

    python examples/webhook_service.py        # against a local emulator it starts
    UPSCALE_API_KEY=... UPSCALE_WEBHOOK_SECRET=whsec_... python examples/webhook_service.py \\
        --port 8081 --public-url https://hooks.example.com/upscale/webhook

The service's own route (POST /upscale/webhook) verifies each webhook's signature and hands
the event to a CompletionHub. Each campaign's coroutine submits its leads and awaits its
requests through the hub, which still polls slowly in case a webhook is lost. Against Upscale,
``--public-url`` is the address Upscale can reach that routes to this route.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from contextlib import AsyncExitStack

from aiohttp import web

from upscale_async import BatchPolicy, Campaign, MessageType, PollPolicy, UpscaleClient
from upscale_async.webhooks import CompletionHub, StandardWebhooksVerifier, webhook_handler

WEBHOOK_PATH = "/upscale/webhook"
CAMPAIGNS = 5
LEADS_PER_CAMPAIGN = 40


def campaign(number: int, webhook_url: str) -> Campaign:
    return Campaign(
        completion_notification_url=webhook_url,
        automation_tool_customer_id="customer_12345",
        automation_tool_campaign_id=f"campaign_{number}",
        automation_tool_campaign_name=f"Campaign {number}",
        proposition_company_name="Acme Corporation",
        proposition_company_url="https://www.acmecorp.com",
        message_sequence=[MessageType.CONNECTION_REQUEST, MessageType.FIRST_FOLLOW_UP],
    )


def leads(number: int) -> list[dict[str, str | None]]:
    return [
        {
            "automation_tool_lead_id": f"c{number}_lead_{i:03d}" + ("_nowebpresence" * (i == 7)),
            "lead_linkedin": f"https://www.linkedin.com/in/prospect-{number}-{i}",
            "lead_company": f"Company {i}",
            "first_name": "Alex",
            "last_name": f"Prospect{i}",
            "lead_company_website_url": None,
            "lead_specified_url": None,
        }
        for i in range(LEADS_PER_CAMPAIGN)
    ]


async def run_campaign(client: UpscaleClient, hub: CompletionHub, c: Campaign, n: int) -> str:
    batch = await client.submit_batch(c, leads(n), batch=BatchPolicy(chunk_size=10))
    results = await client.await_completion(
        batch, hub=hub, poll=PollPolicy(fallback_interval=30.0), timeout=600
    )
    generated = sum(lead.has_messages for result in results for lead in result.leads)
    return (
        f"{c.automation_tool_campaign_id}: {batch.accepted_count} leads in "
        f"{len(results)} requests, {generated} personalised"
    )


async def main(args: argparse.Namespace) -> None:
    api_key, base_url = args.api_key, args.base_url
    async with AsyncExitStack() as stack:
        hub = await stack.enter_async_context(CompletionHub())
        if not (api_key or os.environ.get("UPSCALE_API_KEY")):
            from upscale_async.emulator import Emulator

            emu = await stack.enter_async_context(
                Emulator(latency=0.2, messages_per_second=500, webhook_time_scale=0.01)
            )
            api_key, base_url, secret = emu.api_key, emu.base_url, emu.webhook_secret
            print(f"no UPSCALE_API_KEY: using a local emulator at {base_url}")
        else:
            secret = args.webhook_secret or os.environ.get("UPSCALE_WEBHOOK_SECRET")
            if not (secret and args.public_url):
                raise SystemExit("against Upscale, give --public-url and UPSCALE_WEBHOOK_SECRET")

        # The service: its webhook route next to whatever else it serves.
        app = web.Application()
        app.router.add_post(WEBHOOK_PATH, webhook_handler(hub, StandardWebhooksVerifier(secret)))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        await web.TCPSite(runner, args.host, args.port).start()
        port = runner.addresses[0][1]
        webhook_url = args.public_url or f"http://127.0.0.1:{port}{WEBHOOK_PATH}"
        print(f"receiving webhooks on {args.host}:{port}{WEBHOOK_PATH} (as {webhook_url})")

        client = await stack.enter_async_context(UpscaleClient(api_key, base_url=base_url))
        async with asyncio.TaskGroup() as tg:
            tasks = [
                tg.create_task(run_campaign(client, hub, campaign(n, webhook_url), n))
                for n in range(1, CAMPAIGNS + 1)
            ]
        for task in tasks:
            print(task.result())
        print(f"hub: {await hub.stats()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-key", help="default: $UPSCALE_API_KEY (else a local emulator)")
    parser.add_argument("--base-url", help="default: $UPSCALE_BASE_URL (else Upscale)")
    parser.add_argument("--webhook-secret", help="default: $UPSCALE_WEBHOOK_SECRET")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument("--public-url", help="the webhook URL as Upscale reaches it")
    asyncio.run(main(parser.parse_args()))
