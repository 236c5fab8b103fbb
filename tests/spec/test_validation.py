"""Client-side validation mirrors the server's rules and messages."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from upscale_async import Campaign, Lead, ValidationError
from upscale_async._spec.validation import check_campaign, split_messages, validate_generation_body
from upscale_async._wire import _converter as converter

from ..core.conftest import s0_body

LEAD_KEYS = [
    "automation_tool_lead_id",
    "lead_linkedin",
    "lead_company",
    "first_name",
    "last_name",
    "lead_company_website_url",
    "lead_specified_url",
]
json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
urls = st.sampled_from(["https://a.example", "http://b.example/x?y=1", "ftp://c", "nope", ""])
lead_like = st.fixed_dictionaries(
    {},
    optional={key: (st.text(max_size=8) | urls | json_values) for key in LEAD_KEYS},
)


@settings(max_examples=300, deadline=None)
@given(lead_like | st.dictionaries(st.text(max_size=10), json_values, max_size=5))
def test_any_mapping_gives_a_lead_or_validation_error(data: dict[str, Any]) -> None:
    """Any JSON-like mapping gives a valid Lead or a ValidationError, never another exception."""
    try:
        lead = Lead.from_mapping(data)
    except ValidationError as exc:
        assert exc.errors
        assert all(message.startswith("lead_data[0]") for _, message in exc.errors)
    else:
        assert isinstance(lead, Lead)
        assert validate_generation_body({**_campaign_wire(), "lead_data": [lead.to_wire()]}) == []


valid_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12
).filter(lambda s: not s.isspace())
valid_url = st.builds(
    lambda host, path: f"https://{host}.example/{path}",
    st.text(alphabet="abcdefgh", min_size=1, max_size=8),
    st.text(alphabet="abc123-_", max_size=8),
)
valid_leads = st.builds(
    Lead,
    automation_tool_lead_id=valid_text,
    lead_linkedin=valid_url,
    lead_company=valid_text,
    first_name=valid_text,
    last_name=valid_text,
    lead_company_website_url=st.none() | valid_url,
    lead_specified_url=st.none() | valid_url,
)


@settings(max_examples=200, deadline=None)
@given(valid_leads)
def test_valid_leads_round_trip(lead: Lead) -> None:
    """A valid Lead round-trips through the converter unchanged."""
    wire = converter.unstructure(lead)
    assert converter.structure(wire, Lead) == lead


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.sampled_from(["connection_request", "first_follow_up", "share_material"]),
        min_size=1,
        max_size=4,
    )
)
def test_valid_campaigns_round_trip(types: list[str]) -> None:
    """A valid Campaign round-trips through the converter unchanged."""
    data = {**_campaign_wire(), "message_sequence": types}
    if "share_material" in types:
        data["material_link"] = "https://acme.example/case-study"
    campaign = Campaign.from_mapping(data)
    assert converter.structure(converter.unstructure(campaign), Campaign) == campaign


def _campaign_wire() -> dict[str, Any]:
    body = s0_body()
    del body["lead_data"]
    return body


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param(
            {"automation_tool_customer_id": ""},
            "automation_tool_customer_id is required but was missing or blank",
            id="blank",
        ),
        pytest.param(
            {"proposition_company_url": "ftp://acme"},
            "proposition_company_url must be a valid HTTP or HTTPS URL",
            id="non-http-url",
        ),
        pytest.param(
            {"proposition_company_url": "acme dot com"},
            "proposition_company_url must be a valid URL",
            id="not-a-url",
        ),
        pytest.param(
            {"tone_preference": "shouty"},
            "tone_preference must be one of formal, normal, casual",
            id="tone",
        ),
        pytest.param(
            {"message_sequence": "connection_request"},
            "message_sequence must be an array",
            id="sequence-not-array",
        ),
        pytest.param(
            {"message_sequence": [{"step": 2, "messageType": "connection_request"}]},
            "message_sequence must start at step 1",
            id="step-not-1",
        ),
        pytest.param(
            {"message_sequence": [{"step": "1", "messageType": "connection_request"}]},
            "message_sequence[0].step must be an integer of at least 1",
            id="step-string",
        ),
        pytest.param(
            {"message_sequence": ["breakup"]},
            "message_sequence[0] must be one of connection_request, first_follow_up, "
            "stage_ambition, share_material, hiring_activity but was 'breakup'",
            id="coming-soon-type",
        ),
        pytest.param(
            {"message_sequence": ["share_material"]},
            "material_link is required when the message_sequence includes share_material",
            id="material-link",
        ),
        pytest.param(
            {"message_sequence": ["stage_ambition"]},
            "job_title is required when the message_sequence includes stage_ambition",
            id="job-title",
        ),
        pytest.param(
            {"message_sequence": ["hiring_activity"], "hiring_location": "XX"},
            "hiring_location must be a valid ISO 3166-1 alpha-2 country code (e.g. GB, US, "
            "DE) but was 'XX'",
            id="iso-code",
        ),
    ],
)
def test_campaign_rules(changes: dict[str, Any], message: str) -> None:
    """Each campaign rule gives the server's message."""
    problems = check_campaign({**_campaign_wire(), **changes})
    assert message in [m for _, m in problems]


def test_unknown_types_allowed_by_option() -> None:
    """D6: an option lets unknown message types through unchanged."""
    data = {**_campaign_wire(), "message_sequence": ["linkedin_post"]}
    assert check_campaign(data) != []
    assert check_campaign(data, allow_unknown_message_types=True) == []


def test_several_objects_may_share_a_step() -> None:
    """Several sequence objects may share a step (§8 #14)."""
    seq = [
        {"step": 1, "messageType": "connection_request"},
        {"step": 1, "messageType": "first_follow_up"},
    ]
    assert check_campaign({**_campaign_wire(), "message_sequence": seq}) == []


def test_hiring_location_upper_cased() -> None:
    """hiring_location is upper-cased, then checked against the real list (D7)."""
    data = {**_campaign_wire(), "message_sequence": ["hiring_activity"], "hiring_location": "de"}
    assert Campaign.from_mapping(data).hiring_location == "DE"


def test_campaign_typo_is_reported() -> None:
    """An unknown campaign key is reported rather than dropped."""
    with pytest.raises(ValidationError, match="tone is not a campaign field"):
        Campaign.from_mapping({**_campaign_wire(), "tone": "formal"})


def test_order_and_split_match_the_server() -> None:
    """Messages come top-level first, then leads in index order, and split back apart."""
    body = {
        **_campaign_wire(),
        "automation_tool_customer_id": " ",
        "proposition_company_url": "ftp://x",
    }
    body["lead_data"] = [
        {**s0_body()["lead_data"][0], "first_name": ""},
        {**s0_body()["lead_data"][1], "lead_company": None},
    ]
    problems = validate_generation_body(body)
    joined = " ".join(m for _, m in problems)
    assert joined == (
        "automation_tool_customer_id is required but was missing or blank "
        "proposition_company_url must be a valid HTTP or HTTPS URL "
        "lead_data[0].first_name is required but was missing or blank "
        "lead_data[1].lead_company is required but was missing or blank"
    )
    assert split_messages(joined) == [m for _, m in problems]


def test_duplicate_lead_ids_in_a_request() -> None:
    """A lead id repeated in one request is reported on the repeat."""
    lead = s0_body()["lead_data"][0]
    problems = validate_generation_body({**_campaign_wire(), "lead_data": [lead, dict(lead)]})
    assert problems == [
        (
            "lead_data[1].automation_tool_lead_id",
            "lead_data[1].automation_tool_lead_id must be unique in a request but repeats the "
            "lead at index 0",
        )
    ]
