"""The one reader of a message sequence's entries, behind validation, the models and the wire.

A ``message_sequence`` (and a sequence template's ``steps``) is a list of message-type strings
(v1, numbered by position from step 1) or of ``{"step": n, "messageType": t}`` objects (v2;
templates add ``wait_days``). :func:`parse_sequence` says what each entry holds, checking
nothing; each caller applies its own rules and raises its own errors: validation reports
problems with a request, ``Campaign`` keeps what the user wrote, and the wire reader raises
``ResponseValidationError`` for a response that does not fit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import NamedTuple

__all__ = ["SequenceEntry", "parse_entry", "parse_sequence"]


class SequenceEntry(NamedTuple):
    """One entry of a sequence as given, unchecked: ``(step, message_type, wait_days, is_object)``.

    For a string entry, ``step`` is its position + 1 and ``message_type`` the string itself; for
    an object, each field is the object's value (None when the key is missing).
    """

    step: object
    message_type: object
    wait_days: object = None
    is_object: bool = False


def parse_entry(entry: object, position: int) -> SequenceEntry | None:
    """Read the entry at ``position`` (from 0) of a sequence.

    Returns:
        The entry's step, message type and wait_days, or None when the entry is neither a
        string nor an object (the caller says how that is wrong).
    """
    if isinstance(entry, str):
        return SequenceEntry(position + 1, entry)
    if isinstance(entry, Mapping):
        return SequenceEntry(
            entry.get("step"), entry.get("messageType"), entry.get("wait_days"), True
        )
    return None


def parse_sequence(entries: Iterable[object]) -> list[SequenceEntry | None]:
    """Read every entry of a sequence with :func:`parse_entry`, in order."""
    return [parse_entry(entry, position) for position, entry in enumerate(entries)]
