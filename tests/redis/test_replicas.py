"""Three receiver replicas (processes) behind a round-robin TCP forwarder, sharing one Redis.

The emulator's webhooks go to the forwarder (a load-balancer stand-in on 127.0.0.1), which hands
each connection to the next live replica; the waiters are spread over the replicas. One replica
is killed mid-run and the test-owned redis-server is restarted mid-run: every waiter on the
surviving replicas resolves exactly once, most of them by a webhook that another replica received.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from upscale_async.emulator import Emulator
from upscale_async.testing import make_campaign, sample_lead

from .conftest import RedisServer

REPLICA = Path(__file__).resolve().parent / "replica.py"
ROUNDS = 24  # bursts of requests, ROUND_GAP s apart
PER_ROUND = 6  # requests per burst, completed at once: the webhooks open several connections
ROUND_GAP = 0.25
KILL_AT = 8  # the round after which replica 3 is killed
RESTART_AT = 16  # the round after which Redis is restarted
FALLBACK = 2.0  # the replicas' fallback poll interval


class Forwarder:
    """Round-robin TCP forwarding on 127.0.0.1: each connection to the next replica that answers."""

    def __init__(self, ports: list[int]) -> None:
        self.ports = ports
        self.next = itertools.count()
        self.connections: Counter[int] = Counter()
        self.server: asyncio.Server | None = None
        self.pipes: set[asyncio.Task[None]] = set()
        self.writers: set[asyncio.StreamWriter] = set()

    async def __aenter__(self) -> Forwarder:
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:  # the pipes then end by themselves
            writer.close()
        async with asyncio.timeout(5):
            await asyncio.gather(*self.pipes, return_exceptions=True)
        await self.server.wait_closed()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/upscale/webhook"

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.pipes.add(task)
        self.writers.add(writer)
        try:
            upstream = await self.connect()
            if upstream is None:
                return
            up_reader, up_writer = upstream
            self.writers.add(up_writer)
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        finally:
            writer.close()
            self.pipes.discard(task)

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        for _ in range(len(self.ports)):
            port = self.ports[next(self.next) % len(self.ports)]
            try:
                upstream = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                continue  # that replica is gone: the next one
            self.connections[port] += 1
            return upstream
        return None


async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy until either side closes (a killed replica resets its connections)."""
    with contextlib.suppress(OSError):
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    sink.close()


class Replica:
    """One replica process and what it printed."""

    def __init__(self, process: asyncio.subprocess.Process, name: str) -> None:
        self.process = process
        self.name = name
        self.port = 0
        self.resolved: list[tuple[str, str]] = []
        self.failed: list[dict[str, Any]] = []
        self.stats: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), 20)
        assert line, f"replica {self.name} did not start"
        self.port = orjson.loads(line)["port"]
        self.reader = asyncio.create_task(self.read())

    async def read(self) -> None:
        assert self.process.stdout is not None
        while line := await self.process.stdout.readline():
            data = orjson.loads(line)
            if "resolved" in data:
                self.resolved.append((data["resolved"], data["via"]))
            elif "failed" in data:
                self.failed.append(data)
            elif "stats" in data:
                self.stats.set_result(data["stats"])

    async def send(self, command: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")
        await self.process.stdin.drain()


@contextlib.asynccontextmanager
async def replicas(n: int, emu: Emulator, redis_url: str) -> AsyncIterator[list[Replica]]:
    started: list[Replica] = []
    try:
        for i in range(n):
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(REPLICA),
                *("--redis", redis_url, "--namespace", "upscale-test:replicas"),
                *("--base-url", emu.base_url, "--api-key", emu.api_key),
                *("--secret", emu.webhook_secret or "", "--fallback", str(FALLBACK)),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            started.append(Replica(process, f"r{i + 1}"))
        for replica in started:
            await replica.start()
        yield started
    finally:
        for replica in started:
            if replica.process.returncode is None:
                replica.process.kill()
            await replica.process.wait()
            if replica.reader is not None:
                await replica.reader


async def submit(session: aiohttp.ClientSession, emu: Emulator, url: str, i: int) -> str:
    async with session.post(
        f"{emu.base_url}/messages/request_message_generation",
        data=orjson.dumps(_body(url, i)),
        headers={"Api-Key": emu.api_key, "Content-Type": "application/json"},
    ) as response:
        assert response.status == 200, await response.text()
        request_id: str = (await response.json())["secure_request_id"]
        return request_id


def _body(url: str, i: int) -> dict[str, Any]:
    campaign = make_campaign(completion_notification_url=url)
    return {**campaign.to_wire(), "lead_data": [sample_lead(i)]}


async def until(condition: Callable[[], bool], timeout: float) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


async def test_replicas_share_wakeups_through_a_kill_and_a_redis_restart(
    redis_server_factory: Callable[[], RedisServer],
) -> None:
    """Every waiter on the surviving replicas resolves exactly once; most by another's webhook."""
    started = time.monotonic()
    server = redis_server_factory()
    async with (
        Emulator(webhook_time_scale=0.001) as emu,
        replicas(3, emu, server.url) as (r1, r2, r3),
        Forwarder([r1.port, r2.port, r3.port]) as forwarder,
        aiohttp.ClientSession() as session,
    ):
        assigned: dict[str, Replica] = {}
        for round_ in range(ROUNDS):
            ids = await asyncio.gather(
                *(
                    submit(session, emu, forwarder.url, round_ * PER_ROUND + j)
                    for j in range(PER_ROUND)
                )
            )
            for j, request_id in enumerate(ids):
                live = (r1, r2) if round_ > KILL_AT else (r1, r2, r3)
                replica = live[(round_ + j) % len(live)]
                assigned[request_id] = replica
                await replica.send(f"wait {request_id}")
            if round_ == KILL_AT:
                r3.process.send_signal(signal.SIGKILL)
            if round_ == RESTART_AT:
                await asyncio.to_thread(server.restart)
            await asyncio.sleep(ROUND_GAP)
        survivors = (r1, r2)
        expected = {i for i, r in assigned.items() if r in survivors}
        await until(
            lambda: sum(len(r.resolved) + len(r.failed) for r in survivors) >= len(expected),
            timeout=FALLBACK * 3 + 5,
        )
        await asyncio.sleep(0.5)  # time for a second (wrong) resolution to show up
        for replica in survivors:
            await replica.send("stats")
        stats = [await asyncio.wait_for(r.stats, 5) for r in survivors]
    for replica in survivors:
        assert replica.failed == []
        resolved = [request_id for request_id, _ in replica.resolved]
        assert Counter(resolved).most_common(1)[0][1] == 1, "an id resolved twice"
        assert set(resolved) == {i for i in expected if assigned[i] is replica}
    assert [s["waiters"] for s in stats] == [0, 0]
    received_by = {i: name for s, name in zip(stats, "12", strict=True) for i in s["received"]}
    crossed = [
        request_id
        for replica, name in zip(survivors, "12", strict=True)
        for request_id, via in replica.resolved
        if via == "webhook" and received_by.get(request_id) not in (None, name)
    ]
    via = Counter(v for r in survivors for _, v in r.resolved)
    assert len(crossed) >= len(expected) // 4, (via, len(crossed), forwarder.connections)
    assert via["webhook"] >= len(expected) // 2, via
    assert len(forwarder.connections) == 3  # every replica got connections
    assert time.monotonic() - started < 60
