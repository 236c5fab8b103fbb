"""The public surface: every exported name is documented, every exception pickles with its fields."""

from __future__ import annotations

import ast
import importlib
import inspect
import pickle
from functools import cache
from pathlib import Path
from typing import Any

import pytest

import upscale_async
from upscale_async import (
    APIError,
    AuthenticationError,
    BadRequestError,
    BatchInterruptedError,
    BatchSubmission,
    ClientClosedError,
    CompletionError,
    CompletionTimeoutError,
    ConfigurationError,
    InsufficientCreditsError,
    LedgerMismatchError,
    NotFoundError,
    RateLimitError,
    RequestTimeoutError,
    ResponseValidationError,
    ServerError,
    StopReason,
    TransportError,
    UnprocessableEntityError,
    UpscaleError,
    ValidationError,
    WebhookPayloadError,
    WebhookVerificationError,
)

PUBLIC_MODULES = (
    "upscale_async",
    "upscale_async.webhooks",
    "upscale_async.testing",
    "upscale_async.emulator",
    "upscale_async.cli",
    "upscale_async.redis",
    "upscale_async.otel",
)
PACKAGE = Path(upscale_async.__file__).parent


@cache
def _documented_constants() -> frozenset[str]:
    """Names assigned at module level with a docstring after them or a ``#:`` comment before."""
    names: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        lines = path.read_text().splitlines()
        body = ast.parse("\n".join(lines)).body
        for node, after in zip(body, [*body[1:], None], strict=True):
            targets = (
                [node.target]
                if isinstance(node, ast.AnnAssign)
                else node.targets
                if isinstance(node, ast.Assign)
                else []
            )
            for target in targets:
                if not isinstance(target, ast.Name):
                    continue
                doc_after = (
                    isinstance(after, ast.Expr)
                    and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)
                )
                comment_before = lines[node.lineno - 2].strip().startswith("#:")
                if doc_after or comment_before:
                    names.add(target.id)
    return frozenset(names)


def _members(cls: type) -> list[tuple[str, Any]]:
    """Public methods and properties a class of the package defines itself."""
    out = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, staticmethod | classmethod):
            value = value.__func__
        if isinstance(value, property) or inspect.isfunction(value):
            out.append((name, value))
    return out


def _public_names() -> list[tuple[str, str]]:
    return [
        (module, name)
        for module in PUBLIC_MODULES
        for name in importlib.import_module(module).__all__
        if name != "__version__"
    ]


@pytest.mark.parametrize(("module", "name"), _public_names())
def test_every_public_name_has_a_docstring(module: str, name: str) -> None:
    """Each name in a public module's __all__ is documented (classes: their members too)."""
    obj = getattr(importlib.import_module(module), name)
    if inspect.isclass(obj) or inspect.isfunction(obj):
        assert (obj.__doc__ or "").strip(), f"{module}.{name} has no docstring"
        if inspect.isclass(obj) and obj.__module__.startswith("upscale_async"):
            undocumented = [m for m, v in _members(obj) if not (v.__doc__ or "").strip()]
            assert undocumented == [], f"{module}.{name} members without a docstring"
    else:
        assert name in _documented_constants(), f"{module}.{name} has no docstring or #: comment"


def _batch() -> BatchSubmission:
    return BatchSubmission(
        not_submitted=[{"automation_tool_lead_id": "a"}], stopped_by="source_error"
    )


API = {
    "status": 503,
    "body": {"error": "down"},
    "method": "POST",
    "path": "/messages/request_message_generation",
    "request_id": "req-1",
    "retry_after": 2.5,
}
EXAMPLES: list[UpscaleError] = [
    UpscaleError("base"),
    ConfigurationError("no key"),
    ClientClosedError("closed"),
    ValidationError([("lead_data[0].first_name", "first_name is required")]),
    APIError("teapot", **{**API, "status": 418}),
    BadRequestError("bad", **{**API, "status": 400}),
    AuthenticationError("no", **{**API, "status": 401}),
    InsufficientCreditsError("credits", **{**API, "status": 402}),
    NotFoundError("missing", **{**API, "status": 404}),
    UnprocessableEntityError("a; b", messages=["a", "b"], **{**API, "status": 422}),
    RateLimitError("slow down", **{**API, "status": 429}),
    ServerError("down", **API),
    TransportError("refused", method="GET", path="/account"),
    RequestTimeoutError("slow", method="GET", path="/account"),
    ResponseValidationError("not JSON", body=b"<html>"),
    CompletionError("failed", completed=[], errors={}, pending=["id-3"]),
    CompletionTimeoutError("late", pending=["id-2"], last_seen={"id-2": None}, completed=[]),
    BatchInterruptedError("stopped", partial=_batch(), reason=StopReason.SOURCE_ERROR),
    WebhookVerificationError("bad signature"),
    WebhookPayloadError("not an event"),
    LedgerMismatchError("chunk 3 differs", chunk=3, expected="a", found="b"),
]


def test_the_pickle_examples_cover_every_exported_exception() -> None:
    """Every exception class upscale_async exports has an example below (none is skipped)."""
    exported = {
        obj
        for name in upscale_async.__all__
        if inspect.isclass(obj := getattr(upscale_async, name)) and issubclass(obj, BaseException)
    }
    assert exported == {type(e) for e in EXAMPLES}


@pytest.mark.parametrize("error", EXAMPLES, ids=lambda e: type(e).__name__)
def test_every_exception_round_trips_through_pickle(error: UpscaleError) -> None:
    """An exception pickles and unpickles with its type, message and every field."""
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error)
    assert str(again) == str(error)
    assert vars(again) == vars(error)
