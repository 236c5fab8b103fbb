"""CPU instructions per lead and per webhook, counted under valgrind: figures load cannot move.

    python benchmarks/bench_instructions.py [--only submit,webhooks] [--json out.json]

On a shared machine, time (wall or CPU) moves with other load; the number of instructions a
process executes does not. Each scenario runs twice under ``valgrind --tool=callgrind`` (only
the measured process; its peer runs natively in another process), with a small and a large
count of items and the same set-up, and the difference of the two totals divided by the
difference of the counts is the cost of one item, start-up and warm-up cancelled:

- ``submit`` (the client process is measured; a minimal aiohttp sink serves): posting
  pre-serialized bytes (``raw``), ``submit_batch`` of plain dicts (``dicts``) and of ``Lead``
  objects built as the batch pulls them (``leads``), at chunk 100, concurrency 16, on the fast
  path this process has (``UPSCALE_ASYNC_NO_EXTENSIONS=1`` for pure Python). The instruction
  ratio is raw / SDK, like the client-CPU ratio of ``run.py --only submit``.
- ``webhooks`` (the server process is measured; the sender is another process): signed
  webhooks through a ``WebhookReceiver`` against the same posts to a bare aiohttp handler
  (``bench_webhooks._unsigned_server``). The ratio is bare / receiver.

Instructions are not time: kernel time (sockets) is not counted at all, and code differs in
instructions per cycle (OpenSSL's SHA-256 executes many cheap ones). Read the ratios beside the
CPU-time ratios of ``run.py``, as the figure that does not move between runs. Needs valgrind
(``apt install valgrind``); without it the script says so and exits 0. Takes about 5 minutes
(each run is some 50 times slower under valgrind); runs two at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if __package__ in (None, ""):  # run as a script from anywhere
    sys.path.insert(0, str(HERE.parent))
    sys.path.insert(0, str(HERE))

CHUNK, CONCURRENCY = 100, 16
SUBMIT_SIZES = (2_000, 12_000)  # leads; the pool is always the larger, so set-up is equal
WEBHOOK_SIZES = (300, 1_300)  # webhooks, after the sender's own warm-up
SUBMIT_PATHS = ("raw", "dicts", "leads")
WEBHOOK_PATHS = ("bare", "receiver")


def _child_submit(path: str, n: int) -> None:
    """Measured process: post the first ``n`` leads of a fixed pool one way, then exit."""
    from itertools import islice

    import run as bench_run
    from _sink import start_sink, stop_sink

    pool = bench_run.sample_leads(SUBMIT_SIZES[-1])
    process, port = start_sink()
    try:
        bench = bench_run.SubmitBench(port, pool, 0.0)
        bodies = bench.bodies(CHUNK)  # every body serialized, whatever n: equal set-up
        bench._bodies[CHUNK] = bodies[: n // CHUNK]
        bench.dicts = list(islice(pool, n))
        name = {"raw": "raw_bytes", "dicts": "sdk_dicts", "leads": "sdk_leads"}[path]
        asyncio.run(bench.run(name, CHUNK, CONCURRENCY))
    finally:
        stop_sink(process)


def _child_webhooks(path: str, n: int) -> None:
    """Measured process: serve ``n`` signed webhooks (plus warm-up) posted by another process."""
    import bench_webhooks as bw

    async def main() -> None:
        server = bw._unsigned_server() if path == "bare" else bw._signed_receiver()
        async with server as url:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, bw.__file__, "--client", url, str(n), "8",
                stdout=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            if await proc.wait() != 0:
                raise RuntimeError(f"the webhook sender exited with {proc.returncode}")

    asyncio.run(main())


def _count(scenario: str, path: str, n: int, workdir: Path) -> int:
    """Total instructions of one measured run under callgrind."""
    out = workdir / f"cg.{scenario}.{path}.{n}"
    cmd = [
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
        sys.executable, str(Path(__file__).resolve()), "--child", scenario, path, str(n),
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{scenario}/{path}/{n} failed under valgrind:\n{done.stderr[-2000:]}")
    match = re.search(r"^(?:summary|totals): (\d+)", out.read_text(), re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no instruction total in {out}")
    return int(match.group(1))


def measure(scenarios: list[str]) -> dict[str, Any]:
    """Instructions per item of each path, and the ratios, for the chosen scenarios."""
    jobs = []
    for scenario in scenarios:
        paths, sizes = (
            (SUBMIT_PATHS, SUBMIT_SIZES) if scenario == "submit" else (WEBHOOK_PATHS, WEBHOOK_SIZES)
        )
        jobs += [(scenario, path, n) for path in paths for n in sizes]
    with tempfile.TemporaryDirectory() as tmp, ThreadPoolExecutor(max_workers=2) as pool:
        totals = dict(zip(jobs, pool.map(lambda j: _count(*j, Path(tmp)), jobs), strict=True))
    import upscale_async

    results: dict[str, Any] = {
        "fast_path": "compiled" if upscale_async.extensions_active() else "pure",
    }
    for scenario in scenarios:
        paths, (small, large) = (
            (SUBMIT_PATHS, SUBMIT_SIZES) if scenario == "submit" else (WEBHOOK_PATHS, WEBHOOK_SIZES)
        )
        per = {
            p: (totals[(scenario, p, large)] - totals[(scenario, p, small)]) / (large - small)
            for p in paths
        }
        if scenario == "submit":
            ratios = {"dicts": per["raw"] / per["dicts"], "leads": per["raw"] / per["leads"]}
        else:
            ratios = {"receiver": per["bare"] / per["receiver"]}
        results[scenario] = {"per_item": per, "ratio": ratios}
    return results


def table(results: dict[str, Any]) -> str:
    lines = [f"CPU instructions under callgrind ({results['fast_path']} path)"]
    if "submit" in results:
        per, ratio = results["submit"]["per_item"], results["submit"]["ratio"]
        lines.append(
            f"submit, chunk {CHUNK}, concurrency {CONCURRENCY}, per lead: raw bytes "
            f"{per['raw']:,.0f}; SDK dicts {per['dicts']:,.0f} (ratio {ratio['dicts']:.2f}); "
            f"SDK Lead built in the window {per['leads']:,.0f} (ratio {ratio['leads']:.2f})"
        )
    if "webhooks" in results:
        per, ratio = results["webhooks"]["per_item"], results["webhooks"]["ratio"]
        lines.append(
            f"webhooks, server process, per webhook: bare aiohttp handler {per['bare']:,.0f}; "
            f"signed through WebhookReceiver {per['receiver']:,.0f} "
            f"(ratio {ratio['receiver']:.2f})"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--only", default="submit,webhooks", help="submit, webhooks or both")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument(
        "--child", nargs=3, metavar=("SCENARIO", "PATH", "N"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.child:
        scenario, path, n = args.child
        (_child_submit if scenario == "submit" else _child_webhooks)(path, int(n))
        return 0
    scenarios = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(scenarios) - {"submit", "webhooks"}
    if unknown or not scenarios:
        parser.error(f"--only takes submit and/or webhooks, not {args.only!r}")
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: no instruction counts (apt install valgrind)")
        return 0
    print(f"counting under valgrind ({os.cpu_count()} CPUs; about 5 minutes)...", flush=True)
    results = measure(scenarios)
    print(table(results))
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
