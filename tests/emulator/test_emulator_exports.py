"""The emulator package's public surface."""

from __future__ import annotations

import upscale_async.emulator as emulator
import upscale_async.testing as testing


def test_all_is_sorted_and_complete() -> None:
    """__all__ is sorted, names only real objects, and covers every public name."""
    assert emulator.__all__ == sorted(emulator.__all__)
    public = {name for name in vars(emulator) if not name.startswith(("_", "@"))}
    public -= {"annotations"}
    assert set(emulator.__all__) == public
    assert testing.__all__ == sorted(testing.__all__)
    assert all(hasattr(testing, name) for name in testing.__all__)


def test_exported_classes_name_the_package() -> None:
    """Exported classes show ``upscale_async.emulator`` in reprs and tracebacks."""
    assert emulator.Emulator.__module__ == "upscale_async.emulator"
    assert emulator.FaultPlan.__module__ == "upscale_async.emulator"
