"""Quickstart: one generation request, awaited by polling.

    python examples/quickstart.py                      # against a local emulator it starts
    UPSCALE_API_KEY=... python examples/quickstart.py  # against Upscale

Without an API key it starts the emulator in-process (on 127.0.0.1) and uses it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from contextlib import AsyncExitStack

from upscale_async import PollPolicy, UpscaleClient
from upscale_async.testing import make_campaign, make_leads

# Sample data (upscale_async.testing): the API documentation's example campaign, as a Campaign
# (build your own with Campaign(...) and the same keyword arguments), and two Leads; the second
# one's id ends in _nowebpresence, so the emulator, like Upscale, cannot personalise it.
CAMPAIGN = make_campaign(
    completion_notification_url="https://hooks.example.com/upscale/webhook",
    automation_tool_campaign_id="campaign_quickstart",
    automation_tool_campaign_name="Quickstart",
)
LEADS = make_leads(2, start=1, digits=3, no_web_presence_every=2)


async def main(api_key: str | None, base_url: str | None) -> None:
    async with AsyncExitStack() as stack:
        if not (api_key or os.environ.get("UPSCALE_API_KEY")):
            from upscale_async.emulator import Emulator

            # No webhooks: this example polls, and the campaign's URL is not ours.
            emu = await stack.enter_async_context(Emulator(webhook_secret=None, latency=0.5))
            api_key, base_url = emu.api_key, emu.base_url
            print(f"no UPSCALE_API_KEY: using a local emulator at {base_url}")
        client = await stack.enter_async_context(UpscaleClient(api_key, base_url=base_url))

        accepted = await client.request_message_generation(CAMPAIGN, LEADS)
        print(f"accepted: secure_request_id={accepted.secure_request_id}")
        [result] = await client.await_completion(
            accepted.secure_request_id, poll=PollPolicy(initial=0.5, max_interval=10), timeout=300
        )
        for lead in result.leads:
            print(f"\n== {lead.external_prospect_id}")
            if not lead.has_messages:
                print(f"   not personalised: {result.metadata.failed_messages_reason}")
            for message_type in CAMPAIGN.message_types:
                text = lead.message(message_type)
                if text is not None:
                    print(f"-- {message_type}:\n{text}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api-key", help="default: $UPSCALE_API_KEY (else a local emulator)")
    parser.add_argument("--base-url", help="default: $UPSCALE_BASE_URL (else Upscale)")
    args = parser.parse_args()
    asyncio.run(main(args.api_key, args.base_url))
