"""Deterministic personalised texts: a few templates per message type, picked per lead."""

from __future__ import annotations

import zlib
from typing import Final

from .._spec.contract import MESSAGE_FIELDS
from ._state import Campaign, LeadRow

__all__ = ["render"]

_GREETINGS: Final = {"formal": "Dear {first}", "normal": "Hi {first}", "casual": "Hey {first}"}
_SIGNOFFS: Final = {"formal": "Kind regards,", "normal": "Best,", "casual": "Cheers,"}
_YOUR_NAME: Final = "{{yourName}}"

_TEMPLATES: Final[dict[str, tuple[str, ...]]] = {
    "connection_request": (
        "{greet}, I came across your work at {company} and would value connecting. "
        "At {prop} we help teams like yours turn outreach into real conversations.",
        "{greet}, {company} keeps coming up in my research, so I'd love to connect. "
        "I'm with {prop} and enjoy swapping notes with people in your space.",
        "{greet}, I noticed what you're building at {company}. It would be great to connect "
        "and share what we're seeing at {prop}.",
    ),
    "first_follow_up": (
        "{greet}, thanks for connecting! Teams like {company} often use {prop} to save hours "
        "every week. Would a 15-minute call next week be useful?",
        "{greet}, glad we're connected. I'd love to hear how {company} approaches this today "
        "and show how {prop} could help. Are you open to a short chat?",
        "{greet}, thanks for accepting. {prop} has helped companies like {company} move faster; "
        "could I walk you through it in a quick call?",
    ),
    "stage_ambition": (
        "{greet}, as a {job_title} at {company} you're probably focused on scaling what works. "
        "That's exactly where {prop} tends to help most.",
        "{greet}, for a {job_title} at {company}, hitting this year's goals with a lean team is "
        "hard. {prop} exists to make that part easier.",
        "{greet}, many a {job_title} I speak to at companies like {company} wants faster "
        "results without more headcount. {prop} is built for that.",
    ),
    "share_material": (
        "{greet}, I thought this might be useful for {company}: {material}. It shows how "
        "teams get more from {prop}.",
        "{greet}, here's a short case study I think you'd enjoy: {material}. Curious what you "
        "make of it for {company}.",
        "{greet}, sharing a resource from {prop} that fits what {company} is doing: {material}",
    ),
    "hiring_activity": (
        "{greet}, I saw {company} is hiring in {location}. {prop} helps new teams ramp up "
        "faster while they grow.",
        "{greet}, congratulations on the open roles at {company} in {location}! Growing teams "
        "often lean on {prop} to keep momentum.",
        "{greet}, {company}'s hiring in {location} suggests big plans. {prop} could help the "
        "new hires hit the ground running.",
    ),
}


def _choice(lead_id: str, kind: str) -> int:
    return zlib.crc32(f"{kind}:{lead_id}".encode()) % 3


def render(kind: str, lead: LeadRow, campaign: Campaign) -> str:
    """The text of message type ``kind`` for ``lead`` (same inputs, same text)."""
    lead_id, _linkedin, company, first = lead
    templates = _TEMPLATES.get(kind)
    tone = campaign.tone if campaign.tone in _GREETINGS else "normal"
    greet = _GREETINGS[tone].format(first=first)
    signoff = campaign.signoff_name or _YOUR_NAME
    if templates is None:  # an unknown type let through by allow_unknown_message_types
        body = f"{greet}, a {kind} message for {company} from {campaign.proposition_company_name}."
    else:
        body = templates[_choice(lead_id, kind)].format(
            greet=greet,
            company=company,
            prop=campaign.proposition_company_name,
            job_title=campaign.job_title or "leader",
            material=campaign.material_link or "",
            location=campaign.hiring_location or "",
        )
    return f"{body}\n\n{_SIGNOFFS[tone]}\n{signoff}"


def message_field(kind: str) -> str:
    """The retrieve field of a message type (D5); unknown types get ``<type>_message``."""
    return MESSAGE_FIELDS.get(kind) or f"{kind}_message"
