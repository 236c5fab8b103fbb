"""The Upscale API contract as constants: paths, field names, message types and documented strings.

Everything here is copied from ``docs/contract.md`` (the contract both the SDK and the
emulator follow). Keeping it in one module means the client, the validator and the emulator can
never disagree about a field name or an error string.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = [
    "ALLOWED_TONES",
    "CONDITIONAL_FIELDS",
    "FAILURE_REASON",
    "KNOWN_MESSAGE_TYPES",
    "LEAD_OPTIONAL_URL_FIELDS",
    "LEAD_REQUIRED_FIELDS",
    "MESSAGE_FIELDS",
    "MessageType",
    "RETRIEVE_ID_PARAM",
    "Tone",
]


class MessageType(StrEnum):
    """The message types Upscale generates today (the ``messageType`` values of a sequence)."""

    CONNECTION_REQUEST = "connection_request"
    FIRST_FOLLOW_UP = "first_follow_up"
    STAGE_AMBITION = "stage_ambition"
    SHARE_MATERIAL = "share_material"
    HIRING_ACTIVITY = "hiring_activity"


class Tone(StrEnum):
    """The values of ``tone_preference`` (the server's default is ``normal``)."""

    FORMAL = "formal"
    NORMAL = "normal"
    CASUAL = "casual"


KNOWN_MESSAGE_TYPES: Final = frozenset(t.value for t in MessageType)
ALLOWED_TONES: Final = frozenset(t.value for t in Tone)

#: D5: the retrieve field that carries each message type (``stage_ambition_message`` is assumed).
MESSAGE_FIELDS: Final[dict[str, str]] = {
    "connection_request": "outreach_message",
    "first_follow_up": "first_follow_up_message",
    "stage_ambition": "stage_ambition_message",
    "share_material": "share_material_message",
    "hiring_activity": "hiring_activity_message",
}

#: D7: the top-level field each message type requires when it is in the sequence.
CONDITIONAL_FIELDS: Final[dict[str, str]] = {
    "share_material": "material_link",
    "hiring_activity": "hiring_location",
    "stage_ambition": "job_title",
}

LEAD_REQUIRED_FIELDS: Final = (
    "automation_tool_lead_id",
    "lead_linkedin",
    "lead_company",
    "first_name",
    "last_name",
)
LEAD_OPTIONAL_URL_FIELDS: Final = ("lead_company_website_url", "lead_specified_url")

#: The four get_sequences filters: their allowed values and the default the server assumes
#: when a filter is omitted or given as the literal ``"default"`` (§5.1).
SEQUENCE_FILTERS: Final[dict[str, tuple[tuple[str, ...], str]]] = {
    "sequence_length": (("short", "medium", "long"), "medium"),
    "campaign_objective": (("brand_awareness", "event_attendance", "meeting"), "meeting"),
    "cadence_profile": (("rapid", "normal", "long_term"), "normal"),
    "saturated_markets": (("true", "false"), "false"),
}
#: The literal filter value that asks for the server's default (§5.1).
SEQUENCE_FILTER_DEFAULT: Final = "default"

#: D2: the query parameter (or legacy JSON body key) that names the request to retrieve.
RETRIEVE_ID_PARAM: Final = "request_message_generation_secure_request_id"

#: S2: the documented reason for leads that could not be personalised.
FAILURE_REASON: Final = (
    "Some prospects do not have enough available web presence for research (including having "
    "limited information on LinkedIn, a website that blocks scrapers, and/or a website that is "
    "not indexed by search engines). For these prospects, personalisation is not possible. "
    "No credits were deducted for these prospects."
)

ERR_INVALID_KEY: Final = "Unauthorized: Invalid API key"
ERR_REVOKED_KEY: Final = "Unauthorized: API key has been revoked"
ERR_INVALID_OR_REVOKED: Final = "Unauthorized: API key invalid or revoked"
ERR_NO_CREDITS: Final = (
    "Not enough credits remaining to complete this request. "
    "Please upgrade your plan or purchase a bundle."
)
