"""A faithful local Upscale API server (aiohttp.web) for development, tests and benchmarks.

``async with Emulator() as emu:`` serves the whole contract on ``emu.base_url``;
``python -m upscale_async.emulator`` runs it as a command; the ``upscale_emulator`` pytest
fixture (``upscale_async.testing``) runs it for any test.

Quick reference::

    async with Emulator(credits=100, messages_per_second=50, webhook_time_scale=0.001) as emu:
        emu.base_url, emu.api_key, emu.webhook_secret      # where and how to call it
        emu.faults.set("request_message_generation", [Fault.drop_after()])   # then behaves
        emu.set_delivery_plan(DeliveryPlan(drop_first=1, request_ids={some_id}))
        emu.add_credits(10)
        await emu.wait_deliveries()
        emu.state.credits(), emu.state.charge_counts(), emu.state.double_charges()
        emu.state.endpoint_counts, emu.state.deliveries, emu.state.faults
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
