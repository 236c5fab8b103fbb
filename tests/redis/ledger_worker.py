"""One batch worker for tests/redis/test_workers.py: submit the shared batch through a RedisLedger.

    python tests/redis/ledger_worker.py BASE_URL API_KEY REDIS_URL NAMESPACE BATCH LEADS OUT

Every worker builds the same LEADS sample leads in the same order, submits them with
``ledger=RedisLedger(...)`` and writes its BatchSubmission (``to_json``) to OUT.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from upscale_async import BatchPolicy, UpscaleClient
from upscale_async.redis._ledger import RedisLedger
from upscale_async.testing import iter_sample_leads, make_campaign

CHUNK_SIZE = 100
CONCURRENCY = 2


async def main(args: argparse.Namespace) -> bytes:
    async with (
        RedisLedger(
            args.redis_url,
            batch=args.batch,
            namespace=args.namespace,
            lease_ttl=args.lease_ttl,
            recheck_interval=0.1,
        ) as ledger,
        UpscaleClient(args.api_key, base_url=args.base_url) as client,
    ):
        result = await client.submit_batch(
            make_campaign(),
            iter_sample_leads(args.leads),
            batch=BatchPolicy(chunk_size=CHUNK_SIZE, concurrency=CONCURRENCY),
            ledger=ledger,
        )
    return result.to_json_bytes()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    for name in ("base_url", "api_key", "redis_url", "namespace", "batch"):
        parser.add_argument(name)
    parser.add_argument("leads", type=int)
    parser.add_argument("out")
    parser.add_argument("--lease-ttl", type=float, default=4.0)
    arguments = parser.parse_args()
    Path(arguments.out).write_bytes(anyio.run(main, arguments))
