"""``generate`` says why a run goes wrong, once and early: a wrong webhook secret, a dead URL,
credits running out (402), a refused key (401)."""

from __future__ import annotations

import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import orjson
import pytest

from upscale_async.cli._demo import DEMO_CAMPAIGN
from upscale_async.testing import EmulatorThread

from .conftest import clean_env, valid_leads, write_csv

WRONG_SECRET = "whsec_" + "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldC0xMjM0NTY="
WARNING = "rejected for a bad signature"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _lines(stream: object, into: queue.Queue[tuple[float, str]]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        into.put((time.monotonic(), line))


def _first_rejection(emu: EmulatorThread, deadline: float) -> float:
    """The time the test saw the emulator's first webhook answered 401."""
    while not emu.call(lambda: any(d.status == 401 for d in emu.state.deliveries)):
        assert time.monotonic() < deadline, "no webhook was rejected within 20 s"
        time.sleep(0.02)
    return time.monotonic()


@pytest.mark.timeout(60)
def test_wrong_webhook_secret_warns_once_within_5_s(tmp_path: Path) -> None:
    """Webhooks signed with another secret: one warning naming the secret, within 5 s."""
    port = _free_port()
    write_csv(tmp_path / "leads.csv", valid_leads(40))
    url = f"http://127.0.0.1:{port}/upscale/webhook"
    campaign = {**DEMO_CAMPAIGN, "completion_notification_url": url}
    (tmp_path / "campaign.json").write_bytes(orjson.dumps(campaign))
    # Slowed: 80 messages at 20/s, and the fallback poll every 120 s: the run is still going.
    with EmulatorThread(messages_per_second=20) as emu:
        args = ["--base-url", emu.base_url, "--api-key", emu.api_key, "generate", "leads.csv"]
        args += ["--campaign", "campaign.json", "--out", "out.jsonl", "--chunk-size", "5"]
        args += ["--webhook-port", str(port), "--webhook-secret", WRONG_SECRET]
        process = subprocess.Popen(
            [sys.executable, "-m", "upscale_async", *args],
            cwd=tmp_path,
            env=clean_env(),
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        lines: queue.Queue[tuple[float, str]] = queue.Queue()
        reader = threading.Thread(target=_lines, args=(process.stderr, lines), daemon=True)
        reader.start()
        try:
            first = _first_rejection(emu, time.monotonic() + 20)
            seen: list[tuple[float, str]] = []
            while not any(WARNING in line for _, line in seen):
                seen.append(lines.get(timeout=10))
            warned = next(t for t, line in seen if WARNING in line)
            time.sleep(2.0)  # more rejections come: no second warning
            assert process.poll() is None, "the run should still be waiting"
            process.send_signal(signal.SIGINT)
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        reader.join(timeout=10)
        assert process.stderr is not None
        process.stderr.close()
    while not lines.empty():
        seen.append(lines.get_nowait())
    stderr = "".join(line for _, line in seen)
    assert warned - first < 5.0, stderr
    assert stderr.count(WARNING) == 1, stderr
    assert "--webhook-secret / UPSCALE_WEBHOOK_SECRET" in stderr
