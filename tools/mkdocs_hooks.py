"""MkDocs hook (mkdocs.yml `hooks:`): each API reference page renders its module's __all__.

A line ``::: upscale_async.webhooks`` alone in a page under ``docs/reference/`` becomes the same
mkdocstrings directive with ``members`` set to that module's ``__all__``, imported when the site is
built: a name added to ``__all__`` appears without editing the page, in ``__all__``'s order
(mkdocstrings still groups attributes, classes and functions), and nothing outside ``__all__``
does. A directive with options of its own on the following lines is left as written. (Under
``mkdocs serve`` the module is imported once: restart it to see a name added to ``__all__``.)
"""

from __future__ import annotations

import importlib
import re
from typing import Any

_DIRECTIVE = re.compile(r"^::: (upscale_async(?:\.[a-z_]+)*)[ \t]*$(?!\n[ \t]+options:)", re.M)


def _with_members(match: re.Match[str]) -> str:
    name = match.group(1)
    exported = importlib.import_module(name).__all__
    members = "".join(f"\n        - {member}" for member in exported)
    return f"::: {name}\n    options:\n      members:{members}"


def on_page_markdown(markdown: str, *, page: Any, **_: Any) -> str | None:
    """Give each reference page's module directive the module's ``__all__`` as its members."""
    if not page.file.src_uri.startswith("reference/"):
        return None
    return _DIRECTIVE.sub(_with_members, markdown)
