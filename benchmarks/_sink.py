"""A minimal aiohttp sink server for the submit benchmarks, run in its own process.

Every request, on any path and with any method, has its body read and is answered
``{"message":"Success","secure_request_id":"<uuid4>"}`` (200). It listens on 127.0.0.1 only.

    python benchmarks/_sink.py [--port 0]

prints ``port: N`` once it listens, then serves until SIGTERM or SIGINT. :func:`start_sink`
starts it from another process and :func:`stop_sink` stops it.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from aiohttp import web

HOST = "127.0.0.1"
_PREFIX = b'{"message":"Success","secure_request_id":"'
_HEADERS = {"Content-Type": "application/json"}


async def _handle(request: web.BaseRequest) -> web.Response:
    await request.read()
    body = b'%s%s"}' % (_PREFIX, str(uuid.uuid4()).encode())
    return web.Response(body=body, headers=_HEADERS)


async def _serve(port: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    # The low-level server (no router, no middlewares, no access log): as little work per
    # request as aiohttp allows, so the sink is not what limits the client paths.
    server = web.Server(_handle, access_log=None)
    listener = await loop.create_server(server, HOST, port, reuse_address=True)
    try:
        bound = listener.sockets[0].getsockname()[1]
        print(f"port: {bound}", flush=True)
        await stop.wait()
    finally:
        listener.close()
        await server.shutdown(0.5)
        await listener.wait_closed()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Minimal aiohttp sink for the benchmarks.")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.port))
    return 0


def start_sink(timeout: float = 20.0) -> tuple[subprocess.Popen[str], int]:
    """Start the sink in a child process; returns the process and its port."""
    process = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve()), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + timeout
    try:
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            if line.startswith("port: "):
                return process, int(line.split(": ", 1)[1])
        raise RuntimeError("the sink server did not start")
    except BaseException:
        stop_sink(process)
        raise


def stop_sink(process: subprocess.Popen[str]) -> None:
    """Stop the sink (SIGTERM, then SIGKILL after 5 s)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
    if process.stdout is not None:
        process.stdout.close()


if __name__ == "__main__":
    raise SystemExit(main())
