"""Validation behaviour that mutation testing showed no other test pinned down.

How ``closest`` picks the known name a typo stands for, and the whole message for an unknown
lead key with no close match (every field listed, then how to send an extra key on purpose).
"""

from __future__ import annotations

import pytest

from upscale_async._spec.validation import check_lead, closest

LEAD = {
    "automation_tool_lead_id": "a",
    "lead_linkedin": "https://linkedin.com/in/x",
    "lead_company": "c",
    "first_name": "f",
    "last_name": "l",
}


@pytest.mark.parametrize(
    ("name", "known", "expected"),
    [
        pytest.param("url", ["proposition_company_url"], "proposition_company_url", id="3-letters"),
        pytest.param("ur", ["proposition_company_url"], None, id="2-letters"),
        pytest.param(
            "url", ["zzzz_url_of_the_lead_page", "company_url"], "company_url", id="most-alike"
        ),
        pytest.param("tone", ["t12o34n56e78", "tone_preference"], "tone_preference", id="contains"),
        pytest.param("zzzz", ["tone_preference"], None, id="nothing"),
    ],
)
def test_closest_is_the_most_alike_known_name_containing_a_short_one(
    name: str, known: list[str], expected: str | None
) -> None:
    """Without a near spelling, a name of 3+ letters stands for the most alike known name
    that contains it (or that it contains); nothing else is guessed."""
    assert closest(name, known) == expected


def test_an_unknown_lead_key_with_no_close_match_lists_the_fields_and_the_way_out() -> None:
    """The message lists every lead field, then says how to send an extra key on purpose."""
    problems = check_lead({**LEAD, "qqqqqqqqqqqqqqqq": 1}, 0)
    assert problems == [
        (
            "lead_data[0].qqqqqqqqqqqqqqqq",
            "lead_data[0].qqqqqqqqqqqqqqqq is not a lead field; the fields are "
            "automation_tool_lead_id, lead_linkedin, lead_company, first_name, last_name, "
            "lead_company_website_url, lead_specified_url (to send an extra key on purpose, use "
            "Lead(..., extra={...}) or Lead.from_mapping(data, allow_extra_fields=True))",
        )
    ]
