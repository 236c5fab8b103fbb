"""Benchmark: how many leads per second the emulator accepts, and its memory per stored lead.

Run: ``python benchmarks/bench_emulator.py [--requests 400] [--leads 100] [--concurrency 16]``

Throughput: the emulator runs as its command (``python -m upscale_async.emulator``) in a separate
process, with instant generation, no faults and no webhooks; this process posts pre-serialised
100-lead bodies (unique lead ids, two message types) with a plain aiohttp client. The target is at
least 20,000 leads/s on a 2-core machine.

Memory: requests are submitted straight to the engine in this process, and tracemalloc measures
what stays allocated per stored lead (lead row, charge and dedupe ledgers, request record).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import aiohttp
import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from upscale_async.emulator import Emulator  # noqa: E402

TYPES = ("connection_request", "first_follow_up")


def body(request: int, leads: int) -> dict[str, Any]:
    return {
        "completion_notification_url": "http://127.0.0.1:9/hook",
        "automation_tool_customer_id": "customer_bench",
        "automation_tool_campaign_id": "campaign_bench",
        "automation_tool_campaign_name": "Benchmark campaign",
        "proposition_company_name": "Acme Corporation",
        "proposition_company_url": "https://www.acmecorp.com",
        "message_sequence": [{"step": n, "messageType": t} for n, t in enumerate(TYPES, 1)],
        "tone_preference": "normal",
        "lead_data": [
            {
                "automation_tool_lead_id": f"lead_{request:06d}_{i:04d}",
                "lead_linkedin": f"https://linkedin.com/in/person-{request}-{i}",
                "lead_company": f"Company {request} {i} Ltd",
                "first_name": f"First{i}",
                "last_name": f"Last{request}",
                "lead_company_website_url": f"https://www.company-{request}-{i}.example",
                "lead_specified_url": None,
            }
            for i in range(leads)
        ],
    }


def start_server(credits: int) -> tuple[subprocess.Popen[str], str]:
    """The emulator command on a free port, and its base URL."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "upscale_async.emulator", "--port", "0", "--no-webhooks"]
    server = subprocess.Popen(
        [*command, "--credits", str(credits)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert server.stdout is not None
    for line in server.stdout:
        if line.startswith("base_url: "):
            return server, line.split(": ", 1)[1].strip()
    raise RuntimeError("the emulator command did not start")


async def throughput(base_url: str, requests: int, leads: int, concurrency: int) -> float:
    bodies = [orjson.dumps(body(r, leads)) for r in range(requests)]
    url = base_url + "/messages/request_message_generation"
    headers = {"Api-Key": "upscale-emulator-key", "Content-Type": "application/json"}
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for data in bodies:
        queue.put_nowait(data)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        # Warm up the connection pool and the server's code paths.
        async with session.post(url, data=orjson.dumps(body(999_999, leads)), headers=headers):
            pass

        async def worker() -> None:
            while not queue.empty():
                data = queue.get_nowait()
                async with session.post(url, data=data, headers=headers) as response:
                    await response.read()
                    assert response.status == 200, response.status

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return requests * leads / elapsed


async def memory_per_lead(requests: int, leads: int) -> float:
    emu = Emulator(webhook_secret=None, credits=10**9)
    raw = [orjson.dumps(body(r, leads)) for r in range(requests)]
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for data in raw:
        parsed = orjson.loads(data)
        assert emu.engine.submit(emu.api_key, parsed, TYPES) is not None
        del parsed
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / (requests * leads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--leads", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    server, base_url = start_server(credits=(args.requests + 1) * args.leads * len(TYPES))
    try:
        rate = asyncio.run(throughput(base_url, args.requests, args.leads, args.concurrency))
    finally:
        server.terminate()
        server.wait(10)
    print(
        f"throughput: {rate:,.0f} leads/s accepted "
        f"({args.requests} requests x {args.leads} leads, {len(TYPES)} types, "
        f"concurrency {args.concurrency}, server in its own process)"
    )
    per_lead = asyncio.run(memory_per_lead(200, args.leads))
    print(f"memory: {per_lead:,.0f} bytes per stored lead ({len(TYPES)} message types each)")


if __name__ == "__main__":
    main()
