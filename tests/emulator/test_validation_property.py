"""Property: the emulator's 422 is always the shared validator's output for the same body."""

from __future__ import annotations

import copy
import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from upscale_async._spec.validation import join_messages, validate_generation_body
from upscale_async.testing import EmulatorThread

from .support import GENERATE, make_body

FIELDS = [
    "completion_notification_url",
    "automation_tool_customer_id",
    "automation_tool_campaign_name",
    "proposition_company_url",
    "message_sequence",
    "tone_preference",
    "lead_data",
    "hiring_location",
]
LEAD_FIELDS = ["automation_tool_lead_id", "lead_linkedin", "first_name", "lead_company_website_url"]
VALUES = st.one_of(
    st.none(),
    st.just(""),
    st.just("  "),
    st.just("ftp://x.example"),
    st.just("not a url"),
    st.just("https://ok.example"),
    st.integers(),
    st.just([]),
    st.just(["hiring_activity"]),
    st.just([{"step": 0, "messageType": "connection_request"}]),
)


@pytest.fixture(scope="module")
def running() -> Iterator[EmulatorThread]:
    with EmulatorThread(webhook_secret=None) as emulator:
        yield emulator


def post(running: EmulatorThread, body: Any) -> tuple[int, Any]:
    request = urllib.request.Request(
        running.base_url + GENERATE,
        data=json.dumps(body).encode(),
        headers={"Api-Key": running.api_key},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


@settings(
    max_examples=int(os.environ.get("EMULATOR_PROPERTY_EXAMPLES", "40")),
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    top=st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=3),
    lead=st.dictionaries(st.sampled_from(LEAD_FIELDS), VALUES, max_size=2),
)
def test_422_matches_shared_validator(
    running: EmulatorThread, top: dict[str, Any], lead: dict[str, Any]
) -> None:
    """For any mutated body, the emulator answers 422 with join_messages(...) or accepts it."""
    top, lead = copy.deepcopy(top), copy.deepcopy(lead)  # st.just values are shared
    body = make_body(2, **top)
    leads = body["lead_data"]
    if isinstance(leads, list) and leads and isinstance(leads[0], dict):
        body["lead_data"][0] = {**body["lead_data"][0], **lead}
    problems = validate_generation_body(body)
    status, answer = post(running, body)
    if problems:
        assert (status, answer) == (422, {"error": join_messages(problems)})
    else:
        assert status == 200


def test_unhashable_tone_is_a_422(running: EmulatorThread) -> None:
    """A list as tone_preference is a 422, not a server error."""
    status, _ = post(running, make_body(1, tone_preference=["formal"]))
    assert status == 422
