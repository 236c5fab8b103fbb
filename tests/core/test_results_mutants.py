"""Result objects' behaviour that mutation testing showed no other test pinned down."""

from __future__ import annotations

from upscale_async import RejectedLead


def test_a_rejected_leads_repr_shows_its_id_and_messages_not_the_lead() -> None:
    """RejectedLead's repr: index, lead id and the messages without their paths."""
    rejected = RejectedLead(
        index=3,
        lead={"automation_tool_lead_id": "lead-3", "first_name": "secret-ish data"},
        errors=(("lead_data[3].first_name", "first_name is required but was missing or blank"),),
    )
    assert repr(rejected) == (
        "RejectedLead(index=3, lead_id='lead-3', "
        "errors=['first_name is required but was missing or blank'])"
    )
