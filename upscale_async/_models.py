"""Typed models of the Upscale API. Field names are the wire names, so the docs map 1:1 onto code.

Request models (:class:`Campaign`, :class:`Lead`, :class:`SequenceStep`) are written exactly;
response models are read leniently (unknown keys kept in ``extra``, unknown enum values kept as
strings) by the converter in ``_wire.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from typing import Any

import attrs

from ._spec.contract import MESSAGE_FIELDS, MessageType, Tone
from ._spec.sequence import SequenceEntry, parse_entry
from ._spec.speedups import bind_lead_init, init_lead
from ._spec.validation import LEAD_FIELDS, WithExtraFields, check_lead, closest

__all__ = [
    "Account",
    "Campaign",
    "CompletionEvent",
    "GenerationAccepted",
    "Lead",
    "LeadMessages",
    "RetrievalMetadata",
    "RetrievedCampaign",
    "RetrievedMessages",
    "SequenceTemplate",
    "SequenceStep",
]

_EMPTY: Mapping[str, Any] = {}


@attrs.frozen(kw_only=True)
class SequenceStep:
    """One step of a message sequence: ``{"step": 1, "messageType": "connection_request"}``.

    ``wait_days`` is informational (sequence templates from ``get_sequences``); it is never sent.
    """

    step: int
    message_type: MessageType | str
    wait_days: int | None = None

    def to_wire(self) -> dict[str, Any]:
        """The JSON object sent on the wire: ``{"step": n, "messageType": "..."}``."""
        return {"step": self.step, "messageType": str(self.message_type)}


def _as_message_type(value: object) -> MessageType | str:
    if isinstance(value, str):
        try:
            return MessageType(value)
        except ValueError:
            return value
    return value  # type: ignore[return-value]  # kept as given; validation reports it


_SEQUENCE_FORM = "a list of message types (MessageType or str) or of SequenceStep objects"


def _sequence_refusal(value: object) -> str | None:
    """Why a Campaign cannot take ``value`` as its message_sequence, or None when it can.

    The one rule for both ways in: ``Campaign(...)`` raises it as a TypeError, and
    ``Campaign.from_mapping`` reports it as the ``message_sequence`` problem. A mapping or a
    set is refused: it has no order of steps (a dict would be read as its keys).
    """
    if value is None:
        return f"message_sequence is required but was missing or blank; pass {_SEQUENCE_FORM}"
    if isinstance(value, str | bytes | Mapping | Set) or not isinstance(value, Iterable):
        given = type(value).__name__
        return f"message_sequence must be an array, not {given}; pass {_SEQUENCE_FORM}"
    return None


def _to_sequence(value: Iterable[Any]) -> tuple[SequenceStep, ...]:
    """Accept message types (enum or string), SequenceStep objects or ``{step, messageType}``."""
    refusal = _sequence_refusal(value)
    if refusal is not None:
        raise TypeError(refusal)
    steps: list[SequenceStep] = []
    for i, entry in enumerate(value):
        if isinstance(entry, SequenceStep):
            steps.append(entry)
            continue
        # Kept as written (validation reports what is wrong), a non-str enum as a message type.
        parsed = parse_entry(entry, i) or SequenceEntry(i + 1, entry)
        steps.append(
            SequenceStep(
                step=parsed.step,  # type: ignore[arg-type]
                message_type=_as_message_type(parsed.message_type),
                wait_days=parsed.wait_days,  # type: ignore[arg-type]
            )
        )
    return tuple(steps)


def _upper(value: str | None) -> str | None:
    return value.strip().upper() if isinstance(value, str) else value


@attrs.frozen(kw_only=True)
class Campaign:
    """The campaign-level fields of a generation request (everything but ``lead_data``).

    ``message_sequence`` may be given as message types (``MessageType`` or strings, numbered
    from step 1) or as :class:`SequenceStep` objects. ``hiring_location`` is upper-cased.
    The conditional fields (``job_title``, ``material_link``, ``hiring_location``) are sent only
    when their message type is in the sequence, as the API asks.
    """

    completion_notification_url: str
    automation_tool_customer_id: str
    automation_tool_campaign_id: str
    automation_tool_campaign_name: str
    proposition_company_name: str
    proposition_company_url: str
    message_sequence: tuple[SequenceStep, ...] = attrs.field(converter=_to_sequence)
    tone_preference: Tone | str | None = None
    signoff_name: str | None = None
    job_title: str | None = None
    material_link: str | None = None
    hiring_location: str | None = attrs.field(default=None, converter=_upper)

    @property
    def message_types(self) -> list[str]:
        """The message types of the sequence, in order."""
        return [str(s.message_type) for s in self.message_sequence]

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, allow_unknown_message_types: bool = False
    ) -> Campaign:
        """Validate a mapping with the wire keys (a campaign JSON file) and build a Campaign.

        The mapping goes through ``Campaign(...)`` itself, then through the checks a Campaign
        gets before it is sent (those of its wire object), so both ways accept the same
        values, normalise them alike and report the same messages. A missing field counts as
        None (reported as required).

        Raises :class:`~upscale_async.ValidationError` listing every problem, including keys
        that are not campaign fields (a typo would otherwise be dropped silently).
        """
        from ._errors import ValidationError
        from ._spec.validation import check_campaign, unknown_field

        known = list(attrs.fields_dict(cls))
        values: dict[str, Any] = {name: data.get(name) for name in known}
        refusal = _sequence_refusal(values["message_sequence"])
        if refusal is not None:  # Campaign(...) would raise it: checked without a sequence
            values["message_sequence"] = ()
        campaign = cls(**values)
        wire = campaign.to_wire()
        if refusal is not None:
            wire["message_sequence"] = None  # its one problem, in the server's order
        problems = check_campaign(wire, allow_unknown_message_types=allow_unknown_message_types)
        if refusal is not None:
            problems = [(p, refusal if p == "message_sequence" else m) for p, m in problems]
        for key in data:
            if key not in known:
                problems.append(unknown_field("", key, known, "a campaign field"))
        if problems:
            raise ValidationError(problems)
        return campaign

    def to_wire(self, *, sequence_as_strings: bool = False) -> dict[str, Any]:
        """The JSON object sent on the wire (without ``lead_data``), in the documented order."""
        sequence: list[Any]
        if sequence_as_strings:
            sequence = [str(s.message_type) for s in self.message_sequence]
        else:
            sequence = [s.to_wire() for s in self.message_sequence]
        body: dict[str, Any] = {
            "completion_notification_url": self.completion_notification_url,
            "automation_tool_customer_id": self.automation_tool_customer_id,
            "automation_tool_campaign_id": self.automation_tool_campaign_id,
            "automation_tool_campaign_name": self.automation_tool_campaign_name,
            "proposition_company_name": self.proposition_company_name,
            "proposition_company_url": self.proposition_company_url,
            "message_sequence": sequence,
        }
        if self.tone_preference is not None:
            body["tone_preference"] = str(self.tone_preference)
        if self.signoff_name is not None:
            body["signoff_name"] = self.signoff_name
        types = set(self.message_types)
        if "stage_ambition" in types:
            body["job_title"] = self.job_title
        if "share_material" in types:
            body["material_link"] = self.material_link
        if "hiring_activity" in types:
            body["hiring_location"] = self.hiring_location
        return body


class _Extra(dict[str, Any]):
    """A lead's ``extra``: a copy that cannot change (the lead was checked with these keys)."""

    __slots__ = ()

    def _frozen(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("Lead.extra cannot be changed; build a new Lead (attrs.evolve)")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = _frozen
    __ior__ = _frozen

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Extra, (dict(self),))


_NO_EXTRA: Mapping[str, Any] = _Extra()
_LEAD_FIELD_SET = frozenset(LEAD_FIELDS)


def _lead_extra(extra: object) -> Mapping[str, Any]:
    """``extra`` as a frozen copy; a lead field in it is refused (it would replace the field)."""
    if not isinstance(extra, Mapping):
        raise TypeError(f"extra must be a mapping of keys to send, not {type(extra).__name__}")
    if not extra:
        return _NO_EXTRA
    clash = [key for key in extra if key in _LEAD_FIELD_SET]
    if clash:
        from ._errors import ValidationError

        raise ValidationError(
            [
                (
                    f"extra.{key}",
                    f"extra.{key} is a lead field: pass it as Lead({key}=...), not in extra "
                    "(extra holds keys that are not lead fields)",
                )
                for key in clash
            ]
        )
    return _Extra(extra)


@attrs.frozen(kw_only=True, init=False)
class Lead:
    """One prospect (an entry of ``lead_data``).

    ``extra`` holds additional keys sent as they are (for example a per-lead ``job_title``).
    It is the way to send keys that are not lead fields: in a plain mapping lead, such a key
    is reported as a likely typo and the lead is not sent. It is copied and cannot change
    afterwards; a lead field in it raises :class:`~upscale_async.ValidationError` (it would
    replace the field).

    A Lead is checked once, when it is built: a valid one keeps its wire object, so a batch
    of Leads only serializes them. An invalid one is built all the same; the batch (or
    ``request_message_generation``) reports its problems.
    """

    automation_tool_lead_id: str
    lead_linkedin: str
    lead_company: str
    first_name: str
    last_name: str
    lead_company_website_url: str | None = None
    lead_specified_url: str | None = None
    extra: Mapping[str, Any] = attrs.field(default=_NO_EXTRA, hash=False)
    # The checked wire object, or None when the lead is not valid (never compared or shown).
    _wire: dict[str, Any] | None = attrs.field(init=False, eq=False, repr=False, hash=False)

    def __init__(
        self,
        *,
        automation_tool_lead_id: str,
        lead_linkedin: str,
        lead_company: str,
        first_name: str,
        last_name: str,
        lead_company_website_url: str | None = None,
        lead_specified_url: str | None = None,
        extra: Mapping[str, Any] = _NO_EXTRA,
    ) -> None:
        if extra is not _NO_EXTRA:
            extra = _lead_extra(extra)
        init_lead(
            self,
            automation_tool_lead_id,
            lead_linkedin,
            lead_company,
            first_name,
            last_name,
            lead_company_website_url,
            lead_specified_url,
            extra,
        )
        if self._wire is None:  # not plain, or extra keys: the exact rules decide
            _look_closer(self)

    def to_wire(self) -> dict[str, Any]:
        """The JSON object sent on the wire; both optional URLs are always present (null)."""
        body = {
            "automation_tool_lead_id": self.automation_tool_lead_id,
            "lead_linkedin": self.lead_linkedin,
            "lead_company": self.lead_company,
            "first_name": self.first_name,
            "last_name": self.last_name,
            "lead_company_website_url": self.lead_company_website_url,
            "lead_specified_url": self.lead_specified_url,
        }
        if self.extra:
            # Marked, so validation lets the extra keys through: they were asked for.
            marked = WithExtraFields(body)
            marked.update(self.extra)
            return marked
        return body

    @classmethod
    def from_mapping(
        cls, data: Mapping[str, Any], *, index: int = 0, allow_extra_fields: bool = False
    ) -> Lead:
        """Validate a mapping with the wire keys and build a Lead.

        Raises :class:`~upscale_async.ValidationError` naming ``lead_data[index].field`` for
        every problem, including keys that are not lead fields (with the closest field: a
        typo would otherwise be sent and ignored). With ``allow_extra_fields=True`` such keys
        go to ``extra`` and are sent with the lead.
        """
        from ._errors import ValidationError

        problems = check_lead(data, index, allow_extra_fields=allow_extra_fields)
        if problems:
            raise ValidationError(problems)
        known = _FROM_MAPPING_KNOWN
        return cls(
            automation_tool_lead_id=data["automation_tool_lead_id"],
            lead_linkedin=data["lead_linkedin"],
            lead_company=data["lead_company"],
            first_name=data["first_name"],
            last_name=data["last_name"],
            lead_company_website_url=data.get("lead_company_website_url"),
            lead_specified_url=data.get("lead_specified_url"),
            extra={k: v for k, v in data.items() if k not in known},
        )


def _look_closer(lead: Lead) -> None:
    """A Lead that is not plain, or has extra keys: it keeps its wire when the exact rules pass."""
    wire = lead.to_wire()
    if not check_lead(wire, 0):
        object.__setattr__(lead, "_wire", wire)


#: ``Lead.__init__`` as written above: what the compiled path's C ``__init__`` does (and what it
#: hands the calls it does not handle itself to); on the pure path it stays ``Lead.__init__``.
_LEAD_INIT_REFERENCE = Lead.__init__
Lead.__init__ = bind_lead_init(  # type: ignore[method-assign]
    Lead, _LEAD_INIT_REFERENCE, _NO_EXTRA, _lead_extra, _look_closer
)

#: The keys ``Lead.from_mapping`` does not put in ``extra``: the lead fields, and ``extra``.
_FROM_MAPPING_KNOWN = frozenset({*LEAD_FIELDS, "extra"})


@attrs.frozen(kw_only=True)
class GenerationAccepted:
    """The 200 answer of request_message_generation."""

    secure_request_id: str
    message: str = "Success"


@attrs.frozen(kw_only=True)
class RetrievalMetadata:
    """``metadata`` of a retrieve answer. Counts are read in plural and singular spellings."""

    request_message_generation_api_request_secure_request_id: str
    retrieve_messages_api_request_secure_request_id: str | None = None
    requested_messages_count: int | None = None
    generated_messages_count: int | None = None
    failed_messages_count: int | None = None
    failed_messages_reason: str | None = None
    generation_status: str | None = None
    status_message: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, hash=False)


@attrs.frozen
class LeadMessages:
    """One lead's results: its id, LinkedIn URL and every ``*_message`` field.

    It wraps the lead's JSON object as read (``raw``), so reading 10^4 leads costs next to
    nothing; the converter has already checked its types. Every documented field is a
    property under its documented name (``outreach_message``, ``first_follow_up_message``,
    ...), beside a short accessor per message type (``connection_request``, ...).
    ``messages`` maps each ``*_message`` field (unknown ones included, D5) to its text or None;
    :meth:`message` takes a message type or a field name.
    """

    raw: Mapping[str, Any] = attrs.field(hash=False)

    @property
    def external_prospect_id(self) -> str:
        """The lead's ``automation_tool_lead_id``."""
        return self.raw["external_prospect_id"]  # type: ignore[no-any-return]

    @property
    def linkedin(self) -> str | None:
        """The lead's LinkedIn URL (None for a lead that failed)."""
        return self.raw.get("linkedin")

    @property
    def no_job_posts(self) -> Any:
        """The lead's ``no_job_posts`` flag as sent (None when absent)."""
        return self.raw.get("no_job_posts")

    @property
    def messages(self) -> dict[str, str | None]:
        """Every ``*_message`` field of the answer, known or not."""
        return {k: v for k, v in self.raw.items() if k.endswith("_message")}

    @property
    def extra(self) -> dict[str, Any]:
        """Keys that are neither known fields nor ``*_message`` fields."""
        return {
            k: v
            for k, v in self.raw.items()
            if not k.endswith("_message") and k not in _LEAD_FIELDS
        }

    def message(self, name: MessageType | str) -> str | None:
        """The text of a message type or field: ``"connection_request"``, ``"outreach_message"``.

        None when the message was not requested, is still pending or failed. A type Upscale
        added after this SDK is read from its ``<type>_message`` field when the answer has it.

        Raises:
            ValueError: ``name`` is neither a message type nor a message field of this answer
                (the message names the closest one).
        """
        key = str(name)
        field = _FIELD_OF.get(key)
        if field is None:
            if key.endswith("_message") and key in self.raw:
                field = key  # an undocumented *_message field (D5)
            elif f"{key}_message" in self.raw:
                field = f"{key}_message"  # a type newer than the SDK
            else:
                raise ValueError(_not_a_message(key, self.raw))
        return self.raw.get(field)

    @property
    def outreach_message(self) -> str | None:
        """``outreach_message``: the connection request, or None."""
        return self.raw.get("outreach_message")

    @property
    def first_follow_up_message(self) -> str | None:
        """``first_follow_up_message``: the first follow-up, or None."""
        return self.raw.get("first_follow_up_message")

    @property
    def stage_ambition_message(self) -> str | None:
        """``stage_ambition_message`` (its name is assumed, D5): that message, or None."""
        return self.raw.get("stage_ambition_message")

    @property
    def share_material_message(self) -> str | None:
        """``share_material_message``: the share-material message, or None."""
        return self.raw.get("share_material_message")

    @property
    def hiring_activity_message(self) -> str | None:
        """``hiring_activity_message``: the hiring-activity message, or None."""
        return self.raw.get("hiring_activity_message")

    @property
    def connection_request(self) -> str | None:
        """The connection request (``outreach_message``), or None."""
        return self.raw.get("outreach_message")

    @property
    def first_follow_up(self) -> str | None:
        """The first follow-up (``first_follow_up_message``), or None."""
        return self.raw.get("first_follow_up_message")

    @property
    def stage_ambition(self) -> str | None:
        """The stage-ambition message (``stage_ambition_message``, D5), or None."""
        return self.raw.get("stage_ambition_message")

    @property
    def share_material(self) -> str | None:
        """The share-material message (``share_material_message``), or None."""
        return self.raw.get("share_material_message")

    @property
    def hiring_activity(self) -> str | None:
        """The hiring-activity message (``hiring_activity_message``), or None."""
        return self.raw.get("hiring_activity_message")

    @property
    def has_messages(self) -> bool:
        """True when at least one message was generated for this lead."""
        return any(v is not None for k, v in self.raw.items() if k.endswith("_message"))


#: A message type or a documented message field -> the field that carries it (D5).
_FIELD_OF: dict[str, str] = {**MESSAGE_FIELDS, **{f: f for f in MESSAGE_FIELDS.values()}}


def _not_a_message(key: str, raw: Mapping[str, Any]) -> str:
    fields = list(
        dict.fromkeys([*MESSAGE_FIELDS.values(), *(k for k in raw if k.endswith("_message"))])
    )
    close = closest(key, [*MESSAGE_FIELDS, *fields])
    hint = f"did you mean {close!r}? " if close else ""
    return (
        f"{key!r} is neither a message type nor a message field of this lead's answer; {hint}"
        f"pass a message type ({', '.join(MESSAGE_FIELDS)}) or a field "
        f"({', '.join(fields)})"
    )


def message_field(message_type: str) -> str:
    """The retrieve field that carries ``message_type`` (D5; ``<type>_message`` for a new type)."""
    return MESSAGE_FIELDS.get(message_type) or f"{message_type}_message"


_LEAD_FIELDS = frozenset({"external_prospect_id", "linkedin", "no_job_posts"})


@attrs.frozen(kw_only=True)
class RetrievedCampaign:
    """``campaign`` of a retrieve answer: its id, the echoed sequence, and each lead's results.

    The echoed ``message_sequence`` is read leniently: strings or ``SequenceStep`` objects, as
    sent (S2 even echoes a field name there).
    """

    automation_tool_campaign_id: str | None = None
    message_sequence: tuple[SequenceStep | str, ...] = ()
    leads_data: tuple[LeadMessages, ...] = ()
    extra: Mapping[str, Any] = attrs.field(factory=dict, hash=False)


@attrs.frozen(kw_only=True)
class RetrievedMessages:
    """The answer of retrieve_messages: ``metadata``, ``account``, ``campaign`` as on the wire.

    ``leads`` (the campaign's ``leads_data``), ``automation_tool_campaign_id`` and
    ``message_sequence`` are shortcuts into ``campaign``; ``http_status`` is 200 or 202.
    """

    metadata: RetrievalMetadata
    account: Mapping[str, Any] = attrs.field(factory=dict, hash=False)
    campaign: RetrievedCampaign = RetrievedCampaign()
    http_status: int = 200
    extra: Mapping[str, Any] = attrs.field(factory=dict, hash=False)

    @property
    def leads(self) -> tuple[LeadMessages, ...]:
        """Each lead's results (``campaign.leads_data``)."""
        return self.campaign.leads_data

    @property
    def automation_tool_campaign_id(self) -> str | None:
        """The campaign's id (``campaign.automation_tool_campaign_id``)."""
        return self.campaign.automation_tool_campaign_id

    @property
    def message_sequence(self) -> tuple[SequenceStep | str, ...]:
        """The echoed sequence (``campaign.message_sequence``)."""
        return self.campaign.message_sequence

    @property
    def secure_request_id(self) -> str:
        """The generation request's id (from ``metadata``)."""
        return self.metadata.request_message_generation_api_request_secure_request_id

    @property
    def automation_tool_customer_id(self) -> str | None:
        """The customer id echoed in ``account``, or None."""
        value = self.account.get("automation_tool_customer_id")
        return value if isinstance(value, str) else None

    @property
    def is_complete(self) -> bool:
        """D4: ``generation_status`` when given; else 202 means pending; else the counts."""
        meta = self.metadata
        if meta.generation_status is not None:
            return meta.generation_status == "complete"
        if self.http_status == 202:
            return False
        if meta.requested_messages_count is None:
            return self.http_status == 200
        done = (meta.generated_messages_count or 0) + (meta.failed_messages_count or 0)
        return done >= meta.requested_messages_count


@attrs.frozen(kw_only=True)
class CompletionEvent:
    """The completion webhook's payload; ``webhook_id`` comes from the ``webhook-id`` header."""

    secure_request_id: str
    status: str
    completed_at: str | None = None
    requested_messages_count: int | None = None
    generated_messages_count: int | None = None
    webhook_triggered_at: str | None = None
    webhook_id: str | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, hash=False)

    @property
    def dedupe_key(self) -> str:
        """The hub's duplicate key, built only from what the verifier vouched for.

        ``webhook_id`` when set (the signed webhook-id, exactly as received), else the request
        id with ``webhook_triggered_at`` (or ``status``) from the signed body: a replay of a
        captured body, like Upscale's retry of it, is then the same key.
        """
        if self.webhook_id:
            return self.webhook_id
        return f"{self.secure_request_id}|{self.webhook_triggered_at or self.status}"


@attrs.frozen(kw_only=True)
class SequenceTemplate:
    """A sequence template from get_sequences (its shape is lenient: unknown keys in ``extra``)."""

    id: str
    name: str | None = None
    steps: tuple[SequenceStep, ...] = ()
    sequence_length: str | None = None
    campaign_objective: str | None = None
    cadence_profile: str | None = None
    saturated_markets: bool | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, hash=False)

    @property
    def message_types(self) -> list[str]:
        """The message types of the template, ready for ``Campaign(message_sequence=...)``."""
        return [str(s.message_type) for s in self.steps]


@attrs.frozen(kw_only=True)
class Account:
    """The account endpoint (a placeholder upstream: "Coming soon"); unknown keys in ``extra``."""

    created_at: str | None = None
    plan_name: str | None = None
    monthly_credits: int | None = None
    monthly_allowance: int | None = None
    extra: Mapping[str, Any] = attrs.field(factory=dict, hash=False)


def lead_wire(lead: Any) -> Any:
    """A lead as it goes on the wire: a :class:`Lead`'s wire dict, anything else as given."""
    return lead.to_wire() if isinstance(lead, Lead) else lead


def lead_id(lead: Any) -> str | None:
    """The ``automation_tool_lead_id`` of a :class:`Lead` or a mapping, if it is a string."""
    if isinstance(lead, Lead):
        return lead.automation_tool_lead_id
    if isinstance(lead, Mapping):
        value = lead.get("automation_tool_lead_id")
        return value if isinstance(value, str) else None
    return None
