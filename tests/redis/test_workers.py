"""Four worker processes share one 20,000-lead batch through a RedisLedger; one is SIGKILLed.

Everything is asserted from the emulator's own state (the requests it stored, the posts of each
body, the charges) and from the survivors' results. The one window no HTTP client can close is
checked for what it is: a chunk the killed worker held (posted, its answer not yet recorded) is
posted again by its successor, and D8 answers that second post with the same request id and no
charge; every other chunk is posted exactly once.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import anyio
import pytest
from anyio.abc import Process

from upscale_async import BatchSubmission
from upscale_async.emulator import Emulator, Fault, FaultPlan
from upscale_async.redis._ledger import RedisLedger

WORKER = Path(__file__).with_name("ledger_worker.py")
LEADS = 20_000
CHUNK = 100  # ledger_worker.CHUNK_SIZE
BATCH = "workers"
ALL_IDS = {f"lead_{i:06d}" for i in range(LEADS)}


async def _leases_of(raw: object, namespace: str, worker_prefix: str) -> set[int]:
    """The chunks whose lease a worker holds (its tokens start with host:pid:)."""
    from redis.asyncio import Redis

    assert isinstance(raw, Redis)
    held = set()
    async for key in raw.scan_iter(match=f"{namespace}:ledger:{{{BATCH}}}:lease:*", count=1000):
        value = await raw.get(key)
        if value is not None and value.decode().startswith(worker_prefix):
            held.add(int(key.decode().rsplit(":", 1)[1]))
    return held


async def _kill_mid_run(raw: object, namespace: str, victim: Process, done_key: str) -> set[int]:
    """SIGKILL ``victim`` once the batch is under way and it holds a lease; its leased chunks.

    The victim is frozen (SIGSTOP) while its leases are read, so the chunks returned are exactly
    those it held when it died; when it held none at that moment it runs on and is tried again.
    """
    from redis.asyncio import Redis

    assert isinstance(raw, Redis)
    prefix = f"{socket.gethostname()}:{victim.pid}:"
    with anyio.fail_after(25):
        while True:
            assert victim.returncode is None, "the worker to kill ended before it was killed"
            if await raw.hlen(done_key) >= 40:
                victim.send_signal(signal.SIGSTOP)
                held = await _leases_of(raw, namespace, prefix)
                if held:
                    break
                victim.send_signal(signal.SIGCONT)
            await anyio.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    with anyio.fail_after(5):
        await victim.wait()
    return held


@pytest.mark.timeout(90)
async def test_four_workers_one_killed_post_every_chunk_once(
    redis_url: str, redis_namespace: str, tmp_path: Path
) -> None:
    """Every lead in exactly one request; only the killed worker's leased chunks posted twice."""
    from redis.asyncio import Redis

    raw = Redis.from_url(redis_url)
    done_key = f"{redis_namespace}:ledger:{{{BATCH}}}:done"
    workers: list[Process] = []
    try:
        with contextlib.ExitStack() as files:
            async with Emulator(webhook_secret=None) as emu:
                # Each post takes 0.15 s, so that chunks are in flight when the worker is killed.
                emu.faults.set(
                    "request_message_generation", FaultPlan(rate=1.0, choices=[Fault.slow(0.15)])
                )
                for n in range(4):
                    command = [sys.executable, str(WORKER), emu.base_url, emu.api_key, redis_url]
                    command += [redis_namespace, BATCH, str(LEADS), str(tmp_path / f"w{n}.json")]
                    err = files.enter_context((tmp_path / f"w{n}.err").open("wb"))
                    process = await anyio.open_process(
                        command, stdout=subprocess.DEVNULL, stderr=err
                    )
                    workers.append(process)
                killed = await _kill_mid_run(raw, redis_namespace, workers[0], done_key)
                with anyio.fail_after(60):
                    for worker in workers[1:]:
                        await worker.wait()
                state = emu.state
                posts = state.body_posts()
                async with RedisLedger(redis_url, batch=BATCH, namespace=redis_namespace) as ledger:
                    recorded = await ledger.accepted_requests()
    finally:
        for worker in workers:
            if worker.returncode is None:
                worker.kill()
                with anyio.move_on_after(5):
                    await worker.wait()
            await worker.aclose()
        await raw.aclose()
    for n, worker in enumerate(workers[1:], 1):
        err_text = (tmp_path / f"w{n}.err").read_text()
        assert worker.returncode == 0, f"worker {n} failed:\n{err_text}"

    # Every lead is in exactly one stored request, and no (lead, type) was charged twice.
    stored = Counter(row[0] for request in state.requests.values() for row in request.leads)
    assert set(stored) == ALL_IDS
    assert set(stored.values()) == {1}
    assert state.double_charges() == []

    # No chunk posted twice, except the chunks the killed worker held: D8 gave them one id.
    chunk_of = {sri: int(state.requests[sri].leads[0][0][5:]) // CHUNK for sri in posts}
    posted_twice = {chunk_of[sri] for sri, n in posts.items() if n == 2}
    assert max(posts.values()) <= 2
    assert killed, "the killed worker held no lease: nothing was in flight"
    assert posted_twice <= killed
    assert state.dedupe_hits == len(posted_twice)
    assert len(state.requests) == LEADS // CHUNK

    # The ledger holds one request per chunk, the one the emulator stored.
    assert sorted(r.first_index for r in recorded) == list(range(0, LEADS, CHUNK))
    assert {r.secure_request_id for r in recorded} == set(state.requests)

    # Each survivor accounts for the whole batch: every lead once, as accepted.
    for n in (1, 2, 3):
        result = BatchSubmission.from_json((tmp_path / f"w{n}.json").read_bytes())
        ids = Counter(lead_id for _, lead_id in result.accepted_lead_ids())
        assert set(ids) == ALL_IDS
        assert set(ids.values()) == {1}
        assert result.counts()["accepted"] == LEADS
        assert result.complete
        assert set(result.request_ids) <= set(state.requests)
    print(
        f"\nkilled worker held chunks {sorted(killed)}; posted twice (same id, D8): "
        f"{sorted(posted_twice)}; posts {sum(posts.values())} for {len(posts)} chunks"
    )
