"""Synthetic sample data for ``upscale-async demo`` (and ``examples/leads_sample.csv``).

The leads are deterministic: most are valid, every 40th is invalid (so the output shows
rejected leads with their validation messages) and every 25th has an id ending in
``_nowebpresence`` (which the emulator, like Upscale, cannot personalise: ``failed``).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Final

import orjson

from ._files import LEAD_FIELDS

__all__ = ["DEMO_CAMPAIGN", "sample_leads", "write_sample"]

DEMO_CAMPAIGN: Final[dict[str, Any]] = {
    "completion_notification_url": "https://hooks.example.com/upscale/webhook",
    "automation_tool_customer_id": "customer_12345",
    "automation_tool_campaign_id": "campaign_demo",
    "automation_tool_campaign_name": "Demo campaign - North America",
    "proposition_company_name": "Acme Corporation",
    "proposition_company_url": "https://www.acmecorp.com",
    "message_sequence": [
        {"step": 1, "messageType": "connection_request"},
        {"step": 2, "messageType": "first_follow_up"},
    ],
    "tone_preference": "normal",
    "signoff_name": "Sarah",
}

_FIRST: Final = ("Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas")
_LAST: Final = ("Smith", "Okafor", "Garcia", "Nguyen", "Müller", "Rossi", "Kowalski", "Tanaka")
_COMPANIES: Final = (
    "Tech Solutions Inc",
    "Digital Innovations LLC",
    "Northwind Traders",
    "Globex",
    "Initech",
    "Umbrella Analytics",
    "Stark Logistics",
)
_INVALID: Final = (
    ("last_name", ""),  # a blank required field
    ("lead_linkedin", "linkedin.com/in/no-scheme"),  # not a URL
    ("lead_company_website_url", "ftp://files.example.com"),  # not http(s)
)


def sample_leads(n: int) -> list[dict[str, Any]]:
    """``n`` synthetic leads with the wire keys (a few invalid, a few with no web presence)."""
    leads: list[dict[str, Any]] = []
    for i in range(1, n + 1):
        first = _FIRST[i % len(_FIRST)]
        last = _LAST[i % len(_LAST)]
        company = _COMPANIES[i % len(_COMPANIES)]
        slug = company.lower().replace(" ", "")
        lead_id = f"lead_{i:05d}" + ("_nowebpresence" if i % 25 == 0 else "")
        lead: dict[str, Any] = {
            "automation_tool_lead_id": lead_id,
            "lead_linkedin": f"https://www.linkedin.com/in/{first.lower()}-{last.lower()}-{i}",
            "lead_company": company,
            "first_name": first,
            "last_name": last,
            "lead_company_website_url": f"https://www.{slug}.example.com" if i % 3 else None,
            "lead_specified_url": None,
        }
        if i % 40 == 0:
            field, value = _INVALID[(i // 40) % len(_INVALID)]
            lead[field] = value
        leads.append(lead)
    return leads


def write_sample(directory: Path, n: int) -> tuple[Path, Path]:
    """Write ``leads.csv`` and ``campaign.json`` into ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    leads_path = directory / "leads.csv"
    campaign_path = directory / "campaign.json"
    with leads_path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(LEAD_FIELDS)
        for lead in sample_leads(n):
            writer.writerow([lead[k] or "" for k in LEAD_FIELDS])
    campaign_path.write_bytes(orjson.dumps(DEMO_CAMPAIGN, option=orjson.OPT_INDENT_2) + b"\n")
    return leads_path, campaign_path
