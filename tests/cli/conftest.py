"""Running ``python -m upscale_async`` as a subprocess, with or without a separate emulator."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs
import orjson
import pytest

from upscale_async.cli._demo import DEMO_CAMPAIGN, sample_leads
from upscale_async.cli._files import LEAD_FIELDS

ENV_VARS = ("UPSCALE_API_KEY", "UPSCALE_BASE_URL", "UPSCALE_WEBHOOK_SECRET")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any Upscale setting (so the CLI uses the embedded emulator)."""
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    env["PYTHONWARNINGS"] = "error"
    env.update(extra)
    return env


def run_cli(*args: object, cwd: Path, timeout: float = 60, **env: str) -> Result:
    """Run the command line to the end; a traceback on stderr fails the test."""
    done = subprocess.run(
        [sys.executable, "-m", "upscale_async", *map(str, args)],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert "Unclosed" not in done.stderr, done.stderr
    return Result(done.returncode, done.stdout, done.stderr)


@attrs.frozen
class Result:
    code: int
    stdout: str
    stderr: str


def records(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def write_csv(path: Path, leads: list[dict[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(LEAD_FIELDS)
        for lead in leads:
            writer.writerow([lead.get(k) or "" for k in LEAD_FIELDS])
    return path


def write_jsonl(path: Path, leads: list[dict[str, Any]]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(lead) + b"\n" for lead in leads))
    return path


def valid_leads(n: int) -> list[dict[str, Any]]:
    """``n`` valid leads that the emulator personalises."""
    return [
        lead
        for lead in sample_leads(n * 2)
        if not lead["automation_tool_lead_id"].endswith("_nowebpresence")
        and lead["automation_tool_lead_id"] != "lead_00040"
    ][:n]


@pytest.fixture
def campaign_file(tmp_path: Path) -> Path:
    path = tmp_path / "campaign.json"
    path.write_bytes(orjson.dumps(DEMO_CAMPAIGN))
    return path


@attrs.frozen
class ExternalEmulator:
    base_url: str
    api_key: str
    webhook_secret: str


@contextmanager
def external_emulator(*args: str) -> Iterator[ExternalEmulator]:
    """``upscale-async emulator --port 0 ARGS`` in its own process, until SIGINT."""
    process = subprocess.Popen(
        [sys.executable, "-m", "upscale_async", "emulator", "--port", "0", *args],
        env=clean_env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    seen: dict[str, str] = {}
    try:
        for line in process.stdout:
            key, _, value = line.partition(": ")
            seen[key] = value.strip()
            if key == "webhook_secret":
                break
        yield ExternalEmulator(seen["base_url"], seen["api_key"], seen["webhook_secret"])
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        process.stdout.close()


@pytest.fixture(scope="module")
def emulator() -> Iterator[ExternalEmulator]:
    """A separate emulator (the docs' retrieve example preloaded), as a real service stands."""
    with external_emulator("--doc-examples", "--webhook-time-scale", "0.001") as emu:
        yield emu
