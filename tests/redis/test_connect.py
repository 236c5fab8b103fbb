"""Reaching Redis: the URL from the argument or UPSCALE_REDIS_URL, and a clear error naming it."""

from __future__ import annotations

import pytest

from upscale_async import ConfigurationError
from upscale_async.redis import RedisUnavailableError, connect, redis_url

from .conftest import free_port


async def test_connect_pings_the_server(redis_url: str) -> None:
    client = await connect(redis_url)
    try:
        assert await client.ping() is True
    finally:
        await client.aclose()


async def test_the_url_comes_from_the_environment(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("UPSCALE_REDIS_URL", redis_url)
    client = await connect()
    try:
        assert await client.ping() is True
    finally:
        await client.aclose()


async def test_an_unreachable_server_is_named_with_its_password_hidden() -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    with pytest.raises(RedisUnavailableError) as caught:
        await connect(url, timeout=1)
    message = str(caught.value)
    assert "cannot reach Redis at redis://***@127.0.0.1:" in message
    assert "hunter2" not in message
    assert caught.value.url.startswith("redis://***@127.0.0.1:")


def test_no_url_says_how_to_give_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UPSCALE_REDIS_URL", raising=False)
    with pytest.raises(ConfigurationError, match="set UPSCALE_REDIS_URL"):
        redis_url()


def test_a_url_of_another_scheme_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"must start with redis://.*'http://\*\*\*@h"):
        redis_url("http://user:pw@h:1")
