"""A real Redis for the tests of the shared parts (never a fake).

Where it comes from, in order: ``UPSCALE_TEST_REDIS_URL``; else a server at 127.0.0.1:6379; else
``redis-server`` from PATH, started on a free loopback port for the session. Without any of them
these tests skip, saying how to provide one; under CI (``CI`` set) they fail instead, so CI
never passes by skipping them.

Each test gets its own namespace (``redis_namespace``), and its keys are deleted afterwards.
Tests that restart Redis use ``redis_server_factory``: a test-owned ``redis-server`` they may
stop and start again on the same port.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

HOW = (
    "set UPSCALE_TEST_REDIS_URL=redis://127.0.0.1:PORT/0, run a Redis server at "
    "127.0.0.1:6379, or put redis-server on PATH (apt install redis-server), and "
    "pip install -e '.[dev]' for the redis client"
)


def _missing(reason: str) -> None:
    message = f"no Redis for the shared-part tests: {reason}; {HOW}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI must run these tests, not skip them)")
    pytest.skip(message)


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A ``redis-server`` owned by one test: nothing on disk, loopback only, restartable."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        self.process = subprocess.Popen(
            [
                binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not _answers("127.0.0.1", self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a Redis these tests may use (see the module's docstring)."""
    try:
        import redis  # noqa: F401
    except ImportError:
        _missing("the 'redis' package is not installed")
    url = os.environ.get("UPSCALE_TEST_REDIS_URL")
    if url:
        yield url
        return
    if _answers("127.0.0.1", 6379):
        yield "redis://127.0.0.1:6379/0"
        return
    if shutil.which("redis-server") is None:
        _missing("nothing answers at 127.0.0.1:6379 and redis-server is not on PATH")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
async def redis_namespace(redis_url: str) -> AsyncIterator[str]:
    """A namespace no other test uses; its keys are deleted when the test ends."""
    from redis.asyncio import Redis

    namespace = f"upscale-test:{uuid.uuid4().hex[:12]}"
    yield namespace
    client = Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{namespace}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
def redis_server_factory(tmp_path: Path) -> Iterator[type[RedisServer] | object]:
    """``start()`` a test-owned, restartable redis-server (skips without redis-server)."""
    if shutil.which("redis-server") is None:
        _missing("redis-server is not on PATH (the restart tests own their server)")
    servers: list[RedisServer] = []

    def start() -> RedisServer:
        server = RedisServer(tmp_path / f"redis{len(servers)}")
        server.directory.mkdir()
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        with contextlib.suppress(Exception):
            server.stop()
