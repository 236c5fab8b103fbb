"""Which fast lead checks run: the compiled ones (``_plain_c``) or pure Python (``_plain``).

``pip install`` builds ``_plain_c`` when a C compiler is present (``hatch_build.py``). It is
used unless the environment variable ``UPSCALE_ASYNC_NO_EXTENSIONS`` is set (to anything but
``0`` or an empty string) when the package is first imported, or it was not built. Both give
the same answers; ``tests/spec/test_fast_path.py`` checks that they do.
"""

from __future__ import annotations

import os
from typing import Final

#: The variable that forces the pure-Python checks, as ``AIOHTTP_NO_EXTENSIONS`` does for aiohttp.
NO_EXTENSIONS_VARIABLE: Final = "UPSCALE_ASYNC_NO_EXTENSIONS"


def _disabled() -> bool:
    return os.environ.get(NO_EXTENSIONS_VARIABLE, "") not in ("", "0")


if _disabled():
    from ._plain import (
        add_new_ids,
        bind_lead_init,
        chunk_wire,
        init_lead,
        plain_leads,
        plain_wire,
        wrap_results,
    )

    COMPILED = False
else:
    try:
        from ._plain_c import (
            add_new_ids,
            bind_lead_init,
            chunk_wire,
            init_lead,
            plain_leads,
            plain_wire,
            wrap_results,
        )
    except ImportError:
        from ._plain import (
            add_new_ids,
            bind_lead_init,
            chunk_wire,
            init_lead,
            plain_leads,
            plain_wire,
            wrap_results,
        )

        COMPILED = False
    else:
        COMPILED = True


def extensions_active() -> bool:
    """True when the compiled fast path runs (the C lead checks), False for pure Python.

    ``pip install`` builds it when a C compiler is present; without one (or without Cython at
    build time) the install still succeeds and the same checks run in pure Python, with the
    same results and messages. Setting ``UPSCALE_ASYNC_NO_EXTENSIONS=1`` before the first
    import forces pure Python.
    """
    return COMPILED


__all__ = [
    "COMPILED",
    "NO_EXTENSIONS_VARIABLE",
    "add_new_ids",
    "bind_lead_init",
    "chunk_wire",
    "extensions_active",
    "init_lead",
    "plain_leads",
    "plain_wire",
    "wrap_results",
]
