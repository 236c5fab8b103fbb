"""A pipeline killed with SIGKILL mid-batch resumes from its journal without resending accepted leads."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import anyio
import orjson
import pytest

from upscale_async.emulator import Emulator, Fault, FaultPlan

N, CHUNK, CONCURRENCY = 3_000, 50, 4

PIPELINE = (
    textwrap.dedent(
        """
    import asyncio, sys
    from upscale_async import BatchJournal, BatchPolicy, Campaign, UpscaleClient

    async def main(base_url: str, api_key: str, journal_path: str) -> None:
        campaign = Campaign(
            completion_notification_url="http://127.0.0.1:9/unused",
            automation_tool_customer_id="c", automation_tool_campaign_id="k",
            automation_tool_campaign_name="n", proposition_company_name="Acme",
            proposition_company_url="https://acme.example",
            message_sequence=["connection_request", "first_follow_up"],
        )
        leads = (
            {"automation_tool_lead_id": f"lead_{i:06d}", "lead_linkedin": f"https://linkedin.com/in/{i}",
             "lead_company": "Co", "first_name": "F", "last_name": "L"}
            for i in range(N_LEADS)
        )
        with BatchJournal(journal_path) as journal:
            async with UpscaleClient(api_key, base_url=base_url) as client:
                batch = await client.submit_batch(
                    campaign, journal.skip_accepted(leads),
                    batch=BatchPolicy(chunk_size=CHUNK, concurrency=CONCURRENCY),
                    on_accepted=journal.record,
                )
        assert batch.complete, batch.counts()

    asyncio.run(main(*sys.argv[1:4]))
    """
    )
    .replace("N_LEADS", str(N))
    .replace("CHUNK", str(CHUNK))
    .replace("CONCURRENCY", str(CONCURRENCY))
)


def journal_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def journaled_ids(path: Path) -> set[str]:
    """The lead ids of the journal's whole records (a torn last line holds none)."""
    out: set[str] = set()
    for line in path.read_bytes().splitlines(keepends=True):
        try:
            out.update(orjson.loads(line)["lead_ids"])
        except orjson.JSONDecodeError:
            assert not line.endswith(b"\n"), "only the last line may be torn"
    return out


async def kill_after(args: list[str], env: dict[str, str], journal: Path, lines: int) -> None:
    """Run the pipeline and SIGKILL it once the journal has ``lines`` lines."""
    async with await anyio.open_process(args, env=env, stdout=None, stderr=None) as run:
        deadline = time.monotonic() + 60
        while journal_lines(journal) < lines and time.monotonic() < deadline:
            assert run.returncode is None, "the pipeline ended before it could be killed"
            await anyio.sleep(0.02)
        run.send_signal(signal.SIGKILL)
        await run.wait()
    assert run.returncode == -signal.SIGKILL


@pytest.mark.timeout(120)
async def test_sigkill_then_resume(tmp_path: Path) -> None:
    """Killed mid-batch, the pipeline resumes: no journaled lead is sent again, none charged twice."""
    script = tmp_path / "pipeline.py"
    script.write_text(PIPELINE)
    journal = tmp_path / "run.journal"
    env = {k: v for k, v in os.environ.items() if not k.startswith("UPSCALE_")}
    async with Emulator(webhook_secret=None) as emu:
        emu.faults.set(
            "request_message_generation", FaultPlan(rate=1.0, choices=(Fault.slow(0.05),))
        )
        args = [sys.executable, str(script), emu.base_url, emu.api_key, str(journal)]
        async with await anyio.open_process(args, env=env, stdout=None, stderr=None) as first:
            deadline = time.monotonic() + 60
            while journal_lines(journal) < 10 and time.monotonic() < deadline:
                assert first.returncode is None, "the pipeline ended before it could be killed"
                await anyio.sleep(0.02)
            first.send_signal(signal.SIGKILL)
            await first.wait()
        assert first.returncode == -signal.SIGKILL
        await anyio.sleep(0.3)  # let the server finish the requests in flight at the kill
        journaled = {
            lead_id
            for line in journal.read_bytes().splitlines()
            if line.strip()
            for lead_id in orjson.loads(line)["lead_ids"]
        }
        before = set(emu.state.requests)
        assert 0 < len(journaled) < N

        second = await anyio.run_process(args, env=env, check=False)
        assert second.returncode == 0, second.stderr.decode()

        after = [r for rid, r in emu.state.requests.items() if rid not in before]
        resent = {row[0] for request in after for row in request.leads}
        assert resent.isdisjoint(journaled)  # no journaled lead was sent again
        in_flight_at_kill = {
            row[0] for rid in before for row in emu.state.requests[rid].leads
        } - journaled
        assert len(in_flight_at_kill) <= CHUNK * CONCURRENCY
        every = {row[0] for r in emu.state.requests.values() for row in r.leads}
        assert every == {f"lead_{i:06d}" for i in range(N)}
        assert not emu.state.double_charges()


def tear(journal: Path, how: str) -> None:
    """Tear the journal's last record as a crash mid-write would."""
    data = journal.read_bytes()
    last = data.rindex(b"\n", 0, len(data) - 1) + 1
    if how == "half-record":  # the crash came in the middle of the last record
        journal.write_bytes(data[: last + (len(data) - last) // 2])
    else:  # only the final newline was lost: the record is whole and still counts
        journal.write_bytes(data.rstrip(b"\n"))


@pytest.mark.timeout(180)
async def test_sigkill_twice_with_torn_tails_then_resume(tmp_path: Path) -> None:
    """Killed twice, each time leaving a torn journal tail, the pipeline resumes twice and ends."""
    script = tmp_path / "pipeline.py"
    script.write_text(PIPELINE)
    journal = tmp_path / "run.journal"
    env = {k: v for k, v in os.environ.items() if not k.startswith("UPSCALE_")}
    async with Emulator(webhook_secret=None) as emu:
        emu.faults.set(
            "request_message_generation", FaultPlan(rate=1.0, choices=(Fault.slow(0.05),))
        )
        args = [sys.executable, str(script), emu.base_url, emu.api_key, str(journal)]
        await kill_after(args, env, journal, 10)
        await anyio.sleep(0.3)  # let the server finish the requests in flight at the kill
        tear(journal, "half-record")
        for resume in (1, 2):
            journaled, before = journaled_ids(journal), set(emu.state.requests)
            assert 0 < len(journaled) < N
            if resume == 1:  # resumed (repairing the tail), then killed again
                await kill_after(args, env, journal, journal_lines(journal) + 15)
                await anyio.sleep(0.3)
                tear(journal, "no-newline")
            else:  # resumed (repairing the tail) to the end
                last = await anyio.run_process(args, env=env, check=False)
                assert last.returncode == 0, last.stderr.decode()
                assert b"lost only its final newline" in last.stderr
            after = [r for rid, r in emu.state.requests.items() if rid not in before]
            resent = {row[0] for request in after for row in request.leads}
            assert resent.isdisjoint(journaled)  # no journaled lead was sent again
        every = {row[0] for r in emu.state.requests.values() for row in r.leads}
        assert every == {f"lead_{i:06d}" for i in range(N)}
        assert not emu.state.double_charges()
    assert journaled_ids(journal) == every  # every lead journaled, and the file still reads
