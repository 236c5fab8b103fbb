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

from .conftest import clean_env, records, run_cli, valid_leads, write_csv

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


def _generate_args(base_url: str, api_key: str, *extra: str) -> list[str]:
    return [
        "--base-url",
        base_url,
        "--api-key",
        api_key,
        "generate",
        "leads.csv",
        "--campaign",
        "campaign.json",
        "--out",
        "out.jsonl",
        "--poll",
        "--poll-interval",
        "0.2",
        "--chunk-size",
        "5",
        *extra,
    ]


def _outcomes(path: Path) -> list[str]:
    return [r["outcome"] for r in records(path)]


@pytest.mark.timeout(120)
def test_credits_run_out_says_so_and_the_command_resumes(
    tmp_path: Path, campaign_file: Path
) -> None:
    """A 402 ends with one line: credits ran out, how many leads, the command that resumes."""
    write_csv(tmp_path / "leads.csv", valid_leads(40))
    with EmulatorThread(credits=50, webhook_secret=None) as emu:
        args = _generate_args(emu.base_url, emu.api_key)
        result = run_cli(*args, cwd=tmp_path)
        unsent = _outcomes(tmp_path / "out.jsonl").count("not_submitted")
        emu.add_credits(1000)
        resumed = run_cli(*args, "--resume", cwd=tmp_path)
    assert result.code == 1, result.stderr
    assert 0 < unsent < 40
    resume = "upscale-async generate leads.csv --campaign campaign.json --out out.jsonl --resume"
    line = (
        f"upscale-async: credits ran out (402): {unsent} leads were not submitted; buy credits, "
        f"then run: {resume}"
    )
    assert result.stderr.count(line) == 1, result.stderr
    assert "fix the cause" not in result.stderr
    assert resumed.code == 0, resumed.stderr
    assert _outcomes(tmp_path / "out.jsonl") == ["generated"] * 40


@pytest.mark.timeout(60)
def test_refused_key_ends_with_a_summary(tmp_path: Path, campaign_file: Path) -> None:
    """A 401 ends with the summary and one line: the key was refused, how many, how to resume."""
    write_csv(tmp_path / "leads.csv", valid_leads(40))
    with EmulatorThread(revoked_keys=("revoked-key",), webhook_secret=None) as emu:
        result = run_cli(*_generate_args(emu.base_url, "revoked-key"), cwd=tmp_path)
    assert result.code == 2, result.stderr
    assert "40 leads in" in result.stderr  # the summary
    assert (
        "upscale-async: the API key was refused (401): 40 leads were not submitted; fix the key "
        "(--api-key / UPSCALE_API_KEY), then run: upscale-async generate leads.csv"
    ) in result.stderr
    assert _outcomes(tmp_path / "out.jsonl") == ["not_submitted"] * 40


@pytest.mark.timeout(60)
def test_progress_does_not_count_unsent_leads_as_completed(
    tmp_path: Path, campaign_file: Path
) -> None:
    """After a 401 the progress line says 0 completed and 40 not submitted, not 40/40."""
    write_csv(tmp_path / "leads.csv", valid_leads(40))
    with EmulatorThread(revoked_keys=("revoked-key",), webhook_secret=None) as emu:
        result = run_cli(*_generate_args(emu.base_url, "revoked-key"), cwd=tmp_path)
    assert "completed 40/~40" not in result.stderr
    assert "completed 0/~40, generated 0, not generated 0, not submitted 40" in result.stderr


def _dead_url() -> str:
    return f"http://127.0.0.1:{_free_port()}/api/v2"  # nothing listens there


@pytest.mark.timeout(120)
def test_dead_url_stops_after_the_retry_budget_with_one_line(
    tmp_path: Path, campaign_file: Path
) -> None:
    """A URL nobody answers: one line naming it and the last error, no retry warnings."""
    write_csv(tmp_path / "leads.csv", valid_leads(200))
    url = _dead_url()
    started = time.monotonic()
    result = run_cli(*_generate_args(url, "k"), cwd=tmp_path, timeout=100)
    elapsed = time.monotonic() - started
    assert result.code == 1, result.stderr
    assert "retrying" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if url in line]
    assert len(lines) == 1, result.stderr
    assert f"cannot reach the Upscale API at {url} after " in lines[0]
    assert "leads were not submitted; last error: TransportError: connection" in lines[0]
    # One retry budget (about 8 s: waits of 0.5, 1, 2, 4 s with jitter), not two.
    assert elapsed < 40, elapsed


@pytest.mark.timeout(120)
def test_verbose_prints_each_retry_and_the_probe_is_not_retried(
    tmp_path: Path, campaign_file: Path
) -> None:
    """-v prints each retry of the submits; the account probe before them is tried once."""
    write_csv(tmp_path / "leads.csv", valid_leads(5))
    result = run_cli(*_generate_args(_dead_url(), "k", "-v"), cwd=tmp_path, timeout=100)
    assert result.stderr.count("retrying POST /messages/request_message_generation") == 4
    assert "GET /account" not in result.stderr


@pytest.mark.timeout(60)
def test_chunks_the_service_refuses_end_with_a_line_saying_so_not_a_retry_hint(
    tmp_path: Path, campaign_file: Path
) -> None:
    """Every chunk refused with a 422 (over the server's leads per request): the line says the
    requests were refused and how to fix them, not "once it answers" (it answers every time)."""
    write_csv(tmp_path / "leads.csv", valid_leads(40))
    with EmulatorThread(max_leads_per_request=3, webhook_secret=None) as emu:
        result = run_cli(*_generate_args(emu.base_url, emu.api_key), cwd=tmp_path)
    assert result.code == 1, result.stderr
    assert "once it answers" not in result.stderr
    assert "the Upscale API at " in result.stderr
    assert " refused the requests (422): " in result.stderr
    assert "lead_data must contain at most 3 leads" in result.stderr
    assert "fix what the error names (a smaller --chunk-size for a size limit), then run: " in (
        result.stderr
    )
