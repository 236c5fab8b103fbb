"""await_completion's edges against the emulator: early webhooks, failed polls, errors."""

from __future__ import annotations

import anyio

from upscale_async import CompletionEvent, PollPolicy, UpscaleClient
from upscale_async.emulator import Emulator
from upscale_async.webhooks import CompletionHub

from .conftest import campaign, lead


async def test_a_webhook_before_retrieve_agrees_keeps_the_waiter_polling() -> None:
    """A webhook that arrives while retrieve still says in progress does not end the wait."""
    hub = CompletionHub()
    async with Emulator(webhook_secret=None, latency=0.6) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            accepted = await client.request_message_generation(campaign(), [lead(1)])
            request_id = accepted.secure_request_id
            await hub.deliver(CompletionEvent(secure_request_id=request_id, status="completed"))
            with anyio.fail_after(10):
                [result] = await client.await_completion(
                    request_id,
                    hub=hub,
                    poll=PollPolicy(initial=0.05, fallback_interval=30.0),
                    timeout=10,
                )
        assert result.is_complete
        assert emu.state.endpoint_counts["retrieve_messages"] >= 2
