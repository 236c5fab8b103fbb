"""Reaching Redis: the URL from the argument or UPSCALE_REDIS_URL, and a clear error naming it."""

from __future__ import annotations

import pytest

from upscale_async import ConfigurationError
from upscale_async.redis import RedisUnavailableError, connect, redis_url
from upscale_async.redis._connect import redact_redis_url

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


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:p@ss:w0rd@127.0.0.1:6379/0", "redis://***@127.0.0.1:6379/0"),
        ("redis://user:a@b@c@10.0.0.1/2", "redis://***@10.0.0.1/2"),
        ("rediss://:s/cret@host:6380/0", "rediss://***@host:6380/0"),
        (
            "redis://127.0.0.1:6379/0?password=hunter2&db=1",
            "redis://127.0.0.1:6379/0?password=***&db=1",
        ),
        (
            "unix:///run/redis.sock?db=0&Password=hunter2",
            "unix:///run/redis.sock?db=0&Password=***",
        ),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ],
)
def test_every_part_of_a_password_is_hidden(url: str, shown: str) -> None:
    """A password holding ``@`` or ``/`` (which redis-py accepts) or given as a query argument."""
    assert redact_redis_url(url) == shown
