"""Wire readers' behaviour that mutation testing showed no other test pinned down.

Each error names its path, what was expected and the value found (cut past 80 characters),
and keeps that value as ``body``; a missing field says how to fix the setup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from upscale_async import Account, GenerationAccepted, ResponseValidationError
from upscale_async._wire import structure, structure_retrieved, structure_sequences

PREFIX = "unexpected response from the Upscale API: "
METADATA = {
    "request_message_generation_api_request_secure_request_id": "r",
    "generation_status": "completed",
}


@pytest.mark.parametrize(
    ("read", "message", "body"),
    [
        pytest.param(
            lambda: structure([1], Account),
            "the body should be a JSON object, got [1]",
            [1],
            id="account",
        ),
        pytest.param(
            lambda: structure([1], GenerationAccepted),
            "the body should be a JSON object, got [1]",
            [1],
            id="accepted",
        ),
        pytest.param(
            lambda: structure_sequences({"sequences": "x"}),
            "sequences should be an array, got 'x'",
            "x",
            id="sequences",
        ),
        pytest.param(
            lambda: structure_sequences({"sequences": [{"steps": "x"}]}),
            "sequence.steps should be an array, got 'x'",
            "x",
            id="steps",
        ),
        pytest.param(
            lambda: structure_sequences({"sequences": [{"steps": [1]}]}),
            "sequence.steps[0] should be a string or an object, got 1",
            1,
            id="step",
        ),
        pytest.param(
            lambda: structure_retrieved({"metadata": [1], "campaign": {"leads_data": []}}),
            "metadata should be a JSON object, got [1]",
            [1],
            id="metadata",
        ),
        pytest.param(
            lambda: structure_retrieved(
                {
                    "metadata": {"request_message_generation_api_request_secure_request_id": 5},
                    "campaign": {"leads_data": []},
                }
            ),
            "metadata.request_message_generation_api_request_secure_request_id should be a "
            "non-empty string, got 5",
            5,
            id="metadata-id",
        ),
        pytest.param(
            lambda: structure_retrieved({"metadata": METADATA, "campaign": "x"}),
            "campaign should be a JSON object, got 'x'",
            "x",
            id="campaign",
        ),
        pytest.param(
            lambda: structure_retrieved(
                {"metadata": METADATA, "campaign": {"message_sequence": "x", "leads_data": []}}
            ),
            "campaign.message_sequence should be an array, got 'x'",
            "x",
            id="echoed-sequence",
        ),
    ],
)
def test_a_value_of_the_wrong_shape_is_named_shown_and_kept(
    read: Callable[[], Any], message: str, body: object
) -> None:
    """The error names the path and the expected shape, shows the value and keeps it as body."""
    with pytest.raises(ResponseValidationError) as info:
        read()
    assert str(info.value) == PREFIX + message
    assert info.value.body == body


def test_a_missing_field_says_to_check_the_base_url_and_routes() -> None:
    """A missing required field says the server does not follow the contract, and what to check."""
    with pytest.raises(ResponseValidationError) as info:
        structure_retrieved({"campaign": {}})
    assert str(info.value) == (
        PREFIX + "metadata is missing (expected a JSON object); the server does not answer as "
        "the API contract says: check that base_url points at the Upscale API and that routes= "
        "matches its version"
    )


@pytest.mark.parametrize(("length", "cut"), [(80, False), (81, True)])
def test_a_value_is_shown_whole_up_to_80_characters(length: int, cut: bool) -> None:
    """A value whose repr is 80 characters is shown whole; from 81 it is cut to 77 and '...'."""
    value = ["x" * (length - 4)]
    assert len(repr(value)) == length
    with pytest.raises(ResponseValidationError) as info:
        structure({"plan_name": value}, Account)
    shown = repr(value)[:77] + "..." if cut else repr(value)
    assert str(info.value) == PREFIX + f"plan_name should be a string or null, got {shown}"


def test_message_types_of_a_template_are_read_not_kept_as_extra() -> None:
    """A template's message_types become its steps and are not left over in ``extra``."""
    [template] = structure_sequences({"sequences": [{"message_types": ["connection_request"]}]})
    assert [s.message_type for s in template.steps] == ["connection_request"]
    assert template.extra == {}


def test_a_sequence_step_without_a_number_takes_its_position() -> None:
    """get_sequences: a step object with no (or an odd) ``step`` is numbered by its position."""
    [template] = structure_sequences(
        {
            "sequences": [
                {
                    "steps": [
                        {"step": 1, "messageType": "connection_request"},
                        {"messageType": "first_follow_up", "wait_days": 3},
                        {"step": "x", "messageType": "second_follow_up"},
                    ]
                }
            ]
        }
    )
    assert [step.step for step in template.steps] == [1, 2, 3]
    assert [step.message_type for step in template.steps] == [
        "connection_request",
        "first_follow_up",
        "second_follow_up",
    ]


def test_the_account_echoed_in_a_retrieve_answer_is_not_extra() -> None:
    """metadata, account and campaign are read; only other top-level keys go to ``extra``."""
    result = structure_retrieved(
        {
            "metadata": METADATA,
            "account": {"plan_name": "pro"},
            "campaign": {"leads_data": []},
            "trace": "t-1",
        }
    )
    assert result.extra == {"trace": "t-1"}
