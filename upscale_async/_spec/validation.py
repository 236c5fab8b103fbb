"""Client-side validation that mirrors the server's 422 rules, shared with the emulator.

Both the SDK (before any request) and the emulator (on every request) run these checks on the
*wire* form of a request, so their rules and messages cannot drift apart. Messages follow the
server's templates (``lead_data[3].first_name is required but was missing or blank``) and come
in the server's order: top-level fields first, then ``lead_data[i]`` in index order.

The per-lead check is the hot path of a batch: it allocates nothing for a valid lead. Its fast
part, :func:`plain_leads`, is compiled when the package was built with a C compiler
(``speedups``); the exact rules below find the messages either way.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from difflib import SequenceMatcher, get_close_matches
from typing import Any, Final

from .contract import (
    ALLOWED_TONES,
    CONDITIONAL_FIELDS,
    KNOWN_MESSAGE_TYPES,
    LEAD_OPTIONAL_URL_FIELDS,
    LEAD_REQUIRED_FIELDS,
    SEQUENCE_FILTER_DEFAULT,
    SEQUENCE_FILTERS,
    MessageType,
)
from .countries import ISO_3166_ALPHA2
from .sequence import parse_sequence
from .speedups import plain_leads as plain_leads  # re-exported: the tests and _batch use it

#: One problem: (path, message). The message starts with the path, as the server's do.
Problem = tuple[str, str]

_NO_PROBLEMS: Final[list[Problem]] = []

_HTTP_URL: Final = re.compile(r"(?i:https?)://[^\s/?#]\S*\Z")
_ANY_URL: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:(?://)?\S+\Z")

#: Splits a server 422 ``error`` back into its messages: a new message starts at a field path
#: (``snake_case`` with optional ``[i].field``) followed by "is" or "must".
_MESSAGE_START: Final = re.compile(
    r" (?=[a-z][a-z0-9]*(?:_[a-z0-9]+)+(?:\[\d+\](?:\.[A-Za-z_]+)?)? (?:is|must) )"
)

_ALLOWED_TYPES_TEXT: Final = ", ".join(t.value for t in MessageType)
_ALLOWED_TONES_TEXT: Final = "formal, normal, casual"

CAMPAIGN_STRING_FIELDS: Final = (
    "completion_notification_url",
    "automation_tool_customer_id",
    "automation_tool_campaign_id",
    "automation_tool_campaign_name",
    "proposition_company_name",
    "proposition_company_url",
)
_CAMPAIGN_URL_FIELDS: Final = frozenset({"completion_notification_url", "proposition_company_url"})

#: The documented lead fields (§2.2), in the documented order.
LEAD_FIELDS: Final = (*LEAD_REQUIRED_FIELDS, *LEAD_OPTIONAL_URL_FIELDS)
_LEAD_KEYS: Final = frozenset(LEAD_FIELDS)


class WithExtraFields(dict[str, Any]):
    """A lead's wire object whose extra keys were asked for (``Lead.extra``): they are sent.

    ``Lead.to_wire()`` returns one when its ``extra`` is not empty. Validation then lets the
    keys that are not lead fields through instead of reporting them as typos.
    """

    __slots__ = ()


def unknown_field(
    prefix: str, key: object, known: Sequence[str], what: str, advice: str = ""
) -> Problem:
    """The problem with a key that is not a field: it names the closest known one, if any.

    ``lead_data[3].firstname is not a lead field; did you mean first_name?``; with no close
    match, the known fields are listed. ``advice`` (how to send it anyway) ends the message.
    """
    name = str(key)
    where = f"{prefix}{name}"
    close = closest(name, known)
    hint = f"did you mean {close}?" if close else f"the fields are {', '.join(known)}"
    return (where, f"{where} is not {what}; {hint}{advice}")


def closest(name: str, known: Sequence[str]) -> str | None:
    """The known name ``name`` most likely stands for: a near spelling, or one containing it."""
    close = get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return close[0]
    if len(name) >= 3:  # "tone" for tone_preference, "linkedin" for lead_linkedin
        parts = [k for k in known if name in k or k in name]
        if parts:
            return max(parts, key=lambda k: SequenceMatcher(None, name, k).ratio())
    return None


def sequence_filter(name: str, value: str) -> tuple[str, str | None]:
    """A get_sequences filter as the server reads it, and the message when it is not allowed.

    The value is trimmed and lower-cased (blank is ``default``); the message (None when the
    value is allowed) is the 422's, the same from the SDK and the emulator.
    """
    allowed, _ = SEQUENCE_FILTERS[name]
    text = value.strip().lower() or SEQUENCE_FILTER_DEFAULT
    if text == SEQUENCE_FILTER_DEFAULT or text in allowed:
        return text, None
    return text, (
        f"{name} must be one of {', '.join(allowed)}, or {SEQUENCE_FILTER_DEFAULT} "
        f"but was {value!r}"
    )


def required(path: str) -> Problem:
    """The server's problem for a missing or blank required field at ``path``."""
    return (path, f"{path} is required but was missing or blank")


def _is_present(value: object) -> bool:
    return value is not None and not (isinstance(value, str) and (not value or value.isspace()))


def url_problem(path: str, value: object) -> Problem | None:
    """The problem with a URL value, or None when it is a valid http(s) URL."""
    if not isinstance(value, str):
        return (path, f"{path} must be a string")
    if _HTTP_URL.match(value):
        return None
    if _ANY_URL.match(value):
        return (path, f"{path} must be a valid HTTP or HTTPS URL")
    return (path, f"{path} must be a valid URL")


def split_messages(error: str) -> list[str]:
    """Split a server 422 ``error`` string (messages joined by single spaces) into its messages."""
    return [part for part in _MESSAGE_START.split(error) if part]


def join_messages(problems: Sequence[Problem]) -> str:
    """Join messages the way the server does: a single space between them."""
    return " ".join(message for _, message in problems)


def check_sequence(
    sequence: object, *, allow_unknown_message_types: bool = False
) -> tuple[list[Problem], list[str]]:
    """Check ``message_sequence`` (strings or ``{step, messageType}`` objects).

    Returns the problems and the message types in order (unknown ones included when allowed).
    """
    if not isinstance(sequence, list | tuple):
        return [("message_sequence", "message_sequence must be an array")], []
    if not sequence:
        return [("message_sequence", "message_sequence must contain at least one message type")], []
    problems: list[Problem] = []
    types: list[str] = []
    steps: list[int] = []
    for i, entry in enumerate(parse_sequence(sequence)):
        path = f"message_sequence[{i}]"
        if entry is None:
            problems.append(
                (
                    path,
                    f"{path} must be a messageType string or an object with step and messageType",
                )
            )
            continue
        kind = entry.message_type
        kind_path = path
        if entry.is_object:
            kind_path = f"{path}.messageType"
            step = entry.step
            if step is None:
                problems.append(required(f"{path}.step"))
            elif type(step) is not int or step < 1:
                problems.append((f"{path}.step", f"{path}.step must be an integer of at least 1"))
            else:
                steps.append(step)
        else:
            steps.append(i + 1)
        if not _is_present(kind):
            problems.append(required(kind_path))
        elif not isinstance(kind, str):
            problems.append((kind_path, f"{kind_path} must be a string"))
        elif kind in KNOWN_MESSAGE_TYPES or allow_unknown_message_types:
            types.append(kind)
        else:
            problems.append(
                (kind_path, f"{kind_path} must be one of {_ALLOWED_TYPES_TEXT} but was {kind!r}")
            )
    if steps and min(steps) != 1:
        problems.append(("message_sequence", "message_sequence must start at step 1"))
    return problems, types


def check_campaign(
    campaign: Mapping[str, Any], *, allow_unknown_message_types: bool = False
) -> list[Problem]:
    """Check the campaign-level (top-level) fields of a request body, in the server's order."""
    problems: list[Problem] = []
    for name in CAMPAIGN_STRING_FIELDS:
        value = campaign.get(name)
        if not _is_present(value):
            problems.append(required(name))
        elif name in _CAMPAIGN_URL_FIELDS:
            problem = url_problem(name, value)
            if problem is not None:
                problems.append(problem)
        elif not isinstance(value, str):
            problems.append((name, f"{name} must be a string"))
    if "message_sequence" not in campaign or campaign["message_sequence"] is None:
        problems.append(required("message_sequence"))
        types: list[str] = []
    else:
        seq_problems, types = check_sequence(
            campaign["message_sequence"], allow_unknown_message_types=allow_unknown_message_types
        )
        problems.extend(seq_problems)
    tone = campaign.get("tone_preference")
    if tone is not None and (not isinstance(tone, str) or tone not in ALLOWED_TONES):
        problems.append(
            ("tone_preference", f"tone_preference must be one of {_ALLOWED_TONES_TEXT}")
        )
    signoff = campaign.get("signoff_name")
    if signoff is not None and not isinstance(signoff, str):
        problems.append(("signoff_name", "signoff_name must be a string"))
    for kind, name in CONDITIONAL_FIELDS.items():
        if kind not in types:
            continue  # its type is absent: the field, if sent anyway, is ignored (§2.1)
        value = campaign.get(name)
        if not _is_present(value):
            problems.append((name, f"{name} is required when the message_sequence includes {kind}"))
        elif not isinstance(value, str):
            problems.append((name, f"{name} must be a string"))
        elif name == "material_link":
            problem = url_problem(name, value)
            if problem is not None:
                problems.append(problem)
        elif name == "hiring_location" and value.upper() not in ISO_3166_ALPHA2:
            problems.append(
                (
                    name,
                    f"{name} must be a valid ISO 3166-1 alpha-2 country code (e.g. GB, US, DE) "
                    f"but was {value!r}",
                )
            )
    return problems


def check_lead(lead: object, index: int, *, allow_extra_fields: bool = False) -> list[Problem]:
    """Check one lead object (wire keys). Returns a shared empty list when it is valid.

    A key that is not a lead field is a problem naming the closest field (a typo would
    otherwise be sent and ignored), unless ``allow_extra_fields`` is set or the lead is a
    :class:`WithExtraFields` (a ``Lead`` with ``extra``). The server ignores such keys (§2.2).
    """
    if plain_leads((lead,))[0]:
        return _NO_PROBLEMS
    if not isinstance(lead, Mapping):
        return [(f"lead_data[{index}]", f"lead_data[{index}] must be an object")]
    problems = _lead_problems(lead, index)
    if not allow_extra_fields and not isinstance(lead, WithExtraFields):
        prefix = f"lead_data[{index}]."
        for key in lead:
            if key not in _LEAD_KEYS:
                problems.append(
                    unknown_field(prefix, key, LEAD_FIELDS, "a lead field", _SEND_EXTRA)
                )
    return problems


#: How to send a key that is not a lead field on purpose (ends an unknown-key message).
_SEND_EXTRA: Final = (
    " (to send an extra key on purpose, use Lead(..., extra={...}) or "
    "Lead.from_mapping(data, allow_extra_fields=True))"
)


def _lead_problems(lead: Mapping[str, Any], index: int) -> list[Problem]:
    problems: list[Problem] = []
    prefix = f"lead_data[{index}]."
    for name in LEAD_REQUIRED_FIELDS:
        value = lead.get(name)
        path = prefix + name
        if not _is_present(value):
            problems.append(required(path))
        elif name == "lead_linkedin":
            problem = url_problem(path, value)
            if problem is not None:
                problems.append(problem)
        elif not isinstance(value, str):
            problems.append((path, f"{path} must be a string"))
    for name in LEAD_OPTIONAL_URL_FIELDS:
        value = lead.get(name)
        if value is not None:
            problem = url_problem(prefix + name, value)
            if problem is not None:
                problems.append(problem)
    return problems


def check_leads(leads: object, *, allow_extra_fields: bool = False) -> list[Problem]:
    """Check ``lead_data``: an array of at least one valid lead, lead ids unique in the request.

    Lead ids must be unique because results name a lead only by its id (§8 #27).
    ``allow_extra_fields``: as for :func:`check_lead`.
    """
    if not isinstance(leads, list | tuple):
        if leads is None:
            return [required("lead_data")]
        return [("lead_data", "lead_data must be an array")]
    if not leads:
        return [("lead_data", "lead_data must contain at least one lead")]
    problems: list[Problem] = []
    seen: dict[object, int] = {}
    for (i, lead), plain in zip(enumerate(leads), plain_leads(leads), strict=True):
        if not plain:
            found = check_lead(lead, i, allow_extra_fields=allow_extra_fields)
            if found:
                problems.extend(found)
                continue
        lead_id = lead["automation_tool_lead_id"]
        first = seen.setdefault(lead_id, i)
        if first != i:
            path = f"lead_data[{i}].automation_tool_lead_id"
            problems.append(
                (path, f"{path} must be unique in a request but repeats the lead at index {first}")
            )
    return problems


def validate_generation_body(
    body: object, *, allow_unknown_message_types: bool = False, allow_extra_fields: bool = True
) -> list[Problem]:
    """Every problem with a request_message_generation body, in the server's order.

    These are the server's rules (the emulator's): extra lead keys are ignored (§2.2) unless
    ``allow_extra_fields=False`` asks for the SDK's stricter check (:func:`check_lead`).
    """
    if not isinstance(body, Mapping):
        return [("body", "request body must be a JSON object")]
    problems = check_campaign(body, allow_unknown_message_types=allow_unknown_message_types)
    problems.extend(check_leads(body.get("lead_data"), allow_extra_fields=allow_extra_fields))
    return problems
