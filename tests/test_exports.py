"""The public API: ``upscale_async.__all__`` is sorted and names every public object."""

from __future__ import annotations

import types

import upscale_async


def test_all_is_sorted() -> None:
    """__all__ is in sorted order."""
    assert upscale_async.__all__ == sorted(upscale_async.__all__)


def test_all_names_every_public_object() -> None:
    """Every public name of the package is in __all__, and every name in __all__ exists."""
    public = {
        name
        for name, value in vars(upscale_async).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    public.add("__version__")
    assert public == set(upscale_async.__all__)


def test_exports_report_the_package_module() -> None:
    """Exported classes show upscale_async as their module (readable reprs and tracebacks)."""
    for name in upscale_async.__all__:
        obj = getattr(upscale_async, name)
        if isinstance(obj, type):
            assert obj.__module__ == "upscale_async", name
