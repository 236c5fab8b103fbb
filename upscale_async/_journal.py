"""BatchJournal: an append-only record of accepted requests, so a pipeline survives a crash."""

from __future__ import annotations

import logging
import os
import sys
import threading
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import IO, Final, TypeVar

import anyio
import orjson

from ._ledger import Chunk, ChunkClaim, ClaimState
from ._models import lead_id as _lead_id
from ._results import AcceptedRequest

__all__ = ["BatchJournal"]

L = TypeVar("L")

logger: Final = logging.getLogger("upscale_async")

if sys.platform == "win32":  # pragma: no cover - no flock: a second run is not detected

    def _take_lock(fd: int, path: Path) -> None:
        pass

else:
    import fcntl

    def _take_lock(fd: int, path: Path) -> None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RuntimeError(
                f"the journal {str(path)!r} is held by another run (another process, or another "
                "open BatchJournal in this one): two runs on one journal would both send every "
                "lead not journaled yet. Wait for that run to end (or close its BatchJournal), "
                "or give this run its own journal path"
            ) from None


class BatchJournal:
    """A JSON-lines file with one line per accepted request, written as each is accepted.

    Pass ``journal.record`` as ``submit_batch(on_accepted=...)``; after a crash (even
    ``SIGKILL``), open the same path again and submit ``journal.skip_accepted(leads)``: no lead
    Upscale already accepted is sent again. Each line is written (and fsynced unless
    ``fsync=False``) on a worker thread, off the event loop, before the chunk that was accepted
    moves on (the other chunks go on meanwhile).
    Only the requests whose answers arrived can be recorded: leads in flight at the crash are
    sent again, which the API's deduplication makes free (D8).

    Opening repairs a torn last line left by a crash mid-write, with a warning on the
    ``upscale_async`` logger: a partial record is cut off (its leads are sent again), and a
    whole record that lost only its final newline is kept and the newline added. So a journal
    can be resumed any number of times.

    One run at a time: opening takes an exclusive advisory lock (``flock``) on the file, held
    until :meth:`close` (or the end of the ``with`` block), and a second ``BatchJournal`` on the
    same path, in another process or this one, raises ``RuntimeError`` instead of sending
    every lead a second time. On Windows there is no ``flock`` and no lock is taken.

    It is also a :class:`~upscale_async.BatchLedger`: pass ``submit_batch(..., ledger=journal)``
    (or ``generate(..., ledger=journal)``) with the whole input instead of ``on_accepted=`` and
    ``skip_accepted``: a chunk whose leads are all recorded counts as accepted without being
    sent, every other chunk is sent and recorded. Its chunks are matched by lead ids, so the
    order and chunk size may change between runs.

    Example::

        with BatchJournal("run.journal") as journal:
            batch = await client.submit_batch(
                campaign, journal.skip_accepted(leads), on_accepted=journal.record
            )
        results = await client.await_completion(journal.request_ids())

    Raises:
        RuntimeError: another run holds the journal.
        ValueError: a line before the last is not a journal record (the file was edited, or is
            not a journal).
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.accepted: list[AcceptedRequest] = []
        # lead id -> the recorded request holding it
        self._lead_ids: dict[str, AcceptedRequest] = {}
        self._file: IO[bytes] | None = None
        self._size = 0  # the file's length: what a failed write is cut back to
        self._closer: weakref.finalize[..., BatchJournal] | None = None
        self._lock = threading.Lock()
        self._open()

    def __repr__(self) -> str:
        return f"<BatchJournal {str(self.path)!r} requests={len(self.accepted)}>"

    def _open(self) -> None:
        """Open and lock the file, read it and repair a torn tail."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
        try:
            _take_lock(fd, self.path)
            self.accepted = self._load(fd)
            self._size = os.fstat(fd).st_size
        except BaseException:
            os.close(fd)  # releases the lock too
            raise
        self._lead_ids = {i: r for r in self.accepted for i in r.lead_ids}
        self._file = open(fd, "ab", buffering=0)  # noqa: SIM115 - held until close()
        # A journal dropped without close() lets go of its file and lock when collected.
        self._closer = weakref.finalize(self, self._file.close)

    def _load(self, fd: int) -> list[AcceptedRequest]:
        out: list[AcceptedRequest] = []
        good = 0  # where the last whole line ends
        with open(fd, "rb", closefd=False) as f:
            for number, line in enumerate(f, 1):
                whole = line.endswith(b"\n")
                try:
                    out.append(AcceptedRequest.from_dict(orjson.loads(line)))
                except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                    if not line.strip() and whole:
                        good += len(line)
                        continue
                    if whole:
                        raise ValueError(
                            f"{self.path}:{number}: not a journal line ({exc}); the file is not "
                            "a BatchJournal or was edited: restore it, or delete that line "
                            "(its leads are then sent again, which D8 makes free)"
                        ) from exc
                    self._cut(fd, good, len(line), number)
                    break
                if not whole:
                    self._end_line(fd, number)
                good += len(line)
        return out

    def _cut(self, fd: int, good: int, dropped: int, number: int) -> None:
        os.ftruncate(fd, good)
        os.fsync(fd)
        logger.warning(
            "%s:%d: dropped %d bytes of a torn last line (the run that wrote it stopped "
            "mid-write); the journal is repaired and that request's leads will be sent "
            "again, which the API's deduplication makes free (D8)",
            self.path,
            number,
            dropped,
        )

    def _end_line(self, fd: int, number: int) -> None:
        os.write(fd, b"\n")
        os.fsync(fd)
        logger.warning(
            "%s:%d: a whole record had lost only its final newline (the run that wrote it "
            "stopped mid-write); kept it and added the newline",
            self.path,
            number,
        )

    async def record(self, request: AcceptedRequest) -> None:
        """Append one accepted request (use as ``submit_batch(on_accepted=journal.record)``).

        The write and fsync run on a worker thread; it returns once the line is durable.
        """
        await anyio.to_thread.run_sync(self.record_sync, request)

    def record_sync(self, request: AcceptedRequest) -> None:
        """:meth:`record` for synchronous code: blocks until the line is written (and synced).

        Raises:
            OSError: the line could not be written (disk full...); the file is cut back to
                its last whole line, so the journal stays readable and appendable.
        """
        line = orjson.dumps(request.to_dict()) + b"\n"
        with self._lock:
            if self._file is None:
                self._open()  # after close(): lock and read the file again
            assert self._file is not None
            try:
                view = memoryview(line)
                while view:
                    view = view[self._file.write(view) :]
                if self.fsync:
                    os.fsync(self._file.fileno())
            except OSError as exc:
                self._write_failed(exc)
            self._size += len(line)
            self.accepted.append(request)
            self._lead_ids.update(dict.fromkeys(request.lead_ids, request))

    def _write_failed(self, exc: OSError) -> None:
        assert self._file is not None
        try:
            os.ftruncate(self._file.fileno(), self._size)  # no torn line for the next record
        except OSError as cut:
            exc.add_note(f"cutting the torn line back off also failed: {cut}")
        raise OSError(
            exc.errno,
            f"writing to the journal {str(self.path)!r} failed ({exc.strerror or exc}); the "
            "request was not recorded, so its leads would be sent again on resume (D8 makes "
            "that free). Free disk space or fix the disk, then resume",
        ) from exc

    def close(self) -> None:
        """Close the file and release the lock (records already written stay).

        A later :meth:`record` reopens it and takes the lock again.

        Raises:
            OSError: closing failed (a disk full or a network file system reporting a late
                write error); the lock is released all the same. Inside ``with`` this error
                never replaces the block's own: it is added to that one as a note.
        """
        with self._lock:
            file, self._file = self._file, None
            if file is None:
                return
            if self._closer is not None:
                self._closer.detach()
            try:
                file.close()
            except OSError as exc:
                raise OSError(
                    exc.errno,
                    f"closing the journal {str(self.path)!r} failed ({exc.strerror or exc}): "
                    "the last records may not be on disk. Free disk space or fix the disk, "
                    "then open the journal again: a torn tail is repaired on open, and leads "
                    "whose record was lost are sent again, which D8 makes free",
                ) from exc

    def __enter__(self) -> BatchJournal:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        try:
            self.close()
        except OSError as close_error:
            if exc is None:
                raise
            # The block's own error (a BatchInterruptedError with its partial result) wins.
            exc.add_note(f"and then: {close_error}")

    def request_ids(self) -> list[str]:
        """Every accepted ``secure_request_id``, in the order they were recorded."""
        return [r.secure_request_id for r in self.accepted]

    def is_accepted(self, lead_id: str) -> bool:
        """True when a recorded request holds this lead id."""
        return lead_id in self._lead_ids

    def skip_accepted(self, leads: Iterable[L]) -> Iterator[L]:
        """The leads whose id is not in the journal yet, lazily."""
        for lead in leads:
            lead_id = _lead_id(lead)
            if lead_id is None or lead_id not in self._lead_ids:
                yield lead

    async def askip_accepted(self, leads: AsyncIterable[L]) -> AsyncIterator[L]:
        """:meth:`skip_accepted` for an async iterable."""
        async for lead in leads:
            lead_id = _lead_id(lead)
            if lead_id is None or lead_id not in self._lead_ids:
                yield lead

    # -- the BatchLedger protocol ------------------------------------------------------------

    async def claim_chunk(self, chunk: Chunk) -> ChunkClaim:
        """DONE (with the recorded requests) when every lead id of ``chunk`` is recorded, else MINE.

        A journal has one writer, so there is no lease and never BUSY. A chunk only some of
        whose leads are recorded is sent whole: the leads already generated cost no credit
        again (D8).
        """
        by_lead = self._lead_ids
        groups: dict[str, tuple[AcceptedRequest, list[str]]] = {}
        for lead_id in chunk.lead_ids:
            request = by_lead.get(lead_id)
            if request is None:
                return ChunkClaim(ClaimState.MINE, chunk)
            groups.setdefault(request.secure_request_id, (request, []))[1].append(lead_id)
        requests = tuple(
            request
            if len(ids) == len(request.lead_ids)
            # Recorded with another chunking: this chunk's share of that request.
            else AcceptedRequest(request.secure_request_id, tuple(ids), chunk.first_index)
            for request, ids in groups.values()
        )
        return ChunkClaim(ClaimState.DONE, chunk, requests=requests)

    async def record_chunk(self, claim: ChunkClaim, request: AcceptedRequest) -> bool:
        """:meth:`record` the chunk's accepted request (durable when it returns); True."""
        await self.record(request)
        return True

    async def release_chunk(self, claim: ChunkClaim) -> None:
        """Nothing to release: a journal takes no lease."""

    async def accepted_requests(self) -> list[AcceptedRequest]:
        """Every recorded request, by ``first_index`` (``accepted`` is in recording order).

        Runs that used ``ledger=`` number leads by their place in the whole input, so this is
        input order; runs fed ``skip_accepted(leads)`` numbered the leads they were given.
        """
        return sorted(self.accepted, key=lambda r: r.first_index)
