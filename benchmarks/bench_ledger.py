"""What a shared batch ledger costs per chunk: Redis round trips and wall time.

    python benchmarks/bench_ledger.py [--quick]

``submit_batch`` posts to the minimal sink (``_sink.py``, its own process) three ways over the
same leads: without a ledger; with one ``RedisLedger`` (one worker); and with two ledgers on one
batch at once (two workers in this process, as two pods would share it). Round trips are counted
on the client side (every command a ``redis.asyncio.Redis`` sends, by name), so other users of
the same Redis server do not skew them. Redis comes from ``UPSCALE_REDIS_URL``, else
127.0.0.1:6379; without one the section prints a skip line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
for _path in (str(HERE), str(HERE.parent)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from _sink import start_sink, stop_sink  # noqa: E402

from upscale_async import BatchPolicy, BatchSubmission, UpscaleClient  # noqa: E402
from upscale_async.testing import make_campaign, sample_leads  # noqa: E402

Json = dict[str, Any]
CHUNK = 100
CONCURRENCY = 8
_CPU: list[float] = []  # this process's CPU seconds of each _submit, in order


def _redis_url() -> str:
    return os.environ.get("UPSCALE_REDIS_URL") or "redis://127.0.0.1:6379/0"


def _counting_client(url: str, counts: Counter[str]) -> Any:
    """A redis.asyncio.Redis that counts every command it sends (one round trip each)."""
    from redis.asyncio import Redis

    class Counting(Redis):  # type: ignore[misc]
        async def execute_command(self, *args: Any, **options: Any) -> Any:
            counts[str(args[0]).upper()] += 1
            return await super().execute_command(*args, **options)

    return Counting.from_url(url)


async def _submit(
    base_url: str, leads: list[dict[str, Any]], ledgers: list[Any] | None
) -> tuple[float, list[BatchSubmission]]:
    policy = BatchPolicy(chunk_size=CHUNK, concurrency=CONCURRENCY)
    async with UpscaleClient("bench-key", base_url=base_url) as client:
        started, cpu = time.perf_counter(), time.process_time()
        if ledgers is None:
            results = [await client.submit_batch(make_campaign(), leads, batch=policy)]
        else:
            results = list(
                await asyncio.gather(
                    *(
                        client.submit_batch(make_campaign(), leads, batch=policy, ledger=ledger)
                        for ledger in ledgers
                    )
                )
            )
        _CPU.append(time.process_time() - cpu)
        return time.perf_counter() - started, results


async def _with_ledgers(
    url: str, base_url: str, leads: list[dict[str, Any]], workers: int
) -> tuple[float, Counter[str], list[BatchSubmission]]:
    from upscale_async.redis._ledger import RedisLedger

    counts: Counter[str] = Counter()
    client = _counting_client(url, counts)
    batch = f"bench-{uuid.uuid4().hex[:8]}"
    opened = [
        RedisLedger(url, batch=batch, namespace="upscale-bench", client=client)
        for _ in range(workers)
    ]
    entered: list[Any] = []
    try:
        for ledger in opened:
            await ledger.__aenter__()
            entered.append(ledger)
        counts.clear()  # the pings of opening are not per chunk
        seconds, results = await _submit(base_url, leads, opened)
        measured = +counts
    finally:
        if entered:
            await entered[0].clear()  # the benchmark's keys, whatever happened
        for ledger in reversed(entered):
            await ledger.__aexit__(None, None, None)
        await client.aclose()
    return seconds, measured, results


async def _reachable(url: str) -> str | None:
    from upscale_async.redis import RedisUnavailableError, connect

    try:
        client = await connect(url, timeout=1.0)
    except (RedisUnavailableError, ImportError) as exc:
        return str(exc)
    await client.aclose()
    return None


def run(quick: bool) -> Json:
    """The figures of this section (a dict with ``skipped`` when there is no Redis)."""
    url = _redis_url()
    missing = asyncio.run(_reachable(url))
    if missing is not None:
        return {"skipped": f"no Redis ({missing}); set UPSCALE_REDIS_URL to run this section"}
    n = 5_000 if quick else 50_000
    rounds = 3 if quick else 5
    leads = sample_leads(n)
    chunks = n // CHUNK
    process, port = start_sink()
    base_url = f"http://127.0.0.1:{port}/api/v2"
    try:
        plain: list[float] = []
        one: list[float] = []
        two: list[float] = []
        cpu_plain: list[float] = []
        cpu_one: list[float] = []
        trips: dict[str, Counter[str]] = {}
        for _ in range(rounds):
            plain.append(asyncio.run(_submit(base_url, leads, None))[0])
            cpu_plain.append(_CPU[-1])
            seconds, counts, results = asyncio.run(_with_ledgers(url, base_url, leads, 1))
            cpu_one.append(_CPU[-1])
            one.append(seconds)
            trips["one worker"] = counts
            seconds, counts, results = asyncio.run(_with_ledgers(url, base_url, leads, 2))
            assert all(r.accepted_count == n for r in results)
            two.append(seconds)
            trips["two workers"] = counts
    finally:
        stop_sink(process)
    median = statistics.median
    return {
        "leads": n,
        "chunk_size": CHUNK,
        "concurrency": CONCURRENCY,
        "chunks": chunks,
        "rounds": rounds,
        "seconds": {"no ledger": median(plain), "one worker": median(one), "two": median(two)},
        "overhead_us_per_chunk": (median(one) - median(plain)) / chunks * 1e6,
        "client_cpu_us_per_chunk": {
            "no ledger": median(cpu_plain) / chunks * 1e6,
            "one worker": median(cpu_one) / chunks * 1e6,
        },
        "round_trips_per_chunk": {name: sum(c.values()) / chunks for name, c in trips.items()},
        "commands": {name: dict(c) for name, c in trips.items()},
    }


def _table(figures: Json) -> str:
    if "skipped" in figures:
        return f"skipped: {figures['skipped']}"
    s = figures["seconds"]
    rt = figures["round_trips_per_chunk"]
    cpu = figures["client_cpu_us_per_chunk"]
    return "\n".join(
        [
            f"{figures['leads']} leads, chunk {figures['chunk_size']}, concurrency "
            f"{figures['concurrency']}, {figures['chunks']} chunks, median of "
            f"{figures['rounds']} rounds, against the sink",
            f"  no ledger {s['no ledger']:.3f} s; one RedisLedger {s['one worker']:.3f} s "
            f"(+{figures['overhead_us_per_chunk']:.0f} us per chunk); two workers on one batch "
            f"{s['two']:.3f} s",
            f"  Redis round trips per chunk: one worker {rt['one worker']:.2f}, two workers "
            f"{rt['two workers']:.2f} (both together)",
            f"  client CPU per chunk: no ledger {cpu['no ledger']:.0f} us, one RedisLedger "
            f"{cpu['one worker']:.0f} us",
            f"  commands: {json.dumps(figures['commands'])}",
        ]
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    print(_table(run(parser.parse_args().quick)))
