"""Interrupt and resume for ``generate``: the journal beside the results, and what is read back.

A run keeps a :class:`~upscale_async.BatchJournal` beside its results (``OUT.journal``): one
fsynced line per request Upscale accepted. Interrupted (SIGINT, SIGTERM), the run stops taking
leads from the file (:class:`LeadGate`), lets the requests in flight finish, and writes a
record for every lead that has none yet: ``pending`` (accepted: its ``secure_request_id``) or
``not_submitted``. ``--resume`` reads the results file back (:class:`Previous`), keeps the
final records (``generated``, ``failed``), awaits the journaled requests whose leads have no
final record, sends only the leads never accepted, and replaces the results file with one
record per lead.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Final, Literal

import attrs
import orjson

from .. import AcceptedRequest, BatchJournal, LeadOutcome
from ._files import InputError

__all__ = [
    "FINAL_OUTCOMES",
    "PENDING",
    "LeadGate",
    "Previous",
    "default_journal",
    "lead_key",
    "open_journal",
]

PENDING: Final = "pending"
#: The outcomes a resumed run keeps as they are; every other lead is sent or awaited again.
FINAL_OUTCOMES: Final = frozenset({"generated", "failed"})


def default_journal(out: Path) -> Path:
    """The journal kept beside the results file: ``results.jsonl.journal``."""
    return out.with_name(out.name + ".journal")


def lead_key(lead: Any) -> str | None:
    """A lead's id as the results name it (None when it has none that is a string)."""
    value = lead.get("automation_tool_lead_id") if isinstance(lead, Mapping) else None
    return value if isinstance(value, str) else None


def open_journal(path: Path, *, resume: bool) -> BatchJournal:
    """Open the run's journal; InputError when it is held, unreadable, or left by another run."""
    if resume and not path.exists():
        raise InputError(
            f"--resume: no journal at {path}: there is nothing to resume (a run that ended "
            "with every lead accounted for removes it); run without --resume"
        )
    try:
        journal = BatchJournal(path)
    except (RuntimeError, ValueError) as exc:
        raise InputError(f"journal {path}: {exc}") from None
    except OSError as exc:
        raise InputError(f"cannot open the journal {path}: {exc.strerror or exc}") from None
    if not resume and journal.accepted:
        journal.close()
        raise InputError(
            f"the journal {path} holds {len(journal.accepted)} requests of an earlier run that "
            "did not finish: pass --resume to collect them and send only the rest, or delete "
            "the journal to start over (every lead is then sent again)"
        )
    return journal


@attrs.define
class Previous:
    """What an interrupted run left: its final records, by lead id."""

    records: list[dict[str, Any]] = attrs.Factory(list)
    final_ids: set[str] = attrs.Factory(set)

    @classmethod
    def load(cls, path: Path, fmt: Literal["jsonl", "csv"], types: list[str]) -> Previous:
        """Read the results file of the run being resumed; InputError when it cannot be."""
        try:
            with path.open("r", encoding="utf-8", newline="") as f:
                rows = list(_csv_records(f, types) if fmt == "csv" else _jsonl_records(f, path))
        except FileNotFoundError:
            raise InputError(f"--resume: no results file {path} to resume") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"--resume: cannot read the results file {path}: {exc}") from None
        previous = cls()
        for record in rows:
            lead_id = record.get("lead_id")
            final = record.get("outcome") in FINAL_OUTCOMES
            if final and isinstance(lead_id, str) and lead_id not in previous.final_ids:
                previous.final_ids.add(lead_id)
                previous.records.append(record)
        return previous

    def awaiting(self, journal: BatchJournal) -> tuple[list[AcceptedRequest], dict[str, str]]:
        """The journaled requests with a lead not final yet, and those leads' request ids."""
        requests: list[AcceptedRequest] = []
        ids: dict[str, str] = {}
        for request in journal.accepted:
            open_ids = [i for i in request.lead_ids if i not in self.final_ids]
            if open_ids:
                requests.append(request)
                ids.update(dict.fromkeys(open_ids, request.secure_request_id))
        return requests, ids

    def unsent(
        self, leads: Iterable[Any], journal: BatchJournal, on_duplicate: Callable[[Any], None]
    ) -> Iterator[Any]:
        """The leads never accepted; a later copy of an accepted lead's id goes to on_duplicate."""
        handled = self.final_ids | {i for r in journal.accepted for i in r.lead_ids}
        passed: set[str] = set()
        for lead in leads:
            key = lead_key(lead)
            if key is None or key not in handled:
                yield lead
            elif key in passed:
                on_duplicate(lead)  # sending it would post that lead a second time
            else:
                passed.add(key)


def _jsonl_records(f: Iterable[str], path: Path) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(f, 1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            if not line.endswith("\n"):
                return  # a torn last line (the run was killed mid-write): resent or awaited
            raise InputError(f"--resume: {path} line {number} is not a results record") from None
        if not isinstance(record, dict):
            raise InputError(f"--resume: {path} line {number} is not a results record")
        yield record


def _csv_records(f: Iterable[str], types: list[str]) -> Iterator[dict[str, Any]]:
    for row in csv.DictReader(f):
        messages = {t: row.get(t) or None for t in types}
        record: dict[str, Any] = {
            "lead_id": row.get("lead_id") or None,
            "outcome": row.get("outcome"),
            "messages": messages,
        }
        for key in ("secure_request_id", "reason"):
            if row.get(key):
                record[key] = row[key]
        if row.get("line"):
            record["line"] = int(row["line"]) if row["line"].isdigit() else row["line"]
        if row.get("errors"):
            record["errors"] = row["errors"].split(" | ")
        yield record


class LeadGate:
    """The leads as the batch takes them: it stops giving any once closed.

    It remembers each lead it gave until that lead's record is written (:meth:`settle`), so an
    interrupted run can write a record for every lead the batch took.
    """

    def __init__(self, leads: Iterable[Any]) -> None:
        self._it = iter(leads)
        self.closed = False
        self.count = 0
        self.unsettled: dict[int, Any] = {}
        # A list per id, not a deque: a deque costs some 600 bytes, and ids rarely repeat.
        self._by_key: dict[str | None, list[int]] = {}
        self._by_object: dict[int, int] = {}

    def __iter__(self) -> Iterator[Any]:
        return self

    def __next__(self) -> Any:
        if self.closed:
            raise StopIteration
        lead = next(self._it)
        seq = self.count
        self.count += 1
        self.unsettled[seq] = lead
        self._by_key.setdefault(lead_key(lead), []).append(seq)
        self._by_object[id(lead)] = seq
        return lead

    def close(self) -> None:
        """Give no more leads (the batch then ends once its requests in flight are answered)."""
        self.closed = True

    def rest(self) -> Iterator[Any]:
        """The leads never given to the batch."""
        return self._it

    def settle(self, outcome: LeadOutcome) -> None:
        """Forget the lead whose record was just written."""
        seq = self._by_object.get(id(outcome.lead)) if outcome.lead is not None else None
        queue = self._by_key.get(outcome.lead_id)
        if seq is None:
            if not queue:
                return  # a lead of a request awaited from the journal
            seq = queue[0]
        if queue is not None and seq in queue:
            queue.remove(seq)
            if not queue:
                del self._by_key[outcome.lead_id]
        lead = self.unsettled.pop(seq, None)
        if lead is not None:
            self._by_object.pop(id(lead), None)


def replace_results(temporary: Path, out: Path) -> None:
    """Put the resumed run's results in place of the old ones (atomically)."""
    os.replace(temporary, out)
