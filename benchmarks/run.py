"""The upscale_async benchmark suite: one command, a table per section, every figure in JSON.

    python benchmarks/run.py [--quick] [--json OUT.json] [--only submit,cpu,memory,webhooks,e2e,ledger,replicas]

Sections (the targets come from issue 7 and issue 4; they are printed, never asserted):

1. ``submit``: leads/s posted to a minimal aiohttp sink in another process (``_sink.py``):
   ``submit_batch`` fed ``Lead`` objects and fed dicts, a raw-bytes aiohttp loop (bodies
   serialized beforehand), a naive sequential loop (``json.dumps``, one aiohttp session) and an
   ``httpx.AsyncClient`` loop; chunk 100 and 1000, concurrency 1, 8, 16 and 64. Every path runs
   in every round, in rotating order, and each ratio to raw bytes is taken within a round; the
   tables show medians over the rounds, and the CPU time this (client) process spent per lead,
   which the sink and other load on the machine do not inflate. Target: the SDK >= 0.6x raw
   bytes at chunk 100, concurrency 16.
2. ``cpu``: per-lead CPU with no network (timeit, median of >= 5 repeats): check_lead +
   encode_request for a 100-lead request (dicts; Lead objects add ``to_wire()``) next to a plain
   ``orjson.dumps`` of the dicts (target <= 1.0 us/lead); parsing a 10,000-lead x 3-message
   retrieve answer, ``orjson.loads`` + ``structure_retrieved`` next to ``orjson.loads`` alone
   (target <= 3.0 us/lead).
3. ``memory``: 10^5 and 10^6 generated leads streamed through submit_batch against the sink,
   each in a fresh process (``_memory_child.py``) reporting ``ru_maxrss``: growth per extra lead
   (target <= 150 B) and the peak at 10^6 (target <= 250 MB).
4. ``webhooks``: ``bench_webhooks.run(quick)`` (CompletionHub waiters, WebhookReceiver rate).
5. ``e2e``: against the emulator in its own process (``_emulator_proc.py``): 50,000 leads x 2
   message types through submit_batch + await_completion, by webhook and by polling; wall time,
   retrieve calls per request (the emulator's per-endpoint counts) and the floor set by the
   emulator's generation rate; plus ``bench_emulator`` (the emulator's own intake rate).

6. ``ledger``: ``bench_ledger.run(quick)``: what a shared ``RedisLedger`` costs per chunk (Redis
   round trips counted by the client, wall time against the sink; one worker and two workers on
   one batch). Without a Redis (``UPSCALE_REDIS_URL`` or 127.0.0.1:6379) it prints a skip line.

7. ``replicas``: ``bench_replicas.run(quick)``: ``RedisBackend`` across replica processes: the
   wake-up latency from a webhook POSTed to replica A to the waiter on replica B at 1,000
   webhooks/s (target p99 <= 50 ms), the deliveries/s two replicas sustain, and the Redis
   commands per delivery (``INFO commandstats``). Without a Redis it prints a skip line. Its soak
   (100,000 deliveries, Redis restarted twice) runs alone: ``bench_replicas.py --soak 100000``.

``--quick`` (CI smoke test) shrinks every section to finish in well under a minute.
Everything listens on 127.0.0.1 only; every child process is stopped on the way out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from types import ModuleType
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for _path in (str(HERE), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import aiohttp  # noqa: E402
import anyio  # noqa: E402
import httpx  # noqa: E402
import orjson  # noqa: E402
from _emulator_proc import EmulatorProcess  # noqa: E402
from _sink import start_sink, stop_sink  # noqa: E402

import upscale_async  # noqa: E402
from upscale_async import (  # noqa: E402
    BatchPolicy,
    Campaign,
    Lead,
    MessageType,
    PollPolicy,
    UpscaleClient,
)
from upscale_async._spec.validation import check_lead  # noqa: E402
from upscale_async._wire import encode_request, structure_retrieved  # noqa: E402
from upscale_async.testing import iter_sample_leads, make_campaign, sample_leads  # noqa: E402

SECTIONS = ("submit", "cpu", "memory", "webhooks", "e2e", "ledger", "replicas")
API_KEY = "bench-key"
TYPES = (MessageType.CONNECTION_REQUEST, MessageType.FIRST_FOLLOW_UP)

TARGET_SUBMIT_RATIO = 0.6
NO_EXTENSIONS = "UPSCALE_ASYNC_NO_EXTENSIONS"  # forces the pure-Python lead checks
TARGET_SERIALIZE_US = 1.0
TARGET_PARSE_US = 2.5  # issue 15 (issue 7 asked 3.0); or <= TARGET_PARSE_X orjson.loads
TARGET_PARSE_X = 1.2
TARGET_CHUNK_US = 0.4  # issue 15: build + validate + serialize per lead, compiled path
TARGET_GROWTH_B = 150.0
TARGET_PEAK_MB = 250.0

Json = dict[str, Any]


# -- shared data -------------------------------------------------------------------------------


def bench_campaign(url: str = "http://127.0.0.1:9/hook") -> Campaign:
    return make_campaign(completion_notification_url=url, message_types=TYPES)


def leads_from(dicts: Sequence[dict[str, Any]]) -> list[Lead]:
    return [
        Lead(
            automation_tool_lead_id=d["automation_tool_lead_id"],
            lead_linkedin=d["lead_linkedin"],
            lead_company=d["lead_company"],
            first_name=d["first_name"],
            last_name=d["last_name"],
            lead_company_website_url=d["lead_company_website_url"],
            lead_specified_url=d["lead_specified_url"],
        )
        for d in dicts
    ]


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def machine() -> Json:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_at_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "aiohttp": aiohttp.__version__,
        "httpx": httpx.__version__,
        "orjson": orjson.__version__,
        "anyio": getattr(anyio, "__version__", None) or _dist_version("anyio"),
        "upscale_async": upscale_async.__version__,
        "git_head": commit,
    }


def _dist_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


def fmt_rate(value: float) -> str:
    if value != value:  # NaN
        return "-"
    if value >= 1e6:
        return f"{value / 1e6:.2f}M"
    if value >= 1e3:
        return f"{value / 1e3:.0f}k"
    return f"{value:.0f}"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


# -- 1. submit throughput ----------------------------------------------------------------------

PATHS = ("raw_bytes", "sdk_leads", "sdk_dicts", "naive", "httpx")
PATH_TITLES = {
    "raw_bytes": "raw bytes",
    "sdk_leads": "SDK Lead",
    "sdk_dicts": "SDK dicts",
    "naive": "naive seq.",
    "httpx": "httpx",
}
JSON_HEADERS = {"Content-Type": "application/json", "Api-Key": API_KEY}


class SubmitBench:
    """Every client path against one sink; each call returns (leads sent, seconds)."""

    def __init__(self, port: int, pool_dicts: list[dict[str, Any]], slow_seconds: float) -> None:
        self.base_url = f"http://127.0.0.1:{port}/api/v2"
        self.url = self.base_url + "/messages/request_message_generation"
        self.campaign = bench_campaign()
        self.campaign_wire = self.campaign.to_wire()
        self.campaign_bytes = orjson.dumps(self.campaign_wire)
        self.dicts = pool_dicts
        self.slow_seconds = slow_seconds
        self.cpu = 0.0  # process CPU seconds of the last timed run (this process only)
        self._bodies: dict[int, list[bytes]] = {}

    def bodies(self, chunk: int) -> list[bytes]:
        if chunk not in self._bodies:
            self._bodies[chunk] = [
                encode_request(self.campaign_bytes, self.dicts[i : i + chunk])
                for i in range(0, len(self.dicts), chunk)
            ]
        return self._bodies[chunk]

    async def run(self, path: str, chunk: int, concurrency: int) -> tuple[int, float]:
        method: Callable[[int, int], Any] = getattr(self, f"_{path}")
        result: tuple[int, float] = await method(chunk, concurrency)
        return result

    async def _sdk(
        self, pool: Callable[[], Iterable[Any]], chunk: int, concurrency: int
    ) -> tuple[int, float]:
        """submit_batch of the whole pool; ``pool()`` gives the leads (called in the window)."""
        n = len(self.dicts)
        async with UpscaleClient(API_KEY, base_url=self.base_url) as client:
            warm = list(islice(pool(), chunk * min(concurrency, 16)))
            policy = BatchPolicy(chunk_size=chunk, concurrency=concurrency)
            await client.submit_batch(self.campaign, warm, batch=policy)
            started, cpu = time.perf_counter(), time.process_time()
            batch = await client.submit_batch(self.campaign, pool(), batch=policy)
            elapsed = time.perf_counter() - started
            self.cpu = time.process_time() - cpu
        if batch.accepted_count != n:
            raise RuntimeError(f"submit_batch accepted {batch.counts()} of {n} leads")
        return n, elapsed

    async def _sdk_leads(self, chunk: int, concurrency: int) -> tuple[int, float]:
        # Lead objects are built inside the timed window, as submit_batch pulls them: the
        # check a Lead runs when it is built is counted.
        return await self._sdk(lambda: (Lead(**d) for d in self.dicts), chunk, concurrency)

    async def _sdk_dicts(self, chunk: int, concurrency: int) -> tuple[int, float]:
        return await self._sdk(lambda: self.dicts, chunk, concurrency)

    async def _raw_bytes(self, chunk: int, concurrency: int) -> tuple[int, float]:
        bodies = self.bodies(chunk)
        url = self.url
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def worker(items: Iterator[bytes]) -> None:
                for body in items:
                    async with session.post(url, data=body, headers=JSON_HEADERS) as response:
                        await response.read()
                        if response.status != 200:
                            raise RuntimeError(f"sink answered {response.status}")

            warm = iter(bodies[: min(concurrency, 16)])
            await asyncio.gather(*(worker(warm) for _ in range(concurrency)))
            items = iter(bodies)
            started, cpu = time.perf_counter(), time.process_time()
            await asyncio.gather(*(worker(items) for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
            self.cpu = time.process_time() - cpu
        return len(self.dicts), elapsed

    async def _naive(self, chunk: int, concurrency: int) -> tuple[int, float]:
        # What a user writes by hand: sequential, json.dumps, one session (concurrency unused).
        del concurrency
        dicts = self.dicts
        async with aiohttp.ClientSession() as session:

            async def post(leads: list[dict[str, Any]]) -> str:
                body = json.dumps({**self.campaign_wire, "lead_data": leads})
                async with session.post(self.url, data=body, headers=JSON_HEADERS) as response:
                    answer = await response.json()
                    return str(answer["secure_request_id"])

            await post(dicts[:chunk])
            sent = 0
            started, cpu = time.perf_counter(), time.process_time()
            deadline = started + self.slow_seconds
            for i in range(0, len(dicts), chunk):
                if time.perf_counter() > deadline:
                    break
                part = dicts[i : i + chunk]
                await post(part)
                sent += len(part)
            elapsed = time.perf_counter() - started
            self.cpu = time.process_time() - cpu
        return sent, elapsed

    async def _httpx(self, chunk: int, concurrency: int) -> tuple[int, float]:
        dicts = self.dicts
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(limits=limits, timeout=60.0) as client:
            sent = 0

            async def worker(starts: Iterator[int], deadline: float) -> None:
                nonlocal sent
                for i in starts:
                    if time.perf_counter() > deadline:
                        return
                    part = dicts[i : i + chunk]
                    body = orjson.dumps({**self.campaign_wire, "lead_data": part})
                    response = await client.post(self.url, content=body, headers=JSON_HEADERS)
                    if response.status_code != 200:
                        raise RuntimeError(f"sink answered {response.status_code}")
                    response.json()
                    sent += len(part)

            warm = iter(range(0, chunk * min(concurrency, 16), chunk))
            far = time.perf_counter() + 60.0
            await asyncio.gather(*(worker(warm, far) for _ in range(concurrency)))
            sent = 0
            starts = iter(range(0, len(dicts), chunk))
            started, cpu = time.perf_counter(), time.process_time()
            deadline = started + self.slow_seconds
            await asyncio.gather(*(worker(starts, deadline) for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
            self.cpu = time.process_time() - cpu
        return sent, elapsed


#: ``--cells 100x16,1000x16``: the submit cells to run (default: the whole grid).
SUBMIT_CELLS: list[tuple[int, int]] | None = None
#: The acceptance figure of issue 15: client-CPU ratio at chunk 100, concurrency 16.
TARGET_CPU_RATIO = {"compiled": 0.65, "pure": 0.5}


def fast_path() -> str:
    """Which lead checks run in this process: "compiled" or "pure" (Python)."""
    return "compiled" if upscale_async.extensions_active() else "pure"


# Long: one loop over cells, rounds and paths, kept together so the interleaving is visible.
def section_submit(quick: bool) -> Json:
    pool_size = 20_000 if quick else 300_000
    rounds = 3 if quick else 5
    slow_seconds = 0.3 if quick else 1.5
    cells = SUBMIT_CELLS or (
        [(100, 16), (100, 1)] if quick else [(c, n) for c in (100, 1000) for n in (1, 8, 16, 64)]
    )
    process, port = start_sink()
    try:
        bench = SubmitBench(port, sample_leads(pool_size), slow_seconds)
        results: list[Json] = []
        print(_submit_header(), flush=True)
        for chunk, concurrency in cells:
            bench.bodies(chunk)
            runs: dict[str, dict[str, list[float]]] = {
                p: {"rate": [], "ratio": [], "cpu_ratio": [], "cpu_us": [], "use": []}
                for p in PATHS
            }
            for r in range(rounds):
                order = PATHS[r % len(PATHS) :] + PATHS[: r % len(PATHS)]
                this_round: dict[str, tuple[float, float, float]] = {}
                for path in order:
                    gc.collect()
                    sent, seconds = asyncio.run(bench.run(path, chunk, concurrency))
                    this_round[path] = (sent / seconds, bench.cpu / sent * 1e6, bench.cpu / seconds)
                raw_rate, raw_cpu, _ = this_round["raw_bytes"]
                for path, (rate, cpu_us, use) in this_round.items():
                    figures = runs[path]
                    figures["rate"].append(rate)
                    figures["ratio"].append(rate / raw_rate)
                    figures["cpu_ratio"].append(raw_cpu / cpu_us)
                    figures["cpu_us"].append(cpu_us)
                    figures["use"].append(use)
            row: Json = {"chunk_size": chunk, "concurrency": concurrency, "paths": {}}
            for path in PATHS:
                figures = runs[path]
                row["paths"][path] = {
                    "leads_per_s": median(figures["rate"]),
                    "ratio_to_raw": median(figures["ratio"]),
                    "cpu_ratio_to_raw": median(figures["cpu_ratio"]),
                    "client_cpu_us_per_lead": median(figures["cpu_us"]),
                    "client_cpu_use": median(figures["use"]),
                    "runs_leads_per_s": figures["rate"],
                    "runs_ratio_to_raw": figures["ratio"],
                    "runs_cpu_ratio_to_raw": figures["cpu_ratio"],
                    "runs_client_cpu_use": figures["use"],
                }
            results.append(row)
            print(_submit_row(row), flush=True)
    finally:
        stop_sink(process)
    return {
        "pool_leads": pool_size,
        "rounds": rounds,
        "fast_path": fast_path(),
        "slow_path_seconds": slow_seconds,
        "note": (
            "raw bytes, SDK Lead and SDK dicts send the whole pool (SDK Lead builds its Lead "
            "objects inside the timed window); naive and httpx stop taking new chunks after "
            "slow_path_seconds. Rates and ratios are medians over rounds; each ratio is taken "
            "within one round. cpu_ratio_to_raw: raw bytes' client CPU per lead / the path's, "
            "in the same round (the client-bound throughput ratio, which other load on the "
            "machine does not move); client_cpu_use: client CPU seconds / wall seconds (1.0: "
            "the client had a whole core; lower: it waited, or the machine was busy)."
        ),
        "cells": results,
        "summary": _submit_summary(results),
    }


def _submit_summary(results: list[Json]) -> Json:
    target = next((r for r in results if r["chunk_size"] == 100 and r["concurrency"] == 16), None)
    if target is None:
        return {}
    paths = target["paths"]
    wall = min(paths[p]["ratio_to_raw"] for p in ("sdk_leads", "sdk_dicts"))
    cpu = min(paths[p]["cpu_ratio_to_raw"] for p in ("sdk_leads", "sdk_dicts"))
    needed = TARGET_CPU_RATIO[fast_path()]
    return {
        "target": f"SDK >= {TARGET_SUBMIT_RATIO}x raw bytes at chunk 100, concurrency 16",
        "sdk_leads_ratio": paths["sdk_leads"]["ratio_to_raw"],
        "sdk_dicts_ratio": paths["sdk_dicts"]["ratio_to_raw"],
        "met": wall >= TARGET_SUBMIT_RATIO,
        "cpu_target": f"client-CPU ratio >= {needed} ({fast_path()} path)",
        "sdk_leads_cpu_ratio": paths["sdk_leads"]["cpu_ratio_to_raw"],
        "sdk_dicts_cpu_ratio": paths["sdk_dicts"]["cpu_ratio_to_raw"],
        "raw_client_cpu_use": paths["raw_bytes"]["client_cpu_use"],
        "cpu_met": cpu >= needed,
    }


def _submit_header() -> str:
    cols = "".join(f"{PATH_TITLES[p]:>19}" for p in PATHS)
    return f"{'chunk':>6} {'conc':>5}{cols}"


def _submit_row(row: Json) -> str:
    cells = ""
    for path in PATHS:
        figures = row["paths"][path]
        text = f"{fmt_rate(figures['leads_per_s'])}/s ({figures['ratio_to_raw']:.2f}x)"
        cells += f"{text:>19}"
    return f"{row['chunk_size']:>6} {row['concurrency']:>5}{cells}"


def _cpu_row(row: Json) -> str:
    cells = ""
    for path in PATHS:
        f = row["paths"][path]
        text = (
            f"{f['client_cpu_us_per_lead']:.2f} {f['cpu_ratio_to_raw']:.2f}x "
            f"u{f['client_cpu_use']:.2f}"
        )
        cells += f"{text:>19}"
    return f"{row['chunk_size']:>6} {row['concurrency']:>5}{cells}"


def table_submit(data: Json) -> str:
    lines = [
        "1. Submit throughput: leads/s against a minimal aiohttp sink in another process "
        f"(median of {data['rounds']} rounds; x = wall ratio to raw bytes in the same round; "
        f"{data.get('fast_path', '?')} lead checks; SDK Lead builds its Leads in the window)",
        _submit_header(),
        *(_submit_row(row) for row in data["cells"]),
        "client CPU: us per lead, client-CPU ratio to raw bytes (raw's CPU per lead / the "
        "path's, same round) and u = client CPU use (CPU s / wall s; < 1: waited or loaded); "
        "medians",
        _submit_header(),
        *(_cpu_row(row) for row in data["cells"]),
    ]
    summary = data.get("summary")
    if summary:
        lines.append(
            f"target: {summary['target']}: SDK Lead {summary['sdk_leads_ratio']:.2f}x, "
            f"SDK dicts {summary['sdk_dicts_ratio']:.2f}x -> {verdict(summary['met'])}"
        )
        if "cpu_target" in summary:
            lines.append(
                f"target: {summary['cpu_target']} at chunk 100, concurrency 16: SDK Lead "
                f"{summary['sdk_leads_cpu_ratio']:.2f}x, SDK dicts "
                f"{summary['sdk_dicts_cpu_ratio']:.2f}x (raw bytes' client CPU use "
                f"{summary['raw_client_cpu_use']:.2f}) -> {verdict(summary['cpu_met'])}"
            )
    return "\n".join(lines)


# -- 2. per-lead CPU ---------------------------------------------------------------------------


def _calls_per_run(timer: timeit.Timer, min_time: float) -> int:
    """How many calls make one run of about ``min_time`` seconds."""
    number = 1
    while True:
        if timer.timeit(number) >= min_time / 4:
            break
        number *= 2
    return max(1, int(number * 4 * min_time / max(timer.timeit(number), 1e-9)))


def interleaved_rows(
    cases: dict[str, Callable[[], object]],
    items: int,
    base: str,
    repeats: int,
    min_time: float,
) -> Json:
    """µs per item of each case, its runs interleaved with the others' (a round times each case
    once, in turn), so drift on a shared machine moves them together; ``x_orjson`` is the median
    of the per-round ratios to ``base``, measured in the same round."""
    timers = {name: timeit.Timer(fn) for name, fn in cases.items()}
    numbers = {name: _calls_per_run(timer, min_time) for name, timer in timers.items()}
    runs: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, timer in timers.items():
            runs[name].append(timer.timeit(numbers[name]) / numbers[name] / items * 1e6)
    return {
        name: {
            "us_per_lead": median(times),
            "runs": times,
            "x_orjson": median([t / b for t, b in zip(times, runs[base], strict=True)]),
        }
        for name, times in runs.items()
    }


def retrieve_body(n_leads: int, types: Sequence[str]) -> bytes:
    fields = {
        "connection_request": "outreach_message",
        "first_follow_up": "first_follow_up_message",
        "stage_ambition": "stage_ambition_message",
        "share_material": "share_material_message",
        "hiring_activity": "hiring_activity_message",
    }
    filler = (
        "I came across your profile while researching teams that are growing their outbound "
        "programmes, and noticed how your company approaches partnerships in the region. We "
        "help similar teams turn research into personal first messages at scale. "
    )
    leads_data = []
    for i in range(n_leads):
        entry: dict[str, Any] = {
            "external_prospect_id": f"lead-{i:08d}",
            "linkedin": f"https://www.linkedin.com/in/person-{i}",
        }
        for kind, field in fields.items():
            if kind in types:
                text = f"Hi First{i}, ({kind}) {filler}"
                entry[field] = (text * 2)[:300]
            else:
                entry[field] = None
        leads_data.append(entry)
    total = n_leads * len(types)
    return orjson.dumps(
        {
            "metadata": {
                "request_message_generation_api_request_secure_request_id": "req-bench",
                "retrieve_messages_api_request_secure_request_id": "ret-bench",
                "requested_messages_count": total,
                "generated_messages_count": total,
                "failed_messages_count": None,
                "failed_messages_reason": None,
                "generation_status": "complete",
                "status_message": f"Generation complete: {total} of {total} messages generated",
            },
            "account": {"automation_tool_customer_id": "customer_bench"},
            "campaign": {
                "automation_tool_campaign_id": "campaign_bench",
                "message_sequence": list(types),
                "leads_data": leads_data,
            },
        }
    )


def section_cpu(quick: bool) -> Json:
    repeats = 5 if quick else 7
    min_time = 0.05 if quick else 0.2
    campaign = bench_campaign()
    campaign_bytes = orjson.dumps(campaign.to_wire())
    dicts = sample_leads(100)
    leads = leads_from(dicts)

    def plain_orjson() -> bytes:
        return orjson.dumps(dicts)

    def sdk_dicts() -> bytes:
        wire = []
        for i, lead in enumerate(dicts):
            if check_lead(lead, i):
                raise AssertionError("invalid lead")
            wire.append(lead)
        return encode_request(campaign_bytes, wire)

    def sdk_leads() -> bytes:
        wire = []
        for i, lead in enumerate(leads):
            data = lead.to_wire()
            if check_lead(data, i):
                raise AssertionError("invalid lead")
            wire.append(data)
        return encode_request(campaign_bytes, wire)

    def build_leads() -> list[Lead]:
        return leads_from(dicts)

    cases: dict[str, Callable[[], object]] = {
        "orjson_dumps_dicts": plain_orjson,
        "sdk_dicts": sdk_dicts,
        "sdk_leads": sdk_leads,
    }
    batch_validate = _batch_validate_cases(campaign, campaign_bytes, dicts, leads)
    cases.update(batch_validate)
    cases["lead_construction"] = build_leads
    serialize = interleaved_rows(cases, len(dicts), "orjson_dumps_dicts", repeats, min_time)

    n_parse = 10_000
    types = ("connection_request", "first_follow_up", "stage_ambition")
    body = retrieve_body(n_parse, types)

    def loads_only() -> object:
        return orjson.loads(body)

    def loads_structure() -> object:
        return structure_retrieved(orjson.loads(body), 200, secure_request_id="req-bench")

    def loads_structure_read() -> int:
        result = structure_retrieved(orjson.loads(body), 200, secure_request_id="req-bench")
        count = 0
        for lead in result.leads:
            for kind in types:
                if lead.message(kind) is not None:
                    count += 1
        return count

    parse_cases: dict[str, Callable[[], object]] = {
        "orjson_loads": loads_only,
        "loads_structure_retrieved": loads_structure,
        "loads_structure_read_messages": loads_structure_read,
    }
    parse = interleaved_rows(parse_cases, n_parse, "orjson_loads", repeats, min_time)
    worst_serialize = max(
        serialize["sdk_dicts"]["us_per_lead"], serialize["sdk_leads"]["us_per_lead"]
    )
    chunk_cases = [k for k in ("batch_chunk_dicts", "batch_chunk_leads") if k in serialize]
    worst_chunk = max((serialize[k]["us_per_lead"] for k in chunk_cases), default=float("nan"))
    parse_us = parse["loads_structure_retrieved"]["us_per_lead"]
    parse_x = parse["loads_structure_retrieved"]["x_orjson"]
    return {
        "repeats": repeats,
        "serialize_100_leads": serialize,
        "parse": {
            "leads": n_parse,
            "messages_per_lead": len(types),
            "body_bytes": len(body),
            "cases": parse,
        },
        "summary": {
            "serialize_target_us": TARGET_SERIALIZE_US,
            "serialize_worst_us": worst_serialize,
            "serialize_met": worst_serialize <= TARGET_SERIALIZE_US,
            "fast_path": fast_path(),
            "chunk_target_us": TARGET_CHUNK_US,
            "chunk_worst_us": worst_chunk,
            "chunk_met": worst_chunk <= TARGET_CHUNK_US,
            "parse_target_us": TARGET_PARSE_US,
            "parse_target_x": TARGET_PARSE_X,
            "parse_us": parse_us,
            "parse_x_orjson": parse_x,
            "parse_met": parse_us <= TARGET_PARSE_US or parse_x <= TARGET_PARSE_X,
        },
    }


def _batch_validate_cases(
    campaign: Campaign, campaign_bytes: bytes, dicts: list[Any], leads: list[Lead]
) -> dict[str, Callable[[], object]]:
    """submit_batch's own per-chunk code (_Batch.validate + encode_request), when importable."""
    try:
        from upscale_async._batch import _Batch
        from upscale_async._results import BatchSubmission

        # Only what validate() reads is set, so this does not depend on _Batch.__init__.
        batch = _Batch.__new__(_Batch)
        batch.seen = set()
        batch.result = BatchSubmission()
        wire, _, _ = batch.validate(list(dicts), 0)
        if len(wire) != len(dicts):
            raise RuntimeError("validate() set leads aside")
    except Exception as exc:  # private API: skip it rather than fail the suite
        print(f"  (skipping _Batch.validate cases: {type(exc).__name__}: {exc})", file=sys.stderr)
        return {}

    def run(chunk: list[Any]) -> Callable[[], object]:
        def case() -> bytes:
            batch.seen = set()
            wire, _, _ = batch.validate(chunk, 0)
            return encode_request(campaign_bytes, wire)

        return case

    def built() -> bytes:  # the Leads built from the dicts first: their check is counted
        batch.seen = set()
        wire, _, _ = batch.validate(leads_from(dicts), 0)
        return encode_request(campaign_bytes, wire)

    del campaign
    return {
        "batch_chunk_dicts": run(dicts),
        "batch_chunk_leads": run(leads),
        "batch_chunk_leads_built": built,
    }


CPU_TITLES = {
    "orjson_dumps_dicts": "orjson.dumps(list of dicts) (baseline)",
    "sdk_dicts": "dicts: check_lead + encode_request",
    "sdk_leads": "Lead: to_wire + check_lead + encode_request",
    "batch_chunk_dicts": "dicts: submit_batch chunk code (_Batch.validate + encode)",
    "batch_chunk_leads": "Lead: submit_batch chunk code (_Batch.validate + encode)",
    "batch_chunk_leads_built": "Lead: Lead(...) x 100 + the same chunk code",
    "lead_construction": "Lead(...) construction (user side, not in target)",
    "orjson_loads": "orjson.loads (baseline)",
    "loads_structure_retrieved": "orjson.loads + structure_retrieved",
    "loads_structure_read_messages": "... + reading every message (lazy access)",
}


def table_cpu(data: Json) -> str:
    lines = [
        f"2. Per-lead CPU, no network (median of {data['repeats']} interleaved timeit runs; "
        f"{data['summary'].get('fast_path', '?')} lead checks)",
        f"{'serialize a 100-lead request':<62}{'us/lead':>9}{'x orjson':>10}",
    ]
    for name, row in data["serialize_100_leads"].items():
        lines.append(
            f"{CPU_TITLES.get(name, name):<62}{row['us_per_lead']:>9.3f}{row['x_orjson']:>10.2f}"
        )
    parse = data["parse"]
    lines.append(
        f"parse a retrieve answer: {parse['leads']:,} leads x {parse['messages_per_lead']} "
        f"messages of 300 chars ({parse['body_bytes'] / 1e6:.1f} MB)"
    )
    for name, row in parse["cases"].items():
        lines.append(
            f"{CPU_TITLES.get(name, name):<62}{row['us_per_lead']:>9.3f}{row['x_orjson']:>10.2f}"
        )
    s = data["summary"]
    lines.append(
        f"targets: check_lead+encode <= {s['serialize_target_us']} us/lead: worst "
        f"{s['serialize_worst_us']:.3f} -> {verdict(s['serialize_met'])}; submit_batch chunk "
        f"(validate+serialize) <= {s['chunk_target_us']} us/lead ({s['fast_path']}): worst "
        f"{s['chunk_worst_us']:.3f} -> {verdict(s['chunk_met'])}; parse <= "
        f"{s['parse_target_us']} us/lead or <= {s['parse_target_x']}x orjson.loads: "
        f"{s['parse_us']:.3f} us, {s['parse_x_orjson']:.2f}x -> {verdict(s['parse_met'])}"
    )
    return "\n".join(lines)


# -- 3. memory ---------------------------------------------------------------------------------


#: Linux keeps a process's ``ru_maxrss`` across exec, and a forked child starts from its parent's
#: high-water mark: a child forked straight from this (large) process would report our peak, not
#: its own. So each memory child is started by a bare interpreter (``-S``, ~10 MB), whose own
#: small footprint is all the child can inherit.
SMALL_LAUNCHER = (
    sys.executable,
    "-S",
    "-c",
    "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))",
)


def section_memory(quick: bool) -> Json:
    sizes = (10_000, 100_000) if quick else (100_000, 1_000_000)
    runs = 1 if quick else 3
    chunk, concurrency = 100, 8
    process, port = start_sink()
    rows: dict[int, list[Json]] = {n: [] for n in sizes}
    try:
        base_url = f"http://127.0.0.1:{port}/api/v2"
        for _ in range(runs):
            for n in sizes:
                child = subprocess.run(
                    [
                        *SMALL_LAUNCHER,
                        sys.executable,
                        str(HERE / "_memory_child.py"),
                        str(n),
                        base_url,
                        "--chunk-size",
                        str(chunk),
                        "--concurrency",
                        str(concurrency),
                    ],
                    capture_output=True,
                    text=True,
                    timeout=300,
                    check=False,
                )
                if child.returncode != 0:
                    raise RuntimeError(f"memory child failed: {child.stderr[-2000:]}")
                report = orjson.loads(child.stdout.strip().splitlines()[-1])
                if report["counts"]["accepted"] != n:
                    raise RuntimeError(f"memory child accepted {report['counts']} of {n}")
                rows[n].append(report)
    finally:
        stop_sink(process)
    per_n: dict[str, Json] = {}
    for n, reports in rows.items():
        per_n[str(n)] = {
            "baseline_kib": median([r["baseline_kib"] for r in reports]),
            "peak_kib": median([r["peak_kib"] for r in reports]),
            "vm_hwm_kib": median([r.get("vm_hwm_kib") or 0 for r in reports]),
            "seconds": median([r["seconds"] for r in reports]),
            "leads_per_s": median([n / r["seconds"] for r in reports]),
            "runs": reports,
        }
    small, large = sizes
    growth = (
        (per_n[str(large)]["peak_kib"] - per_n[str(small)]["peak_kib"]) * 1024 / (large - small)
    )
    peak_mb = per_n[str(large)]["peak_kib"] * 1024 / 1e6
    return {
        "chunk_size": chunk,
        "concurrency": concurrency,
        "runs": runs,
        "sizes": list(sizes),
        "per_n": per_n,
        "summary": {
            "growth_bytes_per_lead": growth,
            "growth_target": TARGET_GROWTH_B,
            "growth_met": growth <= TARGET_GROWTH_B,
            "peak_mb_at_largest": peak_mb,
            "peak_target_mb": TARGET_PEAK_MB,
            "peak_met": peak_mb <= TARGET_PEAK_MB,
            "largest": large,
        },
    }


def table_memory(data: Json) -> str:
    lines = [
        "3. Memory: generated dicts streamed through submit_batch (chunk "
        f"{data['chunk_size']}, concurrency {data['concurrency']}), a fresh process per run, "
        f"median of {data['runs']}",
        f"{'leads':>10}{'baseline MB':>13}{'peak MB':>10}{'seconds':>9}{'leads/s':>10}",
    ]
    for n, row in data["per_n"].items():
        lines.append(
            f"{int(n):>10,}{row['baseline_kib'] * 1024 / 1e6:>13.1f}"
            f"{row['peak_kib'] * 1024 / 1e6:>10.1f}{row['seconds']:>9.2f}"
            f"{fmt_rate(row['leads_per_s']):>10}"
        )
    s = data["summary"]
    lines.append(
        f"growth per extra lead {s['growth_bytes_per_lead']:.0f} B (target <= "
        f"{s['growth_target']:.0f}) -> {verdict(s['growth_met'])}; peak at "
        f"{s['largest']:,} {s['peak_mb_at_largest']:.0f} MB (target <= {s['peak_target_mb']:.0f}) "
        f"-> {verdict(s['peak_met'])}"
    )
    return "\n".join(lines)


# -- 4. waiters and webhooks ---------------------------------------------------------------------


def _optional_module(name: str) -> ModuleType | None:
    if not (HERE / f"{name}.py").exists():
        return None
    return importlib.import_module(name)


def section_webhooks(quick: bool) -> Json:
    module = _optional_module("bench_webhooks")
    if module is None or not hasattr(module, "run"):
        return {"skipped": "benchmarks/bench_webhooks.py has no run(quick)"}
    figures: Json = module.run(quick)
    table = getattr(module, "_table", None)
    return {"figures": figures, "table": table(figures) if callable(table) else None}


def table_webhooks(data: Json) -> str:
    title = "4. Waiters and webhooks (benchmarks/bench_webhooks.py)"
    if "skipped" in data:
        return f"{title}: skipped ({data['skipped']})"
    body = data.get("table") or json.dumps(data["figures"], indent=2)
    return f"{title}\n{body}"


# -- 5. end to end -----------------------------------------------------------------------------


async def _end_to_end(info: Json, mode: str, n_leads: int, timeout: float) -> Json:
    from upscale_async.webhooks import CompletionHub, StandardWebhooksVerifier, WebhookReceiver

    async with contextlib.AsyncExitStack() as stack:
        hub: CompletionHub | None = None
        url = "http://127.0.0.1:9/unused"
        if mode == "webhook":
            hub = CompletionHub()
            receiver = WebhookReceiver(hub, verifier=StandardWebhooksVerifier(info["secret"]))
            await stack.enter_async_context(receiver)
            url = receiver.url
            poll = PollPolicy(fallback_interval=30.0)
        else:
            poll = PollPolicy(initial=0.1, factor=1.5, max_interval=1.0)
        client = await stack.enter_async_context(
            UpscaleClient(info["api_key"], base_url=info["base_url"])
        )
        campaign = bench_campaign(url)
        started = time.perf_counter()
        batch = await client.submit_batch(
            campaign,
            iter_sample_leads(n_leads, prefix=f"e2e-{mode}"),
            batch=BatchPolicy(chunk_size=100, concurrency=16),
        )
        submitted = time.perf_counter()
        results = await client.await_completion(batch, hub=hub, poll=poll, timeout=timeout)
        finished = time.perf_counter()
    messages = sum(
        1
        for result in results
        for lead in result.leads
        for kind in TYPES
        if lead.message(kind) is not None
    )
    return {
        "submit_s": submitted - started,
        "await_s": finished - submitted,
        "wall_s": finished - started,
        "requests": len(batch.accepted),
        "accepted_leads": batch.accepted_count,
        "messages": messages,
        "complete": all(r.is_complete for r in results),
    }


def _bench_emulator(quick: bool) -> Json:
    module = _optional_module("bench_emulator")
    if module is None:
        return {"skipped": "benchmarks/bench_emulator.py does not exist"}
    if hasattr(module, "run"):
        figures: Json = module.run(quick)
        return {"source": "bench_emulator.run", "figures": figures}
    start_server = getattr(module, "start_server", None)
    throughput = getattr(module, "throughput", None)
    if start_server is None or throughput is None:
        return {"skipped": "bench_emulator has neither run() nor start_server()/throughput()"}
    requests, leads, concurrency = (50, 100, 16) if quick else (400, 100, 16)
    server, base_url = start_server(credits=(requests + 1) * leads * len(TYPES))
    try:
        rate = asyncio.run(throughput(base_url, requests, leads, concurrency))
    finally:
        server.terminate()
        server.wait(10)
        if server.stdout is not None:
            server.stdout.close()
    return {
        "source": "benchmarks/bench_emulator.py: start_server, then throughput",
        "figures": {
            "intake_leads_per_s": rate,
            "requests": requests,
            "leads_per_request": leads,
            "concurrency": concurrency,
        },
    }


def section_e2e(quick: bool) -> Json:
    n_leads = 2_000 if quick else 50_000
    rate = 50_000.0
    timeout = 60.0 if quick else 300.0
    messages = n_leads * len(TYPES)
    runs = 1 if quick else 3
    modes: dict[str, Json] = {}
    for mode in ("webhook", "polling"):
        args = ["--messages-per-second", str(rate)]
        if mode == "polling":
            args.append("--no-webhooks")
        rounds: list[Json] = []
        for _ in range(runs):  # a fresh emulator per run: its counters are that run's
            emulator = EmulatorProcess(*args)
            stats: Json = {}
            try:
                figures = asyncio.run(_end_to_end(emulator.info, mode, n_leads, timeout))
            finally:
                stats = emulator.stop()
            retrieves = stats.get("endpoint_counts", {}).get("retrieve_messages", 0)
            figures["retrieve_calls"] = retrieves
            figures["retrieve_per_request"] = retrieves / max(figures["requests"], 1)
            figures["emulator"] = stats
            rounds.append(figures)
        modes[mode] = {
            key: median([r[key] for r in rounds])
            for key in ("wall_s", "submit_s", "await_s", "retrieve_per_request")
        }
        modes[mode].update(
            requests=rounds[0]["requests"],
            messages=min(r["messages"] for r in rounds),
            complete=all(r["complete"] for r in rounds),
            double_charges=sum(r["emulator"].get("double_charges", 0) for r in rounds),
            runs=rounds,
        )
    try:
        intake = _bench_emulator(quick)
    except Exception as exc:
        intake = {"error": f"{type(exc).__name__}: {exc}"}
    return {
        "leads": n_leads,
        "types": len(TYPES),
        "messages": messages,
        "messages_per_second": rate,
        "floor_s": messages / rate,
        "chunk_size": 100,
        "concurrency": 16,
        "runs": runs,
        "modes": modes,
        "emulator_intake": intake,
    }


def table_e2e(data: Json) -> str:
    lines = [
        f"5. End to end against the emulator in its own process: {data['leads']:,} leads x "
        f"{data['types']} types = {data['messages']:,} messages at "
        f"{data['messages_per_second']:,.0f} messages/s (floor {data['floor_s']:.2f} s); "
        f"chunk {data['chunk_size']}, concurrency {data['concurrency']}; median of "
        f"{data['runs']} runs",
        f"{'mode':<9}{'wall s':>8}{'submit s':>10}{'await s':>9}{'x floor':>9}"
        f"{'requests':>10}{'retrieves/req':>15}{'messages':>10}  complete",
    ]
    for mode, row in data["modes"].items():
        lines.append(
            f"{mode:<9}{row['wall_s']:>8.2f}{row['submit_s']:>10.2f}{row['await_s']:>9.2f}"
            f"{row['wall_s'] / data['floor_s']:>9.1f}{row['requests']:>10}"
            f"{row['retrieve_per_request']:>15.2f}{row['messages']:>10,}  {row['complete']}"
        )
    intake = data["emulator_intake"]
    if "figures" in intake:
        lines.append(f"emulator intake ({intake['source']}): {json.dumps(intake['figures'])}")
    else:
        lines.append(f"emulator intake: {intake.get('skipped') or intake.get('error')}")
    return "\n".join(lines)


# -- 6. the shared batch ledger -----------------------------------------------------------------


def section_ledger(quick: bool) -> Json:
    module = _optional_module("bench_ledger")
    if module is None or not hasattr(module, "run"):
        return {"skipped": "benchmarks/bench_ledger.py has no run(quick)"}
    figures: Json = module.run(quick)
    if "skipped" in figures:
        return {"skipped": figures["skipped"]}
    return {"figures": figures, "table": module._table(figures)}


def table_ledger(data: Json) -> str:
    title = "6. Shared batch ledger (benchmarks/bench_ledger.py)"
    if "skipped" in data:
        return f"{title}: skipped ({data['skipped']})"
    return f"{title}\n{data['table']}"


# -- 7. replicas sharing completion through Redis -------------------------------------------------


def section_replicas(quick: bool) -> Json:
    module = _optional_module("bench_replicas")
    if module is None or not hasattr(module, "run"):
        return {"skipped": "benchmarks/bench_replicas.py has no run(quick)"}
    figures: Json = module.run(quick)
    if "skipped" in figures:
        return {"skipped": figures["skipped"]}
    return {"figures": figures, "table": module._table(figures)}


def table_replicas(data: Json) -> str:
    title = "7. Replicas sharing completion through Redis (benchmarks/bench_replicas.py)"
    if "skipped" in data:
        return f"{title}: skipped ({data['skipped']})"
    return f"{title}\n{data['table']}"


# -- main --------------------------------------------------------------------------------------

RUNNERS: dict[str, tuple[Callable[[bool], Json], Callable[[Json], str]]] = {
    "submit": (section_submit, table_submit),
    "cpu": (section_cpu, table_cpu),
    "memory": (section_memory, table_memory),
    "webhooks": (section_webhooks, table_webhooks),
    "e2e": (section_e2e, table_e2e),
    "ledger": (section_ledger, table_ledger),
    "replicas": (section_replicas, table_replicas),
}


#: The sections whose figures depend on the lead checks: rerun on the pure-Python path.
PURE_SECTIONS = ("submit", "cpu")


def _cell(text: str) -> tuple[int, int]:
    chunk, _, concurrency = text.strip().partition("x")
    return int(chunk), int(concurrency)


def pure_child(names: list[str], quick: bool, cells: str | None) -> Json:
    """Rerun ``names`` in a child process on the pure-Python path; its report (or the error).

    Its tables are printed as it runs. Without ``--cells`` the child runs the submit
    acceptance cell only (chunk 100, concurrency 16), to bound the time.
    """
    print(
        f"\n== pure-Python path: {','.join(names)} again in a child process with "
        f"{NO_EXTENSIONS}=1 ==",
        flush=True,
    )
    out = Path(tempfile.mkdtemp(prefix="upscale_bench_")) / "pure.json"
    command = [sys.executable, str(Path(__file__).resolve()), "--only", ",".join(names)]
    command += ["--json", str(out), "--no-pure-child", "--cells", cells or "100x16"]
    if quick:
        command.append("--quick")
    env = {**os.environ, NO_EXTENSIONS: "1"}
    child = subprocess.run(command, env=env, timeout=3600, check=False)
    if child.returncode != 0 or not out.exists():
        return {"error": f"the pure-path child exited with {child.returncode}"}
    report: Json = orjson.loads(out.read_bytes())
    shutil.rmtree(out.parent, ignore_errors=True)
    if report.get("fast_path") != "pure":
        return {"error": f"the child ran the {report.get('fast_path')} path, not the pure one"}
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the upscale_async benchmark suite.")
    parser.add_argument("--quick", action="store_true", help="small sizes (CI smoke test, < 1 min)")
    parser.add_argument("--json", type=Path, help="write every figure to this JSON file")
    parser.add_argument(
        "--only", help=f"comma-separated sections to run (default: all of {','.join(SECTIONS)})"
    )
    parser.add_argument(
        "--cells", help="submit cells as CHUNKxCONCURRENCY, comma-separated (e.g. 100x16)"
    )
    parser.add_argument(
        "--no-pure-child",
        action="store_true",
        help="do not rerun submit and cpu on the pure-Python path in a child process",
    )
    args = parser.parse_args(argv)
    if args.cells:
        global SUBMIT_CELLS
        SUBMIT_CELLS = [_cell(text) for text in args.cells.split(",")]
    names = list(SECTIONS)
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in RUNNERS]
        if unknown:
            parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {SECTIONS}")
    started = time.perf_counter()
    report: Json = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": " ".join(["python", "benchmarks/run.py", *(argv or sys.argv[1:])]),
        "quick": args.quick,
        "machine": machine(),
        "sections": {},
        "seconds": {},
    }
    m = report["machine"]
    print(
        f"upscale_async {m['upscale_async']} benchmarks, {report['date']}, {m['platform']}, "
        f"{m['cpu_count']} CPUs, Python {m['python']}, aiohttp {m['aiohttp']}"
        f"{' (quick)' if args.quick else ''}",
        flush=True,
    )
    failed = []
    for name in names:
        run, table = RUNNERS[name]
        print(f"\n== {name} ==", flush=True)
        t0 = time.perf_counter()
        try:
            data = run(args.quick)
        except Exception as exc:
            traceback.print_exc()
            data = {"error": f"{type(exc).__name__}: {exc}"}
            failed.append(name)
        report["seconds"][name] = time.perf_counter() - t0
        report["sections"][name] = data
        if "error" in data:
            print(f"{name}: FAILED: {data['error']}", flush=True)
        else:
            print(table(data), flush=True)
    pure = [n for n in names if n in PURE_SECTIONS]
    if pure and upscale_async.extensions_active() and not args.no_pure_child:
        t0 = time.perf_counter()
        report["pure_path"] = pure_child(pure, args.quick, args.cells)
        report["seconds"]["pure_path"] = time.perf_counter() - t0
        if "error" in report["pure_path"]:
            failed.append("pure_path")
    report["fast_path"] = fast_path()
    report["seconds"]["total"] = time.perf_counter() - started
    print(f"\ntotal {report['seconds']['total']:.1f} s", flush=True)
    if args.json:
        args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
        print(f"figures written to {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
