"""The shared validator's edges: each rule's exact message, the fast path's soundness, the order."""

from __future__ import annotations

from collections import UserDict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from upscale_async._spec.validation import (
    CAMPAIGN_STRING_FIELDS,
    _lead_problems,
    check_campaign,
    check_lead,
    check_leads,
    check_sequence,
    join_messages,
    plain_leads,
    required,
    url_problem,
    validate_generation_body,
)

from ..core.conftest import s0_body


def _campaign(**changes: Any) -> dict[str, Any]:
    body = s0_body()
    del body["lead_data"]
    body.update(changes)
    return body


def _lead(**changes: Any) -> dict[str, Any]:
    return {**s0_body()["lead_data"][0], **changes}


def _messages(problems: list[tuple[str, str]]) -> list[str]:
    return [message for _, message in problems]


# -- URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("https://a.example/x?y=1#z", None, id="https"),
        pytest.param("HTTP://A.EXAMPLE", None, id="upper-case-scheme"),
        pytest.param("https://a", None, id="one-letter-host"),
        pytest.param(7, "u must be a string", id="not-a-string"),
        pytest.param("https:///path", "u must be a valid HTTP or HTTPS URL", id="no-host"),
        pytest.param(
            "mailto:someone@x.example", "u must be a valid HTTP or HTTPS URL", id="mailto"
        ),
        pytest.param("https://a b", "u must be a valid URL", id="space"),
        pytest.param("www.acme.example", "u must be a valid URL", id="no-scheme"),
    ],
)
def test_url_problem_messages(value: object, message: str | None) -> None:
    """url_problem accepts http(s) URLs with a host and names what is wrong with the rest."""
    assert url_problem("u", value) == (None if message is None else ("u", message))


def test_required_names_the_path() -> None:
    """required(path) is the server's "missing or blank" message, keyed by the path."""
    assert required("lead_data[2].first_name") == (
        "lead_data[2].first_name",
        "lead_data[2].first_name is required but was missing or blank",
    )


def test_join_messages_uses_single_spaces() -> None:
    """join_messages joins the messages alone, one space apart, as the server does."""
    assert join_messages([("a", "a is bad"), ("b", "b is worse")]) == "a is bad b is worse"


# -- message_sequence ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sequence", "messages"),
    [
        pytest.param("connection_request", ["message_sequence must be an array"], id="string"),
        pytest.param([], ["message_sequence must contain at least one message type"], id="empty"),
        pytest.param(
            [5],
            [
                "message_sequence[0] must be a messageType string or an object with step and "
                "messageType"
            ],
            id="number-entry",
        ),
        pytest.param(
            ["connection_request", None, "breakup"],
            [
                "message_sequence[1] must be a messageType string or an object with step and "
                "messageType",
                "message_sequence[2] must be one of connection_request, first_follow_up, "
                "stage_ambition, share_material, hiring_activity but was 'breakup'",
            ],
            id="entries-after-a-bad-one-are-checked",
        ),
        pytest.param(
            [{"messageType": "connection_request"}],
            ["message_sequence[0].step is required but was missing or blank"],
            id="object-without-step",
        ),
        pytest.param(
            [{"step": 0, "messageType": "connection_request"}],
            ["message_sequence[0].step must be an integer of at least 1"],
            id="step-zero",
        ),
        pytest.param(
            [{"step": True, "messageType": "connection_request"}],
            ["message_sequence[0].step must be an integer of at least 1"],
            id="step-bool",
        ),
        pytest.param(
            [{"step": 1, "messageType": " "}],
            ["message_sequence[0].messageType is required but was missing or blank"],
            id="blank-object-type",
        ),
        pytest.param(
            [""],
            ["message_sequence[0] is required but was missing or blank"],
            id="blank-string-type",
        ),
        pytest.param(
            [{"step": 1, "messageType": 3}],
            ["message_sequence[0].messageType must be a string"],
            id="number-type",
        ),
        pytest.param(
            [{"step": 2, "messageType": "connection_request"}, "first_follow_up"],
            ["message_sequence must start at step 1"],
            id="object-steps-from-2",
        ),
    ],
)
def test_sequence_rules(sequence: object, messages: list[str]) -> None:
    """Each message_sequence rule gives exactly the server's message, and no types."""
    problems, types = check_sequence(sequence)
    assert _messages(problems) == messages
    assert all(message.startswith(path + " ") for path, message in problems)  # the server's form
    if not isinstance(sequence, list) or not sequence:
        assert types == []


def test_sequence_types_come_in_order() -> None:
    """check_sequence returns the message types in sequence order, objects and strings alike."""
    sequence = [
        "connection_request",
        {"step": 2, "messageType": "share_material"},
        {"step": 3, "messageType": "first_follow_up"},
    ]
    assert check_sequence(sequence) == (
        [],
        ["connection_request", "share_material", "first_follow_up"],
    )


def test_unknown_types_are_returned_when_allowed() -> None:
    """With allow_unknown_message_types an unknown type is returned, not reported."""
    assert check_sequence(["linkedin_post"], allow_unknown_message_types=True) == (
        [],
        ["linkedin_post"],
    )
    problems, types = check_sequence(["linkedin_post"])
    assert types == []
    assert len(problems) == 1


# -- campaign --------------------------------------------------------------------------------


def test_an_empty_campaign_reports_every_required_field_in_order() -> None:
    """An empty campaign is missing its six string fields and message_sequence, in that order."""
    assert check_campaign({}) == [
        *(required(name) for name in CAMPAIGN_STRING_FIELDS),
        required("message_sequence"),
    ]


def test_a_null_message_sequence_is_missing() -> None:
    """message_sequence: null is reported as missing, like an absent one."""
    assert check_campaign(_campaign(message_sequence=None)) == [required("message_sequence")]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param(
            {"automation_tool_campaign_id": 42},
            ("automation_tool_campaign_id", "automation_tool_campaign_id must be a string"),
            id="number-id",
        ),
        pytest.param(
            {"completion_notification_url": "ftp://hooks.example"},
            (
                "completion_notification_url",
                "completion_notification_url must be a valid HTTP or HTTPS URL",
            ),
            id="notification-url",
        ),
        pytest.param(
            {"tone_preference": ["formal"]},
            ("tone_preference", "tone_preference must be one of formal, normal, casual"),
            id="tone-list",
        ),
        pytest.param(
            {"signoff_name": 3},
            ("signoff_name", "signoff_name must be a string"),
            id="signoff-number",
        ),
        pytest.param(
            {"message_sequence": ["share_material"], "material_link": 9},
            ("material_link", "material_link must be a string"),
            id="material-link-number",
        ),
        pytest.param(
            {"message_sequence": ["share_material"], "material_link": "acme.example/case"},
            ("material_link", "material_link must be a valid URL"),
            id="material-link-not-url",
        ),
        pytest.param(
            {"message_sequence": ["hiring_activity"], "hiring_location": ""},
            (
                "hiring_location",
                "hiring_location is required when the message_sequence includes hiring_activity",
            ),
            id="hiring-location-blank",
        ),
        pytest.param(
            {"message_sequence": ["stage_ambition"], "job_title": ["cto"]},
            ("job_title", "job_title must be a string"),
            id="job-title-list",
        ),
    ],
)
def test_campaign_field_rules(changes: dict[str, Any], expected: tuple[str, str]) -> None:
    """Each campaign field rule is the only problem, with the server's path and message."""
    assert check_campaign(_campaign(**changes)) == [expected]


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"tone_preference": None, "signoff_name": None}, id="optional-nulls"),
        pytest.param({"tone_preference": "casual"}, id="tone"),
        pytest.param({"material_link": "not a url"}, id="material-link-without-its-type"),
        pytest.param({"hiring_location": "XX"}, id="hiring-location-without-its-type"),
        pytest.param(
            {"message_sequence": ["hiring_activity"], "hiring_location": "gb"},
            id="hiring-location-lower-case",
        ),
        pytest.param({"message_sequence": ["stage_ambition"], "job_title": "CTO"}, id="job-title"),
    ],
)
def test_valid_campaign_variants(changes: dict[str, Any]) -> None:
    """Optional fields may be null, and conditional ones are only checked with their type."""
    assert check_campaign(_campaign(**changes)) == []


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"job_title": ["cto"]}, id="job-title-list"),
        pytest.param({"job_title": 5, "hiring_location": 7}, id="numbers"),
        pytest.param({"material_link": 9, "hiring_location": False}, id="number-and-bool"),
        pytest.param({"material_link": {"url": "x"}, "job_title": ""}, id="object-and-blank"),
    ],
)
def test_a_conditional_field_without_its_type_is_ignored(changes: dict[str, Any]) -> None:
    """§2.1: a conditional field sent while its type is absent is ignored, whatever its value.

    Neither the SDK's check nor the emulator's (the same validator) type-checks it.
    """
    campaign = _campaign(message_sequence=["connection_request"], **changes)
    assert check_campaign(campaign) == []
    body = {**campaign, "lead_data": s0_body()["lead_data"]}
    assert validate_generation_body(body) == []


def test_a_conditional_field_with_its_type_is_still_checked() -> None:
    """The other side: with its type in the sequence, the same values are each a problem."""
    campaign = _campaign(
        message_sequence=["share_material", "hiring_activity", "stage_ambition"],
        job_title=5,
        hiring_location=7,
        material_link=9,
    )
    assert check_campaign(campaign) == [
        ("material_link", "material_link must be a string"),
        ("hiring_location", "hiring_location must be a string"),
        ("job_title", "job_title must be a string"),
    ]


# -- leads -----------------------------------------------------------------------------------


def test_a_valid_lead_has_the_shared_empty_list() -> None:
    """check_lead of a valid lead is empty and allocates nothing (the shared empty list)."""
    assert check_lead(_lead(), 0) == []
    assert check_lead(_lead(), 0) is check_lead(_lead(first_name="Other"), 5)


def test_a_lead_that_is_not_an_object() -> None:
    """A lead that is not a mapping is reported at its index."""
    assert check_lead(["x"], 3) == [("lead_data[3]", "lead_data[3] must be an object")]


def test_an_empty_lead_misses_every_required_field_in_order() -> None:
    """An empty lead reports its five required fields, at its index, in the server's order."""
    assert _messages(check_lead({}, 4)) == [
        "lead_data[4].automation_tool_lead_id is required but was missing or blank",
        "lead_data[4].lead_linkedin is required but was missing or blank",
        "lead_data[4].lead_company is required but was missing or blank",
        "lead_data[4].first_name is required but was missing or blank",
        "lead_data[4].last_name is required but was missing or blank",
    ]


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        pytest.param(
            {"last_name": 5},
            ("lead_data[1].last_name", "lead_data[1].last_name must be a string"),
            id="number-name",
        ),
        pytest.param(
            {"lead_linkedin": "linkedin.com/in/x"},
            ("lead_data[1].lead_linkedin", "lead_data[1].lead_linkedin must be a valid URL"),
            id="linkedin-not-url",
        ),
        pytest.param(
            {"lead_company_website_url": "ftp://x.example"},
            (
                "lead_data[1].lead_company_website_url",
                "lead_data[1].lead_company_website_url must be a valid HTTP or HTTPS URL",
            ),
            id="website-ftp",
        ),
        pytest.param(
            {"lead_specified_url": 12},
            ("lead_data[1].lead_specified_url", "lead_data[1].lead_specified_url must be a string"),
            id="specified-url-number",
        ),
    ],
)
def test_lead_field_rules(changes: dict[str, Any], expected: tuple[str, str]) -> None:
    """Each lead field rule is the only problem, with its lead_data[i] path."""
    assert check_lead(_lead(**changes), 1) == [expected]


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://a", id="https-one-letter-host"),
        pytest.param("http://a", id="http-one-letter-host"),
        pytest.param("https://linkedin.com/in/x?y=1", id="query"),
        pytest.param("https://Xerox.example", id="https-capital-x-host"),
        pytest.param("http://Xerox.example", id="http-capital-x-host"),
    ],
)
def test_plain_urls_take_the_fast_path(url: str) -> None:
    """A lead whose URLs are plain http(s)://host... strings passes the fast checks."""
    lead = _lead(lead_linkedin=url, lead_company_website_url=url, lead_specified_url=url)
    assert plain_leads([lead]) == [True]


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"lead_linkedin": "https://"}, id="https-no-host"),
        pytest.param({"lead_linkedin": "http://"}, id="http-no-host"),
        pytest.param({"lead_linkedin": "https:///x"}, id="https-slash-host"),
        pytest.param({"lead_linkedin": "http://?x"}, id="http-query-host"),
        pytest.param({"lead_linkedin": "https://a b"}, id="space"),
        pytest.param({"lead_linkedin": "https://a\x00b"}, id="unprintable"),
        pytest.param({"lead_linkedin": "ftp://a"}, id="ftp"),
        pytest.param({"lead_company_website_url": "https://"}, id="website-no-host"),
        pytest.param({"lead_company_website_url": "http://"}, id="website-http-no-host"),
        pytest.param({"lead_specified_url": "http://"}, id="specified-http-no-host"),
        pytest.param({"lead_specified_url": "https://"}, id="specified-https-no-host"),
        pytest.param({"lead_company_website_url": "http://#x"}, id="website-fragment-host"),
        pytest.param({"lead_company_website_url": "https://a b"}, id="website-space"),
        pytest.param({"lead_company_website_url": "https://a\nb"}, id="website-unprintable"),
        pytest.param({"lead_specified_url": "www.x.example"}, id="specified-no-scheme"),
        pytest.param({"lead_specified_url": 3}, id="specified-number"),
        pytest.param({"first_name": " "}, id="blank-first"),
        pytest.param({"last_name": ""}, id="empty-last"),
        pytest.param({"lead_company": "\t"}, id="blank-company"),
        pytest.param({"automation_tool_lead_id": " "}, id="blank-id"),
        pytest.param({"automation_tool_lead_id": ""}, id="empty-id"),
        pytest.param({"lead_company": ""}, id="empty-company"),
        pytest.param({"first_name": ""}, id="empty-first"),
        pytest.param({"automation_tool_lead_id": 7}, id="number-id"),
        pytest.param({"lead_linkedin": None}, id="no-linkedin"),
    ],
)
def test_doubtful_leads_leave_the_fast_path(changes: dict[str, Any]) -> None:
    """A lead with a blank field or an unusual URL is not passed by the fast checks."""
    assert plain_leads([_lead(**changes)]) == [False]


def test_only_dicts_take_the_fast_path() -> None:
    """Another mapping type (or a non-mapping) always gets the exact checks."""
    assert plain_leads([UserDict(_lead()), ["x"], _lead()]) == [False, False, True]


_TEXTS = st.sampled_from(["", " ", "x", "Ann", "\t", "a\x00"]) | st.none() | st.integers(0, 2)
_URLS = (
    st.sampled_from(
        [
            "https://",
            "http://",
            "https://a",
            "http://a",
            "https:///",
            "http://?",
            "https://#",
            "https://a b",
            "https://a\x01",
            "HTTPS://a",
            "ftp://a",
            "https:a",
            "",
        ]
    )
    | st.none()
    | st.integers(0, 2)
)


@settings(max_examples=400, deadline=None)
@given(
    lead=st.fixed_dictionaries(
        {
            "automation_tool_lead_id": _TEXTS,
            "lead_company": _TEXTS,
            "first_name": _TEXTS,
            "last_name": _TEXTS,
            "lead_linkedin": _URLS,
            "lead_company_website_url": _URLS,
            "lead_specified_url": _URLS,
        }
    )
)
def test_the_fast_path_passes_only_valid_leads(lead: dict[str, Any]) -> None:
    """plain_leads is sound: a lead it passes has no problem under the exact rules."""
    if plain_leads([lead]) == [True]:
        assert _lead_problems(lead, 0) == []
    assert check_lead(lead, 0) == _lead_problems(lead, 0)


@pytest.mark.parametrize(
    ("leads", "messages"),
    [
        pytest.param(None, ["lead_data is required but was missing or blank"], id="missing"),
        pytest.param({"a": 1}, ["lead_data must be an array"], id="object"),
        pytest.param([], ["lead_data must contain at least one lead"], id="empty"),
    ],
)
def test_lead_data_shape(leads: object, messages: list[str]) -> None:
    """lead_data must be a non-empty array; each wrong shape has the server's message."""
    assert check_leads(leads) == [("lead_data", message) for message in messages]


def test_a_repeat_is_found_after_an_invalid_lead_and_among_unusual_ones() -> None:
    """Duplicate ids are found past an invalid lead, and for valid leads off the fast path."""
    odd = _lead(lead_linkedin="HTTPS://linkedin.example/in/x")
    leads = [_lead(first_name=""), odd, dict(odd), (1, 2)]
    assert check_leads(leads) == [
        required("lead_data[0].first_name"),
        (
            "lead_data[2].automation_tool_lead_id",
            "lead_data[2].automation_tool_lead_id must be unique in a request but repeats the "
            "lead at index 1",
        ),
        ("lead_data[3]", "lead_data[3] must be an object"),
    ]


def test_an_invalid_lead_does_not_claim_its_id() -> None:
    """A lead rejected for another field does not make a later lead with its id a repeat."""
    first = _lead(last_name="")
    assert check_leads([first, _lead()]) == [required("lead_data[0].last_name")]


def test_a_body_that_is_not_an_object() -> None:
    """A request body that is not a JSON object gets the one body message."""
    assert validate_generation_body([1]) == [("body", "request body must be a JSON object")]


def test_a_body_reports_campaign_then_leads() -> None:
    """A body's problems are the campaign's first, then lead_data's (here: missing)."""
    body = _campaign(tone_preference="loud")
    assert _messages(validate_generation_body(body)) == [
        "tone_preference must be one of formal, normal, casual",
        "lead_data is required but was missing or blank",
    ]


def test_unknown_types_reach_validate_generation_body() -> None:
    """validate_generation_body passes allow_unknown_message_types on to the sequence check."""
    body = {**_campaign(message_sequence=["linkedin_post"]), "lead_data": [_lead()]}
    assert validate_generation_body(body, allow_unknown_message_types=True) == []
    assert validate_generation_body(body) != []


def test_the_contract_lists_the_top_level_fields_in_the_order_of_their_messages() -> None:
    """docs/contract.md §2.8: top-level messages come in §2.1's row order, conditionals included.

    Every top-level field is given a problem (the sequence names the conditional types in the
    reverse of their order), and the fields the messages name must be §2.1's rows, in order.
    """
    import re
    from pathlib import Path

    text = (Path(__file__).parents[2] / "docs" / "contract.md").read_text(encoding="utf-8")
    section = text.split("### 2.1 ", 1)[1].split("### 2.2 ", 1)[0]
    rows = re.findall(r"^\| `([a-z_]+)` \|", section, flags=re.MULTILINE)
    body = {
        "message_sequence": ["stage_ambition", "hiring_activity", "share_material", "bogus"],
        "tone_preference": "loud",
        "signoff_name": 1,
    }
    named = [path.split("[", 1)[0] for path, _ in validate_generation_body(body)]
    assert named == rows
