"""The pytest plugin (entry point ``pytest11``): the ``upscale_emulator`` fixture and marker.

The only module of the package that imports pytest; ``upscale_async.testing`` itself does not.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ._thread import EmulatorThread

__all__ = ["upscale_emulator"]

_MARKER = "upscale_emulator"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(**options): Emulator/EmulatorConfig keyword arguments for the "
        "upscale_emulator fixture",
    )


@pytest.fixture
def upscale_emulator(request: pytest.FixtureRequest) -> Iterator[EmulatorThread]:
    """A running Upscale emulator (``base_url``, ``api_key``, ``webhook_secret``, ``state``).

    Configure it with ``@pytest.mark.upscale_emulator(credits=10, ...)``.
    """
    options: dict[str, Any] = {}
    for marker in reversed(list(request.node.iter_markers(_MARKER))):
        if marker.args:
            pytest.fail(
                f"@pytest.mark.{_MARKER} takes keyword options only, e.g. "
                f"@pytest.mark.{_MARKER}(credits=5); got positional {marker.args!r}",
                pytrace=False,
            )
        options.update(marker.kwargs)
    with EmulatorThread(**options) as running:
        yield running
