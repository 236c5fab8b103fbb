"""The documentation site builds with ``mkdocs build --strict`` and documents the public surface.

The build (mkdocs.yml) runs once into a temporary directory; then every name in each public
module's ``__all__`` must have its heading in the built API reference (mkdocstrings gives each
documented object a heading whose ``id`` is its public path, ``upscale_async.webhooks.CompletionHub``),
and every ``## `` section of README.md must be on the guide page (docs/index.md includes the
README as it is when the site is built). Skipped without the ``docs`` extra; under CI (``CI`` set)
a missing extra is a failure instead.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from .test_public_api import PUBLIC_MODULES

ROOT = Path(__file__).resolve().parents[1]
DOCS_PACKAGES = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python")
BUILD_SECONDS = 50


class _Headings(HTMLParser):
    """Collects each heading's id and text: the whole page's (``ids``) and the h2s' (``h2``)."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.h2: list[str] = []
        self._h2: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if re.fullmatch(r"h[1-6]", tag):
            if heading_id := dict(attrs).get("id"):
                self.ids.add(heading_id)
            if tag == "h2":
                self._h2 = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2" and self._h2 is not None:
            self.h2.append("".join(self._h2).replace("¶", "").strip())
            self._h2 = None

    def handle_data(self, data: str) -> None:
        if self._h2 is not None:
            self._h2.append(data)


def _headings(*pages: Path) -> _Headings:
    parser = _Headings()
    for page in pages:
        parser.feed(page.read_text(encoding="utf-8"))
    return parser


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site built by ``mkdocs build --strict`` from the repository as it is now."""
    missing = [name for name in DOCS_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{', '.join(missing)} not installed: CI must install the 'docs' extra")
        pytest.skip(
            f"{', '.join(missing)} not installed (pip install -e '.[docs]' to build the site)"
        )
    out = tmp_path_factory.mktemp("site")
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,  # README.md is included from the working directory (pymdownx.snippets)
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=BUILD_SECONDS,
    )
    assert done.returncode == 0, f"mkdocs build --strict failed:\n{done.stdout}{done.stderr}"
    assert time.monotonic() - started < BUILD_SECONDS
    return out


@pytest.mark.parametrize("module", PUBLIC_MODULES)
def test_every_public_name_is_in_the_api_reference(site: Path, module: str) -> None:
    """Each name in the module's __all__ has a heading (its own anchor) in the API reference."""
    ids = _headings(*(site / "reference").rglob("*.html")).ids
    exported = importlib.import_module(module).__all__
    assert module in ids, f"no API reference page documents {module}"
    assert [name for name in exported if f"{module}.{name}" not in ids] == []


def test_the_guide_is_the_readme(site: Path) -> None:
    """Every ## section of README.md, as it is now, is an h2 of the site's guide page."""
    sections: list[str] = []
    fenced = False
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        fenced ^= line.startswith("```")
        if line.startswith("## ") and not fenced:
            sections.append(re.sub(r"[`*]", "", line[3:]).strip())
    assert sections
    assert sections == _headings(site / "index.html").h2
