"""The emulator in its own process, reporting its counters when it stops.

    python benchmarks/_emulator_proc.py [--messages-per-second R] [--credits C] [--no-webhooks]

Like ``python -m upscale_async.emulator`` (127.0.0.1, a free port), but it prints one JSON line
with ``base_url``, ``api_key`` and ``webhook_secret`` once it listens, and on SIGTERM or SIGINT
one JSON line ``{"stats": ...}`` with the per-endpoint request counts, the requests accepted, the
messages generated and the webhook deliveries, so the benchmark can count retrieve calls without
sharing a process (or a core) with the emulator.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from upscale_async.emulator import DEFAULT_WEBHOOK_SECRET, Emulator


def _stats(emu: Emulator) -> dict[str, Any]:
    state = emu.state
    outcomes = collections.Counter(d.outcome for d in state.deliveries)
    return {
        "endpoint_counts": dict(state.endpoint_counts),
        "submissions": state.submissions,
        "requests": state.accepted,
        "dedupe_hits": state.dedupe_hits,
        "messages_generated": state.messages_generated,
        "messages_failed": state.messages_failed,
        "deliveries": dict(outcomes),
        "double_charges": len(state.double_charges()),
    }


async def _serve(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with Emulator(
        host="127.0.0.1",
        port=0,
        credits=args.credits,
        messages_per_second=args.messages_per_second,
        webhook_secret=None if args.no_webhooks else DEFAULT_WEBHOOK_SECRET,
    ) as emu:
        line = {"base_url": emu.base_url, "api_key": emu.api_key, "secret": emu.webhook_secret}
        sys.stdout.write(orjson.dumps(line).decode() + "\n")
        sys.stdout.flush()
        await stop.wait()
        sys.stdout.write(orjson.dumps({"stats": _stats(emu)}).decode() + "\n")
        sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages-per-second", type=float, default=0.0)
    parser.add_argument("--credits", type=int, default=10**9)
    parser.add_argument("--no-webhooks", action="store_true")
    asyncio.run(_serve(parser.parse_args(argv)))
    return 0


class EmulatorProcess:
    """Start :func:`main` in a child process; :meth:`stop` returns its counters."""

    def __init__(self, *args: str, timeout: float = 20.0) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), *args],
            stdout=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + timeout
        self.info: dict[str, Any] = {}
        try:
            assert self.process.stdout is not None
            while time.monotonic() < deadline:
                line = self.process.stdout.readline()
                if not line:
                    break
                if line.startswith("{"):
                    self.info = orjson.loads(line)
                    break
            if not self.info:
                raise RuntimeError("the emulator process did not start")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> dict[str, Any]:
        """SIGTERM, read the stats line, wait (SIGKILL after 10 s); idempotent."""
        stats: dict[str, Any] = {}
        process = self.process
        if process.poll() is None:
            process.terminate()
            try:
                out, _ = process.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                out, _ = process.communicate(timeout=5)
            for line in out.splitlines():
                if line.startswith('{"stats"'):
                    stats = orjson.loads(line)["stats"]
        elif process.stdout is not None and not process.stdout.closed:
            process.stdout.close()
        return stats


if __name__ == "__main__":
    raise SystemExit(main())
