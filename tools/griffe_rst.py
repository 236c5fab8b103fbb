"""Griffe extension (mkdocs.yml): the docstrings' reST markup as the API reference's Markdown.

The docstrings are Google style with two reST habits that Markdown does not know:

- Roles (``:class:`CompletionHub```, ``:meth:`wait```, ``:func:`~pkg.f```) become links to the
  object, resolved from the docstring's scope as Python would resolve the name. They are optional
  links: a name the reference does not render (a private helper, the standard library) stays
  plain code and is no ``--strict`` error.
- Literal blocks (a paragraph ending in ``::`` and the indented block after it) become fenced
  code blocks, Python highlighted when the block parses as Python. ``Example::`` becomes an
  "Example" admonition around the block.
"""

from __future__ import annotations

import ast
import functools
import re
import textwrap
from typing import Any

import griffe

_ROLE = re.compile(r":(?:py:)?(?:class|meth|func|attr|exc|data|mod|obj|const):`(~?)([^`]+)`")
_LITERAL = re.compile(r"^( *)(.*?)(\s*::)$")
_EXAMPLE = re.compile(r"Examples?")


def _python(code: str) -> bool:
    flags = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    try:
        compile(code, "<docstring>", "exec", flags=flags)
    except SyntaxError:
        return False
    return True


def _link(scope: griffe.Object, match: re.Match[str]) -> str:
    short, name = match.group(1), match.group(2).removesuffix("()")
    title = f"`{name.rsplit('.', 1)[-1] if short else name}`"
    head, dot, rest = name.partition(".")
    try:
        path = scope.resolve(head) + dot + rest
    except (griffe.NameResolutionError, griffe.AliasResolutionError):
        return title
    return f'<autoref identifier="{path}" optional>{title}</autoref>'


def _literal_blocks(text: str) -> str:
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        match = _LITERAL.match(lines[i])
        after = lines[i + 1 : i + 3]
        if not match or len(after) < 2 or after[0].strip():
            out.append(lines[i])
            i += 1
            continue
        indent, words, marker = match.groups()
        body_indent = len(indent) + 1
        end = i + 2
        while end < len(lines) and (
            not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) >= body_indent
        ):
            end += 1
        while not lines[end - 1].strip():
            end -= 1
        code = textwrap.dedent("\n".join(lines[i + 2 : end]))
        if end == i + 2 or not code.strip():
            out.append(lines[i])
            i += 1
            continue
        fence = ["```python" if _python(code) else "```text", *code.split("\n"), "```"]
        if _EXAMPLE.fullmatch(words):
            # A Google-style admonition: its content indented under "Example:".
            out.append(f"{indent}{words}:")
            out.extend(f"{indent}    {line}" if line else "" for line in fence)
        else:
            if words:
                out.extend([f"{indent}{words}{':' if marker == '::' else ''}", ""])
            out.extend(f"{indent}{line}" if line else "" for line in fence)
        i = end
    return "\n".join(out)


def _members(obj: griffe.Object) -> list[griffe.Object]:
    found = [obj]
    for member in obj.members.values():
        if not member.is_alias and isinstance(member, griffe.Object):
            found.extend(_members(member))
    return found


class RstMarkup(griffe.Extension):
    """Rewrites each docstring of the package once it is loaded (see the module docstring)."""

    def on_package(self, *, pkg: griffe.Module, **kwargs: Any) -> None:
        for obj in _members(pkg):
            if obj.docstring is None:
                continue
            scope = obj if obj.is_class or obj.is_module else obj.parent or obj
            text = _literal_blocks(obj.docstring.value)
            obj.docstring.value = _ROLE.sub(functools.partial(_link, scope), text)

    # Older Griffe (1.6, which the docs extra allows) calls this hook instead of on_package.
    on_package_loaded = on_package
