"""The sample-data factories of ``upscale_async.testing``: valid, deterministic, lazy."""

from __future__ import annotations

import csv
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from upscale_async import Campaign, Lead, MessageType, ValidationError
from upscale_async._spec.validation import check_campaign, check_leads, validate_generation_body
from upscale_async.cli._demo import sample_leads as demo_leads
from upscale_async.testing import (
    iter_sample_leads,
    make_campaign,
    make_leads,
    sample_campaign,
    sample_lead,
    sample_leads,
)

from ..core.conftest import s0_body

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_default_campaign_is_the_seed_example() -> None:
    """The default campaign is the documented example request (S0) without its leads."""
    expected = s0_body()
    del expected["lead_data"]
    assert sample_campaign() == expected


def test_sample_campaign_validates() -> None:
    """The default sample campaign has no validation problems."""
    assert check_campaign(sample_campaign()) == []


def test_message_types_build_a_numbered_sequence() -> None:
    """message_types becomes {step, messageType} objects numbered from 1."""
    campaign = sample_campaign(message_types=[MessageType.STAGE_AMBITION, "share_material"])
    assert campaign["message_sequence"] == [
        {"step": 1, "messageType": "stage_ambition"},
        {"step": 2, "messageType": "share_material"},
    ]


def test_overrides_replace_keys_in_place() -> None:
    """An override replaces a key's value where it stands; a new key is added at the end."""
    campaign = sample_campaign(completion_notification_url="https://hooks.example.com/x", extra=1)
    assert next(iter(campaign)) == "completion_notification_url"
    assert campaign["completion_notification_url"] == "https://hooks.example.com/x"
    assert list(campaign)[-1] == "extra"


def test_message_types_and_sequence_together_are_refused() -> None:
    """Giving both message_types and message_sequence raises TypeError."""
    with pytest.raises(TypeError, match="not both"):
        sample_campaign(message_types=["connection_request"], message_sequence=[])


def test_make_campaign_sends_the_sample_campaign() -> None:
    """make_campaign's Campaign goes on the wire as the sample campaign dict."""
    campaign = make_campaign(tone_preference="casual")
    assert isinstance(campaign, Campaign)
    assert campaign.to_wire() == sample_campaign(tone_preference="casual")


def test_sample_lead_is_deterministic() -> None:
    """Lead i is the same on every call, with the id f"{prefix}_{i:06d}"."""
    assert sample_lead(42) == sample_lead(42)
    assert sample_lead(42, prefix="r1")["automation_tool_lead_id"] == "r1_000042"
    assert sample_lead(7, digits=3)["automation_tool_lead_id"] == "lead_007"


def test_sample_lead_overrides() -> None:
    """Overrides replace or add wire keys of a lead."""
    lead = sample_lead(1, automation_tool_lead_id="custom", job_title="CTO")
    assert lead["automation_tool_lead_id"] == "custom"
    assert lead["job_title"] == "CTO"


def test_sample_leads_validate() -> None:
    """A thousand sample leads are valid and their ids unique."""
    assert check_leads(sample_leads(1_000)) == []


def test_sample_request_validates() -> None:
    """A sample campaign with sample leads is a valid generation request."""
    body = {**sample_campaign(), "lead_data": sample_leads(3)}
    assert validate_generation_body(body) == []


def test_iter_sample_leads_is_lazy() -> None:
    """iter_sample_leads builds each lead when it is pulled, not before."""
    leads = iter_sample_leads(10**12, start=5)
    assert isinstance(leads, Iterator)
    assert next(leads) == sample_lead(5)


def test_start_numbers_the_leads() -> None:
    """start sets the number of the first lead; the others follow."""
    ids = [lead["automation_tool_lead_id"] for lead in sample_leads(3, start=10)]
    assert ids == ["lead_000010", "lead_000011", "lead_000012"]


def test_invalid_leads_are_rejected_with_their_messages() -> None:
    """Every Nth lead is invalid, in turn: bad LinkedIn URL, ftp website, blank last name."""
    problems = check_leads(sample_leads(120, invalid_every=40))
    assert [message for _, message in problems] == [
        "lead_data[39].lead_linkedin must be a valid URL",
        "lead_data[79].lead_company_website_url must be a valid HTTP or HTTPS URL",
        "lead_data[119].last_name is required but was missing or blank",
    ]


def test_no_web_presence_leads_have_the_suffix() -> None:
    """Every Nth lead's id ends in _nowebpresence, and only those."""
    ids = [lead["automation_tool_lead_id"] for lead in sample_leads(50, no_web_presence_every=25)]
    marked = [i for i, lead_id in enumerate(ids) if lead_id.endswith("_nowebpresence")]
    assert marked == [24, 49]
    assert ids[24] == "lead_000024_nowebpresence"


def test_make_leads_are_the_sample_leads() -> None:
    """make_leads gives Lead objects that go on the wire as the sample dicts."""
    leads = make_leads(5, prefix="m")
    assert all(isinstance(lead, Lead) for lead in leads)
    assert [lead.to_wire() for lead in leads] == sample_leads(5, prefix="m")


def test_make_leads_refuses_invalid_leads() -> None:
    """An invalid sample lead cannot be a Lead: make_leads raises ValidationError."""
    with pytest.raises(ValidationError, match="lead_linkedin must be a valid URL"):
        make_leads(40, invalid_every=40)


def test_demo_leads_are_the_checked_in_sample() -> None:
    """The demo's settings still produce examples/leads_sample.csv, row for row."""
    with (EXAMPLES / "leads_sample.csv").open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    expected = [{k: v or "" for k, v in lead.items()} for lead in demo_leads(len(rows))]
    assert rows == expected


def test_import_needs_neither_pytest_nor_the_emulator() -> None:
    """Importing upscale_async.testing imports neither pytest nor the emulator."""
    code = (
        "import sys, upscale_async.testing\n"
        "assert 'pytest' not in sys.modules, 'pytest'\n"
        "assert 'upscale_async.emulator' not in sys.modules, 'emulator'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
