"""Fixtures for SDK-against-emulator tests over real loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from upscale_async import Campaign, MessageType, RetryPolicy

FAST_RETRY = RetryPolicy(attempts=6, wait_initial=0.01, wait_max=0.05, wait_jitter=0.01)


def campaign(
    url: str = "http://127.0.0.1:9/unused",
    types: tuple[str, ...] = (MessageType.CONNECTION_REQUEST, MessageType.FIRST_FOLLOW_UP),
) -> Campaign:
    return Campaign(
        completion_notification_url=url,
        automation_tool_customer_id="customer_12345",
        automation_tool_campaign_id="campaign_67890",
        automation_tool_campaign_name="Campaign 1 - North America",
        proposition_company_name="Acme Corporation",
        proposition_company_url="https://www.acmecorp.com",
        message_sequence=list(types),
        tone_preference="formal",
        signoff_name="Sarah",
    )


def lead(i: int, prefix: str = "lead") -> dict[str, Any]:
    return {
        "automation_tool_lead_id": f"{prefix}_{i:06d}",
        "lead_linkedin": f"https://linkedin.com/in/person-{i}",
        "lead_company": f"Company {i % 97}",
        "first_name": f"First{i}",
        "last_name": f"Last{i}",
        "lead_company_website_url": None,
        "lead_specified_url": None,
    }


def leads(n: int, prefix: str = "lead") -> Iterator[dict[str, Any]]:
    """A generator: the batch must pull it lazily."""
    for i in range(n):
        yield lead(i, prefix)
