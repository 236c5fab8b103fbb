"""The wire format: one private cattrs converter (orjson preset) that reads and writes every model.

Writing is exact (the documented keys, in the documented order); reading is lenient: unknown
keys are kept in ``extra``, unknown enum values stay strings, count names are read in plural
and singular spellings, and echoed sequences may be strings or objects. A 2xx body that does
not fit raises :class:`ResponseValidationError` naming the path of the bad value.

The hot readers (retrieve answers of 10^4 leads) are hand-written hooks registered on the
converter, since a generated structure hook costs several microseconds per lead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, TypeVar

import orjson
from cattrs.preconf.orjson import make_converter

from ._errors import ResponseValidationError, WebhookPayloadError
from ._models import (
    Account,
    Campaign,
    CompletionEvent,
    GenerationAccepted,
    Lead,
    LeadMessages,
    RetrievalMetadata,
    RetrievedCampaign,
    RetrievedMessages,
    SequenceStep,
    SequenceTemplate,
    _as_message_type,
)
from ._spec.sequence import SequenceEntry, parse_sequence
from ._spec.speedups import wrap_results

__all__ = ["encode_request", "structure_retrieved"]

T = TypeVar("T")

_converter: Final = make_converter()

_META_ALIASES: Final = {
    "requested_message_count": "requested_messages_count",
    "generated_message_count": "generated_messages_count",
    "failed_message_count": "failed_messages_count",
}
_META_FIELDS: Final = (
    "retrieve_messages_api_request_secure_request_id",
    "requested_messages_count",
    "generated_messages_count",
    "failed_messages_count",
    "failed_messages_reason",
    "generation_status",
    "status_message",
)
_META_INTS: Final = frozenset(
    {"requested_messages_count", "generated_messages_count", "failed_messages_count"}
)


def _bad(path: str, expected: str, value: Any) -> ResponseValidationError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return ResponseValidationError(
        f"unexpected response from the Upscale API: {path} should be {expected}, got {shown}",
        body=value,
    )


def _member(body: dict[str, Any], key: str, path: str, expected: str, kind: type) -> Any:
    """``body[key]``, which must be present and a ``kind``; else the error naming ``path``."""
    if key not in body:
        raise _missing(path, expected)
    value = body[key]
    if not isinstance(value, kind):
        raise _bad(path, expected, value)
    return value


def _missing(path: str, expected: str) -> ResponseValidationError:
    return ResponseValidationError(
        f"unexpected response from the Upscale API: {path} is missing (expected {expected}); "
        "the server does not answer as the API contract says: check that base_url points at "
        "the Upscale API and that routes= matches its version"
    )


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(path, "a JSON object", value)
    return value


#: Makes the error for a value that does not fit: (path, what was expected, the value).
_MakeError = Callable[[str, str, Any], Exception]


def _opt_str(value: Any, path: str, error: _MakeError = _bad) -> str | None:
    """``value`` when it is a string or None, else raise ``error(path, ...)``."""
    if value is None or isinstance(value, str):
        return value
    raise error(path, "a string or null", value)


def _opt_int(
    value: Any, path: str, error: _MakeError = _bad, *, whole_floats: bool = True
) -> int | None:
    """``value`` when it is an integer (or, with ``whole_floats``, 12.0) or None, else raise."""
    if value is None or (type(value) is int):
        return value
    if whole_floats and isinstance(value, float) and value.is_integer():
        return int(value)
    raise error(path, "an integer or null", value)


def _req_str(value: Any, path: str) -> str:
    if isinstance(value, str) and value:
        return value
    raise _bad(path, "a non-empty string", value)


def _extra(data: Mapping[str, Any], known: Iterable[str]) -> dict[str, Any]:
    known_set = set(known)
    return {k: v for k, v in data.items() if k not in known_set}


def _check_lead_result(data: Any, index: int) -> None:
    path = f"campaign.leads_data[{index}]"
    if type(data) is not dict:
        raise _bad(path, "a JSON object", data)
    pid = data.get("external_prospect_id")
    if type(pid) is not str:
        raise _bad(f"{path}.external_prospect_id", "a string", pid)
    linkedin = data.get("linkedin")
    if linkedin is not None and type(linkedin) is not str:
        raise _bad(f"{path}.linkedin", "a string or null", linkedin)
    for key, value in data.items():
        if key.endswith("_message") and value is not None and type(value) is not str:
            raise _bad(f"{path}.{key}", "a string or null", value)


_new_lead_messages = LeadMessages.__new__
_set = object.__setattr__


def _lead_results(leads_data: list[Any]) -> tuple[LeadMessages, ...]:
    """Check and wrap every lead result; the common case in one pass (compiled when built)."""
    wrapped = wrap_results(leads_data, LeadMessages)
    if wrapped is not None:
        return wrapped
    for index, data in enumerate(leads_data):
        _check_lead_result(data, index)
    out: list[LeadMessages] = []
    append = out.append
    for data in leads_data:
        lead = _new_lead_messages(LeadMessages)
        _set(lead, "raw", data)
        append(lead)
    return tuple(out)


def _spelled(data: Mapping[str, Any], plural: str, singular: str) -> tuple[str, Any]:
    """Which spelling of a count is read (D5), and its value: the plural, whatever the order,
    unless it is absent or null and the singular is sent."""
    value = data.get(plural)
    if value is None and singular in data:
        return singular, data[singular]
    return plural, value


def _plural_counts(data: dict[str, Any], aliases: Mapping[str, str]) -> dict[str, Any]:
    """``data`` with each count spelled in the singular moved to its plural name (D5)."""
    values = dict(data)
    for singular, plural in aliases.items():
        if singular in values:
            values[plural] = _spelled(values, plural, singular)[1]
            del values[singular]
    return values


def _metadata(meta: dict[str, Any], fallback_id: str | None) -> RetrievalMetadata:
    """The ``metadata`` object (``structure_retrieved`` checked that it is one), read."""
    values = _plural_counts(meta, _META_ALIASES)
    request_id = values.get("request_message_generation_api_request_secure_request_id")
    if request_id is None:
        request_id = fallback_id
    fields: dict[str, Any] = {}
    for name in _META_FIELDS:
        path = f"metadata.{name}"
        value = values.get(name)
        fields[name] = _opt_int(value, path) if name in _META_INTS else _opt_str(value, path)
    known = {"request_message_generation_api_request_secure_request_id", *_META_FIELDS}
    return RetrievalMetadata(
        request_message_generation_api_request_secure_request_id=_req_str(
            request_id, "metadata.request_message_generation_api_request_secure_request_id"
        ),
        extra=_extra(values, known),
        **fields,
    )


def _lenient_step(entry: SequenceEntry, index: int) -> SequenceStep:
    """A step read leniently: a missing or odd ``step`` is the position, odd ``wait_days`` None."""
    step, kind, wait_days = entry.step, entry.message_type, entry.wait_days
    return SequenceStep(
        step=step if type(step) is int else index + 1,
        message_type=_as_message_type("" if kind is None else kind),
        wait_days=wait_days if type(wait_days) is int else None,
    )


def _echoed_sequence(value: Any) -> tuple[SequenceStep | str, ...]:
    """The echoed ``message_sequence``: strings as they are, objects as SequenceStep."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _bad("campaign.message_sequence", "an array", value)
    out: list[SequenceStep | str] = []
    for i, entry in enumerate(parse_sequence(value)):
        if entry is None:
            raise _bad(f"campaign.message_sequence[{i}]", "a string or an object", value[i])
        out.append(_lenient_step(entry, i) if entry.is_object else value[i])
    return tuple(out)


def structure_retrieved(
    data: Any, http_status: int = 200, *, secure_request_id: str | None = None
) -> RetrievedMessages:
    """Read a retrieve_messages body (200 complete or 202 partial) as RetrievedMessages.

    ``metadata``, ``campaign`` and ``campaign.leads_data`` are required (without them the
    answer says nothing of completion or of the leads): a body lacking one raises
    ResponseValidationError naming it, never a result that looks complete. ``account`` may be
    absent.
    """
    body = _object(data, "the body")
    meta = _member(body, "metadata", "metadata", "a JSON object", dict)
    metadata = _metadata(meta, secure_request_id)
    account = body.get("account")
    account = {} if account is None else _object(account, "account")
    campaign = _member(body, "campaign", "campaign", "a JSON object", dict)
    leads_data = _member(campaign, "leads_data", "campaign.leads_data", "an array", list)
    leads = _lead_results(leads_data)
    campaign_id = _opt_str(
        campaign.get("automation_tool_campaign_id"), "campaign.automation_tool_campaign_id"
    )
    return RetrievedMessages(
        metadata=metadata,
        account=account,
        campaign=RetrievedCampaign(
            automation_tool_campaign_id=campaign_id,
            message_sequence=_echoed_sequence(campaign.get("message_sequence")),
            leads_data=leads,
            extra=_extra(
                campaign, ("automation_tool_campaign_id", "message_sequence", "leads_data")
            ),
        ),
        http_status=http_status,
        extra=_extra(body, ("metadata", "account", "campaign")),
    )


def _structure_accepted(data: Any, _: type) -> GenerationAccepted:
    body = _object(data, "the body")
    return GenerationAccepted(
        secure_request_id=_req_str(body.get("secure_request_id"), "secure_request_id"),
        message=_opt_str(body.get("message"), "message") or "",
    )


_EVENT_KNOWN: Final = frozenset(
    {
        "secure_request_id",
        "status",
        "completed_at",
        "requested_messages_count",
        "generated_messages_count",
        "requested_message_count",  # the singular spellings, read as the counts too (D5)
        "generated_message_count",
        "webhook_triggered_at",
    }
)


def _json_type(value: object) -> str:
    """The JSON name of a parsed value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _payload_error(field: str, expected: str, value: Any) -> WebhookPayloadError:
    """The error for a webhook payload field that does not fit, naming its JSON type."""
    return WebhookPayloadError(f"{field} must be {expected}, not a {_json_type(value)}")


def _optional_count(data: Mapping[str, Any], field: str) -> int | None:
    """A webhook count: an integer of at least 0 (never a float) or None."""
    value = _opt_int(data.get(field), field, _payload_error, whole_floats=False)
    if value is not None and value < 0:
        raise WebhookPayloadError(f"{field} must be >= 0, got {value}")
    return value


def _event_count(data: dict[str, Any], plural: str, singular: str) -> int | None:
    """A webhook count as :func:`_spelled` reads it (D5, as in metadata); a value that does not
    fit is an error naming the key it was sent under."""
    name, value = _spelled(data, plural, singular)
    if value is not None and (type(value) is not int or value < 0):
        value = _optional_count(data, name)
    return value


def structure_event(data: Any, webhook_id: str | None = None) -> CompletionEvent:
    """Read a completion webhook payload; raises WebhookPayloadError naming the bad field."""
    if not isinstance(data, dict):
        raise WebhookPayloadError(
            f"webhook body must be a JSON object, not a JSON {_json_type(data)}"
        )
    get = data.get
    request_id = get("secure_request_id")
    if not isinstance(request_id, str) or not request_id.strip():
        raise WebhookPayloadError(
            "secure_request_id must be a non-empty string"
            + ("" if "secure_request_id" in data else " (it is missing: not a completion event?)")
        )
    status = get("status")
    if not isinstance(status, str) or not status:
        raise WebhookPayloadError("status must be a non-empty string")
    # Each optional field is taken as it is when it has the usual type; any other value goes
    # through its reader, which converts it or raises the field's error.
    completed = get("completed_at")
    if completed is not None and type(completed) is not str:
        completed = _opt_str(completed, "completed_at", _payload_error)
    requested = _event_count(data, "requested_messages_count", "requested_message_count")
    generated = _event_count(data, "generated_messages_count", "generated_message_count")
    triggered = get("webhook_triggered_at")
    if triggered is not None and type(triggered) is not str:
        triggered = _triggered_at(triggered)
    return CompletionEvent(
        secure_request_id=request_id,
        status=status,
        completed_at=completed,
        requested_messages_count=requested,
        generated_messages_count=generated,
        webhook_triggered_at=triggered,
        webhook_id=webhook_id,
        extra={} if data.keys() <= _EVENT_KNOWN else _event_extra(data),
    )


def _triggered_at(value: Any) -> str:
    """``webhook_triggered_at`` when it is not a string: a number is read leniently, else raise."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # undocumented type (§8 #19): a Unix time is read leniently
    if isinstance(value, str):
        return value
    raise WebhookPayloadError(
        f"webhook_triggered_at must be a string, a number or null, not a {_json_type(value)}"
    )


def _event_extra(data: dict[str, Any]) -> dict[str, Any]:
    """The keys of a webhook payload that are not completion event fields."""
    return {k: v for k, v in data.items() if k not in _EVENT_KNOWN}


def _structure_event(data: Any, _: type) -> CompletionEvent:
    return structure_event(data)


def _structure_sequence(data: Any, _: type) -> SequenceTemplate:
    body = _object(data, "sequence")
    steps: list[SequenceStep] = []
    raw_steps = body.get("steps")
    if raw_steps is None:
        raw_steps = body.get("message_types") or []
    if not isinstance(raw_steps, list):
        raise _bad("sequence.steps", "an array", raw_steps)
    for i, entry in enumerate(parse_sequence(raw_steps)):
        if entry is None:
            raise _bad(f"sequence.steps[{i}]", "a string or an object", raw_steps[i])
        steps.append(_lenient_step(entry, i))
    saturated = body.get("saturated_markets")
    if isinstance(saturated, str):
        saturated = saturated.lower() == "true"
    known = (
        "id",
        "name",
        "steps",
        "message_types",
        "sequence_length",
        "campaign_objective",
        "cadence_profile",
        "saturated_markets",
    )
    raw_id = body.get("id")
    return SequenceTemplate(
        id=str(raw_id) if raw_id is not None else "",
        name=_opt_str(body.get("name"), "sequence.name"),
        steps=tuple(steps),
        sequence_length=_opt_str(body.get("sequence_length"), "sequence.sequence_length"),
        campaign_objective=_opt_str(body.get("campaign_objective"), "sequence.campaign_objective"),
        cadence_profile=_opt_str(body.get("cadence_profile"), "sequence.cadence_profile"),
        saturated_markets=saturated if isinstance(saturated, bool) else None,
        extra=_extra(body, known),
    )


def structure_sequences(data: Any) -> list[SequenceTemplate]:
    """Read a get_sequences body: ``{"sequences": [...]}`` (or a bare array)."""
    items = data.get("sequences") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise _bad("sequences", "an array", items)
    return [_structure_sequence(item, SequenceTemplate) for item in items]


def _structure_account(data: Any, _: type) -> Account:
    body = _object(data, "the body")
    known = ("created_at", "plan_name", "monthly_credits", "monthly_allowance")
    return Account(
        created_at=_opt_str(body.get("created_at"), "created_at"),
        plan_name=_opt_str(body.get("plan_name"), "plan_name"),
        monthly_credits=_opt_int(body.get("monthly_credits"), "monthly_credits"),
        monthly_allowance=_opt_int(body.get("monthly_allowance"), "monthly_allowance"),
        extra=_extra(body, known),
    )


def _structure_retrieved_hook(data: Any, _: type) -> RetrievedMessages:
    return structure_retrieved(data)


def _structure_lead(data: Any, _: type) -> Lead:
    if isinstance(data, Lead):
        return data
    if not isinstance(data, Mapping):
        raise TypeError(f"a lead must be a Lead or a mapping, not {type(data).__name__}")
    return Lead.from_mapping(data)


def _structure_campaign(data: Any, _: type) -> Campaign:
    if isinstance(data, Campaign):
        return data
    if not isinstance(data, Mapping):
        raise TypeError(f"a campaign must be a Campaign or a mapping, not {type(data).__name__}")
    return Campaign.from_mapping(data)


_hooks: dict[type[Any], Callable[[Any, type], Any]] = {
    GenerationAccepted: _structure_accepted,
    CompletionEvent: _structure_event,
    SequenceTemplate: _structure_sequence,
    Account: _structure_account,
    RetrievedMessages: _structure_retrieved_hook,
    Lead: _structure_lead,
    Campaign: _structure_campaign,
}
for _cls, _hook in _hooks.items():
    _converter.register_structure_hook(_cls, _hook)
_converter.register_unstructure_hook(Lead, Lead.to_wire)
_converter.register_unstructure_hook(Campaign, Campaign.to_wire)
_converter.register_unstructure_hook(SequenceStep, SequenceStep.to_wire)


def structure(data: Any, cls: type[T]) -> T:
    """Read ``data`` (parsed JSON) as ``cls`` with the one _converter."""
    return _converter.structure(data, cls)


def encode_request(campaign_wire: bytes, leads_wire: list[Any]) -> bytes:
    """The request body: the serialized campaign object with ``lead_data`` appended last.

    ``campaign_wire`` is ``orjson.dumps(campaign.to_wire())``, serialized once per batch.
    """
    return b'%s,"lead_data":%s}' % (campaign_wire[:-1], orjson.dumps(leads_wire))
