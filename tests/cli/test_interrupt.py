"""``generate`` interrupted by SIGINT/SIGTERM, then ``--resume``: nothing posted twice, nothing lost."""

from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from upscale_async.emulator import Fault, FaultPlan
from upscale_async.testing import EmulatorThread

from .conftest import clean_env, records, run_cli, valid_leads, write_csv

LEADS = 400
ROUNDS = 20
POST = "request_message_generation"


def _ids(path: Path) -> list[str]:
    return [r["lead_id"] for r in records(path)]


def _cli(emu: EmulatorThread, tmp_path: Path, campaign: Path, *extra: str) -> list[str]:
    return [
        "--base-url",
        emu.base_url,
        "--api-key",
        emu.api_key,
        "generate",
        str(tmp_path / "leads.csv"),
        "--campaign",
        str(campaign),
        "--out",
        str(tmp_path / "out.jsonl"),
        "--poll",
        "--poll-interval",
        "0.2",
        "--chunk-size",
        "5",
        "--concurrency",
        "2",
        "-q",
        *extra,
    ]


def _traffic(emu: EmulatorThread) -> int:
    return sum(emu.call(lambda: dict(emu.state.endpoint_counts)).values())


def _interrupt_once(
    emu: EmulatorThread, args: list[str], cwd: Path, signum: int, delay: float
) -> subprocess.CompletedProcess[str]:
    """Start the CLI, wait for its first request, wait ``delay`` more, send ``signum``."""
    before = _traffic(emu)
    process = subprocess.Popen(
        [sys.executable, "-m", "upscale_async", *args],
        cwd=cwd,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while _traffic(emu) == before and process.poll() is None:
            assert time.monotonic() < deadline, "the CLI sent nothing within 20 s"
            time.sleep(0.02)
        time.sleep(delay)
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _posted_lead_ids(emu: EmulatorThread) -> list[str]:
    def read() -> list[str]:
        return [row[0] for r in emu.state.requests.values() for row in r.leads]

    return emu.call(read)


@pytest.mark.timeout(240)
def test_random_interrupts_then_resume_post_each_lead_once(
    tmp_path: Path, campaign_file: Path
) -> None:
    """20 runs cut by SIGINT/SIGTERM at random points, then --resume: each lead posted once."""
    seed = int(os.environ.get("INTERRUPT_SEED", random.randrange(10**6)))
    rng = random.Random(seed)
    # The sample makes every 40th lead invalid: left out, so that every lead is generated.
    pool = valid_leads(LEADS * 2)
    leads = [lead for lead in pool if int(lead["automation_tool_lead_id"][-5:]) % 40][:LEADS]
    write_csv(tmp_path / "leads.csv", leads)
    everyone = sorted(lead["automation_tool_lead_id"] for lead in leads)
    out = tmp_path / "out.jsonl"
    pending_seen = 0
    with EmulatorThread(latency=0.3, messages_per_second=2000, webhook_secret=None) as emu:
        # Slow POSTs, so that a run is cut while submitting as well as while waiting.
        emu.faults.set(POST, FaultPlan(rate=1.0, choices=[Fault.slow(0.3)], seed=seed))
        for n in range(ROUNDS):
            signum = signal.SIGINT if n % 2 == 0 else signal.SIGTERM
            resume = ("--resume",) if n else ()
            args = _cli(emu, tmp_path, campaign_file, *resume)
            done = _interrupt_once(emu, args, tmp_path, signum, rng.uniform(0.0, 0.6))
            assert "Traceback" not in done.stderr, (seed, n, done.stderr)
            assert done.returncode == 128 + signum, (seed, n, done.stderr)
            assert "--resume" in done.stderr, (seed, n, done.stderr)
            assert sorted(_ids(out)) == everyone, (seed, n)  # one record per lead, each time
            pending = [r for r in records(out) if r["outcome"] == "pending"]
            assert all(r["secure_request_id"] for r in pending), (seed, n)
            pending_seen += len(pending)
        emu.faults.clear(POST)
        final = run_cli(*_cli(emu, tmp_path, campaign_file, "--resume"), cwd=tmp_path)
        posted = _posted_lead_ids(emu)
        posts = emu.call(lambda: emu.state.endpoint_counts[POST])
        accepted = emu.call(lambda: len(emu.state.requests))
        double = emu.call(emu.state.double_charges)
    assert final.code == 0, (seed, final.stderr)
    assert [k for k, c in collections.Counter(posted).items() if c > 1] == [], seed
    assert sorted(posted) == everyone, seed
    assert posts == accepted, seed  # no POST was resent (nor deduplicated)
    assert double == []
    outcomes = records(out)
    assert sorted(r["lead_id"] for r in outcomes) == everyone, seed
    assert {r["outcome"] for r in outcomes} == {"generated"}, seed
    assert pending_seen > 0, seed  # some runs were cut with requests accepted, not complete
    assert not (tmp_path / "out.jsonl.journal").exists()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("where", ["--no-journal", "stdout"])
def test_without_a_journal_an_interrupt_still_names_every_accepted_request(
    tmp_path: Path, campaign_file: Path, where: str
) -> None:
    """SIGINT with no journal: the leads Upscale accepted are ``pending`` with their request.

    They used to be written ``not_submitted`` ("--resume sends it") although they were charged,
    and ``--resume`` is refused without a journal.
    """
    leads = valid_leads(80)
    write_csv(tmp_path / "leads.csv", leads)
    with EmulatorThread(messages_per_second=1, webhook_secret=None) as emu:
        args = _cli(emu, tmp_path, campaign_file)
        if where == "stdout":
            args[args.index("--out") + 1] = "-"
        else:
            args.append("--no-journal")
        # Wait for some requests to be accepted (generation at 1 message/s keeps them pending).
        done = _interrupt_once(emu, args, tmp_path, signal.SIGINT, 1.0)
        accepted = emu.call(
            lambda: {r: {row[0] for row in q.leads} for r, q in emu.state.requests.items()}
        )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 130, done.stderr
    out = (
        records(tmp_path / "out.jsonl")
        if where != "stdout"
        else [orjson.loads(line) for line in done.stdout.splitlines() if line.strip()]
    )
    assert sorted(r["lead_id"] for r in out) == sorted(
        lead["automation_tool_lead_id"] for lead in leads
    )
    assert accepted, "no request was accepted before the interrupt"
    by_id = {r["lead_id"]: r for r in out}
    for request_id, lead_ids in accepted.items():
        for lead_id in lead_ids:
            record = by_id[lead_id]
            if record["outcome"] != "generated":
                assert record["outcome"] == "pending", record
                assert record["secure_request_id"] == request_id, record
                assert "upscale-async retrieve" in record["reason"], record
                assert record["lead"]["automation_tool_lead_id"] == lead_id, record
    for record in out:
        if record["outcome"] == "not_submitted":
            assert "--resume" not in record["reason"], record
    assert "no journal to --resume from" in done.stderr, done.stderr
    assert "Continue with" not in done.stderr, done.stderr
