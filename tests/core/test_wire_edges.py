"""The wire readers' edges: lenient where documented, and errors that name the path and the type."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from upscale_async import (
    Account,
    Campaign,
    CompletionEvent,
    GenerationAccepted,
    Lead,
    ResponseValidationError,
    SequenceStep,
    WebhookPayloadError,
)
from upscale_async._wire import (
    encode_request,
    structure,
    structure_event,
    structure_retrieved,
    structure_sequences,
)

from .conftest import s0_body


def _retrieve(
    *, metadata: dict[str, Any] | None = None, campaign: dict[str, Any] | None = None, **top: Any
) -> dict[str, Any]:
    """A minimal retrieve body; ``metadata`` and ``campaign`` entries override the defaults."""
    return {
        "metadata": {
            "request_message_generation_api_request_secure_request_id": "req-1",
            "generation_status": "completed",
            **(metadata or {}),
        },
        "campaign": {"leads_data": [], **(campaign or {})},
        **top,
    }


def _lead_result(**fields: Any) -> dict[str, Any]:
    return {"external_prospect_id": "p1", "outreach_message": "Hi", **fields}


def _error(data: Any, **kwargs: Any) -> str:
    with pytest.raises(ResponseValidationError) as info:
        structure_retrieved(data, **kwargs)
    return str(info.value)


# -- retrieve_messages -------------------------------------------------------------------------


def test_a_long_bad_value_is_cut_to_80_characters() -> None:
    """The value shown in a ResponseValidationError is cut to 77 characters and '...'."""
    value = list(range(100))
    message = _error(_retrieve(metadata={"generation_status": value}))
    prefix = (
        "unexpected response from the Upscale API: metadata.generation_status should be "
        "a string or null, got "
    )
    assert message == prefix + repr(value)[:77] + "..."


def test_a_short_bad_value_is_shown_whole_and_kept_as_the_body() -> None:
    """A short bad value is shown as its repr, and the error's body is the value itself."""
    with pytest.raises(ResponseValidationError) as info:
        structure_retrieved(_retrieve(metadata={"status_message": [1]}))
    assert str(info.value).endswith("metadata.status_message should be a string or null, got [1]")
    assert info.value.body == [1]


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        pytest.param(12, 12, id="int"),
        pytest.param(12.0, 12, id="whole-float"),
        pytest.param(None, None, id="null"),
    ],
)
def test_metadata_counts_read_whole_floats(count: Any, expected: int | None) -> None:
    """A metadata count may be an integer, a whole float (read as int) or null."""
    result = structure_retrieved(_retrieve(metadata={"requested_messages_count": count}))
    assert result.metadata.requested_messages_count == expected
    assert type(result.metadata.requested_messages_count) is type(expected)


@pytest.mark.parametrize("count", [pytest.param(1.5, id="fraction"), pytest.param(True, id="bool")])
def test_metadata_counts_refuse_other_numbers(count: Any) -> None:
    """A fractional or boolean count is an error naming the field."""
    assert "metadata.failed_messages_count should be an integer or null" in _error(
        _retrieve(metadata={"failed_messages_count": count})
    )


def test_singular_count_names_are_read() -> None:
    """Counts spelled in the singular are read into the plural fields."""
    result = structure_retrieved(
        _retrieve(
            metadata={
                "requested_message_count": 3,
                "generated_message_count": 2,
                "failed_message_count": 1,
            }
        )
    )
    meta = result.metadata
    assert (
        meta.requested_messages_count,
        meta.generated_messages_count,
        meta.failed_messages_count,
    ) == (3, 2, 1)
    assert meta.extra == {}


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param(
            {"requested_messages_count": 4, "requested_message_count": 3}, id="plural-first"
        ),
        pytest.param(
            {"requested_message_count": 3, "requested_messages_count": 4}, id="singular-first"
        ),
    ],
)
def test_the_plural_count_wins_over_the_singular(metadata: dict[str, Any]) -> None:
    """With both spellings the plural one is read, whatever their order; neither is extra."""
    meta = structure_retrieved(_retrieve(metadata=metadata)).metadata
    assert meta.requested_messages_count == 4
    assert meta.extra == {}


def test_a_null_plural_count_falls_back_to_the_singular() -> None:
    """A plural count that is null does not hide the singular one's value."""
    metadata = {"generated_message_count": 2, "generated_messages_count": None}
    meta = structure_retrieved(_retrieve(metadata=metadata)).metadata
    assert meta.generated_messages_count == 2
    assert meta.extra == {}


def test_the_request_id_falls_back_to_the_one_asked_for() -> None:
    """Without an id in the metadata, the id the retrieve was made for is used."""
    body = _retrieve()
    del body["metadata"]["request_message_generation_api_request_secure_request_id"]
    assert structure_retrieved(body, secure_request_id="asked").secure_request_id == "asked"
    assert "should be a non-empty string, got None" in _error(body)


def test_unknown_keys_are_kept_in_extra_at_every_level() -> None:
    """Unknown keys of the body, the metadata and the campaign are kept in their ``extra``."""
    result = structure_retrieved(
        _retrieve(metadata={"m": 1}, campaign={"c": 2, "automation_tool_campaign_id": "c1"}, b=3)
    )
    assert result.extra == {"b": 3}
    assert result.metadata.extra == {"m": 1}
    assert result.campaign.extra == {"c": 2}
    assert result.campaign.automation_tool_campaign_id == "c1"
    assert result.http_status == 200


@pytest.mark.parametrize(
    ("body", "path"),
    [
        pytest.param([], "the body should be a JSON object", id="body-array"),
        pytest.param(_retrieve(account=[1]), "account should be a JSON object", id="account"),
        pytest.param(
            _retrieve(campaign={"automation_tool_campaign_id": 5}),
            "campaign.automation_tool_campaign_id should be a string or null",
            id="campaign-id",
        ),
        pytest.param(
            _retrieve(campaign={"message_sequence": "connection_request"}),
            "campaign.message_sequence should be an array",
            id="sequence-string",
        ),
        pytest.param(
            _retrieve(campaign={"message_sequence": ["connection_request", 7]}),
            "campaign.message_sequence[1] should be a string or an object, got 7",
            id="sequence-entry",
        ),
        pytest.param(
            _retrieve(campaign={"leads_data": [_lead_result(), 3]}),
            "campaign.leads_data[1] should be a JSON object, got 3",
            id="lead-not-object",
        ),
        pytest.param(
            _retrieve(campaign={"leads_data": [_lead_result(external_prospect_id=9)]}),
            "campaign.leads_data[0].external_prospect_id should be a string, got 9",
            id="lead-id-number",
        ),
        pytest.param(
            _retrieve(campaign={"leads_data": [_lead_result(linkedin=["x"])]}),
            "campaign.leads_data[0].linkedin should be a string or null, got ['x']",
            id="lead-linkedin-list",
        ),
        pytest.param(
            _retrieve(campaign={"leads_data": [_lead_result(first_follow_up_message=4)]}),
            "campaign.leads_data[0].first_follow_up_message should be a string or null, got 4",
            id="message-number",
        ),
    ],
)
def test_a_retrieve_body_that_does_not_fit_names_the_path(body: Any, path: str) -> None:
    """Each part of a retrieve body that does not fit is named by its path and expected type."""
    assert path in _error(body)


def test_lead_results_keep_non_message_fields_of_any_type() -> None:
    """A lead's non-message fields may be any JSON; null messages and linkedin are fine."""
    leads = [
        _lead_result(no_job_posts=True, score=3, linkedin=None, first_follow_up_message=None),
        _lead_result(external_prospect_id="p2", linkedin="https://l.example/in/p2"),
    ]
    result = structure_retrieved(_retrieve(campaign={"leads_data": leads}))
    first, second = result.leads
    assert first.raw == leads[0]
    assert first.no_job_posts is True
    assert first.linkedin is None
    assert second.external_prospect_id == "p2"
    assert second.linkedin == "https://l.example/in/p2"


def test_a_missing_account_or_sequence_reads_as_empty() -> None:
    """A body without account or message_sequence reads them as {} and ()."""
    result = structure_retrieved(_retrieve(account=None))
    assert result.account == {}
    assert result.campaign.message_sequence == ()


def test_echoed_sequences_are_read_leniently() -> None:
    """Echoed strings stay strings; objects become steps, a missing step their position."""
    sequence = [
        "connection_request",
        {"messageType": "first_follow_up", "wait_days": "3"},
        {"step": 7, "messageType": "linkedin_post", "wait_days": 2},
        {"step": "x"},
    ]
    result = structure_retrieved(_retrieve(campaign={"message_sequence": sequence}))
    assert result.campaign.message_sequence == (
        "connection_request",
        SequenceStep(step=2, message_type="first_follow_up", wait_days=None),
        SequenceStep(step=7, message_type="linkedin_post", wait_days=2),
        SequenceStep(step=4, message_type="", wait_days=None),
    )


# -- request_message_generation, account, sequences --------------------------------------------


def test_an_accepted_answer_without_message_reads_an_empty_one() -> None:
    """A 200 from request_message_generation needs an id; its message defaults to ''."""
    assert structure({"secure_request_id": "r"}, GenerationAccepted) == GenerationAccepted(
        secure_request_id="r", message=""
    )
    with pytest.raises(ResponseValidationError, match="secure_request_id should be a non-empty"):
        structure({"secure_request_id": "", "message": "ok"}, GenerationAccepted)
    with pytest.raises(ResponseValidationError, match="message should be a string or null"):
        structure({"secure_request_id": "r", "message": 1}, GenerationAccepted)


def test_the_account_answer_is_read_with_its_extras() -> None:
    """The account answer reads its four fields (whole-float credits too) and keeps the rest."""
    account = structure(
        {
            "created_at": "2024-01-01",
            "plan_name": "Pro",
            "monthly_credits": 100.0,
            "monthly_allowance": 500,
            "owner": "x",
        },
        Account,
    )
    assert account == Account(
        created_at="2024-01-01",
        plan_name="Pro",
        monthly_credits=100,
        monthly_allowance=500,
        extra={"owner": "x"},
    )
    with pytest.raises(ResponseValidationError, match="monthly_allowance should be an integer"):
        structure({"monthly_allowance": "many"}, Account)
    with pytest.raises(ResponseValidationError, match="plan_name should be a string or null"):
        structure({"plan_name": 1}, Account)
    with pytest.raises(ResponseValidationError, match="created_at should be a string or null"):
        structure({"created_at": 1}, Account)
    with pytest.raises(ResponseValidationError, match="monthly_credits should be an integer"):
        structure({"monthly_credits": "x"}, Account)


def test_sequence_templates_are_read_leniently() -> None:
    """Templates: steps or message_types, saturated_markets from "true"/"false", any id."""
    [first, second, third] = structure_sequences(
        {
            "sequences": [
                {
                    "id": 7,
                    "name": "Short",
                    "steps": [{"step": 1, "messageType": "connection_request", "wait_days": 0}],
                    "sequence_length": "short",
                    "campaign_objective": "meeting",
                    "cadence_profile": "rapid",
                    "saturated_markets": "TRUE",
                    "note": "n",
                },
                {"message_types": ["connection_request"], "saturated_markets": "no"},
                {"id": "t3", "saturated_markets": 1},
            ]
        }
    )
    assert first.id == "7"
    assert (first.name, first.sequence_length) == ("Short", "short")
    assert (first.campaign_objective, first.cadence_profile) == ("meeting", "rapid")
    assert first.steps == (SequenceStep(step=1, message_type="connection_request", wait_days=0),)
    assert first.saturated_markets is True
    assert first.extra == {"note": "n"}
    assert second.id == ""
    assert second.steps == (SequenceStep(step=1, message_type="connection_request"),)
    assert second.saturated_markets is False
    assert third.steps == ()
    assert third.saturated_markets is None


def test_a_bare_array_of_templates_is_read() -> None:
    """get_sequences may answer a bare array of templates."""
    [template] = structure_sequences([{"id": "a", "steps": ["first_follow_up"]}])
    assert template.message_types == ["first_follow_up"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param({"templates": []}, "sequences should be an array, got None", id="no-key"),
        pytest.param([3], "sequence should be a JSON object, got 3", id="not-object"),
        pytest.param([{"steps": "x"}], "sequence.steps should be an array", id="steps-string"),
        pytest.param([{"steps": [None]}], "sequence.steps[0] should be a string or an", id="step"),
        pytest.param([{"name": 1}], "sequence.name should be a string or null", id="name"),
        pytest.param(
            [{"sequence_length": 1}], "sequence.sequence_length should be a string", id="length"
        ),
        pytest.param(
            [{"campaign_objective": 1}], "sequence.campaign_objective should be", id="objective"
        ),
        pytest.param([{"cadence_profile": 1}], "sequence.cadence_profile should be", id="cadence"),
    ],
)
def test_templates_that_do_not_fit_name_the_path(data: Any, message: str) -> None:
    """A get_sequences answer that does not fit names the template field."""
    with pytest.raises(ResponseValidationError, match=message.replace("[", r"\[")):
        structure_sequences(data)


def test_leads_and_campaigns_structure_from_mappings_or_models() -> None:
    """Lead and Campaign structure from mappings, pass models through, and refuse the rest."""
    body = s0_body()
    lead = structure(body["lead_data"][0], Lead)
    assert structure(lead, Lead) is lead
    campaign_wire = {k: v for k, v in body.items() if k != "lead_data"}
    campaign = structure(campaign_wire, Campaign)
    assert structure(campaign, Campaign) is campaign
    with pytest.raises(TypeError, match="a lead must be a Lead or a mapping, not int"):
        structure(3, Lead)
    with pytest.raises(TypeError, match="a campaign must be a Campaign or a mapping, not list"):
        structure([], Campaign)


def test_encode_request_appends_the_leads_last() -> None:
    """The request body is the campaign object with lead_data appended as its last key."""
    body = encode_request(orjson.dumps({"a": 1}), [{"x": "y"}])
    assert body == b'{"a":1,"lead_data":[{"x":"y"}]}'


# -- completion webhooks -----------------------------------------------------------------------


def _event_error(data: Any) -> str:
    with pytest.raises(WebhookPayloadError) as info:
        structure_event(data)
    return str(info.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param([], "webhook body must be a JSON object, not a JSON array", id="array"),
        pytest.param(None, "webhook body must be a JSON object, not a JSON null", id="null"),
        pytest.param(True, "webhook body must be a JSON object, not a JSON boolean", id="bool"),
        pytest.param(1.5, "webhook body must be a JSON object, not a JSON number", id="number"),
        pytest.param("x", "webhook body must be a JSON object, not a JSON string", id="string"),
        pytest.param(
            {"status": "completed"},
            "secure_request_id must be a non-empty string (it is missing: not a completion event?)",
            id="no-id",
        ),
        pytest.param(
            {"secure_request_id": "  ", "status": "completed"},
            "secure_request_id must be a non-empty string",
            id="blank-id",
        ),
        pytest.param(
            {"secure_request_id": "r", "status": ""},
            "status must be a non-empty string",
            id="status",
        ),
        pytest.param(
            {"secure_request_id": "r", "status": "ok", "webhook_triggered_at": False},
            "webhook_triggered_at must be a string, a number or null, not a boolean",
            id="triggered-bool",
        ),
        pytest.param(
            {"secure_request_id": "r", "status": "ok", "webhook_triggered_at": {}},
            "webhook_triggered_at must be a string, a number or null, not a object",
            id="triggered-object",
        ),
        pytest.param(
            {"secure_request_id": "r", "status": "ok", "completed_at": 5},
            "completed_at must be a string or null, not a number",
            id="completed-at",
        ),
        pytest.param(
            {"secure_request_id": "r", "status": "ok", "requested_messages_count": 2.0},
            "requested_messages_count must be an integer or null, not a number",
            id="count-float",
        ),
        pytest.param(
            {"secure_request_id": "r", "status": "ok", "generated_messages_count": -1},
            "generated_messages_count must be >= 0, got -1",
            id="count-negative",
        ),
    ],
)
def test_a_webhook_payload_that_does_not_fit_says_what(data: Any, message: str) -> None:
    """Each bad webhook payload gets exactly its message, naming the field and the JSON type."""
    assert _event_error(data) == message


def test_a_webhook_payload_is_read_with_its_extras() -> None:
    """A completion event keeps its fields, reads a Unix time as a string, and keeps the rest."""
    event = structure_event(
        {
            "secure_request_id": "r",
            "status": "completed",
            "completed_at": "2024-01-01T00:00:00Z",
            "requested_messages_count": 4,
            "generated_messages_count": 0,
            "webhook_triggered_at": 1700000000,
            "source": "test",
        },
        webhook_id="msg_1",
    )
    assert event == CompletionEvent(
        secure_request_id="r",
        status="completed",
        completed_at="2024-01-01T00:00:00Z",
        requested_messages_count=4,
        generated_messages_count=0,
        webhook_triggered_at="1700000000",
        webhook_id="msg_1",
        extra={"source": "test"},
    )
    assert event.extra == {"source": "test"}


def test_the_converter_reads_webhook_payloads() -> None:
    """structure(data, CompletionEvent) reads a payload like structure_event."""
    event = structure({"secure_request_id": "r", "status": "completed"}, CompletionEvent)
    assert event == CompletionEvent(secure_request_id="r", status="completed")


def test_singular_count_names_are_read_in_webhook_payloads() -> None:
    """D5: a webhook's counts spelled in the singular are read, as for retrieve metadata."""
    event = structure_event(
        {
            "secure_request_id": "x",
            "status": "complete",
            "requested_message_count": 12,
            "generated_message_count": 11,
        }
    )
    assert (event.requested_messages_count, event.generated_messages_count) == (12, 11)
    assert event.extra == {}


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        pytest.param(
            {"requested_messages_count": 4, "requested_message_count": 3},
            (4, None),
            id="plural-first",
        ),
        pytest.param(
            {"generated_message_count": 3, "generated_messages_count": 4},
            (None, 4),
            id="singular-first",
        ),
        pytest.param(
            {"requested_messages_count": None, "requested_message_count": 5},
            (5, None),
            id="null-plural",
        ),
        pytest.param(
            {"generated_messages_count": 0, "generated_message_count": 9},
            (None, 0),
            id="zero-plural",
        ),
    ],
)
def test_the_plural_webhook_count_wins_over_the_singular(
    counts: dict[str, Any], expected: tuple[int | None, int | None]
) -> None:
    """With both spellings the plural one is read (unless it is null); neither goes to extra."""
    event = structure_event({"secure_request_id": "x", "status": "complete", **counts})
    assert (event.requested_messages_count, event.generated_messages_count) == expected
    assert event.extra == {}


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        pytest.param(
            {"requested_message_count": 2.0},
            "requested_message_count must be an integer or null, not a number",
            id="float",
        ),
        pytest.param(
            {"generated_message_count": -3},
            "generated_message_count must be >= 0, got -3",
            id="negative",
        ),
        pytest.param(
            {"generated_messages_count": "7", "generated_message_count": 7},
            "generated_messages_count must be an integer or null, not a string",
            id="bad-plural-wins",
        ),
    ],
)
def test_a_bad_webhook_count_is_named_as_sent(counts: dict[str, Any], message: str) -> None:
    """A singular count that does not fit is an error naming the key as the payload spelt it."""
    assert _event_error({"secure_request_id": "x", "status": "complete", **counts}) == message
