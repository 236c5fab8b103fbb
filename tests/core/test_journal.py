"""BatchJournal under attack: torn tails, a second run on the same file, a disk that fills up."""

from __future__ import annotations

import errno
import logging
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
import pytest

from upscale_async import (
    AcceptedRequest,
    BatchInterruptedError,
    BatchJournal,
    BatchPolicy,
    StopReason,
    UpscaleClient,
)
from upscale_async.emulator import Emulator
from upscale_async.testing import make_campaign, sample_leads


def record(n: int) -> AcceptedRequest:
    return AcceptedRequest(f"req-{n}", (f"lead-{n}a", f"lead-{n}b"), 2 * n)


def written(path: Path, n: int) -> bytes:
    """A journal file of ``n`` whole records, written by BatchJournal itself."""
    with BatchJournal(path) as journal:
        for i in range(n):
            journal.record_sync(record(i))
    return path.read_bytes()


class FullDisk:
    """The journal's file on a disk that fills up: close (or a write) fails with ENOSPC."""

    def __init__(self, real: Any, *, fail_write: bool = False) -> None:
        self.real = real
        self.fail_write = fail_write

    def write(self, data: memoryview) -> int:
        if self.fail_write:
            self.real.write(data[: len(data) // 2])  # half the line reached the disk
            raise OSError(errno.ENOSPC, "No space left on device")
        return int(self.real.write(data))

    def fileno(self) -> int:
        return int(self.real.fileno())

    def close(self) -> None:
        self.real.close()
        raise OSError(errno.ENOSPC, "No space left on device")


def test_a_torn_partial_line_is_cut_off_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A half-written last line is truncated away on open, and the warning says how many bytes."""
    path = tmp_path / "run.journal"
    whole = written(path, 3)
    torn = b'{"secure_request_id":"req-3","lead_ids":["lea'
    path.write_bytes(whole + torn)
    with caplog.at_level(logging.WARNING, logger="upscale_async"):
        journal = BatchJournal(path)
    with journal:
        assert journal.request_ids() == ["req-0", "req-1", "req-2"]
        assert path.read_bytes() == whole
    assert f"dropped {len(torn)} bytes of a torn last line" in caplog.text
    assert str(path) in caplog.text


def test_a_record_missing_only_its_newline_is_kept(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A whole record that lost only its final newline counts, and the newline is put back."""
    path = tmp_path / "run.journal"
    whole = written(path, 3)
    path.write_bytes(whole[:-1])
    with caplog.at_level(logging.WARNING, logger="upscale_async"):
        journal = BatchJournal(path)
    with journal:
        assert journal.request_ids() == ["req-0", "req-1", "req-2"]
        assert path.read_bytes() == whole
    assert "lost only its final newline" in caplog.text


@pytest.mark.parametrize(
    "tear",
    [pytest.param("partial", id="partial-json-line"), pytest.param("newline", id="no-newline")],
)
def test_a_torn_journal_takes_new_records_and_reopens(tmp_path: Path, tear: str) -> None:
    """After a repair the next record starts on its own line: the journal reopens every time."""
    path = tmp_path / "run.journal"
    whole = written(path, 2)
    for round_ in range(3):
        data = path.read_bytes()
        path.write_bytes(data + b'{"secure_req' if tear == "partial" else data[:-1])
        with BatchJournal(path) as journal:
            journal.record_sync(record(10 + round_))
    expected = ["req-0", "req-1", "req-10", "req-11", "req-12"]
    with BatchJournal(path) as journal:
        assert journal.request_ids() == expected
    assert path.read_bytes().startswith(whole)


def test_a_second_journal_on_the_same_path_is_refused(tmp_path: Path) -> None:
    """A second open BatchJournal on one file raises, naming the path, instead of a second run."""
    path = tmp_path / "run.journal"
    with BatchJournal(path):
        with pytest.raises(RuntimeError, match="held by another run") as info:
            BatchJournal(path)
    assert str(path) in str(info.value)


def test_close_releases_the_lock(tmp_path: Path) -> None:
    """Once the first journal is closed, the same path opens again with its records."""
    path = tmp_path / "run.journal"
    written(path, 1)
    with BatchJournal(path) as again:
        assert again.request_ids() == ["req-0"]


async def test_a_second_process_on_the_same_journal_is_refused(tmp_path: Path) -> None:
    """Another process opening a journal this one holds exits with the 'held' error."""
    path = tmp_path / "run.journal"
    code = "import sys; from upscale_async import BatchJournal; BatchJournal(sys.argv[1])"
    with BatchJournal(path):
        with anyio.fail_after(60):
            held = await anyio.run_process([sys.executable, "-c", code, str(path)], check=False)
    assert held.returncode != 0
    assert b"held by another run" in held.stderr
    with anyio.fail_after(60):
        free = await anyio.run_process([sys.executable, "-c", code, str(path)], check=False)
    assert free.returncode == 0, free.stderr.decode()


def test_a_close_error_after_a_good_run_is_raised(tmp_path: Path) -> None:
    """A disk-full error while closing is raised when the block itself succeeded, naming the file."""
    path = tmp_path / "run.journal"
    with pytest.raises(OSError, match="closing the journal") as info:
        record_then_fill_the_disk(path)
    assert info.value.errno == errno.ENOSPC
    assert str(path) in str(info.value)
    with BatchJournal(path) as again:  # the lock was released all the same
        assert again.request_ids() == ["req-0"]


async def test_a_close_error_does_not_replace_the_batch_error(tmp_path: Path) -> None:
    """A batch stopped by a 402 raises its own error, with .partial, and the close error as a note."""
    path = tmp_path / "run.journal"
    async with Emulator(webhook_secret=None, credits=200) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with pytest.raises(BatchInterruptedError) as info:
                await submit_on_a_full_disk(client, path)
    assert info.value.reason is StopReason.INSUFFICIENT_CREDITS
    assert info.value.partial.not_submitted_count == 200
    notes = getattr(info.value, "__notes__", [])
    assert any("closing the journal" in note and str(path) in note for note in notes)


def record_then_fill_the_disk(path: Path) -> None:
    with BatchJournal(path) as journal:
        journal.record_sync(record(0))
        journal._file = FullDisk(journal._file)  # type: ignore[assignment]


async def submit_on_a_full_disk(client: UpscaleClient, path: Path) -> None:
    """300 leads (the account has credits for 100) journaled on a disk full at close."""
    campaign = make_campaign(completion_notification_url="http://127.0.0.1:9/unused")
    with BatchJournal(path) as journal:
        journal._file = FullDisk(journal._file)  # type: ignore[assignment]
        await client.submit_batch(
            campaign,
            journal.skip_accepted(sample_leads(300)),
            on_accepted=journal.record,
            batch=BatchPolicy(concurrency=1),
        )


def test_a_failed_write_leaves_no_torn_line(tmp_path: Path) -> None:
    """A write that fails halfway (disk full) is cut back off, so the next record reopens fine."""
    path = tmp_path / "run.journal"
    whole = written(path, 1)
    with BatchJournal(path) as journal:
        real = journal._file
        journal._file = FullDisk(real, fail_write=True)  # type: ignore[assignment]
        with pytest.raises(OSError, match="writing to the journal") as info:
            journal.record_sync(record(1))
        assert info.value.errno == errno.ENOSPC
        assert path.read_bytes() == whole
        journal._file = real
        journal.record_sync(record(2))
    with BatchJournal(path) as again:
        assert again.request_ids() == ["req-0", "req-2"]


@pytest.mark.parametrize(
    "tear",
    [pytest.param("partial", id="partial-json-line"), pytest.param("newline", id="no-newline")],
)
async def test_resuming_a_torn_journal_three_times_loses_and_resends_nothing(
    tmp_path: Path, tear: str
) -> None:
    """Stopped and torn three times, the run resumes each time: no lead lost or sent twice."""
    path = tmp_path / "run.journal"
    leads = sample_leads(600)
    campaign = make_campaign(completion_notification_url="http://127.0.0.1:9/unused")
    policy = BatchPolicy(chunk_size=50, concurrency=1)
    torn_ids: list[str] = []
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            for _ in range(3):
                with BatchJournal(path) as journal:
                    stopper = StopAfter(journal, 3)
                    with pytest.raises(BatchInterruptedError, match="stopped on purpose"):
                        await client.submit_batch(
                            campaign,
                            journal.skip_accepted(leads),
                            on_accepted=stopper,
                            batch=policy,
                        )
                torn_ids += tear_last_record(path, tear)
            with BatchJournal(path) as journal:
                await client.submit_batch(
                    campaign, journal.skip_accepted(leads), on_accepted=journal.record, batch=policy
                )
        posts = emu.state.endpoint_counts["request_message_generation"]
        accepted = {row[0] for r in emu.state.requests.values() for row in r.leads}
        assert not emu.state.double_charges()
    every = {lead["automation_tool_lead_id"] for lead in leads}
    assert accepted == every  # none lost
    # 12 chunks, each sent once, plus one resend of each torn record's chunk: nothing else.
    assert posts == 12 + len(torn_ids) // 50
    with BatchJournal(path) as final:
        journaled = Counter(i for r in final.accepted for i in r.lead_ids)
    assert set(journaled) == every
    assert max(journaled.values()) == 1


class StopAfter:
    """An on_accepted that records in the journal, then stops the batch after ``n`` records."""

    def __init__(self, journal: BatchJournal, n: int) -> None:
        self.journal, self.left = journal, n

    async def __call__(self, request: AcceptedRequest) -> None:
        await self.journal.record(request)
        self.left -= 1
        if self.left == 0:
            raise RuntimeError("stopped on purpose")


def tear_last_record(path: Path, tear: str) -> list[str]:
    """Tear the journal's last record as a crash would; return the lead ids it no longer holds."""
    data = path.read_bytes()
    if tear == "newline":
        path.write_bytes(data[:-1])
        return []
    start = data.rindex(b"\n", 0, len(data) - 1) + 1
    with BatchJournal(path) as journal:
        lost = list(journal.accepted[-1].lead_ids)
    path.write_bytes(data[: start + (len(data) - start) // 2])
    return lost
