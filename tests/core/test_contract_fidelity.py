"""A mapping campaign or lead keeps every promise of a model; results carry the documented names."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from aioresponses import aioresponses
from yarl import URL

from upscale_async import (
    Campaign,
    Lead,
    LeadMessages,
    MessageType,
    UpscaleClient,
    ValidationError,
)
from upscale_async._spec.validation import check_leads, validate_generation_body
from upscale_async.cli._files import LeadFile
from upscale_async.emulator import Emulator

from .conftest import BASE, KEY, s0_body

GENERATE = f"{BASE}/messages/request_message_generation"
REQ_ID = "3d68ae3b-5957-454d-be1c-8731a4f877f6"


def campaign_mapping(**changes: Any) -> dict[str, Any]:
    body = s0_body()
    del body["lead_data"]
    body.update(changes)
    return body


def lead_mapping(**changes: Any) -> dict[str, Any]:
    lead: dict[str, Any] = s0_body()["lead_data"][0]
    lead.update(changes)
    return lead


async def sent_body(mocked: aioresponses, client: UpscaleClient, campaign: Any) -> Any:
    """The JSON body ``request_message_generation`` posts for ``campaign`` and one lead."""
    mocked.post(GENERATE, payload={"message": "Success", "secure_request_id": REQ_ID})
    await client.request_message_generation(campaign, [lead_mapping()])
    [call] = mocked.requests[("POST", URL(GENERATE))]
    return orjson.loads(call.kwargs["data"])


# -- a campaign given as a mapping ----------------------------------------------------------


async def test_mapping_campaign_plain_types_are_numbered_steps(
    mocked: aioresponses, client: UpscaleClient
) -> None:
    """A mapping campaign's plain list of types goes out as {step, messageType} objects (D3)."""
    campaign = campaign_mapping(message_sequence=["connection_request", "first_follow_up"])
    body = await sent_body(mocked, client, campaign)
    assert body["message_sequence"] == [
        {"step": 1, "messageType": "connection_request"},
        {"step": 2, "messageType": "first_follow_up"},
    ]


async def test_mapping_campaign_hiring_location_is_upper_cased(
    mocked: aioresponses, client: UpscaleClient
) -> None:
    """A mapping campaign's hiring_location "gb" goes out as "GB" (D7)."""
    campaign = campaign_mapping(message_sequence=["hiring_activity"], hiring_location="gb")
    body = await sent_body(mocked, client, campaign)
    assert body["hiring_location"] == "GB"


async def test_mapping_campaign_sends_no_material_link_without_share_material(
    mocked: aioresponses, client: UpscaleClient
) -> None:
    """A mapping campaign's material_link is left out when share_material is not in the sequence."""
    campaign = campaign_mapping(material_link="https://acme.example/case-study")
    body = await sent_body(mocked, client, campaign)
    assert "material_link" not in body


async def test_mapping_campaign_sends_what_the_same_campaign_object_sends(
    mocked: aioresponses, client: UpscaleClient
) -> None:
    """A mapping campaign and Campaign.from_mapping of it send the same JSON."""
    data = campaign_mapping(message_sequence=["hiring_activity"], hiring_location="de")
    as_mapping = await sent_body(mocked, client, data)
    mocked.requests.clear()
    as_object = await sent_body(mocked, client, Campaign.from_mapping(data))
    assert as_mapping == as_object


async def test_mapping_campaign_unknown_key_is_reported_with_lead_problems(
    mocked: aioresponses, client: UpscaleClient
) -> None:
    """A mapping campaign's typo'd key is reported, with its closest field, beside the leads'."""
    campaign = campaign_mapping(tone="formal")
    with pytest.raises(ValidationError) as caught:
        await client.request_message_generation(campaign, [lead_mapping(first_name="")])
    assert caught.value.messages == [
        "tone is not a campaign field; did you mean tone_preference?",
        "lead_data[0].first_name is required but was missing or blank",
    ]


async def test_mapping_campaign_unknown_key_stops_a_batch(
    mocked: aioresponses, client: UpscaleClient
) -> None:
    """submit_batch refuses a mapping campaign with a typo'd key before sending anything."""
    campaign = campaign_mapping(signoff="Sarah")
    with pytest.raises(ValidationError, match="did you mean signoff_name"):
        await client.submit_batch(campaign, [lead_mapping()])
    assert not mocked.requests


async def test_mapping_campaign_unknown_type_passes_when_allowed(
    mocked: aioresponses, client: UpscaleClient
) -> None:
    """allow_unknown_message_types lets a mapping campaign's new type through, numbered."""
    campaign = campaign_mapping(message_sequence=["connection_request", "breakup"])
    allowed = client.with_options(allow_unknown_message_types=True)
    body = await sent_body(mocked, allowed, campaign)
    assert body["message_sequence"][1] == {"step": 2, "messageType": "breakup"}


def test_campaign_from_mapping_names_the_closest_field() -> None:
    """Campaign.from_mapping names the closest field for a typo'd key."""
    with pytest.raises(ValidationError) as caught:
        Campaign.from_mapping(campaign_mapping(hiring_locaton="GB"))
    assert caught.value.messages == [
        "hiring_locaton is not a campaign field; did you mean hiring_location?"
    ]


# -- a lead given as a mapping -------------------------------------------------------------


async def test_mapping_lead_unknown_key_is_reported(
    mocked: aioresponses, client: UpscaleClient
) -> None:
    """A mapping lead's typo'd key is a ValidationError naming the lead and the closest field."""
    lead = lead_mapping()
    lead["firstname"] = lead.pop("first_name")
    with pytest.raises(ValidationError) as caught:
        await client.request_message_generation(campaign_mapping(), [lead_mapping(), lead])
    assert caught.value.messages[-1].startswith(
        "lead_data[1].firstname is not a lead field; did you mean first_name?"
    )
    assert not mocked.requests


async def test_batch_sets_aside_a_mapping_lead_with_an_unknown_key() -> None:
    """submit_batch rejects a mapping lead with an unknown key, naming it; the others go."""
    async with Emulator(api_keys=[KEY], webhook_secret=None) as emu:
        async with UpscaleClient(KEY, base_url=emu.base_url) as client:
            leads = [
                lead_mapping(),
                lead_mapping(automation_tool_lead_id="lead_002", lead_compnay="Acme"),
            ]
            batch = await client.submit_batch(campaign_mapping(), leads)
    assert [a.lead_ids for a in batch.accepted] == [("lead_001",)]
    [rejected] = batch.rejected
    assert rejected.index == 1
    assert rejected.errors[0][0] == "lead_data[1].lead_compnay"
    assert "did you mean lead_company?" in rejected.errors[0][1]


async def test_lead_extra_keys_are_sent(mocked: aioresponses, client: UpscaleClient) -> None:
    """Keys asked for through Lead(extra=...) are sent, not reported."""
    lead = Lead(**lead_mapping(), extra={"job_title": "CTO"})
    mocked.post(GENERATE, payload={"message": "Success", "secure_request_id": REQ_ID})
    await client.request_message_generation(campaign_mapping(), [lead])
    [call] = mocked.requests[("POST", URL(GENERATE))]
    assert orjson.loads(call.kwargs["data"])["lead_data"][0]["job_title"] == "CTO"


def test_lead_from_mapping_reports_an_unknown_key() -> None:
    """Lead.from_mapping reports a key that is not a lead field instead of keeping it in extra."""
    with pytest.raises(ValidationError, match=r"lead_data\[0\]\.last_nme is not a lead field"):
        Lead.from_mapping({**lead_mapping(), "last_nme": "Doe"})


def test_lead_from_mapping_keeps_extra_keys_when_allowed() -> None:
    """Lead.from_mapping(..., allow_extra_fields=True) keeps unknown keys in extra."""
    lead = Lead.from_mapping({**lead_mapping(), "job_title": "CTO"}, allow_extra_fields=True)
    assert lead.extra == {"job_title": "CTO"}


def test_server_rules_ignore_extra_lead_keys() -> None:
    """The shared server rules (the emulator's) ignore extra lead keys, as documented (§2.2)."""
    body = {**s0_body(), "lead_data": [lead_mapping(job_title="CTO")]}
    assert validate_generation_body(body) == []


def test_cli_extra_fields_send_leads_pass_validation(tmp_path: Path) -> None:
    """Leads read under --extra-fields send keep their extra keys and pass validation."""
    path = tmp_path / "leads.jsonl"
    path.write_bytes(orjson.dumps(lead_mapping(crm_owner="ann")) + b"\n")
    leads = LeadFile(path, "jsonl", "send")
    try:
        read = list(leads)
    finally:
        leads.close()
    assert read[0]["crm_owner"] == "ann"
    assert check_leads(read) == []


# -- results under their documented names ---------------------------------------------------

DOCUMENTED = {
    "outreach_message": "Hi John (connection request)",
    "first_follow_up_message": "Following up",
    "share_material_message": "A case study",
    "hiring_activity_message": "You are hiring",
    "stage_ambition_message": "Your stage",
}


def lead_result(**changes: Any) -> LeadMessages:
    return LeadMessages(
        {"external_prospect_id": "lead_001", "linkedin": None, **DOCUMENTED, **changes}
    )


@pytest.mark.parametrize("field", list(DOCUMENTED))
def test_documented_message_fields_are_properties(field: str) -> None:
    """Each documented *_message field is a LeadMessages property under its documented name."""
    assert getattr(lead_result(), field) == DOCUMENTED[field]


@pytest.mark.parametrize("field", list(DOCUMENTED))
def test_message_takes_a_field_name(field: str) -> None:
    """message() takes a documented field name as well as a type."""
    assert lead_result().message(field) == DOCUMENTED[field]


def test_message_takes_a_type() -> None:
    """message() takes a MessageType or its string."""
    lead = lead_result()
    assert lead.message(MessageType.CONNECTION_REQUEST) == DOCUMENTED["outreach_message"]
    assert lead.message("connection_request") == DOCUMENTED["outreach_message"]


def test_message_rejects_a_name_that_is_neither() -> None:
    """message() raises a ValueError naming the closest type for a typo, instead of None."""
    with pytest.raises(ValueError, match="did you mean 'connection_request'"):
        lead_result().message("conection_request")


def test_message_reads_a_newer_types_field() -> None:
    """message() reads an undocumented *_message field by its type or its name (D5)."""
    lead = lead_result(breakup_message="Bye")
    assert lead.message("breakup") == "Bye"
    assert lead.message("breakup_message") == "Bye"
