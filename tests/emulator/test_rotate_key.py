"""Emulator.rotate_key: the account moves to a new key and the old one is revoked at once."""

from __future__ import annotations

import aiohttp
import pytest

from upscale_async.emulator import Emulator
from upscale_async.testing import sample_campaign, sample_leads


async def test_rotate_key_moves_the_account_and_revokes_the_old_key() -> None:
    """After rotate_key the old key gets 401 'revoked'; the new one sees the old requests."""
    async with Emulator(credits=50) as emu, aiohttp.ClientSession() as s:
        old = emu.api_key
        body = {**sample_campaign(), "lead_data": sample_leads(2)}
        async with s.post(
            f"{emu.base_url}/messages/request_message_generation",
            json=body,
            headers={"Api-Key": old},
        ) as r:
            request_id = (await r.json())["secure_request_id"]
        credits = emu.state.credits()
        new = emu.rotate_key("new-key")
        assert (new, emu.api_key) == ("new-key", "new-key")
        assert emu.state.credits() == credits
        url = f"{emu.base_url}/messages/retrieve_messages"
        params = {"request_message_generation_secure_request_id": request_id}
        async with s.get(url, params=params, headers={"Api-Key": old}) as r:
            assert r.status == 401
            assert "revoked" in (await r.text()).lower()
        async with s.get(url, params=params, headers={"Api-Key": new}) as r:
            assert r.status in (200, 202)


def test_rotate_key_refuses_unknown_and_reused_keys() -> None:
    """An unknown old key, or a new key in use or revoked, raises ValueError naming it."""
    emu = Emulator(api_keys=("a", "b"))
    with pytest.raises(ValueError, match="'zz' is not a valid key"):
        emu.rotate_key("c", old_key="zz")
    with pytest.raises(ValueError, match="'b' is blank, in use or revoked"):
        emu.rotate_key("b")
    generated = emu.rotate_key()
    assert generated.startswith("emu-key-")
    assert list(emu.state.accounts) == [generated, "b"]
    with pytest.raises(ValueError, match="in use or revoked"):
        emu.rotate_key("a", old_key="b")
