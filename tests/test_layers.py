"""The import rules of the package (docs/architecture.md), read from the source with ``ast``.

Every import counts: top-level, inside functions, and under ``TYPE_CHECKING``.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "upscale_async"
ROOT = "upscale_async"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(name: str, level: int, module: str, is_package: bool) -> str:
    if level == 0:
        return name
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def _known(name: str) -> str | None:
    """The package module an import names (``a.b.c`` may be module ``a.b`` importing ``c``)."""
    modules = _modules()
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


@cache
def _imports() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in _modules().items():
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(node.module or "", node.level, module, is_package)
                names = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for name in names:
                if name == ROOT or name.startswith(ROOT + "."):
                    known = _known(name)
                    if known is not None and known != module:
                        targets.add(known)
        graph[module] = targets
    return graph


def _in(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _is_core(module: str) -> bool:
    return not any(
        _in(module, f"{ROOT}.{p}")
        for p in ("cli", "testing", "emulator", "webhooks", "_spec", "otel")
    ) and module not in (ROOT, f"{ROOT}.__main__")


def test_the_graph_is_read() -> None:
    """The reader finds the package's modules and their imports (so the rules below bite)."""
    graph = _imports()
    assert f"{ROOT}._client" in graph
    assert f"{ROOT}._api" in graph[f"{ROOT}._client"]
    assert f"{ROOT}._spec.validation" in graph[f"{ROOT}.emulator._app"]


def test_the_emulator_imports_only_the_spec_and_itself() -> None:
    """upscale_async.emulator imports nothing of the SDK but upscale_async._spec."""
    bad = {
        (module, target)
        for module, targets in _imports().items()
        if _in(module, f"{ROOT}.emulator")
        for target in targets
        if not (_in(target, f"{ROOT}.emulator") or _in(target, f"{ROOT}._spec"))
    }
    assert bad == set()


def test_the_spec_imports_nothing_else_of_the_package() -> None:
    """upscale_async._spec is the bottom layer: it imports only itself."""
    bad = {
        (module, target)
        for module, targets in _imports().items()
        if _in(module, f"{ROOT}._spec")
        for target in targets
        if not _in(target, f"{ROOT}._spec")
    }
    assert bad == set()


@pytest.mark.parametrize("product", ["cli", "testing", "emulator", "webhooks", "otel"])
def test_the_core_never_imports_the_other_products(product: str) -> None:
    """The SDK core never imports the CLI, the test kit, the emulator or the webhook kit."""
    bad = {
        (module, target)
        for module, targets in _imports().items()
        if _is_core(module)
        for target in targets
        if _in(target, f"{ROOT}.{product}")
    }
    assert bad == set()


def test_there_is_no_import_cycle() -> None:
    """No module reaches itself through imports, type-only and function-local ones included."""
    graph = _imports()
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            # A package's __init__ importing its own parts is how re-exports work, not a cycle.
            if _in(target, module) and _modules()[module].name == "__init__.py":
                continue
            if state.get(target) == 1:
                cycles.append([*stack[stack.index(target) :], target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert cycles == []


def test_importing_the_package_loads_no_cli_emulator_or_pytest() -> None:
    """A plain ``import upscale_async`` (and its webhooks and testing kits) stays light."""
    code = (
        "import sys, upscale_async, upscale_async.webhooks, upscale_async.testing\n"
        "heavy = [m for m in sys.modules if m.startswith(('upscale_async.cli', "
        "'upscale_async.emulator', 'pytest', '_pytest'))]\n"
        "print(heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


MAX_FUNCTION_LINES = 60


def test_no_function_is_longer_than_60_lines_unless_a_comment_says_why() -> None:
    """Functions stay short; a longer one carries a ``# Long: <why>`` comment above its def."""
    too_long = []
    for module, path in _modules().items():
        lines = path.read_text().splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            length = (node.end_lineno or node.lineno) - start + 1
            reason = lines[start - 2].strip() if start >= 2 else ""
            if length > MAX_FUNCTION_LINES and not reason.startswith("# Long: "):
                too_long.append(f"{module}.{node.name} ({length} lines)")
    assert too_long == []


# Third-party imports that only an optional part makes, and the extra that provides them.
OPTIONAL_IMPORTS = {
    "rich": "cli",  # the CLI's live display, imported when it is shown
    "pytest": "dev",  # only testing/pytest_plugin.py, which pytest itself loads
    "redis": "redis",  # only upscale_async/redis/, the shared parts
    "opentelemetry": "otel",  # only upscale_async/otel/, imported when the user imports it
}


def _declared_dependencies() -> set[str]:
    import tomllib

    project = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["project"]
    names = set()
    for requirement in project["dependencies"]:
        name = requirement.split(";")[0].strip()
        for stop in "<>=!~[ ":
            name = name.split(stop)[0]
        names.add(name.lower().replace("-", "_"))
    return names


def test_every_third_party_import_is_a_declared_dependency() -> None:
    """What the package imports is declared in pyproject.toml (or is an optional part's extra)."""
    imported: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {
        name
        for name in imported
        if name not in sys.stdlib_module_names and name not in (ROOT, "__future__")
    }
    undeclared = third_party - _declared_dependencies() - set(OPTIONAL_IMPORTS)
    assert undeclared == set()
