"""Models and the wire format: the seed documents' examples round-trip and parse."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from upscale_async import (
    Campaign,
    CompletionEvent,
    Lead,
    MessageType,
    ResponseValidationError,
    RetrievedMessages,
    SequenceStep,
    Tone,
    ValidationError,
)
from upscale_async._spec.validation import check_campaign
from upscale_async._wire import _converter as converter
from upscale_async._wire import encode_request, structure_retrieved

from .conftest import s0_body, s0_campaign, s0_leads

S2_COMPLETE = {
    "metadata": {
        "request_message_generation_api_request_secure_request_id": "550e8400-e29b-41d4-a716-446655440000",
        "retrieve_messages_api_request_secure_request_id": "660e8400-e29b-41d4-a716-446655440001",
        "requested_messages_count": 5,
        "generated_messages_count": 5,
        "failed_messages_count": None,
        "failed_messages_reason": None,
    },
    "account": {"automation_tool_customer_id": "customer_12345"},
    "campaign": {
        "automation_tool_campaign_id": "campaign_67890",
        "message_sequence": ["connection_request", "first_follow_up"],
        "leads_data": [
            {
                "external_prospect_id": "lead_001",
                "linkedin": "https://linkedin.com/in/john-doe",
                "outreach_message": "Hi John, I noticed your work at Acme Corp.",
                "first_follow_up_message": "Hi John, following up on my previous message.",
                "share_material_message": None,
                "hiring_activity_message": None,
            },
            {
                "external_prospect_id": "lead_002",
                "linkedin": "https://linkedin.com/in/jane-smith",
                "outreach_message": "Hi Jane, I saw your recent post.",
                "first_follow_up_message": "Hi Jane, I wanted to follow up.",
                "share_material_message": None,
                "hiring_activity_message": None,
            },
        ],
    },
}

FAILURE_REASON = (
    "Some prospects do not have enough available web presence for research (including having "
    "limited information on LinkedIn, a website that blocks scrapers, and/or a website that is "
    "not indexed by search engines). For these prospects, personalisation is not possible. No "
    "credits were deducted for these prospects."
)

S2_PARTIAL_FAILURE = {
    "metadata": {
        "request_message_generation_api_request_secure_request_id": "550e8400-e29b-41d4-a716-446655440000",
        "retrieve_messages_api_request_secure_request_id": "660e8400-e29b-41d4-a716-446655440001",
        "requested_messages_count": 10,
        "generated_messages_count": 7,
        "failed_messages_count": 3,
        "failed_messages_reason": FAILURE_REASON,
    },
    "account": {"automation_tool_customer_id": "customer_12345"},
    "campaign": {
        "automation_tool_campaign_id": "campaign_67890",
        "message_sequence": ["connection_request", "first_follow_up", "share_material_message"],
        "leads_data": [
            {
                "external_prospect_id": "lead_001",
                "linkedin": "https://linkedin.com/in/john-doe",
                "outreach_message": "Hi John.",
                "first_follow_up_message": "Following up, John.",
                "share_material_message": "Hi John, a resource.",
                "hiring_activity_message": None,
            },
            {
                "external_prospect_id": "lead_003",
                "linkedin": None,
                "outreach_message": None,
                "first_follow_up_message": None,
                "share_material_message": None,
                "hiring_activity_message": None,
            },
        ],
    },
}


def test_s0_request_round_trips_to_the_same_json() -> None:
    """The S0 example body, read into models and written back, is the same JSON."""
    campaign = s0_campaign()
    leads = s0_leads()
    body = encode_request(orjson.dumps(campaign.to_wire()), [lead.to_wire() for lead in leads])
    assert orjson.loads(body) == s0_body()
    assert list(orjson.loads(body)) == list(s0_body())


def test_campaign_accepts_plain_message_types() -> None:
    """A sequence given as MessageType/strings is numbered from step 1 on the wire (D3)."""
    campaign = Campaign(
        completion_notification_url="https://h.example/x",
        automation_tool_customer_id="c",
        automation_tool_campaign_id="k",
        automation_tool_campaign_name="n",
        proposition_company_name="p",
        proposition_company_url="https://p.example",
        message_sequence=[MessageType.CONNECTION_REQUEST, "first_follow_up"],
        tone_preference=Tone.CASUAL,
    )
    wire = campaign.to_wire()
    assert wire["message_sequence"] == [
        {"step": 1, "messageType": "connection_request"},
        {"step": 2, "messageType": "first_follow_up"},
    ]
    assert wire["tone_preference"] == "casual"
    assert campaign.to_wire(sequence_as_strings=True)["message_sequence"] == [
        "connection_request",
        "first_follow_up",
    ]
    assert campaign.message_sequence[0] == SequenceStep(step=1, message_type="connection_request")


def test_conditional_fields_sent_only_with_their_type() -> None:
    """material_link/hiring_location/job_title are sent exactly when their type is in the sequence."""
    base = s0_campaign()
    with_share = Campaign.from_mapping(
        {
            **base.to_wire(),
            "message_sequence": ["share_material", "hiring_activity", "stage_ambition"],
            "material_link": "https://acme.example/case",
            "hiring_location": "gb",
            "job_title": "CTO",
        }
    )
    wire = with_share.to_wire()
    assert wire["material_link"] == "https://acme.example/case"
    assert wire["hiring_location"] == "GB"
    assert wire["job_title"] == "CTO"
    assert "material_link" not in base.to_wire()


def test_s2_complete_example_parses() -> None:
    """S2's first retrieve example parses with the right values and is complete."""
    result = structure_retrieved(S2_COMPLETE, 200)
    assert result.secure_request_id == "550e8400-e29b-41d4-a716-446655440000"
    assert result.metadata.requested_messages_count == 5
    assert result.metadata.failed_messages_count is None
    assert result.automation_tool_customer_id == "customer_12345"
    assert result.automation_tool_campaign_id == "campaign_67890"
    assert result.message_sequence == ("connection_request", "first_follow_up")
    assert [lead.external_prospect_id for lead in result.leads] == ["lead_001", "lead_002"]
    assert result.leads[0].connection_request == "Hi John, I noticed your work at Acme Corp."
    assert result.leads[0].first_follow_up == "Hi John, following up on my previous message."
    assert result.leads[0].share_material is None
    assert result.is_complete


def test_s2_failure_example_parses() -> None:
    """S2's second example: failed leads have null fields and the documented reason."""
    result = structure_retrieved(S2_PARTIAL_FAILURE, 200)
    assert result.metadata.failed_messages_count == 3
    assert result.metadata.failed_messages_reason == FAILURE_REASON
    assert result.message_sequence[-1] == "share_material_message"
    failed = result.leads[1]
    assert failed.linkedin is None
    assert not failed.has_messages
    assert result.leads[0].message(MessageType.SHARE_MATERIAL) == "Hi John, a resource."


def test_webhook_example_parses() -> None:
    """The S2 webhook example payload becomes a CompletionEvent with the right values."""
    payload = {
        "secure_request_id": "a1b2c3d4-e5f6-7890-abcd-ef1234567890",
        "status": "complete",
        "completed_at": "2024-02-08T11:30:45Z",
        "requested_messages_count": 12,
        "generated_messages_count": 12,
    }
    event = converter.structure(payload, CompletionEvent)
    assert event.secure_request_id == "a1b2c3d4-e5f6-7890-abcd-ef1234567890"
    assert event.status == "complete"
    assert event.completed_at == "2024-02-08T11:30:45Z"
    assert event.requested_messages_count == 12
    assert event.generated_messages_count == 12


def test_reading_is_lenient() -> None:
    """Singular counts, unknown keys, unknown *_message fields and object sequences are read."""
    data = {
        "metadata": {
            "request_message_generation_api_request_secure_request_id": "id-1",
            "requested_message_count": 2,
            "generated_message_count": 1,
            "generation_status": "in_progress",
            "brand_new": True,
        },
        "campaign": {
            "message_sequence": [{"step": 1, "messageType": "future_type"}],
            "leads_data": [
                {"external_prospect_id": "l1", "future_type_message": "hello", "x": 1},
            ],
        },
    }
    result = structure_retrieved(data, 202)
    assert result.metadata.requested_messages_count == 2
    assert result.metadata.generated_messages_count == 1
    assert result.metadata.extra == {"brand_new": True}
    assert not result.is_complete
    assert result.message_sequence[0] == SequenceStep(step=1, message_type="future_type")
    lead = result.leads[0]
    assert lead.messages == {"future_type_message": "hello"}
    assert lead.message("future_type") == "hello"
    assert lead.extra == {"x": 1}


@pytest.mark.parametrize(
    ("status", "meta", "complete"),
    [
        pytest.param(200, {"generation_status": "complete"}, True, id="status-complete"),
        pytest.param(202, {}, False, id="http-202"),
        pytest.param(
            200,
            {
                "requested_messages_count": 4,
                "generated_messages_count": 3,
                "failed_messages_count": 1,
            },
            True,
            id="v1-counts-add-up",
        ),
        pytest.param(
            200,
            {"requested_messages_count": 4, "generated_messages_count": 2},
            False,
            id="v1-counts-short",
        ),
    ],
)
def test_is_complete_follows_d4(status: int, meta: dict[str, object], complete: bool) -> None:
    """Completion: generation_status, then 202, then the counts fallback (D4)."""
    meta = {"request_message_generation_api_request_secure_request_id": "x", **meta}
    body = {"metadata": meta, "campaign": {"leads_data": []}}
    assert structure_retrieved(body, status).is_complete is complete


@pytest.mark.parametrize(
    "body",
    [
        pytest.param([], id="not-an-object"),
        pytest.param({"metadata": []}, id="metadata-not-object"),
        pytest.param({"metadata": {}}, id="no-request-id"),
        pytest.param(
            {
                "metadata": {"request_message_generation_api_request_secure_request_id": "x"},
                "campaign": {"leads_data": [{"external_prospect_id": 3}]},
            },
            id="prospect-id-not-string",
        ),
        pytest.param(
            {
                "metadata": {
                    "request_message_generation_api_request_secure_request_id": "x",
                    "requested_messages_count": "many",
                }
            },
            id="count-not-int",
        ),
    ],
)
def test_bad_retrieve_bodies_raise_response_validation_error(body: object) -> None:
    """A 2xx body that does not fit raises ResponseValidationError naming the path."""
    with pytest.raises(ResponseValidationError, match="unexpected response"):
        structure_retrieved(body, 200)


def test_models_are_frozen() -> None:
    """Models are immutable."""
    lead = s0_leads()[0]
    with pytest.raises(AttributeError):
        lead.first_name = "x"  # type: ignore[misc]
    assert isinstance(converter.structure(s0_body()["lead_data"][0], Lead), Lead)
    assert isinstance(converter.structure(S2_COMPLETE, RetrievedMessages), RetrievedMessages)


def test_retrieved_messages_mirror_the_wire_shape() -> None:
    """metadata, account and campaign are read as on the wire; unknown campaign keys are kept."""
    data = {**S2_COMPLETE, "campaign": {**S2_COMPLETE["campaign"], "new_key": 1}}
    result = structure_retrieved(data, 200)
    assert result.campaign.automation_tool_campaign_id == "campaign_67890"
    assert result.campaign.leads_data == result.leads
    assert result.campaign.extra == {"new_key": 1}
    assert result.account == {"automation_tool_customer_id": "customer_12345"}


# -- Campaign(...) and Campaign.from_mapping(...) are one way --------------------------------

_TEXTS = st.sampled_from(
    [
        "customer_12345",
        " customer_12345",
        "customer_12345 ",
        "",
        "   ",
        "\t",
        "https://acme.example",
    ]
)
_URLS = st.sampled_from(
    ["https://acme.example", " https://acme.example", "https://acme.example ", "ftp://acme", "x y"]
)
_WRONG = st.one_of(st.none(), st.integers(-2, 2), st.just(["x"]), st.just({"a": 1}))
_TYPES = st.sampled_from(
    [
        "connection_request",
        " connection_request",
        "first_follow_up",
        "stage_ambition",
        "share_material",
        "hiring_activity",
        "breakup",
        "",
        " ",
    ]
)
_ENTRIES = st.one_of(
    _TYPES,
    _WRONG,
    st.sampled_from(list(MessageType)),
    st.builds(SequenceStep, step=st.integers(0, 2), message_type=_TYPES),
    st.fixed_dictionaries(
        {"step": st.one_of(st.integers(0, 2), st.just("1"), st.none()), "messageType": _TYPES}
    ),
    st.fixed_dictionaries({"messageType": st.one_of(_TYPES, _WRONG)}),
)
_SEQUENCES = st.one_of(
    st.lists(_ENTRIES, max_size=4),
    st.lists(_ENTRIES, max_size=3).map(tuple),
    st.sampled_from([None, "connection_request", b"x", 5, {"connection_request": 1}]),
    st.just({"step": 1, "messageType": "connection_request"}),
    st.just(frozenset({"connection_request"})),
)
_COUNTRIES = st.sampled_from(["GB", "gb", "GB ", " GB", " gb\t", "XX", "", "  ", "G B", "GBR"])
_CAMPAIGN_FIELDS = st.fixed_dictionaries(
    {
        "completion_notification_url": st.one_of(_URLS, _WRONG),
        "automation_tool_customer_id": st.one_of(_TEXTS, _WRONG),
        "automation_tool_campaign_id": _TEXTS,
        "automation_tool_campaign_name": _TEXTS,
        "proposition_company_name": st.one_of(_TEXTS, _WRONG),
        "proposition_company_url": _URLS,
        "message_sequence": _SEQUENCES,
    },
    optional={
        "tone_preference": st.one_of(
            st.sampled_from(["formal", " formal", "CASUAL", "shouty", ""]),
            st.sampled_from(list(Tone)),
            _WRONG,
        ),
        "signoff_name": st.one_of(_TEXTS, _WRONG),
        "job_title": st.one_of(_TEXTS, _WRONG),
        "material_link": st.one_of(_URLS, _WRONG),
        "hiring_location": st.one_of(_COUNTRIES, _WRONG),
    },
)


def _as_object(kw: dict[str, Any], allow: bool) -> tuple[str, Any]:
    """What ``Campaign(**kw)`` gives once checked the way a Campaign is checked before sending."""
    try:
        campaign = Campaign(**kw)
    except TypeError as exc:  # a message_sequence that is not a list: refused when built
        return "refused", str(exc)
    problems = check_campaign(campaign.to_wire(), allow_unknown_message_types=allow)
    return ("invalid", problems) if problems else ("valid", campaign)


@settings(max_examples=600, deadline=None)
@given(kw=_CAMPAIGN_FIELDS, allow=st.booleans())
def test_from_mapping_is_exactly_the_campaign_constructor(kw: dict[str, Any], allow: bool) -> None:
    """A mapping gets exactly a Campaign's normalisation and checks, with the same messages.

    Both accept and build equal Campaigns, or both reject with the same (path, message) list.
    Campaign(...) refuses a message_sequence that is not a list when it is built (TypeError);
    from_mapping reports that same message at ``message_sequence``, beside any other problem.
    """
    outcome, expected = _as_object(kw, allow)
    if outcome == "valid":
        assert Campaign.from_mapping(kw, allow_unknown_message_types=allow) == expected
        return
    with pytest.raises(ValidationError) as caught:
        Campaign.from_mapping(kw, allow_unknown_message_types=allow)
    if outcome == "invalid":
        assert caught.value.errors == expected
    else:
        assert ("message_sequence", expected) in caught.value.errors


@pytest.mark.parametrize("location", ["GB ", " GB", " gb\t"])
def test_from_mapping_strips_hiring_location_like_the_constructor(location: str) -> None:
    """A padded hiring_location is stripped and upper-cased by both ways, then accepted."""
    kw = {
        **s0_body(),
        "message_sequence": ["hiring_activity"],
        "hiring_location": location,
    }
    del kw["lead_data"]
    assert Campaign.from_mapping(kw).hiring_location == "GB"
    assert Campaign.from_mapping(kw) == Campaign(**kw)


def test_from_mapping_reports_a_bad_sequence_with_every_other_problem() -> None:
    """A sequence Campaign(...) cannot take is one problem among the others, in server order."""
    kw = {**s0_body(), "automation_tool_customer_id": " ", "tone_preference": "loud"}
    del kw["lead_data"], kw["message_sequence"]
    with pytest.raises(ValidationError) as caught:
        Campaign.from_mapping({**kw, "message_sequence": "connection_request", "tone": 1})
    with pytest.raises(TypeError) as refused:
        Campaign(**kw, message_sequence="connection_request")
    assert [path for path, _ in caught.value.errors] == [
        "automation_tool_customer_id",
        "message_sequence",
        "tone_preference",
        "tone",
    ]
    assert caught.value.messages[1] == str(refused.value)
    assert str(refused.value).startswith("message_sequence must be an array")
    with pytest.raises(ValidationError) as missing:
        Campaign.from_mapping(kw)
    assert missing.value.messages[1].startswith(
        "message_sequence is required but was missing or blank"
    )
