"""Deterministic sample data: campaigns and leads as wire-key dicts or as models.

The campaign defaults are the example values of the API documentation's request (seed S0):
Acme Corporation's ``campaign_67890`` for ``customer_12345``, a connection request then a first
follow-up, formal, signed "Sarah". Lead ``i`` is the same on every call (``lead_000007`` is
always Hiro Tanaka of Tech Solutions Inc), so tests can rebuild what they sent::

    campaign = make_campaign(completion_notification_url=receiver.url)
    batch = await client.submit_batch(campaign, iter_sample_leads(10_000))

``iter_sample_leads`` can also make every Nth lead invalid (cycling through a blank required
field, a LinkedIn URL without a scheme and an ``ftp://`` website; the first invalid lead has the
LinkedIn URL, the second the website, the third the blank field) or give it an id ending in
``_nowebpresence``, which the emulator, like Upscale, cannot personalise.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Final, TypedDict, Unpack

from .._models import Campaign, Lead

#: The default sequence: S0's two steps.
DEFAULT_MESSAGE_TYPES: Final = ("connection_request", "first_follow_up")
#: The id suffix of a lead that cannot be personalised (emulator and Upscale alike).
NO_WEB_PRESENCE_SUFFIX: Final = "_nowebpresence"

_FIRST: Final = ("Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jonas")
_LAST: Final = ("Smith", "Okafor", "Garcia", "Nguyen", "Müller", "Rossi", "Kowalski", "Tanaka")
_COMPANIES: Final = (
    "Tech Solutions Inc",
    "Digital Innovations LLC",
    "Northwind Traders",
    "Globex",
    "Initech",
    "Umbrella Analytics",
    "Stark Logistics",
)
#: The ways an invalid sample lead is broken, in turn (field, value).
_INVALID: Final = (
    ("last_name", ""),  # a blank required field
    ("lead_linkedin", "linkedin.com/in/no-scheme"),  # not a URL
    ("lead_company_website_url", "ftp://files.example.com"),  # not http(s)
)


def sample_campaign(
    *, message_types: Iterable[str] | None = None, **overrides: Any
) -> dict[str, Any]:
    """A valid campaign with the wire keys (everything but ``lead_data``): S0's example values.

    Args:
        message_types: the sequence as message types (``MessageType`` or strings), sent as
            ``{step, messageType}`` objects numbered from 1. Default: connection request, then
            first follow-up. Give this or a ``message_sequence`` override, not both.
        overrides: wire keys to replace or add, e.g. ``completion_notification_url=url``
            (replaced keys keep their place in the documented order).

    Returns:
        A new dict on every call.

    Raises:
        TypeError: both ``message_types`` and ``message_sequence`` were given.
    """
    if message_types is not None and "message_sequence" in overrides:
        raise TypeError("give message_types or message_sequence, not both")
    types = DEFAULT_MESSAGE_TYPES if message_types is None else message_types
    campaign: dict[str, Any] = {
        "completion_notification_url": "https://your-webhook-endpoint.com/webhook",
        "automation_tool_customer_id": "customer_12345",
        "automation_tool_campaign_id": "campaign_67890",
        "automation_tool_campaign_name": "Campaign 1 - North America",
        "proposition_company_name": "Acme Corporation",
        "proposition_company_url": "https://www.acmecorp.com",
        "message_sequence": [
            {"step": step, "messageType": str(kind)} for step, kind in enumerate(types, 1)
        ],
        "tone_preference": "formal",
        "signoff_name": "Sarah",
    }
    campaign.update(overrides)
    return campaign


def make_campaign(*, message_types: Iterable[str] | None = None, **overrides: Any) -> Campaign:
    """A :class:`~upscale_async.Campaign` of :func:`sample_campaign` (same arguments).

    The campaign is not validated here, so a test can build one the client will reject
    (validation runs when it is sent).

    Returns:
        A new Campaign.
    """
    return Campaign(**sample_campaign(message_types=message_types, **overrides))


def sample_lead(
    i: int, *, prefix: str = "lead", digits: int = 6, **overrides: Any
) -> dict[str, Any]:
    """Lead number ``i``: a valid lead with the wire keys, the same on every call.

    Args:
        i: the lead's number; it sets the id and picks the name and company.
        prefix: the id is ``f"{prefix}_{i:0{digits}d}"`` (``lead_000042``).
        digits: the width of the number in the id.
        overrides: wire keys to replace or add (a bad value, a blank field...); a key that is
            not a lead field is refused by the SDK's checks unless the lead goes through
            ``Lead.from_mapping(..., allow_extra_fields=True)``.

    Returns:
        A new dict with every documented lead key; every third lead has no website (null).
    """
    first = _FIRST[i % len(_FIRST)]
    last = _LAST[i % len(_LAST)]
    company = _COMPANIES[i % len(_COMPANIES)]
    slug = company.lower().replace(" ", "")
    lead: dict[str, Any] = {
        "automation_tool_lead_id": f"{prefix}_{i:0{digits}d}",
        "lead_linkedin": f"https://www.linkedin.com/in/{first.lower()}-{last.lower()}-{i}",
        "lead_company": company,
        "first_name": first,
        "last_name": last,
        "lead_company_website_url": f"https://www.{slug}.example.com" if i % 3 else None,
        "lead_specified_url": None,
    }
    lead.update(overrides)
    return lead


def iter_sample_leads(
    n: int,
    *,
    prefix: str = "lead",
    start: int = 0,
    digits: int = 6,
    invalid_every: int | None = None,
    no_web_presence_every: int | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield ``n`` sample leads lazily (for batches that must pull their input as they go).

    Args:
        n: how many leads.
        prefix: the id prefix (see :func:`sample_lead`).
        start: the number of the first lead; the others follow.
        digits: the width of the number in the id.
        invalid_every: make every Nth lead yielded (the Nth, the 2Nth...) invalid, in turn with
            a ``lead_linkedin`` without a scheme (the Nth), an ``ftp://``
            ``lead_company_website_url`` (the 2Nth) and a blank ``last_name`` (the 3Nth), then
            again.
        no_web_presence_every: end the id of every Nth lead yielded with ``_nowebpresence``.

    Returns:
        An iterator of new dicts, built one at a time.
    """
    for position, i in enumerate(range(start, start + n), 1):
        lead = sample_lead(i, prefix=prefix, digits=digits)
        if no_web_presence_every and position % no_web_presence_every == 0:
            lead["automation_tool_lead_id"] += NO_WEB_PRESENCE_SUFFIX
        if invalid_every and position % invalid_every == 0:
            field, value = _INVALID[(position // invalid_every) % len(_INVALID)]
            lead[field] = value
        yield lead


class SampleLeadOptions(TypedDict, total=False):
    """The keyword arguments of :func:`iter_sample_leads`, shared by the list variants."""

    prefix: str
    start: int
    digits: int
    invalid_every: int | None
    no_web_presence_every: int | None


def sample_leads(n: int, **options: Unpack[SampleLeadOptions]) -> list[dict[str, Any]]:
    """A list of ``n`` sample leads: :func:`iter_sample_leads` (same arguments), materialised.

    Returns:
        A list of new dicts.
    """
    return list(iter_sample_leads(n, **options))


def make_leads(n: int, **options: Unpack[SampleLeadOptions]) -> list[Lead]:
    """``n`` sample leads as :class:`~upscale_async.Lead` objects (arguments as for dicts).

    Returns:
        A list of new Leads.

    Raises:
        ValidationError: ``invalid_every`` was given (an invalid lead cannot be a Lead).
    """
    return [Lead.from_mapping(lead) for lead in iter_sample_leads(n, **options)]
