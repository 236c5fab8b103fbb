"""Fixtures for the emulator tests: a client session and webhook receivers on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from .support import Receiver


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


@pytest.fixture
async def receivers() -> AsyncIterator[Callable[..., Awaitable[Receiver]]]:
    started: list[Receiver] = []

    async def start(*args: Any, **kwargs: Any) -> Receiver:
        receiver = await Receiver(*args, **kwargs).start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        await receiver.stop()
