"""One memory run in a fresh process: stream N generated lead dicts through submit_batch.

    python benchmarks/_memory_child.py N BASE_URL [--chunk-size 100] [--concurrency 8]

Prints one JSON line: the baseline RSS (peak so far, after imports and after a client with a
warm connection exists), the peak RSS after the batch (``ru_maxrss``, KiB on Linux), the
accounting counts and the time. The leads come from a generator and are never materialised.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from upscale_async import BatchPolicy, UpscaleClient
from upscale_async.testing import iter_sample_leads, make_campaign


def max_rss_kib() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def vm_hwm_kib() -> int | None:
    """The peak RSS of this program image (``VmHWM``, Linux only), as a cross-check."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


async def run(n: int, base_url: str, chunk_size: int, concurrency: int) -> dict[str, Any]:
    async with UpscaleClient("bench-key", base_url=base_url) as client:
        # One small request first, so the session and the code paths exist in the baseline.
        policy = BatchPolicy(chunk_size=chunk_size, concurrency=concurrency)
        await client.submit_batch(make_campaign(), iter_sample_leads(chunk_size), batch=policy)
        gc.collect()
        baseline = max_rss_kib()
        started = time.perf_counter()
        batch = await client.submit_batch(make_campaign(), iter_sample_leads(n), batch=policy)
        elapsed = time.perf_counter() - started
        peak = max_rss_kib()
        counts = batch.counts()
    return {
        "n": n,
        "chunk_size": chunk_size,
        "concurrency": concurrency,
        "baseline_kib": baseline,
        "peak_kib": peak,
        "vm_hwm_kib": vm_hwm_kib(),
        "seconds": elapsed,
        "counts": counts,
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int)
    parser.add_argument("base_url")
    parser.add_argument("--chunk-size", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    result = asyncio.run(run(args.n, args.base_url, args.chunk_size, args.concurrency))
    sys.stdout.write(orjson.dumps(result).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
