"""The emulator's lifecycle: it closes cleanly, whatever its connections are doing."""

from __future__ import annotations

import asyncio
import gc
import socket
import warnings

import pytest

from upscale_async.emulator import Emulator


@pytest.mark.parametrize("turns", range(5))
async def test_closing_while_connections_are_being_accepted_leaks_nothing(turns: int) -> None:
    """Connections the loop accepted just before ``aclose`` are closed with the rest.

    asyncio accepts a connection in one turn of the loop and makes its transport in a later
    one; a server closed in between used to leave the accepted socket (and a half-made
    transport) open, a ResourceWarning. Some number of turns between the connects and
    ``aclose`` hits that window; the parameter tries each.
    """
    emulator = Emulator()
    await emulator.start()
    clients = [socket.create_connection(("127.0.0.1", emulator.port), timeout=5) for _ in range(3)]
    try:
        for _ in range(turns):
            await asyncio.sleep(0)
        await emulator.aclose()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            gc.collect()
    finally:
        for client in clients:
            client.close()
    assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []


async def test_a_closed_emulator_serves_no_more_and_can_start_again() -> None:
    """After ``aclose`` the port refuses connections; ``start`` binds a new one and serves."""
    emulator = Emulator()
    await emulator.start()
    port = emulator.port
    await emulator.aclose()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    await emulator.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", emulator.port)
        writer.write(b"GET /nowhere HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        assert (await reader.readline()).startswith(b"HTTP/1.1 404")
        writer.close()
        await writer.wait_closed()
    finally:
        await emulator.aclose()


async def test_a_closed_emulator_has_no_port() -> None:
    """After ``aclose`` ``port``, ``url`` and ``base_url`` raise, as before ``start``."""
    emulator = Emulator()
    async with emulator:
        assert emulator.base_url.startswith("http://127.0.0.1:")
    for handle in ("port", "url", "base_url"):
        with pytest.raises(RuntimeError, match="the emulator is not running"):
            getattr(emulator, handle)
    assert repr(emulator) == "<Emulator not running>"
