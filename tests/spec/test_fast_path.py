"""The compiled fast lead checks (``_plain_c``) answer exactly as the pure-Python ones (``_plain``).

A differential property test over generated leads, valid and invalid: the fast checks agree
lead by lead, a plain lead is always valid by the exact rules, and a batch chunk, a
``check_lead`` and a built ``Lead`` give the same results and messages on either path. Where
the extension was not built (no C compiler) these tests skip, except under CI (``CI=1``),
where they fail: CI builds it.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import upscale_async
from upscale_async import Lead, _models
from upscale_async._batch import _Batch
from upscale_async._results import BatchSubmission
from upscale_async._spec import _plain, speedups, validation
from upscale_async._spec.validation import WithExtraFields, check_lead


def _compiled() -> ModuleType:
    try:
        return importlib.import_module("upscale_async._spec._plain_c")
    except ImportError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"the compiled fast path was not built ({exc}); CI builds it")
        pytest.skip(
            "the compiled fast path is not built (no C compiler when installed?): "
            "pip install -e . with gcc or clang present builds it"
        )


FIELDS = validation.LEAD_FIELDS
# Pieces of URLs around every edge of the fast rule: scheme case, the first character after
# it, spaces, other whitespace, unprintable and non-ASCII characters.
schemes = st.sampled_from(["https://", "http://", "HTTPS://", "Http://", "ftp://", "https:/", ""])
url_chars = st.sampled_from(
    [*"ab/?#:. -_%", "\t", "\n", "\x1c", "\x00", "\x7f", "é", "ü", "\u00a0", "\u200b", "日"]
)
urls = st.builds(
    lambda scheme, rest: scheme + "".join(rest), schemes, st.lists(url_chars, max_size=6)
)
texts = st.sampled_from(
    [
        "",
        " ",
        "\t",
        "\x1c",
        "\x1f",
        "\u3000",
        "\u2028",
        " \x1c ",
        "a",
        " a ",
        "Müller",
        "\x00",
        "日本",
    ]
)
odd = st.none() | st.integers(0, 3) | st.booleans() | st.just(["x"])
values = st.one_of(texts, urls, odd)
keys = st.sampled_from([*FIELDS, "job_title", "firstname"])


@st.composite
def leads(draw: st.DrawFn) -> Any:
    """A lead: mostly a dict with most lead fields, sometimes broken in one or more ways."""
    kind = draw(st.sampled_from(["valid", "one", "one", "one", "mutated", "wild", "other"]))
    if kind == "other":
        return draw(st.sampled_from([None, 3, "lead", ["a"], ("automation_tool_lead_id",)]))
    lead: dict[Any, Any] = {
        "automation_tool_lead_id": draw(st.sampled_from(["id-1", "id-2", "日本-3"])),
        "lead_linkedin": draw(
            st.sampled_from(["https://www.linkedin.com/in/a", "http://x.example/ü"])
        ),
        "lead_company": "Acme",
        "first_name": draw(st.sampled_from(["Ada", "José"])),
        "last_name": "Smith",
        "lead_company_website_url": draw(st.sampled_from([None, "https://acme.example"])),
        "lead_specified_url": None,
    }
    if kind == "one":  # one field changed: an edge of one rule, the others all valid
        key = draw(st.sampled_from(FIELDS))
        lead[key] = draw(texts | urls if "url" in key or "linkedin" in key else texts)
    elif kind == "mutated":
        for key in draw(st.lists(keys, max_size=3)):
            lead[key] = draw(values)
        for key in draw(st.lists(st.sampled_from(FIELDS), max_size=2)):
            lead.pop(key, None)
    elif kind == "wild":
        lead = draw(st.dictionaries(keys, values, max_size=8))
    if draw(st.integers(0, 9)) == 0:
        return WithExtraFields(lead)
    return lead


@contextmanager
def path(impl: ModuleType) -> Iterator[None]:
    """Run the package's validation and batch code on one implementation of the fast checks."""
    with (
        mock.patch.object(validation, "plain_leads", impl.plain_leads),
        mock.patch("upscale_async._batch.plain_leads", impl.plain_leads),
        mock.patch.object(speedups, "chunk_wire", impl.chunk_wire),
        mock.patch("upscale_async._models.init_lead", impl.init_lead),
        mock.patch.object(Lead, "__init__", _lead_init(impl)),
    ):
        yield


def _lead_init(impl: ModuleType) -> Any:
    """``Lead.__init__`` as ``_models`` binds it, on one implementation of the fast checks."""
    return impl.bind_lead_init(
        Lead,
        _models._LEAD_INIT_REFERENCE,
        _models._NO_EXTRA,
        _models._lead_extra,
        _models._look_closer,
    )


def _batch_validate(chunk: list[Any]) -> tuple[Any, ...]:
    batch = _Batch.__new__(_Batch)  # only what validate() reads
    batch.seen = {"id-2"}  # one id "seen in an earlier chunk"
    batch.result = BatchSubmission()
    wire, originals, ids = batch.validate(list(chunk), 10)
    rejected = [(r.index, r.lead, r.errors) for r in batch.result.rejected]
    return wire, originals, ids, rejected


def _as_lead(data: Any) -> Any:
    """A Lead built from a dict lead's fields and extra keys (or the lead itself)."""
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        return data
    fields = {k: v for k, v in data.items() if k in FIELDS}
    extra = {k: v for k, v in data.items() if k not in FIELDS}
    try:
        return Lead(**fields, extra=extra)
    except TypeError:  # a required field missing: not a Lead
        return data


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(leads(), min_size=1, max_size=6))
def test_compiled_and_pure_fast_checks_agree(chunk: list[Any]) -> None:
    """Lead by lead, the two fast checks agree, and a plain lead is valid by the exact rules."""
    compiled = _compiled()
    assert compiled.plain_leads(chunk) == _plain.plain_leads(chunk)
    for lead, plain in zip(chunk, _plain.plain_leads(chunk), strict=True):
        if plain:
            assert check_lead(lead, 0) == []
    pure_chunk = _plain.chunk_wire(chunk, Lead)
    compiled_chunk = compiled.chunk_wire(chunk, Lead)
    assert compiled_chunk == pure_chunk
    assert (pure_chunk is None) == (not all(_plain.plain_leads(chunk)))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(leads(), min_size=1, max_size=6), st.booleans())
def test_compiled_and_pure_paths_give_the_same_results_and_messages(
    chunk: list[Any], as_leads: bool
) -> None:
    """check_lead, a batch chunk and built Leads: the same results and messages on both paths."""
    compiled = _compiled()
    outcomes = []
    for impl in (_plain, compiled):
        with path(impl):
            items = [_as_lead(lead) for lead in chunk] if as_leads else chunk
            wires = [getattr(item, "_wire", "not a Lead") for item in items]
            messages = [check_lead(lead, i) for i, lead in enumerate(chunk)]
            outcomes.append((wires, messages, _batch_validate(items)))
    assert outcomes[0] == outcomes[1]


def test_a_lead_is_checked_once_when_built_on_either_path() -> None:
    """A valid Lead keeps its wire dict (to_wire's content); an invalid one keeps None."""
    compiled = _compiled()
    good = {
        "automation_tool_lead_id": "a",
        "lead_linkedin": "https://www.linkedin.com/in/a",
        "lead_company": "Acme",
        "first_name": "Ada",
        "last_name": "Smith",
    }
    for impl in (_plain, compiled):
        with path(impl):
            lead = Lead(**good)
            assert lead._wire == lead.to_wire()
            assert Lead(**{**good, "first_name": " "})._wire is None
            # Not plain (upper-case scheme) but valid by the exact rules: kept too.
            upper = Lead(**{**good, "lead_linkedin": "HTTPS://www.linkedin.com/in/a"})
            assert upper._wire == upper.to_wire()


@pytest.mark.parametrize(("value", "compiled"), [("1", False), ("", None), ("0", None)])
def test_the_environment_variable_forces_the_pure_path(value: str, compiled: bool | None) -> None:
    """UPSCALE_ASYNC_NO_EXTENSIONS=1 runs pure Python; empty or 0 leaves the choice as built."""
    code = (
        "import upscale_async, upscale_async._spec.validation as v\n"
        "print(upscale_async.extensions_active(), v.plain_leads.__module__)\n"
    )
    env = {**os.environ, speedups.NO_EXTENSIONS_VARIABLE: value}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    active, module = out.stdout.split()
    if compiled is None:  # as built: compiled when the extension imports
        try:
            importlib.import_module("upscale_async._spec._plain_c")
        except ImportError:
            compiled = False
        else:
            compiled = True
    assert active == str(compiled)
    assert module.rpartition(".")[2] == ("_plain_c" if compiled else "_plain")


def test_extensions_active_says_which_path_runs() -> None:
    """upscale_async.extensions_active() is True exactly when the compiled checks are in use."""
    assert upscale_async.extensions_active() is speedups.COMPILED
    assert (validation.plain_leads is _plain.plain_leads) is not speedups.COMPILED


result_values = st.none() | st.text(max_size=3) | st.integers(0, 2) | st.booleans()
lead_results = st.one_of(
    st.fixed_dictionaries(
        {"external_prospect_id": st.text(max_size=3) | st.none() | st.integers(0, 2)},
        optional={
            "linkedin": result_values,
            "outreach_message": result_values,
            "no_job_posts": result_values,
        },
    ),
    st.sampled_from([None, "x", 3, ["a"]]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(lead_results, max_size=5))
def test_compiled_and_pure_retrieve_wrappers_agree(leads_data: list[Any]) -> None:
    """Reading a retrieve answer's lead results: the same wrappers, or None, on both paths."""
    from upscale_async import LeadMessages

    compiled = _compiled()
    pure = _plain.wrap_results(leads_data, LeadMessages)
    fast = compiled.wrap_results(leads_data, LeadMessages)
    assert (pure is None) == (fast is None)
    if pure is not None and fast is not None:
        assert [type(w) for w in fast] == [LeadMessages] * len(leads_data)
        assert [w.raw for w in fast] == [w.raw for w in pure] == leads_data


def test_retrieve_wrappers_of_other_classes_are_made_the_usual_way() -> None:
    """A class whose ``raw`` slot is inherited, or that has its own ``__new__``, is not made by
    the compiled path's direct allocation: the same wrappers as the pure path's, ``raw`` set."""
    from upscale_async import LeadMessages

    class Sub(LeadMessages):
        pass

    made: list[Any] = []

    class Own:
        __slots__ = ("raw",)

        def __new__(cls) -> Own:
            made.append(cls)
            return super().__new__(cls)

    compiled = _compiled()
    data = [{"external_prospect_id": "a"}, {"external_prospect_id": "b", "x": None}]
    for cls in (Sub, Own):
        for impl in (_plain, compiled):
            wrapped = impl.wrap_results(data, cls)
            assert [type(w) for w in wrapped] == [cls, cls]
            assert [w.raw for w in wrapped] == data
    made.clear()
    compiled.wrap_results(data, Own)
    assert made == [Own, Own]  # the compiled path calls the class's own __new__


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from("abcdef"), max_size=6), st.sets(st.sampled_from("abcdefgh")))
def test_compiled_and_pure_id_claims_agree(ids: list[str], seen: set[str]) -> None:
    """A chunk's ids join the batch's seen set only when all are new and distinct, on both paths."""
    compiled = _compiled()
    pure_seen, compiled_seen = set(seen), set(seen)
    assert compiled.add_new_ids(ids, compiled_seen) == _plain.add_new_ids(ids, pure_seen)
    assert compiled_seen == pure_seen
    assert pure_seen == (
        seen | set(ids) if len(set(ids)) == len(ids) and not seen & set(ids) else seen
    )


#: The edges of a URL character, ASCII ('!' and '~' pass, ' ', '\x7f' and below '!' do not; the
#: compiled check reads ASCII eight bytes at a time) and not (printable or not).
_URL_EDGE_CHARS = ["\x00", "\t", "\x1f", " ", "!", "/", "a", "~", "\x7f", "é", "\u00a0", "日"]


@pytest.mark.parametrize("scheme", ["http://", "https://"])
def test_compiled_and_pure_url_checks_agree_at_every_position(scheme: str) -> None:
    """One edge character at each position of URLs long enough for several eight-byte words."""
    compiled = _compiled()
    urls = [
        scheme + "a" * position + char + "b" * (length - position - 1)
        for length in range(1, 27)
        for position in range(length)
        for char in _URL_EDGE_CHARS
    ]
    chunk = [{**_GOOD, "lead_linkedin": url} for url in urls]
    fast = compiled.plain_leads(chunk)
    assert fast == _plain.plain_leads(chunk)
    assert fast == [
        url[len(scheme)] not in "/?#" and all(c.isprintable() and c != " " for c in url)
        for url in urls
    ]


_GOOD: dict[str, Any] = {
    "automation_tool_lead_id": "a",
    "lead_linkedin": "https://www.linkedin.com/in/a",
    "lead_company": "Acme",
    "first_name": "Ada",
    "last_name": "Smith",
}


def _called(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """``Lead(*args, **kwargs)`` as it is (compiled: its C call): the Lead built (its fields
    and wire), or the error it raised (type, message)."""
    try:
        lead = Lead(*args, **kwargs)
    except Exception as exc:
        return (type(exc), str(exc))
    return (repr(lead), lead._wire, type(lead.extra))


def _built(init: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, ...]:
    """:func:`_called` with ``init`` as ``Lead.__init__``."""
    with mock.patch.object(Lead, "__init__", init):
        return _called(args, kwargs)


def _keywords(data: Any, extra: Any, dropped: str | None) -> dict[str, Any]:
    """A generated lead's fields as keywords, ``extra`` added (unless None), one dropped."""
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        data = dict(_GOOD)
    kwargs = dict(data)
    if extra is not None:
        kwargs["extra"] = extra
    kwargs.pop(dropped or "", None)
    return kwargs


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    leads(),
    st.sampled_from([(), (1,)]),
    st.sampled_from([None, {}, {"job_title": "x"}, {"lead_company": "y"}, 3]),
    st.sampled_from([None, "first_name", "last_name", "extra"]),
)
def test_the_bound_lead_inits_do_what_the_reference_does(
    data: Any, args: tuple[Any, ...], extra: Any, dropped: str | None
) -> None:
    """Lead.__init__ in C and in one Python frame: the reference's Leads, wires and errors."""
    compiled = _compiled()
    kwargs = _keywords(data, extra, dropped)
    expected = _built(_models._LEAD_INIT_REFERENCE, args, kwargs)
    assert _built(_lead_init(_plain), args, kwargs) == expected
    assert _built(_lead_init(compiled), args, kwargs) == expected


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    leads(),
    st.sampled_from([(), (1,)]),
    st.sampled_from([None, {}, {"job_title": "x"}, {"lead_company": "y"}, 3]),
    st.sampled_from([None, "first_name", "last_name", "lead_specified_url", "extra"]),
    st.booleans(),
)
def test_calling_lead_builds_what_the_reference_builds(
    data: Any, args: tuple[Any, ...], extra: Any, dropped: str | None, fresh: bool
) -> None:
    """``Lead(...)`` itself (on the compiled path a C call that skips ``__init__``): the
    reference's Leads, wires and errors, whether the keywords are the field names' own
    string objects or equal new ones (``Lead(**row)`` of a parsed row)."""
    kwargs = _keywords(data, extra, dropped)
    if fresh:
        kwargs = _fresh_keys(kwargs)
    assert _called(args, kwargs) == _built(_models._LEAD_INIT_REFERENCE, args, kwargs)


def test_the_compiled_path_calls_lead_in_c() -> None:
    """On the compiled path ``Lead(...)`` is a C call of its own; a replaced ``__init__`` is
    still the one that runs, and a subclass is built the usual way."""
    compiled = _compiled()
    assert compiled.has_fast_call(Lead)
    seen: list[Any] = []

    def init(self: Any, **kwargs: Any) -> None:
        seen.append(kwargs)
        _models._LEAD_INIT_REFERENCE(self, **kwargs)

    with mock.patch.object(Lead, "__init__", init):
        assert Lead(**_GOOD)._wire == Lead.to_wire(Lead(**_GOOD))
    assert seen == [_GOOD, _GOOD]

    class Sub(Lead):
        pass

    assert type(Sub(**_GOOD)) is Sub
    assert Sub(**_GOOD)._wire == Sub(**_GOOD).to_wire()
    assert type(Lead(**_GOOD)) is Lead


def test_a_subclass_of_lead_is_built_by_the_reference() -> None:
    """A subclass's instances are built as the reference builds them, on either path."""

    class Sub(Lead):
        pass

    for impl in (_plain, _compiled()):
        with path(impl):
            lead = Sub(**_GOOD)
            assert type(lead) is Sub
            assert lead._wire == lead.to_wire()
            assert lead == Sub(**_GOOD)


def _fresh_keys(lead: Any) -> Any:
    """The lead with each str key a new string object (as a JSON parser gives them)."""
    if type(lead) is not dict:
        return lead
    return {("".join(list(k)) if isinstance(k, str) else k): v for k, v in lead.items()}


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(leads(), min_size=1, max_size=6))
def test_the_compiled_check_does_not_depend_on_the_key_objects(chunk: list[Any]) -> None:
    """Keys that are the field names' own objects or equal new strings: the same answers."""
    compiled = _compiled()
    fresh = [_fresh_keys(lead) for lead in chunk]
    expected = _plain.plain_leads(chunk)
    assert compiled.plain_leads(fresh) == compiled.plain_leads(chunk) == expected
    assert _plain.plain_leads(fresh) == expected
