"""What a batch did with every lead: :class:`BatchSubmission` and :class:`BatchProgress`."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import attrs
import orjson

from ._errors import UpscaleError
from ._models import RetrievedMessages, lead_wire
from ._models import lead_id as _lead_id

__all__ = [
    "AcceptedRequest",
    "BatchInterruptedError",
    "BatchProgress",
    "BatchSubmission",
    "CompletionError",
    "CompletionTimeoutError",
    "FailedChunk",
    "RejectedLead",
    "StopReason",
]

_FORMAT_VERSION = 1


def _lead_json(lead: Any) -> Any:
    wire = lead_wire(lead)
    return dict(wire) if isinstance(wire, Mapping) else wire


class StopReason(enum.StrEnum):
    """Why a batch stopped before its end (``BatchSubmission.stopped_by``).

    A ``str`` enum: ``batch.stopped_by == "insufficient_credits"`` works, and it is saved as
    its value by :meth:`BatchSubmission.to_json`.
    """

    INSUFFICIENT_CREDITS = "insufficient_credits"
    """402: the account ran out of credits; buy credits and resubmit ``not_submitted``."""
    AUTHENTICATION = "authentication"
    """401: the API key was refused; fix the key and resubmit ``not_submitted``."""
    SERVICE_UNAVAILABLE = "service_unavailable"
    """The breaker: ``max_consecutive_failures`` chunks in a row failed after retries."""
    SOURCE_ERROR = "source_error"
    """The lead source (iterator or async iterator) raised."""
    CALLBACK_ERROR = "callback_error"
    """An ``on_progress``, ``on_accepted`` or ``on_rejected`` callback raised."""
    CANCELLED = "cancelled"
    """The batch was cancelled (recorded in ``into=``; the cancellation itself propagates)."""
    LEDGER = "ledger"
    """The batch ledger (``ledger=``) refused a chunk or failed: the workers were given different
    input (:class:`~upscale_async.LedgerMismatchError`), Redis could not be reached, or a journal
    write failed. Fix it and run again: the chunks recorded are not sent twice."""


@attrs.frozen
class AcceptedRequest:
    """One accepted request: its ``secure_request_id`` and the ids of its leads."""

    secure_request_id: str
    lead_ids: tuple[str, ...]
    first_index: int = 0

    def __repr__(self) -> str:
        # A request holds up to thousands of lead ids: count them.
        return (
            f"AcceptedRequest({self.secure_request_id!r}, leads={len(self.lead_ids)}, "
            f"first_index={self.first_index})"
        )

    def to_dict(self) -> dict[str, Any]:
        """The JSON object saved for this request (by ``BatchSubmission`` and ``BatchJournal``)."""
        return {
            "secure_request_id": self.secure_request_id,
            "lead_ids": self.lead_ids,
            "first_index": self.first_index,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AcceptedRequest:
        """Read what :meth:`to_dict` wrote (KeyError or TypeError when it does not fit)."""
        return cls(data["secure_request_id"], tuple(data["lead_ids"]), data.get("first_index", 0))


@attrs.frozen
class RejectedLead:
    """A lead set aside before sending: its position in the input, the lead, and why."""

    index: int
    lead: Any
    errors: tuple[tuple[str, str], ...]

    def __repr__(self) -> str:
        # The messages, not the lead (its id is enough to find it).
        messages = self.messages
        return f"RejectedLead(index={self.index}, lead_id={self.lead_id!r}, errors={messages!r})"

    @property
    def lead_id(self) -> str | None:
        """The lead's ``automation_tool_lead_id`` when it has a readable one, else None."""
        return _lead_id(self.lead)

    @property
    def messages(self) -> list[str]:
        """The validation messages alone, without their paths."""
        return [message for _, message in self.errors]


@attrs.frozen
class FailedChunk:
    """Leads of a request that still failed after retries, with the error (safe to resubmit)."""

    leads: tuple[Any, ...]
    error: str
    error_type: str
    status: int | None = None
    first_index: int = 0

    def __repr__(self) -> str:
        # A chunk holds its leads (up to thousands): count them.
        return (
            f"FailedChunk(leads={len(self.leads)}, error_type={self.error_type!r}, "
            f"status={self.status!r}, first_index={self.first_index})"
        )


@attrs.define
class BatchSubmission:
    """Where every lead of a batch stands after :meth:`UpscaleClient.submit_batch`.

    - ``accepted``: requests Upscale accepted, each with the ids of its leads;
    - ``rejected``: leads set aside before sending (validation, duplicate ids), with messages;
    - ``failed``: chunks that still failed after retries (5xx, connection), with the error;
    - ``not_submitted``: leads never sent because credits ran out (402) or the key failed
      (401), in input order: resume with ``submit_batch(campaign, batch.not_submitted)``.

    Every input lead is in exactly one of these. With a ledger (``ledger=``), the chunks
    recorded by other workers (or by an earlier run) count as ``accepted`` here too, with their
    request: each worker's result covers the whole batch. ``stopped_by`` is the
    :class:`StopReason` the batch stopped early for, or None when it ran to its end.
    ``to_json()``/``from_json()`` persist it so that another process can
    ``await_completion(batch)`` later.
    """

    accepted: list[AcceptedRequest] = attrs.field(factory=list)
    rejected: list[RejectedLead] = attrs.field(factory=list)
    failed: list[FailedChunk] = attrs.field(factory=list)
    not_submitted: list[Any] = attrs.field(factory=list)
    stopped_by: StopReason | None = attrs.field(
        default=None, converter=attrs.converters.optional(StopReason)
    )

    def __repr__(self) -> str:
        stop = f", stopped_by={self.stopped_by.value!r}" if self.stopped_by else ""
        counts = ", ".join(f"{k}={v}" for k, v in self.counts().items())
        return f"BatchSubmission({counts}{stop})"

    @property
    def request_ids(self) -> list[str]:
        """The ``secure_request_id`` of every accepted request, in input order."""
        return [request.secure_request_id for request in self.accepted]

    @property
    def accepted_count(self) -> int:
        """Leads Upscale accepted."""
        return sum(len(request.lead_ids) for request in self.accepted)

    @property
    def rejected_count(self) -> int:
        """Leads set aside before sending."""
        return len(self.rejected)

    @property
    def failed_count(self) -> int:
        """Leads of chunks that still failed after retries."""
        return sum(len(chunk.leads) for chunk in self.failed)

    @property
    def not_submitted_count(self) -> int:
        """Leads never sent because the batch stopped early."""
        return len(self.not_submitted)

    @property
    def total(self) -> int:
        """Every lead the batch saw (accepted + rejected + failed + not submitted)."""
        return (
            self.accepted_count + self.rejected_count + self.failed_count + self.not_submitted_count
        )

    @property
    def complete(self) -> bool:
        """True when every valid lead was accepted (nothing failed or left unsubmitted)."""
        return not self.failed and not self.not_submitted

    def accepted_lead_ids(self) -> Iterator[tuple[str, str]]:
        """``(secure_request_id, lead_id)`` for every accepted lead."""
        for request in self.accepted:
            for lead_id in request.lead_ids:
                yield request.secure_request_id, lead_id

    def failed_leads(self) -> list[Any]:
        """The leads of every failed chunk, in input order (resubmitting them is safe)."""
        return [lead for chunk in self.failed for lead in chunk.leads]

    def counts(self) -> dict[str, int]:
        """Leads per bucket, and the number of accepted requests."""
        return {
            "accepted": self.accepted_count,
            "rejected": self.rejected_count,
            "failed": self.failed_count,
            "not_submitted": self.not_submitted_count,
            "requests": len(self.accepted),
        }

    def sort(self) -> None:
        """Put every list in input order (the batch finishes chunks out of order)."""
        self.accepted.sort(key=lambda r: r.first_index)
        self.rejected.sort(key=lambda r: r.index)
        self.failed.sort(key=lambda c: c.first_index)

    def to_json(self) -> str:
        """Serialize to JSON text (leads as wire objects); read back with :meth:`from_json`."""
        return self.to_json_bytes().decode()

    def to_json_bytes(self) -> bytes:
        """:meth:`to_json` as UTF-8 bytes (for ``Path.write_bytes``, sockets, stores)."""
        return orjson.dumps(
            {
                "version": _FORMAT_VERSION,
                "stopped_by": self.stopped_by,
                "accepted": [r.to_dict() for r in self.accepted],
                "rejected": [
                    {"index": r.index, "lead": _lead_json(r.lead), "errors": r.errors}
                    for r in self.rejected
                ],
                "failed": [
                    {
                        "leads": [_lead_json(lead) for lead in c.leads],
                        "error": c.error,
                        "error_type": c.error_type,
                        "status": c.status,
                        "first_index": c.first_index,
                    }
                    for c in self.failed
                ],
                "not_submitted": [_lead_json(lead) for lead in self.not_submitted],
            }
        )

    @classmethod
    def from_json(cls, data: bytes | str) -> BatchSubmission:
        """Read what :meth:`to_json` or :meth:`to_json_bytes` wrote (text or bytes).

        Leads come back as mappings with the wire keys.
        """
        try:
            raw = orjson.loads(data)
            if not isinstance(raw, dict) or raw.get("version") != _FORMAT_VERSION:
                raise ValueError(f"expected a BatchSubmission of version {_FORMAT_VERSION}")
            return cls(
                accepted=[AcceptedRequest.from_dict(r) for r in raw["accepted"]],
                rejected=[
                    RejectedLead(r["index"], r["lead"], tuple(tuple(e) for e in r["errors"]))
                    for r in raw["rejected"]
                ],
                failed=[
                    FailedChunk(
                        tuple(c["leads"]),
                        c["error"],
                        c["error_type"],
                        c.get("status"),
                        c.get("first_index", 0),
                    )
                    for c in raw["failed"]
                ],
                not_submitted=list(raw["not_submitted"]),
                stopped_by=raw.get("stopped_by"),
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a saved BatchSubmission: {exc}") from exc


@attrs.frozen
class BatchProgress:
    """A snapshot handed to ``on_progress`` after each chunk."""

    leads_seen: int
    leads_accepted: int
    leads_rejected: int
    leads_failed: int
    leads_not_submitted: int
    total: int | None
    chunks_in_flight: int
    chunks_done: int
    requests_accepted: int
    errors: int

    @property
    def leads_submitted(self) -> int:
        """Leads Upscale has accepted so far."""
        return self.leads_accepted


class CompletionError(UpscaleError):
    """Waiting for completion failed for some requests; nothing already retrieved is lost.

    Raised by :meth:`UpscaleClient.await_completion` (never a bare exception group):

    - ``completed``: the results retrieved, in the order of the ids given (each id once);
    - ``errors``: ``secure_request_id`` -> the exception that ended its wait (a 404
      :class:`NotFoundError` for an unknown id, a 401 :class:`AuthenticationError`, a
      :class:`ResponseValidationError`, ...);
    - ``pending``: the ids neither completed nor failed, to wait for again later.

    One id's failure does not stop the others: they wait to their end and their results are in
    ``completed``. A 401 is the exception: the key is refused for every id, so every other wait
    stops at once and its id is in ``pending``. Either way no waiter is left running. The first
    error is chained as ``__cause__``.
    """

    def __init__(
        self,
        message: str,
        *,
        completed: Sequence[RetrievedMessages] = (),
        errors: Mapping[str, BaseException] | None = None,
        pending: Sequence[str] = (),
    ) -> None:
        self.completed = list(completed)
        self.errors: dict[str, BaseException] = dict(errors or {})
        self.pending = list(pending)
        super().__init__(message)


class CompletionTimeoutError(CompletionError, TimeoutError):
    """``await_completion`` reached its deadline; also a builtin :class:`TimeoutError`.

    ``pending`` lists the ids still generating; ``last_seen`` maps each of them to the last
    retrieve result seen (None when none was); ``completed`` holds what did finish, in the
    order of the ids given; ``errors`` the ids whose wait failed before the deadline (see
    :class:`CompletionError`, which this subclasses, so ``except CompletionError`` catches both).
    """

    def __init__(
        self,
        message: str,
        *,
        pending: Sequence[str],
        last_seen: dict[str, RetrievedMessages | None],
        completed: Sequence[RetrievedMessages] = (),
        errors: Mapping[str, BaseException] | None = None,
    ) -> None:
        self.last_seen = last_seen
        super().__init__(message, completed=completed, errors=errors, pending=pending)


class BatchInterruptedError(UpscaleError):
    """A batch stopped before its end; ``partial`` accounts for every lead it saw.

    The one way an early stop is reported, whatever ended it: ``reason`` (a
    :class:`~upscale_async.StopReason`, also ``partial.stopped_by``) says what, and the
    error that caused it (a 401 :class:`AuthenticationError`, a 402
    :class:`InsufficientCreditsError`, the lead source's or a callback's exception, the last
    chunk's error when the service looks down) is chained as ``__cause__``. Every lead not
    accepted is in ``partial.rejected``, ``partial.failed`` or ``partial.not_submitted``:
    persist ``partial`` (``partial.to_json()``) and resume with its ``not_submitted`` leads.
    Cancellation is never turned into this error: pass ``into=`` to keep the partial result.
    """

    def __init__(self, message: str, *, partial: BatchSubmission, reason: StopReason) -> None:
        self.partial = partial
        self.reason = reason
        super().__init__(message)
