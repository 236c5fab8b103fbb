"""The fast lead checks in pure Python: the fallback of the compiled ``_plain_c`` (same results).

A lead is *plain* when it surely passes the exact rules (``validation.check_lead``), so a batch
can send it without looking closer: a dict whose keys are lead fields only (all seven, or the
five required ones with either optional URL), whose required fields are non-blank ``str``
(exactly ``str``), and whose URLs are ``None`` or plain: ``http://`` or ``https://`` (lower
case), then printable characters (``str.isprintable``) but no space, not ``/``, ``?`` or ``#``
first. Anything
else is "look closer", never "invalid": the exact rules decide and find the messages.

``_plain_c.pyx`` implements the same two functions in C; ``tests/spec/test_fast_path.py``
checks that both give the same answers on generated leads, valid and invalid.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from itertools import chain, repeat
from types import MemberDescriptorType
from typing import Any, Final

_ID: Final = "automation_tool_lead_id"
_LINKEDIN: Final = "lead_linkedin"
_COMPANY: Final = "lead_company"
_FIRST: Final = "first_name"
_LAST: Final = "last_name"
_WEBSITE: Final = "lead_company_website_url"
_SPECIFIED: Final = "lead_specified_url"

#: A plain ASCII URL: ``http(s)://``, then printable ASCII but space, not ``/``, ``?``, ``#`` first.
_PLAIN_URL: Final = re.compile(r"https?://[!\"$-.0->@-~][!-~]*")


def _plain_unicode_url(value: str) -> bool:
    """A non-ASCII URL is plain by the same rule, with ``str.isprintable`` for its characters."""
    return (
        not value.isascii()
        and (
            (value.startswith("https://") and len(value) > 8 and value[8] not in "/?#")
            or (value.startswith("http://") and len(value) > 7 and value[7] not in "/?#")
        )
        and " " not in value
        and value.isprintable()
    )


# Long: the hot path of a batch, every check inlined in one frame on purpose (measured).
def plain_leads(leads: Sequence[Any]) -> list[bool]:
    """For each lead, True when it is plain (so surely valid); False means "look closer"."""
    url = _PLAIN_URL.fullmatch
    out: list[bool] = []
    append = out.append
    for lead in leads:
        if not isinstance(lead, dict):
            append(False)
            continue
        n = len(lead)
        try:
            lead_id = lead[_ID]
            company = lead[_COMPANY]
            first = lead[_FIRST]
            last = lead[_LAST]
            linkedin = lead[_LINKEDIN]
            if n == 7:
                website = lead[_WEBSITE]
                specified = lead[_SPECIFIED]
            elif n == 5 or (n == 6 and (_WEBSITE in lead or _SPECIFIED in lead)):
                website = lead.get(_WEBSITE)
                specified = lead.get(_SPECIFIED)
            else:
                append(False)
                continue
        except KeyError:
            append(False)
            continue
        if (
            type(lead_id) is str
            and type(company) is str
            and type(first) is str
            and type(last) is str
            and type(linkedin) is str
            and lead_id
            and company
            and first
            and last
            and not lead_id.isspace()
            and not company.isspace()
            and not first.isspace()
            and not last.isspace()
            and (url(linkedin) is not None or _plain_unicode_url(linkedin))
            and (
                website is None
                or (
                    type(website) is str
                    and (url(website) is not None or _plain_unicode_url(website))
                )
            )
            and (
                specified is None
                or (
                    type(specified) is str
                    and (url(specified) is not None or _plain_unicode_url(specified))
                )
            )
        ):
            append(True)
        else:
            append(False)
    return out


# Long: the hot path of a batch, every check inlined in one frame on purpose (measured).
def chunk_wire(leads: Sequence[Any], trusted: type[Any]) -> tuple[list[Any], list[Any]] | None:
    """The wire dicts and lead ids of a chunk whose every lead is plain, else None.

    An instance of ``trusted`` (exactly that type: ``Lead``) was checked when it was built and
    carries its wire dict in ``_wire`` (None when it was not valid): it is taken as it is. Any
    other lead must be a plain dict. None means "look closer, lead by lead".
    """
    url = _PLAIN_URL.fullmatch
    wires: list[Any] = []
    ids: list[Any] = []
    for lead in leads:
        if type(lead) is trusted:
            wire = lead._wire
            if wire is None:
                return None
            wires.append(wire)
            ids.append(wire[_ID])
            continue
        if not isinstance(lead, dict):
            return None
        n = len(lead)
        try:
            lead_id = lead[_ID]
            company = lead[_COMPANY]
            first = lead[_FIRST]
            last = lead[_LAST]
            linkedin = lead[_LINKEDIN]
            if n == 7:
                website = lead[_WEBSITE]
                specified = lead[_SPECIFIED]
            elif n == 5 or (n == 6 and (_WEBSITE in lead or _SPECIFIED in lead)):
                website = lead.get(_WEBSITE)
                specified = lead.get(_SPECIFIED)
            else:
                return None
        except KeyError:
            return None
        if not (
            type(lead_id) is str
            and type(company) is str
            and type(first) is str
            and type(last) is str
            and type(linkedin) is str
            and lead_id
            and company
            and first
            and last
            and not lead_id.isspace()
            and not company.isspace()
            and not first.isspace()
            and not last.isspace()
            and (url(linkedin) is not None or _plain_unicode_url(linkedin))
            and (
                website is None
                or (
                    type(website) is str
                    and (url(website) is not None or _plain_unicode_url(website))
                )
            )
            and (
                specified is None
                or (
                    type(specified) is str
                    and (url(specified) is not None or _plain_unicode_url(specified))
                )
            )
        ):
            return None
        wires.append(lead)
        ids.append(lead_id)
    return wires, ids


def add_new_ids(ids: list[Any], seen: set[Any]) -> bool:
    """Add every id to ``seen`` when none is in it and none repeats (True); else change nothing."""
    if len(set(ids)) == len(ids) and seen.isdisjoint(ids):
        seen.update(ids)
        return True
    return False


def plain_wire(
    lead_id: object,
    linkedin: object,
    company: object,
    first: object,
    last: object,
    website: object,
    specified: object,
) -> dict[str, Any] | None:
    """The wire dict of a ``Lead`` with these fields when they are plain, else None.

    The dict has the documented key order (``Lead.to_wire``). None means "look closer".
    """
    wire = {
        _ID: lead_id,
        _LINKEDIN: linkedin,
        _COMPANY: company,
        _FIRST: first,
        _LAST: last,
        _WEBSITE: website,
        _SPECIFIED: specified,
    }
    return wire if plain_leads((wire,))[0] else None


_set = object.__setattr__
_LEAD_SLOTS: Final = (
    _ID,
    _LINKEDIN,
    _COMPANY,
    _FIRST,
    _LAST,
    _WEBSITE,
    _SPECIFIED,
    "extra",
    "_wire",
)
#: Per class, the ``__set__`` of each slot (a frozen class's fields are set through them).
_setters: dict[type, tuple[Any, ...]] = {}


def _slot_setters(cls: type) -> tuple[Any, ...]:
    found = _setters[cls] = tuple(getattr(cls, name).__set__ for name in _LEAD_SLOTS)
    return found


# Long: the hot path of building a Lead, the fast check inlined in one frame (measured).
def init_lead(
    lead: object,
    lead_id: object,
    linkedin: object,
    company: object,
    first: object,
    last: object,
    website: object,
    specified: object,
    extra: object,
) -> None:
    """Set a new (frozen) ``Lead``'s fields and ``_wire``: its wire dict when it is plain.

    ``_wire`` is None when the lead is not plain or has ``extra`` keys (``Lead`` looks closer).
    """
    cls = type(lead)
    setters = _setters.get(cls) or _slot_setters(cls)
    s_id, s_linkedin, s_company, s_first, s_last, s_website, s_specified, s_extra, s_wire = setters
    s_id(lead, lead_id)
    s_linkedin(lead, linkedin)
    s_company(lead, company)
    s_first(lead, first)
    s_last(lead, last)
    s_website(lead, website)
    s_specified(lead, specified)
    s_extra(lead, extra)
    url = _PLAIN_URL.fullmatch
    if (
        not extra
        and type(lead_id) is str
        and type(company) is str
        and type(first) is str
        and type(last) is str
        and type(linkedin) is str
        and lead_id
        and company
        and first
        and last
        and not lead_id.isspace()
        and not company.isspace()
        and not first.isspace()
        and not last.isspace()
        and (url(linkedin) is not None or _plain_unicode_url(linkedin))
        and (
            website is None
            or (type(website) is str and (url(website) is not None or _plain_unicode_url(website)))
        )
        and (
            specified is None
            or (
                type(specified) is str
                and (url(specified) is not None or _plain_unicode_url(specified))
            )
        )
    ):
        s_wire(
            lead,
            {
                _ID: lead_id,
                _LINKEDIN: linkedin,
                _COMPANY: company,
                _FIRST: first,
                _LAST: last,
                _WEBSITE: website,
                _SPECIFIED: specified,
            },
        )
    else:
        s_wire(lead, None)


_PLAIN_RESULT_TYPES: Final = frozenset({str, type(None)})
_new = object.__new__


def wrap_results(leads_data: list[Any], cls: type[Any]) -> tuple[Any, ...] | None:
    """Each lead result of a retrieve answer wrapped in ``cls`` (its ``raw``), if all are plain.

    Plain: a dict (exactly) whose values are all ``str`` or None, with a ``str``
    ``external_prospect_id``. None means "look closer": the caller checks each one.
    """
    plain = (
        set(map(type, leads_data)) <= {dict}
        and set(map(type, chain.from_iterable(map(dict.values, leads_data)))) <= _PLAIN_RESULT_TYPES
        and set(map(type, map(dict.get, leads_data, repeat("external_prospect_id")))) <= {str}
    )
    if not plain:
        return None
    # Made and filled by map, in C: no Python frame per lead.
    wrapped = list(map(_new, repeat(cls, len(leads_data))))
    setter = _raw_setter(cls)
    deque(map(setter, wrapped, leads_data), maxlen=0)
    return tuple(wrapped)


def _raw_setter(cls: type[Any]) -> Callable[[Any, Any], None]:
    """What sets ``raw`` on a (frozen) ``cls``: its slot's own setter when it has one."""
    slot = cls.__dict__.get("raw")
    if type(slot) is MemberDescriptorType:
        setter: Callable[[Any, Any], None] = slot.__set__
        return setter
    return lambda wrapped, data: _set(wrapped, "raw", data)


def bind_lead_init(
    cls: type[Any],
    reference: Callable[..., None],
    no_extra: Mapping[str, Any],
    freeze_extra: Callable[[object], Mapping[str, Any]],
    look_closer: Callable[[Any], None],
) -> Callable[..., None]:
    """``cls.__init__``: in pure Python, the reference itself (``_plain_c`` has one in C).

    Building a Lead in pure Python is dominated by the slots' setters and the URL regexes,
    not by the frame, so the reference stays.
    """
    del cls, no_extra, freeze_extra, look_closer
    return reference
