"""Each example runs to the end against the emulator it starts itself (no API key set)."""

from __future__ import annotations

import collections
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _run(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("UPSCALE_")}
    env["PYTHONWARNINGS"] = "error"
    done = subprocess.run(
        [sys.executable, *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert "Unclosed" not in done.stderr, done.stderr
    return done


def test_quickstart(tmp_path: Path) -> None:
    """quickstart.py sends one request and prints its messages once polling sees completion."""
    out = _run(EXAMPLES / "quickstart.py", cwd=tmp_path).stdout
    assert "using a local emulator" in out
    assert "== lead_001" in out
    assert "-- first_follow_up:" in out
    assert "not personalised" in out


def test_webhook_service(tmp_path: Path) -> None:
    """webhook_service.py awaits five campaigns through its own aiohttp webhook route."""
    out = _run(EXAMPLES / "webhook_service.py", cwd=tmp_path).stdout
    for n in range(1, 6):
        assert f"campaign_{n}: 40 leads in 4 requests, 39 personalised" in out
    assert "waiters=0" in out


def test_fastapi_webhook(tmp_path: Path) -> None:
    """fastapi_webhook.py receives the webhook in a FastAPI route (skipped without FastAPI)."""
    for module in ("fastapi", "uvicorn"):
        if importlib.util.find_spec(module) is None:
            if os.environ.get("CI"):
                pytest.fail(f"{module} is not installed: CI must install the 'examples' extra")
            pytest.skip(f"{module} is not installed (pip install -e '.[examples]' to run it)")
    out = _run(EXAMPLES / "fastapi_webhook.py", cwd=tmp_path).stdout
    assert "webhook received and confirmed" in out


def test_batch_pipeline_resumes_after_402(tmp_path: Path) -> None:
    """batch_pipeline.py hits the 402, resumes from the saved state, and accounts for every lead."""
    out = _run(
        EXAMPLES / "batch_pipeline.py",
        EXAMPLES / "leads_sample.csv",
        "--out",
        "results.jsonl",
        cwd=tmp_path,
    ).stdout
    assert "stopped by insufficient_credits" in out
    assert "out of credits: buying more, resuming" in out
    rows = [orjson.loads(line) for line in (tmp_path / "results.jsonl").read_bytes().splitlines()]
    ids = [r["lead_id"] for r in rows]
    assert len(ids) == len(set(ids)) == 300
    counts = collections.Counter(r["outcome"] for r in rows)
    assert counts == {"generated": 282, "failed": 11, "rejected": 7}
    assert (tmp_path / "results.batch.json").exists()


def test_leads_sample_has_invalid_and_no_web_presence_leads() -> None:
    """leads_sample.csv holds a few hundred leads, some invalid, some *_nowebpresence."""
    text = (EXAMPLES / "leads_sample.csv").read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) - 1 == 300
    assert sum("_nowebpresence" in line for line in lines) == 12
    assert "linkedin.com/in/no-scheme" in text
    assert "ftp://" in text


def _redis_for_examples() -> str | None:
    """A Redis URL for the Redis example: UPSCALE_TEST_REDIS_URL, else one at 127.0.0.1:6379."""
    import socket

    if importlib.util.find_spec("redis") is None:
        return None
    url = os.environ.get("UPSCALE_TEST_REDIS_URL")
    if url:
        return url
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            if sock.recv(16).startswith(b"+PONG"):
                return "redis://127.0.0.1:6379/0"
    except OSError:
        pass
    return None


def test_replicas(tmp_path: Path) -> None:
    """replicas.py: webhooks received by replica A wake the waiters of replica B through Redis."""
    url = _redis_for_examples()
    if url is None:
        message = (
            "no Redis for examples/replicas.py: set UPSCALE_TEST_REDIS_URL or run one at "
            "127.0.0.1:6379, and pip install -e '.[redis]'"
        )
        if os.environ.get("CI"):
            pytest.fail(message + " (CI must run it)")
        pytest.skip(message)
    out = _run(EXAMPLES / "replicas.py", "--redis", url, cwd=tmp_path).stdout
    assert "replica B: 4 requests complete in" in out
    assert "(35 of 40 leads personalised), woken by the webhooks replica A received" in out
    assert "HubStats(waiters=0, waiting_ids=0, stored_events=0, remembered_keys=4)" in out
    seconds = float(out.split("requests complete in ")[1].split(" s")[0])
    assert seconds < 30  # the fallback poll is 60 s away: B was woken through Redis
