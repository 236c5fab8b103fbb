"""A Lead is checked once, when built: it keeps its wire object, and ``extra`` cannot replace fields."""

from __future__ import annotations

import pickle
from typing import Any

import attrs
import pytest

from upscale_async import Lead, ValidationError

from .test_contract_fidelity import lead_mapping


def test_extra_cannot_replace_a_lead_field() -> None:
    """Lead(extra={"first_name": ...}) is refused: it would send another name than the field's.

    Regression: the extra key used to override the field silently in ``to_wire()``, so the
    lead's ``first_name`` (and its id, for accounting) was not what was sent.
    """
    with pytest.raises(ValidationError) as info:
        Lead(**lead_mapping(), extra={"first_name": "Mallory", "job_title": "CTO"})
    assert info.value.errors == [
        (
            "extra.first_name",
            "extra.first_name is a lead field: pass it as Lead(first_name=...), not in extra "
            "(extra holds keys that are not lead fields)",
        )
    ]


def test_extra_cannot_replace_the_lead_id() -> None:
    """The id in extra would make the batch account the lead under another id: refused."""
    with pytest.raises(ValidationError, match=r"extra\.automation_tool_lead_id is a lead field"):
        Lead(**lead_mapping(), extra={"automation_tool_lead_id": "someone-else"})


def test_extra_is_a_copy_that_cannot_change() -> None:
    """A later change to the caller's mapping does not reach the lead; the lead's own is frozen."""
    given: dict[str, Any] = {"job_title": "CTO"}
    lead = Lead(**lead_mapping(), extra=given)
    given["job_title"] = "changed"
    given["first_name"] = "Mallory"
    assert lead.extra == {"job_title": "CTO"}
    assert lead.to_wire()["job_title"] == "CTO"
    assert lead.to_wire()["first_name"] == lead.first_name
    with pytest.raises(TypeError, match=r"Lead\.extra cannot be changed"):
        lead.extra["first_name"] = "Mallory"  # type: ignore[index]
    assert pickle.loads(pickle.dumps(lead)) == lead
    assert attrs.evolve(lead, first_name="Bo").extra == {"job_title": "CTO"}


def test_a_valid_lead_keeps_its_wire_object() -> None:
    """Valid when built: the wire object is kept (to_wire's content); invalid: None, no error."""
    lead = Lead(**lead_mapping())
    assert lead._wire == lead.to_wire()
    assert lead.to_wire() is not lead.to_wire()  # to_wire still hands out a fresh dict
    with_extra = Lead(**lead_mapping(), extra={"job_title": "CTO"})
    assert with_extra._wire == with_extra.to_wire()
    bad = Lead(**lead_mapping(first_name=" "))
    assert bad._wire is None
    assert bad.first_name == " "


def test_lead_equality_and_repr_ignore_the_kept_wire_object() -> None:
    """Two Leads with the same fields are equal and hash alike; the repr shows the fields only."""
    a, b = Lead(**lead_mapping()), Lead(**lead_mapping())
    assert a == b
    assert hash(a) == hash(b)
    assert "_wire" not in repr(a)
    assert "wire" not in [f.alias for f in attrs.fields(Lead) if f.init]
