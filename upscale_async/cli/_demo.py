"""Synthetic sample data for ``upscale-async demo`` (and ``examples/leads_sample.csv``).

Both come from the factories of :mod:`upscale_async.testing`. The leads are deterministic: most
are valid, every 40th is invalid (so the output shows rejected leads with their validation
messages) and every 25th has an id ending in ``_nowebpresence`` (which the emulator, like
Upscale, cannot personalise: ``failed``).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Final

import orjson

from ..testing import sample_campaign
from ..testing import sample_leads as _sample_leads
from ._files import LEAD_FIELDS

__all__ = ["DEMO_CAMPAIGN", "sample_leads", "write_sample"]

DEMO_CAMPAIGN: Final[dict[str, Any]] = sample_campaign(
    completion_notification_url="https://hooks.example.com/upscale/webhook",
    automation_tool_campaign_id="campaign_demo",
    automation_tool_campaign_name="Demo campaign - North America",
    tone_preference="normal",
)


def sample_leads(n: int) -> list[dict[str, Any]]:
    """``n`` synthetic leads with the wire keys (a few invalid, a few with no web presence)."""
    return _sample_leads(n, start=1, digits=5, invalid_every=40, no_web_presence_every=25)


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
