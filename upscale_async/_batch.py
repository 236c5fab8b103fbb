"""submit_batch: stream leads in chunks, send them concurrently, account for every lead.

Leads are pulled lazily from a list, iterator or async iterator: at most ``concurrency``
chunks of ``chunk_size`` leads exist at once, however long the input. Each lead is validated
once; what the accounting keeps per accepted lead is its id and its request's id.
"""

from __future__ import annotations

import contextlib
import heapq
import inspect
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Mapping
from itertools import islice
from typing import Any, Final

import anyio

from ._api import Api, refuse_single_lead
from ._config import BatchPolicy
from ._credits import CreditGate, CreditPolicy, open_gate, send_within_credits
from ._errors import (
    APIError,
    AuthenticationError,
    InsufficientCreditsError,
)
from ._ledger import BatchLedger, Chunk, ChunkClaim, ClaimState, campaign_key, chunk_digest
from ._models import Campaign, GenerationAccepted, Lead
from ._results import (
    AcceptedRequest,
    BatchInterruptedError,
    BatchProgress,
    BatchSubmission,
    FailedChunk,
    RejectedLead,
    StopReason,
)
from ._spec import speedups
from ._spec.validation import check_lead, plain_leads

__all__ = ["LeadSource", "ProgressCallback", "submit_batch"]

# After these stops the rest of the source is still read, checked and handed back as
# not submitted (a failing source cannot be read further).
_RESUMABLE_STOPS: Final = frozenset(StopReason) - {StopReason.SOURCE_ERROR, StopReason.CANCELLED}
_NO_LOCK = contextlib.nullcontext()
#: With a ledger, how many chunks held by other workers one worker keeps per unit of
#: concurrency, waiting to claim them again, before it stops pulling new ones.
_BUSY_PER_TASK: Final = 4
#: Seconds before the first re-claim of a chunk another worker holds; each later wait doubles,
#: up to the ledger's ``retry_after`` (a chunk in flight elsewhere is usually recorded within
#: one request's latency; one held by a dead worker waits for its lease to expire).
_RECHECK_FIRST: Final = 0.02
#: Seconds a lease release may take on the way out of a cancelled chunk (it expires anyway).
_RELEASE_TIMEOUT: Final = 2.0

logger: Final = logging.getLogger("upscale_async")

ProgressCallback = Callable[[BatchProgress], Awaitable[None] | None]
AcceptedCallback = Callable[[AcceptedRequest], Awaitable[None] | None]
RejectedCallback = Callable[[RejectedLead], Awaitable[None] | None]
#: generate's: an accepted request and its leads as given, in the order of its ``lead_ids``
#: (called before ``on_accepted`` hears of the request).
KeepLeads = Callable[[AcceptedRequest, list[Any]], None]
LeadSource = Iterable[Lead | Mapping[str, Any]] | AsyncIterable[Lead | Mapping[str, Any]]


class _Source:
    """Pulls leads lazily from a sync or async iterable, a chunk at a time.

    The chunk being pulled lives in ``pending`` until :meth:`take` returns it, so the leads
    already pulled when the source raises, or when the pull is cancelled, stay here for the
    batch to hand back (:meth:`_Batch.hand_back_pending`) instead of vanishing.
    """

    def __init__(self, leads: LeadSource) -> None:
        self.total: int | None = None
        self.pending: list[Any] = []
        self._it: Iterable[Any] | None = None
        self._ait: AsyncIterator[Any] | None = None
        refuse_single_lead(leads, "list, iterator or async iterator")
        if isinstance(leads, AsyncIterable):
            self._ait = aiter(leads)
        elif isinstance(leads, Iterable):
            self._it = iter(leads)
            try:
                self.total = len(leads)  # type: ignore[arg-type]
            except TypeError:
                self.total = None
        else:
            raise TypeError(
                f"leads must be an iterable or async iterable of leads, not {type(leads).__name__}"
            )

    @property
    def is_async(self) -> bool:
        return self._ait is not None

    async def take(self, n: int) -> list[Any]:
        """The next ``n`` leads (fewer at the end); on an error they stay in ``pending``."""
        out = self.pending
        if self._it is not None:
            # list.extend keeps what it appended when the iterator raises midway, and costs
            # the same as list(islice(...)) on the hot path.
            out.extend(islice(self._it, n))
        else:
            assert self._ait is not None
            while len(out) < n:
                try:
                    out.append(await anext(self._ait))
                except StopAsyncIteration:
                    break
        self.pending = []
        return out


async def _call(callback: Callable[[Any], Awaitable[None] | None] | None, arg: Any) -> None:
    if callback is not None:
        result = callback(arg)
        if inspect.isawaitable(result):
            await result


class _Held:
    """A checked chunk waiting for the ledger: what to post, and what to hand back if not."""

    __slots__ = ("chunk", "ids", "originals", "rechecks", "start", "wire")

    def __init__(
        self, wire: list[Any], originals: list[Any], ids: list[str], start: int, chunk: Chunk
    ) -> None:
        self.wire = wire
        self.originals = originals
        self.ids = ids
        self.start = start
        self.chunk = chunk
        self.rechecks = 0

    def __lt__(self, other: _Held) -> bool:  # heap ties on the due time: input order
        return self.start < other.start


class _Batch:
    """One running batch: its workers, its accounting, and why it stopped (if it did)."""

    def __init__(
        self,
        api: Api,
        campaign_bytes: bytes,
        source: _Source,
        *,
        policy: BatchPolicy,
        on_progress: ProgressCallback | None,
        on_accepted: AcceptedCallback | None,
        on_rejected: RejectedCallback | None,
        result: BatchSubmission,
        ledger: BatchLedger | None = None,
        credits: CreditGate | None = None,
        keep_leads: KeepLeads | None = None,
    ) -> None:
        self.api = api
        self.keep_leads = keep_leads
        self.credits = credits
        self.refusal: InsufficientCreditsError | None = None  # the last 402 (credits=)
        self.campaign_bytes = campaign_bytes
        self.source = source
        self.chunk_size = policy.chunk_size
        self.concurrency = policy.concurrency
        self.max_consecutive_failures = policy.max_consecutive_failures
        self.on_progress = on_progress
        self.on_accepted = on_accepted
        self.on_rejected = on_rejected
        self.result = result
        self.consecutive_failures = 0
        self.seen: set[str] = set()
        self.index = 0
        self.in_flight = 0
        self.chunks_done = 0
        self.errors = 0
        self.accepted_leads = 0
        self.failed_leads = 0
        self.stop: StopReason | None = None
        # The error that stopped the batch, chained to the BatchInterruptedError.
        self.cause: BaseException | None = None
        self.unsent: list[tuple[int, list[Any]]] = []
        # Only an async source can interleave two workers' pulls; a lock costs two event
        # loop iterations per chunk, so a sync source goes without.
        self.pull_lock = anyio.Lock() if source.is_async else None
        self.exhausted = False
        self.ledger = ledger
        # Every chunk's digest covers the campaign: a worker given another one is refused.
        self.campaign_key = campaign_key(campaign_bytes) if ledger is not None else b""
        # With a ledger: the chunks other workers hold, by when to claim them again.
        self.busy: list[tuple[float, _Held]] = []
        self.max_busy = _BUSY_PER_TASK * policy.concurrency

    def progress(self) -> BatchProgress:
        r = self.result
        return BatchProgress(
            leads_seen=self.index,
            leads_accepted=self.accepted_leads,
            leads_rejected=len(r.rejected),
            leads_failed=self.failed_leads,
            leads_not_submitted=sum(len(leads) for _, leads in self.unsent),
            total=self.source.total,
            chunks_in_flight=self.in_flight,
            chunks_done=self.chunks_done,
            requests_accepted=len(r.accepted),
            errors=self.errors,
        )

    def validate(self, raw: list[Any], start: int) -> tuple[list[Any], list[Any], list[str]]:
        """Split a chunk into (wire dicts, original leads, lead ids); set aside the invalid."""
        seen = self.seen
        # The common case, in one pass each: every lead a plain dict or a Lead found valid when
        # it was built (its wire dict kept), and no id seen before (then added to seen). The
        # functions are looked up on ``speedups`` (compiled when built with C) at each call.
        fast = speedups.chunk_wire(raw, Lead)
        if fast is not None:
            datas, ids = fast
            if speedups.add_new_ids(ids, seen):
                return datas, raw, ids
        datas = [
            lead if isinstance(lead, dict) else lead.to_wire() if isinstance(lead, Lead) else lead
            for lead in raw
        ]
        plain = plain_leads(datas)
        wire: list[Any] = []
        ids = []
        rejected = self.result.rejected
        # Plain dict input: the originals are the wire dicts themselves (no second list).
        originals: list[Any] = wire if datas == raw else []
        for (index, data), plain_lead in zip(enumerate(datas, start), plain, strict=True):
            if not plain_lead:
                problems = self.problems(data, index)
                if problems:
                    rejected.append(RejectedLead(index, raw[index - start], tuple(problems)))
                    continue
                if not isinstance(data, dict):
                    data = dict(data)  # another Mapping: orjson needs a dict
            lead_id = data["automation_tool_lead_id"]
            if lead_id in seen:
                path = f"lead_data[{index}].automation_tool_lead_id"
                message = f"{path} must be unique in a batch but {lead_id!r} was seen before"
                rejected.append(RejectedLead(index, raw[index - start], ((path, message),)))
                continue
            seen.add(lead_id)
            wire.append(data)
            if originals is not wire:
                originals.append(raw[index - start])
            ids.append(lead_id)
        return wire, originals, ids

    async def check(self, raw: list[Any], start: int) -> tuple[list[Any], list[Any], list[str]]:
        """:meth:`validate`, then hand each newly rejected lead to ``on_rejected``."""
        rejected_before = len(self.result.rejected)
        checked = self.validate(raw, start)
        if self.on_rejected is not None:
            try:
                for rejected in self.result.rejected[rejected_before:]:
                    await self.notify(self.on_rejected, rejected)
            except anyio.get_cancelled_exc_class():
                # Cancelled while on_rejected ran: the chunk's valid leads were never sent.
                self.unsent.append((start, checked[1]))
                raise
        return checked

    def take_pending(self) -> tuple[list[Any], int]:
        """The leads of a pull that did not finish (the source raised, or it was cancelled).

        They were pulled from the source but never numbered; they come after every chunk taken.
        """
        raw, self.source.pending = self.source.pending, []
        start = self.index
        self.index += len(raw)
        return raw, start

    async def hand_back_pending(self) -> None:
        """Check the leads of an unfinished pull and hand them back as not submitted."""
        raw, start = self.take_pending()
        if raw:
            _, originals, _ = await self.check(raw, start)
            self.unsent.append((start, originals))

    def hand_back_pending_now(self) -> None:
        """:meth:`hand_back_pending` while cancelled: checked, but no callback is awaited."""
        raw, start = self.take_pending()
        if raw:
            _, originals, _ = self.validate(raw, start)
            self.unsent.append((start, originals))

    async def notify(
        self, callback: Callable[[Any], Awaitable[None] | None] | None, arg: Any
    ) -> None:
        """Call a user callback; if it raises, stop the batch (re-raised, wrapped, at the end)."""
        try:
            await _call(callback, arg)
        except Exception as exc:
            self.stopping(StopReason.CALLBACK_ERROR, exc)

    def stopping(self, reason: StopReason, cause: BaseException) -> None:
        """Stop the batch for ``reason``: the first reason (and its cause) wins.

        A 401 after a 402 wins over it: a refused key must be fixed before credits matter.
        """
        if self.stop is None or (
            reason is StopReason.AUTHENTICATION and self.stop is StopReason.INSUFFICIENT_CREDITS
        ):
            self.stop = reason
            self.cause = cause

    @staticmethod
    def problems(data: Any, index: int) -> list[tuple[str, str]]:
        if isinstance(data, Mapping):
            return check_lead(data, index)
        path = f"lead_data[{index}]"
        message = (
            f"{path} must be a Lead or a mapping with the wire keys, not {type(data).__name__}"
        )
        return [(path, message)]

    async def run(self) -> None:
        # ``concurrency`` long-lived workers, each pulling the next chunk when its last one is
        # done: at most concurrency x chunk_size leads are held, and no task is created per
        # chunk (that alone cost about 1 µs per lead at chunk 100).
        worker = self.worker if self.ledger is None else self.ledger_worker
        async with anyio.create_task_group() as tg:
            for _ in range(self.concurrency):
                tg.start_soon(worker)
        self.hand_back_busy()
        if self.stop in _RESUMABLE_STOPS:
            while True:
                try:
                    rest = await self.source.take(max(self.chunk_size, 1000))
                except Exception as exc:
                    self.stop, self.cause = StopReason.SOURCE_ERROR, exc
                    break
                if not rest:
                    break
                # Checked like any lead, so an invalid one is reported as rejected (with its
                # messages) and not handed back to be resubmitted as it is.
                start = self.index
                self.index += len(rest)
                _, originals, _ = await self.check(rest, start)
                self.unsent.append((start, originals))
        await self.hand_back_pending()

    async def worker(self) -> None:
        while self.stop is None and not self.exhausted:
            async with self.pull_lock or _NO_LOCK:
                if self.stop is not None or self.exhausted:
                    return
                try:
                    raw = await self.source.take(self.chunk_size)
                except Exception as exc:
                    self.stop, self.cause = StopReason.SOURCE_ERROR, exc
                    return
                if not raw:
                    self.exhausted = True
                    return
                start = self.index
                self.index += len(raw)
                wire, originals, ids = await self.check(raw, start)
            if wire and self.credits is not None:
                await send_within_credits(self, self.credits, wire, originals, ids, start)
            elif wire:
                self.in_flight += 1
                await self.send(wire, originals, ids, start)
            elif self.on_progress is not None:
                await self.notify(self.on_progress, self.progress())

    # Long: every way a chunk can end (accepted, refused, stopped, failed, cancelled) is here.
    async def send(
        self,
        wire: list[Any],
        originals: list[Any],
        ids: list[str],
        start: int,
        claim: ChunkClaim | None = None,
        *,
        refusable: bool = False,
    ) -> str:
        """Post one chunk and account for its leads (``claim``: its lease, with a ledger).

        Returns ``accepted``, ``failed``, ``stopped`` (402 or 401: handed back) or, when
        ``refusable`` (a credit gate resends it), ``refused`` for a 402 left unaccounted.
        """
        posted = False
        outcome = "failed"
        try:
            accepted = await self.post(wire, start)
        except InsufficientCreditsError as exc:
            if refusable:
                self.refusal, outcome = exc, "refused"
            else:
                self.stopping(StopReason.INSUFFICIENT_CREDITS, exc)
                self.unsent.append((start, originals))
                outcome = "stopped"
        except AuthenticationError as exc:
            self.stopping(StopReason.AUTHENTICATION, exc)
            self.unsent.append((start, originals))
            outcome = "stopped"
        except anyio.get_cancelled_exc_class():
            self.result.failed.append(
                FailedChunk(
                    tuple(originals),
                    "cancelled while in flight: Upscale may or may not have accepted these "
                    "leads; resubmitting them is safe (the API deduplicates)",
                    "Cancelled",
                    None,
                    start,
                )
            )
            self.failed_leads += len(originals)
            if claim is not None:
                await self.release_shielded(claim)
            raise
        except Exception as exc:
            self.chunk_failed(exc, originals, start)
        else:
            posted, outcome = True, "accepted"
            self.consecutive_failures = 0
            request = AcceptedRequest(accepted.secure_request_id, tuple(ids), start)
            self.result.accepted.append(request)
            if self.keep_leads is not None:
                self.keep_leads(request, originals)
            self.accepted_leads += len(ids)
            if claim is not None:
                await self.record(claim, request)
            if self.on_accepted is not None:
                await self.notify(self.on_accepted, request)
        finally:
            self.in_flight -= 1
            self.chunks_done += 1
        if claim is not None and not posted:
            await self.release(claim)
        if self.on_progress is not None:
            await self.notify(self.on_progress, self.progress())
        return outcome

    async def post(self, wire: list[Any], start: int) -> GenerationAccepted:
        """POST one chunk, inside a telemetry span when the client has telemetry."""
        telemetry = self.api.telemetry
        if telemetry is None:
            return await self.api.post_generation(self.campaign_bytes, wire)
        with telemetry.chunk(start, len(wire)):
            return await self.api.post_generation(self.campaign_bytes, wire)

    def chunk_failed(self, exc: Exception, originals: list[Any], start: int) -> None:
        """Account for a chunk that still failed after retries; trip the breaker if due."""
        status = exc.status if isinstance(exc, APIError) else None
        self.result.failed.append(
            FailedChunk(tuple(originals), str(exc), type(exc).__name__, status, start)
        )
        self.failed_leads += len(originals)
        self.errors += 1
        self.consecutive_failures += 1
        limit_reached = (
            self.max_consecutive_failures is not None
            and self.consecutive_failures >= self.max_consecutive_failures
        )
        if limit_reached:
            # A breaker: the service looks down, so stop instead of hammering it; what is
            # left is handed back as not submitted, to resume later.
            self.stopping(StopReason.SERVICE_UNAVAILABLE, exc)

    # -- with a ledger ---------------------------------------------------------------------

    async def ledger_worker(self) -> None:
        """:meth:`worker` with a ledger: claim each chunk; re-check the ones others hold."""
        busy = self.busy
        while self.stop is None:
            now = anyio.current_time()
            if busy and busy[0][0] <= now:
                held: _Held | None = heapq.heappop(busy)[1]
            elif self.exhausted or len(busy) >= self.max_busy:
                if not busy:
                    return
                # Wait for the first chunk another worker holds rather than pull more.
                await anyio.sleep(busy[0][0] - now)
                continue
            else:
                held = await self.pull_chunk()
            if held is not None:
                await self.settle(held)

    async def pull_chunk(self) -> _Held | None:
        """Take and check the next chunk; None when there is nothing to send from it."""
        async with self.pull_lock or _NO_LOCK:
            if self.stop is not None or self.exhausted:
                return None
            try:
                raw = await self.source.take(self.chunk_size)
            except Exception as exc:
                self.stop, self.cause = StopReason.SOURCE_ERROR, exc
                return None
            if not raw:
                self.exhausted = True
                return None
            start = self.index
            self.index += len(raw)
            wire, originals, ids = await self.check(raw, start)
        if not wire:
            if self.on_progress is not None:
                await self.notify(self.on_progress, self.progress())
            return None
        # Chunk k is input leads [k * chunk_size, (k + 1) * chunk_size) on every worker; its
        # digest covers the leads as sent, so the same ids with other lead data are refused.
        ids_tuple = tuple(ids)
        digest = chunk_digest(ids_tuple, self.campaign_key, leads=wire)
        chunk = Chunk(start // self.chunk_size, start, ids_tuple, digest)
        return _Held(wire, originals, ids, start, chunk)

    async def settle(self, held: _Held) -> None:
        """Claim a chunk: account for it when DONE, post it when MINE, keep it when BUSY."""
        assert self.ledger is not None
        try:
            claim = await self.ledger.claim_chunk(held.chunk)
        except anyio.get_cancelled_exc_class():
            self.unsent.append((held.start, held.originals))
            raise
        except Exception as exc:
            self.stopping(StopReason.LEDGER, exc)
            self.unsent.append((held.start, held.originals))
            return
        if claim.state is ClaimState.MINE:
            self.in_flight += 1
            await self.send(held.wire, held.originals, held.ids, held.start, claim)
        elif claim.state is ClaimState.DONE:
            await self.recorded_before(claim.requests, held)
        else:
            wait = min(claim.retry_after, _RECHECK_FIRST * 2**held.rechecks)
            held.rechecks += 1
            heapq.heappush(self.busy, (anyio.current_time() + wait, held))

    async def recorded_before(self, requests: tuple[AcceptedRequest, ...], held: _Held) -> None:
        """Account for a chunk the ledger holds already (another worker, an earlier run).

        Every request is accounted for before the first await, so a cancellation while a
        callback runs leaves none of the chunk's leads out of ``accepted``.
        """
        given = dict(zip(held.ids, held.originals, strict=True)) if self.keep_leads else None
        for request in requests:
            self.result.accepted.append(request)
            if self.keep_leads is not None and given is not None:
                self.keep_leads(request, [given.get(i) for i in request.lead_ids])
            self.accepted_leads += len(request.lead_ids)
        for request in requests:
            await self.notify(self.on_accepted, request)
        self.chunks_done += 1
        if self.on_progress is not None:
            await self.notify(self.on_progress, self.progress())

    async def record(self, claim: ChunkClaim, request: AcceptedRequest) -> None:
        """Record an accepted chunk in the ledger; a failure stops the batch (LEDGER)."""
        assert self.ledger is not None
        try:
            recorded = await self.ledger.record_chunk(claim, request)
        except Exception as exc:
            exc.add_note(
                f"request {request.secure_request_id} (chunk {claim.chunk.index}) was accepted "
                "but not recorded: a later run posts that chunk again, which D8 makes free"
            )
            self.stopping(StopReason.LEDGER, exc)
            return
        if not recorded:
            logger.info(
                "chunk %d: accepted as %s, but its lease had passed to another worker, which "
                "records it (D8 gives it the same request id)",
                claim.chunk.index,
                request.secure_request_id,
            )

    async def release(self, claim: ChunkClaim) -> None:
        """Give back the lease of a chunk that was not accepted (it also expires by itself)."""
        assert self.ledger is not None
        try:
            await self.ledger.release_chunk(claim)
        except Exception as exc:
            logger.warning(
                "chunk %d: could not release its lease (%s: %s); another worker can take it "
                "once the lease expires",
                claim.chunk.index,
                type(exc).__name__,
                exc,
            )

    async def release_shielded(self, claim: ChunkClaim) -> None:
        """:meth:`release` while cancelled: shielded, for at most ``_RELEASE_TIMEOUT`` s."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(_RELEASE_TIMEOUT):
            await self.release(claim)

    def hand_back_busy(self) -> None:
        """The chunks still held by other workers when this batch stopped: not submitted here."""
        for _, held in self.busy:
            self.unsent.append((held.start, held.originals))
        self.busy.clear()

    def finish(self) -> None:
        """Put the result in input order and record why the batch stopped."""
        self.unsent.sort(key=lambda item: item[0])
        for _, leads in self.unsent:
            self.result.not_submitted.extend(leads)
        self.unsent.clear()
        self.result.stopped_by = self.stop
        self.result.sort()

    def interrupted(self) -> BatchInterruptedError:
        """The one error for a batch that stopped early, saying why and what to do."""
        assert self.stop is not None
        assert self.cause is not None
        r = self.result
        cause = f"{type(self.cause).__name__}: {self.cause}"
        what = {
            StopReason.INSUFFICIENT_CREDITS: "the account ran out of credits (402)",
            StopReason.AUTHENTICATION: "the API key was refused (401)",
            StopReason.SERVICE_UNAVAILABLE: (
                f"{self.consecutive_failures} chunks in a row failed after retries, so the "
                "service looks down"
            ),
            StopReason.SOURCE_ERROR: "the lead source raised",
            StopReason.CALLBACK_ERROR: "a callback raised",
            StopReason.LEDGER: "the batch ledger refused a chunk or failed",
        }.get(self.stop, str(self.stop))
        return BatchInterruptedError(
            f"the batch stopped early after {self.index} leads: {what} ({cause}); "
            f"{r.accepted_count} accepted, {r.rejected_count} rejected, {r.failed_count} "
            f"failed, {r.not_submitted_count} not submitted: `partial` has every lead, and "
            "its not_submitted leads can be resubmitted once the cause is fixed",
            partial=r,
            reason=self.stop,
        )


async def submit_batch(
    api: Api,
    campaign: Campaign | Mapping[str, Any],
    leads: LeadSource,
    *,
    policy: BatchPolicy,
    on_progress: ProgressCallback | None = None,
    on_accepted: AcceptedCallback | None = None,
    on_rejected: RejectedCallback | None = None,
    into: BatchSubmission | None = None,
    ledger: BatchLedger | None = None,
    credits: CreditPolicy | None = None,
    keep_leads: KeepLeads | None = None,
) -> BatchSubmission:
    """Run one batch (see ``UpscaleClient.submit_batch``); BatchInterruptedError on early stop.

    ``keep_leads`` (generate's) gets each accepted request with its leads as given.
    """
    if ledger is not None:
        _check_ledger(ledger, on_accepted, credits)
    campaign_wire, campaign_bytes = api.encode_campaign(campaign)
    gate = None if credits is None else await open_gate(api, credits, campaign_wire, leads)
    result = into if into is not None else BatchSubmission()
    batch = _Batch(
        api,
        campaign_bytes,
        _Source(leads),
        policy=policy,
        on_progress=on_progress,
        on_accepted=on_accepted,
        on_rejected=on_rejected,
        result=result,
        ledger=ledger,
        credits=gate,
        keep_leads=keep_leads,
    )
    telemetry = api.telemetry
    span = _NO_LOCK if telemetry is None else telemetry.batch(policy.chunk_size, batch.source.total)
    try:
        with span:
            await batch.run()
    except anyio.get_cancelled_exc_class():
        # Cancellation propagates untouched; ``into=`` keeps what was done before it.
        batch.stop = batch.stop or StopReason.CANCELLED
        batch.hand_back_busy()
        batch.hand_back_pending_now()
        batch.finish()
        raise
    batch.finish()
    if batch.stop is not None:
        raise batch.interrupted() from batch.cause
    return result


def _check_ledger(
    ledger: object, on_accepted: AcceptedCallback | None, credits: CreditPolicy | None = None
) -> None:
    """TypeError for what is not a ledger; ValueError for a journal given twice, or credits=."""
    if credits is not None:
        raise ValueError(
            "credits= cannot be combined with ledger= yet: a ledger names each chunk by its "
            "fixed leads, and the credit gate cuts chunks to the credits left; run the batch "
            "with one of them (a BatchJournal's record as on_accepted= keeps it resumable)"
        )
    if not isinstance(ledger, BatchLedger):
        raise TypeError(
            "ledger must be a BatchLedger (a BatchJournal, or upscale_async.redis.RedisLedger "
            f"inside `async with`), not {type(ledger).__name__}"
        )
    if on_accepted is not None and on_accepted == getattr(ledger, "record", None):
        raise ValueError(
            "the journal is passed as ledger= and its record as on_accepted=: every request "
            "would be recorded twice; pass it as ledger= only (it records each chunk itself)"
        )
