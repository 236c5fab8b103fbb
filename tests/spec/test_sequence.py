"""The one sequence parser: what each entry holds, unchecked."""

from __future__ import annotations

from upscale_async._spec.sequence import SequenceEntry, parse_sequence


def test_strings_are_numbered_by_position() -> None:
    """A string entry is its own message type, at step position + 1."""
    assert parse_sequence(["connection_request", "x"]) == [
        SequenceEntry(1, "connection_request"),
        SequenceEntry(2, "x"),
    ]


def test_objects_are_read_as_given() -> None:
    """An object's step, messageType and wait_days come back unchecked (None when missing)."""
    assert parse_sequence([{"step": "2", "messageType": 5, "wait_days": 3}, {}]) == [
        SequenceEntry("2", 5, 3, True),
        SequenceEntry(None, None, None, True),
    ]


def test_other_entries_are_none() -> None:
    """An entry that is neither a string nor an object is None, for the caller to report."""
    assert parse_sequence([1, None, ["a"]]) == [None, None, None]
