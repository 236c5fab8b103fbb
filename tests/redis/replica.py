"""One receiver replica for tests/redis/test_replicas.py: a hub on RedisBackend and a receiver.

    python tests/redis/replica.py --redis URL --namespace NS --base-url URL --api-key KEY \\
        --secret WHSEC [--fallback 2.0]

Prints one JSON line ``{"port": P}`` once its WebhookReceiver listens on 127.0.0.1:P, then reads
commands from stdin, one a line:

- ``wait <id>``: await_completion(<id>) through the hub (fallback poll every ``--fallback`` s);
  when it returns, prints ``{"resolved": <id>, "via": "webhook" | "poll"}`` ("webhook" when the
  hub woke the waiter: a delivery to any replica; "poll" when only a fallback poll saw it).
  A wait that fails prints ``{"failed": <id>, "error": "..."}``.
- ``stats``: prints ``{"stats": {"received": [ids delivered here as new], "waiters": n}}``.
- ``quit``: stops (also on end of input).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from upscale_async import CompletionEvent, PollPolicy, UpscaleClient
from upscale_async.redis._backend import RedisBackend
from upscale_async.webhooks import (
    CompletionHub,
    StandardWebhooksVerifier,
    WebhookReceiver,
)


class ReplicaHub(CompletionHub):
    """A hub that records the ids delivered to it as new, and the ids whose waiter it woke."""

    def __init__(self, backend: RedisBackend) -> None:
        super().__init__(backend=backend)
        self.received: list[str] = []
        self.woken: set[str] = set()

    async def deliver(self, event: CompletionEvent) -> bool:
        new = await super().deliver(event)
        if new:
            self.received.append(event.secure_request_id)
        return new

    async def wait(self, secure_request_id: str, timeout: float | None = None) -> CompletionEvent:
        event = await super().wait(secure_request_id, timeout)
        self.woken.add(secure_request_id)
        return event


def say(line: dict[str, object]) -> None:
    sys.stdout.write(orjson.dumps(line).decode() + "\n")
    sys.stdout.flush()


async def await_one(
    client: UpscaleClient, hub: ReplicaHub, request_id: str, fallback: float
) -> None:
    try:
        await client.await_completion(
            request_id, hub=hub, poll=PollPolicy(fallback_interval=fallback), timeout=60
        )
    except Exception as exc:
        say({"failed": request_id, "error": f"{type(exc).__name__}: {exc}"})
        return
    say({"resolved": request_id, "via": "webhook" if request_id in hub.woken else "poll"})


async def main(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    hub = ReplicaHub(RedisBackend(args.redis, namespace=args.namespace, timeout=1.0))
    verifier = StandardWebhooksVerifier(args.secret)
    waiting: set[asyncio.Task[None]] = set()
    async with (
        hub,
        WebhookReceiver(hub, verifier=verifier) as receiver,
        UpscaleClient(args.api_key, base_url=args.base_url) as client,
    ):
        say({"port": receiver.port})
        while line := (await reader.readline()).decode().split():
            if line[0] == "wait":
                task = asyncio.create_task(await_one(client, hub, line[1], args.fallback))
                waiting.add(task)
                task.add_done_callback(waiting.discard)
            elif line[0] == "stats":
                stats = await hub.stats()
                say({"stats": {"received": hub.received, "waiters": stats.waiters}})
            elif line[0] == "quit":
                break
        for task in waiting:  # quitting: the waiters still pending are abandoned
            task.cancel()
        await asyncio.gather(*waiting, return_exceptions=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for name in ("--redis", "--namespace", "--base-url", "--api-key", "--secret"):
        parser.add_argument(name, required=True)
    parser.add_argument("--fallback", type=float, default=2.0)
    asyncio.run(main(parser.parse_args()))
