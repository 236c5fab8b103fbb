"""BatchLedger: where a batch records its accepted chunks, shared by every worker of the batch.

A batch is cut into chunks by position: chunk ``k`` holds input leads ``[k * chunk_size,
(k + 1) * chunk_size)``. Before posting chunk ``k`` a worker *claims* it; the ledger answers

- ``DONE``: the chunk is already recorded (by this run, an earlier one or another worker): its
  :class:`AcceptedRequest` comes back and nothing is sent;
- ``MINE``: this worker holds it now (a lease, on a shared ledger): post it, then
  :meth:`BatchLedger.record_chunk` the accepted request, or :meth:`BatchLedger.release_chunk`
  when the post failed so that someone can retry it;
- ``BUSY``: another live worker holds it: keep its leads, ask again after ``retry_after``
  seconds (it is then recorded, or its lease expired and this worker takes it over).

Two implementations: the file :class:`~upscale_async.BatchJournal` (one process at a time) and
``upscale_async.redis.RedisLedger`` (many workers, leases with a TTL). ``submit_batch`` and
``generate`` take either as ``ledger=``.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Sequence
from typing import Any, Final, Protocol, runtime_checkable

import attrs
import orjson

from ._errors import UpscaleError
from ._results import AcceptedRequest

__all__ = [
    "BatchLedger",
    "Chunk",
    "ChunkClaim",
    "ClaimState",
    "LedgerMismatchError",
    "campaign_key",
    "chunk_digest",
]

_SORTED: Final = orjson.OPT_SORT_KEYS


def campaign_key(campaign_json: bytes) -> bytes:
    """The campaign's share of every chunk digest: a hash of its JSON with sorted keys.

    Sorted, as D8 compares bodies, so a Campaign and the same campaign as a mapping agree.
    """
    canonical = orjson.dumps(orjson.loads(campaign_json), option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(canonical, digest_size=16).digest()


def chunk_digest(
    lead_ids: Sequence[str], campaign: bytes = b"", *, leads: Sequence[Any] | None
) -> str:
    """What workers compare: a digest of a chunk's lead ids, campaign and leads as sent.

    Three hex parts joined by dots, each compared with the recorded one to say what differs:
    the lead ids in order (other leads, another order or ``chunk_size``), the campaign
    (:func:`campaign_key`), and ``leads``, the chunk's wire objects in order in their canonical
    form (keys sorted, as D8 compares bodies), so a lead with the same id and another field
    differs too. ``leads`` is None only for a chunk known by its ids (no lead data compared).
    The same leads in the same order give the same digest in every process.
    """
    return ".".join(
        (
            _hex(orjson.dumps(list(lead_ids)), 8),
            _hex(campaign, 8),
            _hex(b"" if leads is None else _canonical(leads), 12),
        )
    )


def _hex(data: bytes, size: int) -> str:
    """The first ``size`` bytes of the SHA-256 of ``data``, in hex (OpenSSL's SHA-256 hashes
    a chunk's JSON about twice as fast as BLAKE2b here)."""
    return hashlib.sha256(data).hexdigest()[: 2 * size]


def _canonical(leads: Sequence[Any]) -> bytes:
    """The leads' JSON with sorted keys; for leads that cannot be serialized, the error.

    Such a chunk cannot be posted either: its post fails the same way and the batch accounts
    for it as failed (a digest must not stop the batch earlier than the post would).
    """
    try:
        return orjson.dumps(leads if isinstance(leads, list) else list(leads), option=_SORTED)
    except orjson.JSONEncodeError as exc:
        return f"not serializable: {exc}".encode()


@attrs.frozen
class Chunk:
    """One chunk of a batch: its position, its first lead's input index and its lead ids.

    ``digest`` (:func:`chunk_digest`: of the lead ids in order, the campaign and the leads as
    sent, when the batch gives them) is what tells two workers' chunk ``index`` apart when they
    were not given the same input. Built from the ids alone, it compares only those.
    """

    index: int
    first_index: int
    lead_ids: tuple[str, ...] = attrs.field(repr=lambda ids: f"<{len(ids)} ids>")
    digest: str = attrs.field()

    @digest.default
    def _digest(self) -> str:
        return chunk_digest(self.lead_ids, leads=None)


class ClaimState(enum.Enum):
    """What a claim on a chunk found (:attr:`ChunkClaim.state`)."""

    DONE = "done"
    """Already recorded: ``requests`` hold its accepted request; send nothing."""
    MINE = "mine"
    """This worker holds the chunk: post it, then record or release it."""
    BUSY = "busy"
    """Another live worker holds the chunk: ask again after ``retry_after`` seconds."""


@attrs.frozen
class ChunkClaim:
    """A ledger's answer to :meth:`BatchLedger.claim_chunk`.

    ``requests``: for ``DONE``, the accepted request(s) holding the chunk's leads (one on a
    shared ledger; a journal written with another chunk size may need several). ``token``: for
    ``MINE``, what proves the lease when recording or releasing. ``retry_after``: for
    ``BUSY``, the seconds to wait before claiming again.
    """

    state: ClaimState
    chunk: Chunk
    requests: tuple[AcceptedRequest, ...] = ()
    token: str | None = None
    retry_after: float = 0.0


class LedgerMismatchError(UpscaleError):
    """A worker's chunk differs from the chunk recorded under the same position.

    The workers sharing a ledger were not given the same campaign and the same input in the
    same order with the same ``chunk_size`` and the same lead data (or the batch name is reused
    for another batch). Nothing of that chunk was sent. Attributes: ``chunk`` (its position),
    ``expected`` and ``found`` (the two digests, of the lead ids, the campaign and the leads as
    sent: see :func:`chunk_digest`).
    """

    def __init__(self, message: str, *, chunk: int, expected: str, found: str) -> None:
        super().__init__(message)
        self.chunk = chunk
        self.expected = expected
        self.found = found

    def __reduce__(self) -> tuple[object, ...]:
        return (_rebuild_mismatch, (str(self), self.chunk, self.expected, self.found))


def _rebuild_mismatch(message: str, chunk: int, expected: str, found: str) -> LedgerMismatchError:
    return LedgerMismatchError(message, chunk=chunk, expected=expected, found=found)


#: What every worker of a batch must be given (ends each mismatch message).
_SAME_INPUT: Final = (
    "the same campaign and the same input in the same order with the same chunk_size, each lead "
    "with the same data"
)
#: The difference named when a digest is not of :func:`chunk_digest`'s form.
_OTHER_FORM: Final = "a digest of another form, as another version of upscale_async writes"


def mismatch(chunk: Chunk, recorded: str, where: str) -> LedgerMismatchError:
    """The error for a chunk whose digest differs from the one ``where`` recorded."""
    what = _difference(chunk.digest, recorded)
    rule = f"every worker of a batch must be given {_SAME_INPUT}"
    if what is _OTHER_FORM:
        rule = (
            f"every worker of a batch must run the same version of upscale_async and be given "
            f"{_SAME_INPUT} (resume a batch begun before an upgrade under a new batch name: "
            "D8 deduplicates its chunks sent again)"
        )
    return LedgerMismatchError(
        f"chunk {chunk.index} (from input lead {chunk.first_index}) differs from the chunk "
        f"{where} recorded at that position ({what}; digest {chunk.digest}, recorded "
        f"{recorded}): {rule}; give a different batch its own batch name. Nothing of this "
        "chunk was sent",
        chunk=chunk.index,
        expected=recorded,
        found=chunk.digest,
    )


def _difference(found: str, recorded: str) -> str:
    """What differs, read from the parts of two :func:`chunk_digest` digests."""
    new, old = found.split("."), recorded.split(".")
    if len(new) != 3 or len(old) != 3:
        return _OTHER_FORM
    ids, campaign, leads = (mine != theirs for mine, theirs in zip(new, old, strict=True))
    differs = []
    if ids:
        differs.append("other lead ids")
    elif leads:
        differs.append("the same lead ids with other lead data")
    if campaign:
        differs.append("another campaign")
    return " and ".join(differs) or "another digest"


@runtime_checkable
class BatchLedger(Protocol):
    """What ``submit_batch(..., ledger=)`` and ``generate(..., ledger=)`` need of a ledger.

    Implemented by :class:`~upscale_async.BatchJournal` (a file, one process at a time) and
    ``upscale_async.redis.RedisLedger`` (Redis, many workers). Every method may raise; the
    batch then stops with ``StopReason.LEDGER`` and accounts for every lead as usual.
    """

    async def claim_chunk(self, chunk: Chunk) -> ChunkClaim:
        """Claim ``chunk`` before posting it: DONE, MINE or BUSY (see :class:`ClaimState`).

        Raises:
            LedgerMismatchError: the ledger recorded another chunk at this position.
        """
        ...

    async def record_chunk(self, claim: ChunkClaim, request: AcceptedRequest) -> bool:
        """Record the accepted request of a chunk claimed MINE, atomically; release its lease.

        Returns False when it was not recorded by this call because the lease was lost to
        another worker (which posts the same body and, by D8, gets the same request id) or the
        chunk was recorded meanwhile; the request is accepted all the same.
        """
        ...

    async def release_chunk(self, claim: ChunkClaim) -> None:
        """Give up a chunk claimed MINE that was not accepted, so a later claim can retry it."""
        ...

    async def accepted_requests(self) -> list[AcceptedRequest]:
        """Every accepted request recorded, in input order (to await and collect results)."""
        ...
