"""A faithful local Upscale API server (aiohttp.web) for development, tests and benchmarks.

``async with Emulator() as emu:`` serves the whole contract on ``emu.base_url``;
``python -m upscale_async.emulator`` runs it as a command; the ``upscale_emulator`` pytest
fixture (``upscale_async.testing``) runs it for any test.
"""

from __future__ import annotations

from ._config import (
    DEFAULT_API_KEY,
    DEFAULT_CREDITS,
    DEFAULT_WEBHOOK_SECRET,
    DeliveryPlan,
    EmulatorConfig,
)
from ._faults import ENDPOINTS, Fault, FaultInjector, FaultKind, FaultPlan, FaultRecord
from ._generation import DOC_EXAMPLE_ID
from ._server import Emulator
from ._state import DeliveryRecord, EmulatorState, GenerationRequest
from ._webhooks import retry_delay

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_CREDITS",
    "DEFAULT_WEBHOOK_SECRET",
    "DOC_EXAMPLE_ID",
    "DeliveryPlan",
    "DeliveryRecord",
    "ENDPOINTS",
    "Emulator",
    "EmulatorConfig",
    "EmulatorState",
    "Fault",
    "FaultInjector",
    "FaultKind",
    "FaultPlan",
    "FaultRecord",
    "GenerationRequest",
    "retry_delay",
]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type):
        _obj.__module__ = __name__
del _name, _obj
