"""Interop: the emulator's real, signed webhook deliveries through a WebhookReceiver."""

from __future__ import annotations

from typing import Any

import aiohttp

from upscale_async.emulator import DeliveryPlan, Emulator
from upscale_async.webhooks import CompletionHub, StandardWebhooksVerifier, WebhookReceiver


def generation_body(url: str, lead_id: str) -> dict[str, Any]:
    return {
        "completion_notification_url": url,
        "automation_tool_customer_id": "customer_1",
        "automation_tool_campaign_id": "campaign_1",
        "automation_tool_campaign_name": "Campaign one",
        "proposition_company_name": "Acme Corporation",
        "proposition_company_url": "https://www.acmecorp.com",
        "message_sequence": [{"step": 1, "messageType": "connection_request"}],
        "lead_data": [
            {
                "automation_tool_lead_id": lead_id,
                "lead_linkedin": f"https://linkedin.com/in/{lead_id}",
                "lead_company": "Initech",
                "first_name": "Ada",
                "last_name": "Lovelace",
                "lead_company_website_url": None,
                "lead_specified_url": None,
            }
        ],
    }


async def test_emulator_webhook_verifies_and_duplicates_resolve_once() -> None:
    """An emulator webhook, delivered three times, verifies and is new exactly once."""
    hub = CompletionHub()
    async with Emulator() as emu:
        assert emu.webhook_secret is not None
        emu.set_delivery_plan(DeliveryPlan(duplicates=3))
        verifier = StandardWebhooksVerifier(emu.webhook_secret)
        async with WebhookReceiver(hub, verifier=verifier) as rx, aiohttp.ClientSession() as s:
            async with s.post(
                f"{emu.base_url}/messages/request_message_generation",
                json=generation_body(rx.url, "lead_1"),
                headers={"Api-Key": emu.api_key},
            ) as response:
                assert response.status == 200, await response.text()
                request_id = (await response.json())["secure_request_id"]
            event = await hub.wait(request_id, timeout=5)
            await emu.wait_deliveries(timeout=5)
    assert event.secure_request_id == request_id
    assert event.webhook_id
    stats = await hub.stats()
    assert (stats.waiters, stats.stored_events, stats.remembered_keys) == (0, 0, 1)
