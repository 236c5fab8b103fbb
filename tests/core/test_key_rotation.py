"""A rotating API key: a callable api_key, asked again after a 401, against the emulator."""

from __future__ import annotations

import anyio
import pytest

from upscale_async import (
    AuthenticationError,
    ConfigurationError,
    PollPolicy,
    RetryPolicy,
    UpscaleClient,
)
from upscale_async.emulator import Emulator
from upscale_async.testing import sample_campaign, sample_leads

FAST = RetryPolicy(attempts=3, time_scale=0.0)


async def test_a_key_rotated_mid_wait_keeps_waiting() -> None:
    """await_completion goes on after the key is rotated: the 401 fetches the new key, once."""
    async with Emulator(messages_per_second=20, webhook_secret=None) as emu:
        current = {"key": emu.api_key}
        asked: list[str] = []

        async def key() -> str:
            asked.append(current["key"])
            return current["key"]

        poll = PollPolicy(initial=0.05, factor=1.0, jitter=0.0)
        async with UpscaleClient(key, base_url=emu.base_url, retry=FAST, poll=poll) as client:
            accepted = await client.request_message_generation(sample_campaign(), sample_leads(4))
            with anyio.fail_after(20):
                async with anyio.create_task_group() as tg:
                    results: list[object] = []

                    async def wait() -> None:
                        results.extend(await client.await_completion(accepted.secure_request_id))

                    tg.start_soon(wait)
                    await anyio.sleep(0.15)  # a few polls with the old key
                    current["key"] = emu.rotate_key()
            assert emu.state.endpoint_counts  # traffic happened
        assert len(results) == 1
        assert results[0].is_complete  # type: ignore[attr-defined]
        assert asked == [asked[0], current["key"]]  # first use, then once after the 401
        assert asked[0] != current["key"]


async def test_a_provider_returning_the_same_key_fails_after_one_more_ask() -> None:
    """A 401 asks the provider once more; the same key back raises the 401 with a note."""
    async with Emulator(api_keys=("good-key",), revoked_keys=("old-key",)) as emu:
        calls = 0

        def key() -> str:
            nonlocal calls
            calls += 1
            return "old-key"

        async with UpscaleClient(key, base_url=emu.base_url, retry=FAST) as client:
            with pytest.raises(AuthenticationError) as caught:
                await client.get_sequences()
    assert calls == 2
    assert any("returned the same key" in note for note in caught.value.__notes__)
    assert emu.state.endpoint_counts["get_sequences"] == 1


async def test_a_sync_provider_is_asked_once_when_the_key_is_good() -> None:
    """The provider is asked on first use only while the key works; views share the key."""
    async with Emulator() as emu:
        calls = 0

        def key() -> str:
            nonlocal calls
            calls += 1
            return emu.api_key

        async with UpscaleClient(key, base_url=emu.base_url, retry=FAST) as client:
            await client.get_sequences()
            await client.with_options(timeout=5).get_sequences()
    assert calls == 1


async def test_a_provider_returning_no_key_is_a_clear_error() -> None:
    """A provider that returns a blank or non-str key raises ConfigurationError naming it."""
    async with Emulator() as emu:
        async with UpscaleClient(lambda: "  ", base_url=emu.base_url, retry=FAST) as client:
            with pytest.raises(ConfigurationError, match="must return the current Upscale API key"):
                await client.get_sequences()


def test_api_key_must_be_a_str_or_callable() -> None:
    """An api_key that is neither a str nor callable is refused at construction."""
    with pytest.raises(ConfigurationError, match="api_key must be a str, or a function"):
        UpscaleClient(42, base_url="http://127.0.0.1:1")  # type: ignore[arg-type]
