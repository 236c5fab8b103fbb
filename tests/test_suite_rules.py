"""Rules the test suite keeps about itself."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
CHECKING_CALLS = ("assert_", "check_", "_verifies_")


def _checks_something(node: ast.AST) -> bool:
    for inner in ast.walk(node):
        if isinstance(inner, ast.Assert):
            return True
        if isinstance(inner, ast.Call):
            func = inner.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("raises", "warns", "fail") or name.startswith(CHECKING_CALLS):
                return True
    return False


def test_every_test_asserts_something() -> None:
    """Each test function asserts, expects an exception, or calls a named checking helper."""
    silent = [
        f"{path.relative_to(TESTS)}::{node.name}"
        for path in sorted(TESTS.rglob("test_*.py"))
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.name.startswith("test_")
        and not _checks_something(node)
    ]
    assert silent == []
