"""Types of the compiled fast lead checks (``_plain_c.pyx``): the same as ``_plain.py``."""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

def plain_leads(leads: Sequence[Any]) -> list[bool]: ...
def chunk_wire(leads: Sequence[Any], trusted: type[Any]) -> tuple[list[Any], list[Any]] | None: ...
def plain_wire(
    lead_id: object,
    linkedin: object,
    company: object,
    first: object,
    last: object,
    website: object,
    specified: object,
) -> dict[str, Any] | None: ...
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
) -> None: ...
def wrap_results(leads_data: list[Any], cls: type[Any]) -> tuple[Any, ...] | None: ...
def add_new_ids(ids: list[Any], seen: set[Any]) -> bool: ...
def bind_lead_init(
    cls: type[Any],
    reference: Callable[..., None],
    no_extra: Mapping[str, Any],
    freeze_extra: Callable[[object], Mapping[str, Any]],
    look_closer: Callable[[Any], None],
) -> Callable[..., None]: ...
def has_fast_call(cls: type[Any]) -> bool: ...
