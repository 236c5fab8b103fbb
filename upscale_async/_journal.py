"""BatchJournal: an append-only record of accepted requests, so a pipeline survives a crash."""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import IO, TypeVar

import anyio
import orjson

from ._models import lead_id as _lead_id
from ._results import AcceptedRequest

__all__ = ["BatchJournal"]

L = TypeVar("L")


class BatchJournal:
    """A JSON-lines file with one line per accepted request, written as each is accepted.

    Pass ``journal.record`` as ``submit_batch(on_accepted=...)``; after a crash (even
    ``SIGKILL``), open the same path again and submit ``journal.skip_accepted(leads)``: no lead
    Upscale already accepted is sent again. Each line is written and flushed (and fsynced
    unless ``fsync=False``) on a worker thread, off the event loop, before the chunk that was
    accepted moves on (the other chunks go on meanwhile); a torn last line from a crash is
    ignored.
    Only the requests whose answers arrived can be recorded: leads in flight at the crash are
    sent again, which the API's deduplication makes free (D8).

    Example::

        journal = BatchJournal("run.journal")
        batch = await client.submit_batch(
            campaign, journal.skip_accepted(leads), on_accepted=journal.record
        )
        results = await client.await_completion(journal.request_ids())
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.accepted: list[AcceptedRequest] = self._read(self.path)
        self._lead_ids: set[str] = {i for r in self.accepted for i in r.lead_ids}
        self._file: IO[bytes] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<BatchJournal {str(self.path)!r} requests={len(self.accepted)}>"

    @staticmethod
    def _read(path: Path) -> list[AcceptedRequest]:
        if not path.exists():
            return []
        out: list[AcceptedRequest] = []
        with path.open("rb") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    out.append(AcceptedRequest.from_dict(orjson.loads(line)))
                except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                    if line.endswith(b"\n"):
                        raise ValueError(
                            f"{path}:{number}: not a journal line ({exc}); the file is not a "
                            "BatchJournal or was edited"
                        ) from exc
                    break  # a torn last line: the crash happened while writing it
        return out

    async def record(self, request: AcceptedRequest) -> None:
        """Append one accepted request (use as ``submit_batch(on_accepted=journal.record)``).

        The write and fsync run on a worker thread; it returns once the line is durable.
        """
        await anyio.to_thread.run_sync(self.record_sync, request)

    def record_sync(self, request: AcceptedRequest) -> None:
        """:meth:`record` for synchronous code: blocks until the line is written (and synced)."""
        line = orjson.dumps(request.to_dict()) + b"\n"
        with self._lock:
            if self._file is None:
                self._file = self.path.open("ab")
            self._file.write(line)
            self._file.flush()
            if self.fsync:
                os.fsync(self._file.fileno())
            self.accepted.append(request)
            self._lead_ids.update(request.lead_ids)

    def close(self) -> None:
        """Close the file (records already written stay); a later record reopens it."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __enter__(self) -> BatchJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
