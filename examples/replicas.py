"""Two replicas sharing completion through Redis: a webhook one receives wakes the other's waiter.

    python examples/replicas.py                                  # Redis at 127.0.0.1:6379
    python examples/replicas.py --redis rediss://:secret@redis.internal:6380/0

In production each replica is its own process (or pod) behind the load balancer that Upscale's
webhooks reach, and each runs the same code: a CompletionHub on a RedisBackend (the same Redis and
namespace everywhere in the deployment) and a webhook route. Here both replicas run in one process
against a local emulator, so the example needs nothing but Redis: Upscale's webhooks all land on
replica A, while the requests are awaited on replica B. B's fallback poll is a minute away, so
results in a second or two mean that A's deliveries woke B's waiters through Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid

from upscale_async import BatchPolicy, PollPolicy, UpscaleClient
from upscale_async.emulator import Emulator
from upscale_async.redis import RedisBackend, RedisUnavailableError, connect
from upscale_async.testing import make_campaign, make_leads
from upscale_async.webhooks import CompletionHub, StandardWebhooksVerifier, WebhookReceiver


async def main(redis_url: str) -> None:
    # One namespace per deployment ("upscale:prod"); a fresh one here, removed at the end.
    namespace = f"upscale-example:{uuid.uuid4().hex[:8]}"
    async with Emulator(messages_per_second=200, webhook_time_scale=0.01) as emu:
        verifier = StandardWebhooksVerifier(emu.webhook_secret or "")
        async with (
            CompletionHub(backend=RedisBackend(redis_url, namespace=namespace)) as hub_a,
            CompletionHub(backend=RedisBackend(redis_url, namespace=namespace)) as hub_b,
            WebhookReceiver(hub_a, verifier=verifier) as replica_a,
            WebhookReceiver(hub_b, verifier=verifier),  # replica B's route: idle here
            UpscaleClient(emu.api_key, base_url=emu.base_url) as client,
        ):
            print(f"replica A receives the webhooks at {replica_a.url}")
            campaign = make_campaign(completion_notification_url=replica_a.url)
            batch = await client.submit_batch(
                campaign, make_leads(40, no_web_presence_every=8), batch=BatchPolicy(chunk_size=10)
            )
            started = time.monotonic()
            results = await client.await_completion(
                batch, hub=hub_b, poll=PollPolicy(fallback_interval=60), timeout=120
            )
            seconds = time.monotonic() - started
            generated = sum(lead.has_messages for result in results for lead in result.leads)
            print(
                f"replica B: {len(results)} requests complete in {seconds:.1f} s "
                f"({generated} of {batch.accepted_count} leads personalised), woken by the "
                "webhooks replica A received"
            )
            print(f"replica B's hub: {await hub_b.stats()}")
    client = await connect(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{namespace}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--redis",
        default=os.environ.get("UPSCALE_REDIS_URL", "redis://127.0.0.1:6379/0"),
        help="the Redis URL (default: $UPSCALE_REDIS_URL, else redis://127.0.0.1:6379/0)",
    )
    try:
        asyncio.run(main(parser.parse_args().redis))
    except RedisUnavailableError as exc:
        sys.exit(f"replicas.py: {exc} (start one, or pass --redis URL)")
