"""The ``upscale-async`` command (also ``python -m upscale_async``); see :func:`main`.

It uses the SDK as any user would: the client, the webhook kit and the emulator.
"""

from ._main import main

__all__ = ["main"]
