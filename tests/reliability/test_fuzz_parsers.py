"""Fuzzing every response parser: only the SDK's own errors come out."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from upscale_async import (
    Account,
    CompletionEvent,
    GenerationAccepted,
    ResponseValidationError,
    RetrievedMessages,
    WebhookPayloadError,
)
from upscale_async._wire import _converter as converter
from upscale_async._wire import structure_retrieved, structure_sequences

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
json_like = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
meta_keys = st.sampled_from(
    [
        "request_message_generation_api_request_secure_request_id",
        "requested_messages_count",
        "generated_message_count",
        "failed_messages_count",
        "failed_messages_reason",
        "generation_status",
    ]
)
lead_keys = st.sampled_from(
    ["external_prospect_id", "linkedin", "outreach_message", "x_message", "no_job_posts"]
)
retrieve_like = st.fixed_dictionaries(
    {},
    optional={
        "metadata": st.dictionaries(meta_keys, scalars, max_size=6) | json_like,
        "account": json_like,
        "campaign": st.fixed_dictionaries(
            {},
            optional={
                "automation_tool_campaign_id": scalars,
                "message_sequence": json_like,
                "leads_data": st.lists(
                    st.dictionaries(lead_keys, scalars, max_size=5) | json_like, max_size=4
                )
                | json_like,
            },
        )
        | json_like,
    },
)


@settings(max_examples=400, deadline=None)
@given(retrieve_like | json_like, st.sampled_from([200, 202]))
def test_retrieve_parser(data: Any, status: int) -> None:
    """Any JSON value fed to the retrieve parser gives a result or ResponseValidationError."""
    try:
        result = structure_retrieved(data, status)
    except ResponseValidationError:
        return
    assert isinstance(result, RetrievedMessages)
    for lead in result.leads:
        assert isinstance(lead.external_prospect_id, str)
        assert all(v is None or isinstance(v, str) for v in lead.messages.values())
    assert isinstance(result.is_complete, bool)


@settings(max_examples=300, deadline=None)
@given(json_like, st.sampled_from([GenerationAccepted, Account, CompletionEvent]))
def test_small_parsers(data: Any, cls: type) -> None:
    """Any JSON value fed to the other parsers gives a model or ResponseValidationError."""
    try:
        model = converter.structure(data, cls)
    except (ResponseValidationError, WebhookPayloadError):
        return
    assert isinstance(model, cls)


@settings(max_examples=300, deadline=None)
@given(json_like | st.fixed_dictionaries({"sequences": st.lists(json_like, max_size=3)}))
def test_sequences_parser(data: Any) -> None:
    """Any JSON value fed to the sequences parser gives sequences or ResponseValidationError."""
    try:
        sequences = structure_sequences(data)
    except ResponseValidationError:
        return
    assert isinstance(sequences, list)
