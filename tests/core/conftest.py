"""Fixtures for the core tests: aioresponses-backed clients under both route presets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aioresponses import aioresponses

from upscale_async import Campaign, Lead, RetryPolicy, UpscaleClient

BASE = "https://api.test/api/v2"
KEY = "sk_test_secret_key_123"


@pytest.fixture
def mocked() -> Iterator[aioresponses]:
    with aioresponses() as m:
        yield m


@pytest.fixture
async def client() -> AsyncIterator[UpscaleClient]:
    async with UpscaleClient(
        KEY, base_url=BASE, retry=RetryPolicy(attempts=3, time_scale=0.0)
    ) as c:
        yield c


def s0_body() -> dict[str, Any]:
    """The example request body of seed S0, verbatim."""
    return {
        "completion_notification_url": "https://your-webhook-endpoint.com/webhook",
        "automation_tool_customer_id": "customer_12345",
        "automation_tool_campaign_id": "campaign_67890",
        "automation_tool_campaign_name": "Campaign 1 - North America",
        "proposition_company_name": "Acme Corporation",
        "proposition_company_url": "https://www.acmecorp.com",
        "message_sequence": [
            {"step": 1, "messageType": "connection_request"},
            {"step": 2, "messageType": "first_follow_up"},
        ],
        "tone_preference": "formal",
        "signoff_name": "Sarah",
        "lead_data": [
            {
                "automation_tool_lead_id": "lead_001",
                "lead_linkedin": "https://linkedin.com/in/john-doe",
                "lead_company": "Tech Solutions Inc",
                "first_name": "John",
                "last_name": "Doe",
                "lead_company_website_url": "https://www.techsolutions.com",
                "lead_specified_url": None,
            },
            {
                "automation_tool_lead_id": "lead_002",
                "lead_linkedin": "https://linkedin.com/in/jane-smith",
                "lead_company": "Digital Innovations LLC",
                "first_name": "Jane",
                "last_name": "Smith",
                "lead_company_website_url": "https://www.digitalinnovations.com",
                "lead_specified_url": None,
            },
        ],
    }


def s0_campaign() -> Campaign:
    body = s0_body()
    del body["lead_data"]
    return Campaign.from_mapping(body)


def s0_leads() -> list[Lead]:
    return [Lead.from_mapping(lead) for lead in s0_body()["lead_data"]]
