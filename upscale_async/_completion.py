"""await_completion and generate: wait for requests by webhook (hub), by polling, or both.

A webhook is only a hint (D9): completion is always confirmed by one retrieve_messages call.
Without a hub each pending id is polled with exponential backoff and jitter; with a hub the
waiter sleeps until the webhook arrives and still polls every ``fallback_interval`` seconds in
case a delivery is lost. A shared limiter caps retrieve calls in flight across all ids.
"""

from __future__ import annotations

import inspect
import logging
import random
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from itertools import repeat
from typing import Any, Literal, Protocol, TypeAlias

import anyio
import anyio.abc
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._api import Api
from ._batch import AcceptedCallback, LeadSource, ProgressCallback, submit_batch
from ._config import BatchPolicy, PollPolicy
from ._credits import CreditPolicy
from ._errors import (
    AuthenticationError,
    RateLimitError,
    ServerError,
    TransportError,
)
from ._ledger import BatchLedger
from ._models import (
    Campaign,
    CompletionEvent,
    LeadMessages,
    RetrievedMessages,
    lead_id,
    message_field,
)
from ._results import (
    AcceptedRequest,
    BatchInterruptedError,
    BatchSubmission,
    CompletionError,
    CompletionTimeoutError,
    RejectedLead,
)
from ._spec.contract import MESSAGE_FIELDS
from ._telemetry import Telemetry

__all__ = [
    "CompletionWaiter",
    "LeadOutcome",
    "Outcome",
    "Outcomes",
    "await_completion",
    "open_generate",
]

logger = logging.getLogger("upscale_async")

Outcome = Literal["generated", "failed", "rejected", "not_submitted", "submit_failed", "timed_out"]


class CompletionWaiter(Protocol):
    """What await_completion needs of a hub (``upscale_async.webhooks.CompletionHub``)."""

    async def wait(self, secure_request_id: str, timeout: float | None = None) -> CompletionEvent:
        """Resolve with the completion event of ``secure_request_id``; TimeoutError on timeout."""
        ...


@attrs.frozen(kw_only=True)
class LeadOutcome:
    """What happened to one lead in :meth:`UpscaleClient.generate`.

    ``outcome`` is one of: ``generated`` (``messages`` maps each requested message type to
    its text), ``failed`` (Upscale could not personalise it: ``reason``), ``rejected``
    (client-side validation: ``errors``), ``not_submitted`` (credits ran out or the key
    failed: resubmit ``lead``), ``submit_failed`` (the request still failed after retries:
    ``reason``; resubmitting is safe) or ``timed_out`` (accepted, not complete by the deadline:
    retrieve ``secure_request_id`` later).

    When waiting for a request failed (a 404, a 401 during the wait, a body that does not
    fit), each of its leads comes out once as ``failed``, with ``reason`` naming the error,
    ``error`` holding it, and ``secure_request_id`` to retrieve later; the other requests go on.

    ``lead`` is the lead as it was given (the same object) on every outcome but ``generated``
    (None there), so the leads not generated can be sent again; it is None too for the leads
    of a request passed in ``accepted=``, which this run was not given.
    """

    lead_id: str | None
    outcome: Outcome
    secure_request_id: str | None = None
    messages: Mapping[str, str | None] = attrs.field(factory=dict, hash=False)
    reason: str | None = None
    errors: tuple[str, ...] = ()
    lead: Any = None
    result: LeadMessages | None = None
    error: BaseException | None = attrs.field(default=None, eq=False, hash=False)


Outcomes: TypeAlias = MemoryObjectReceiveStream[LeadOutcome]
"""What ``async with client.generate(...) as outcomes`` hands out: iterate it with ``async for``."""


class _Completion:
    """Waits for requests by hub, by polling, or both; keeps what it saw of each."""

    def __init__(
        self,
        api: Api,
        *,
        hub: CompletionWaiter | None,
        poll: PollPolicy,
    ) -> None:
        self.api = api
        self.hub = hub
        self.poll = poll
        # Read once; getattr: a stand-in with only retrieve() (the mutation tests') has none.
        self.telemetry: Telemetry | None = getattr(api, "telemetry", None)
        self.limiter = anyio.CapacityLimiter(poll.max_concurrent)
        self.random = random.Random()
        self.last_seen: dict[str, RetrievedMessages | None] = {}
        self.results: dict[str, RetrievedMessages] = {}
        self.errors: dict[str, Exception] = {}

    def _interval(self, poll: int) -> float:
        return self.poll.interval(poll, self.random.uniform(-1.0, 1.0))

    async def _retrieve(self, secure_request_id: str) -> RetrievedMessages | None:
        try:
            async with self.limiter:
                result = await self.api.retrieve(secure_request_id)
        except (ServerError, TransportError, RateLimitError) as exc:
            logger.warning(
                "polling %s failed after retries, will poll again: %s", secure_request_id, exc
            )
            return None
        self.last_seen[secure_request_id] = result
        return result

    async def _poll(self, secure_request_id: str) -> RetrievedMessages:
        poll = 1
        while True:
            await anyio.sleep(self._interval(poll))
            result = await self._retrieve(secure_request_id)
            if result is not None and result.is_complete:
                return result
            poll += 1

    async def _via_hub(self, hub: CompletionWaiter, secure_request_id: str) -> RetrievedMessages:
        while True:
            try:
                await hub.wait(secure_request_id, timeout=self.poll.fallback_interval)
                notified = True
            except TimeoutError:
                notified = False
            result = await self._retrieve(secure_request_id)
            if result is not None and result.is_complete:
                if not notified:
                    self.fallback_found(secure_request_id)
                return result
            if notified:
                # The webhook came before retrieve agrees (or the retrieve failed): poll.
                return await self._poll(secure_request_id)

    def fallback_found(self, secure_request_id: str) -> None:
        """A fallback poll found a request complete whose webhook had not come."""
        logger.debug(
            "the fallback poll found %s complete: no webhook for it came within %g s",
            secure_request_id,
            self.poll.fallback_interval,
            extra={"secure_request_id": secure_request_id},
        )
        if self.telemetry is not None:
            self.telemetry.fallback_poll_found(secure_request_id)

    async def wait_one(self, secure_request_id: str) -> RetrievedMessages:
        """Wait for one request until it is complete; its confirmed result."""
        self.last_seen.setdefault(secure_request_id, None)
        telemetry = self.telemetry
        if telemetry is None:
            result = await self._wait(secure_request_id)
        else:
            with telemetry.wait(secure_request_id):
                result = await self._wait(secure_request_id)
        self.results[secure_request_id] = result
        return result

    async def _wait(self, secure_request_id: str) -> RetrievedMessages:
        if self.hub is not None:
            return await self._via_hub(self.hub, secure_request_id)
        return await self._poll(secure_request_id)

    async def wait_guarded(self, secure_request_id: str, scope: anyio.CancelScope) -> None:
        """:meth:`wait_one`, its failure kept in ``errors`` (a 401 also cancels ``scope``)."""
        try:
            await self.wait_one(secure_request_id)
        except AuthenticationError as exc:
            self.errors[secure_request_id] = exc
            scope.cancel()  # the key is refused: no other id's retrieve can succeed either
        except Exception as exc:  # one id's failure must not end (or group) the others' waits
            self.errors[secure_request_id] = exc


def _ids(ids: Iterable[str] | BatchSubmission | str) -> list[str]:
    if isinstance(ids, BatchSubmission):
        return ids.request_ids
    if isinstance(ids, str):
        return [ids]
    out = list(ids)
    for value in out:
        if not isinstance(value, str) or not value:
            raise TypeError(f"secure_request_id values must be non-empty strings, got {value!r}")
    return out


async def await_completion(
    api: Api,
    ids: Iterable[str] | BatchSubmission | str,
    *,
    hub: CompletionWaiter | None,
    poll: PollPolicy,
    timeout: float | None,
) -> list[RetrievedMessages]:
    wanted = _ids(ids)
    unique = list(dict.fromkeys(wanted))
    completion = _Completion(api, hub=hub, poll=poll)
    timed_out = False
    try:
        with anyio.fail_after(timeout):
            async with anyio.create_task_group() as tg:
                for secure_request_id in unique:
                    tg.start_soon(completion.wait_guarded, secure_request_id, tg.cancel_scope)
    except TimeoutError:
        timed_out = True
    if timed_out or completion.errors:
        raise _completion_error(completion, unique, timeout, timed_out=timed_out)
    return [completion.results[i] for i in wanted]


def _completion_error(
    completion: _Completion, unique: list[str], timeout: float | None, *, timed_out: bool
) -> CompletionError:
    """The one error await_completion raises when some id did not complete; chained."""
    results, errors = completion.results, completion.errors
    completed = [results[i] for i in unique if i in results]
    pending = [i for i in unique if i not in results and i not in errors]
    failed = "; ".join(f"{i}: {type(e).__name__}: {e}" for i, e in list(errors.items())[:3])
    more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
    failures = f"; {len(errors)} failed ({failed}{more})" if errors else ""
    counts = f"{len(completed)} of {len(unique)} requests completed{failures}"
    error: CompletionError
    if timed_out:
        error = CompletionTimeoutError(
            f"{len(pending)} of {len(unique)} requests were not complete after {timeout} s "
            f"({counts}); `pending` lists them and `last_seen` has the last progress of each; "
            "wait again with a larger timeout, or retrieve them later",
            pending=pending,
            last_seen={i: completion.last_seen.get(i) for i in pending},
            completed=completed,
            errors=errors,
        )
    else:
        stopped = f"; {len(pending)} not awaited (stopped by the 401)" if pending else ""
        error = CompletionError(
            f"waiting for completion failed: {counts}{stopped}; `completed` keeps the results "
            "retrieved, `errors` maps each failed id to its error, `pending` lists the ids to "
            "wait for again (after fixing the API key for a 401; a 404 id is unknown to Upscale)",
            completed=completed,
            errors=errors,
            pending=pending,
        )
    error.__cause__ = next(iter(errors.values()), None)
    return error


def _given(request: AcceptedRequest, leads: Sequence[Any] | None) -> Iterable[tuple[str, Any]]:
    """Each lead id of ``request`` with its lead as given (None when not known here)."""
    if leads is None or len(leads) != len(request.lead_ids):
        return zip(request.lead_ids, repeat(None))
    return zip(request.lead_ids, leads, strict=True)


def _outcomes_for(
    request: AcceptedRequest,
    result: RetrievedMessages,
    types: list[str],
    leads: Sequence[Any] | None = None,
) -> list[LeadOutcome]:
    by_id = {lead.external_prospect_id: lead for lead in result.leads}
    reason = result.metadata.failed_messages_reason
    out: list[LeadOutcome] = []
    for id_, given in _given(request, leads):
        lead = by_id.get(id_)
        if lead is None:
            out.append(
                LeadOutcome(
                    lead_id=id_,
                    outcome="failed",
                    secure_request_id=request.secure_request_id,
                    reason="the lead is missing from the retrieve_messages answer",
                    lead=given,
                )
            )
            continue
        # Not lead.message(t): a new type (allowed by the client) may be absent, not an error.
        messages = {t: lead.raw.get(message_field(t)) for t in types}
        generated = any(v is not None for v in messages.values())
        out.append(
            LeadOutcome(
                lead_id=id_,
                outcome="generated" if generated else "failed",
                secure_request_id=request.secure_request_id,
                messages=messages,
                reason=None if generated else (reason or "no message was generated"),
                lead=None if generated else given,
                result=lead,
            )
        )
    return out


class _Pipeline:
    """``generate``: one batch feeding one completion, every lead out through one stream.

    Runs in the task group of :func:`open_generate`: :meth:`run` submits the batch, starts a
    waiter per accepted request, sends the outcome of every lead to ``send``, and keeps the
    error that stopped the batch early (raised by :func:`open_generate` after the last lead).
    """

    def __init__(
        self,
        api: Api,
        send: MemoryObjectSendStream[LeadOutcome],
        *,
        hub: CompletionWaiter | None,
        poll: PollPolicy,
        timeout: float | None,
    ) -> None:
        self.api = api
        self.send = send
        # Each lead's outcome goes out through emit: counted first when there is telemetry.
        self.emit = send.send if api.telemetry is None else self._counted
        self.completion = _Completion(api, hub=hub, poll=poll)
        self.timeout = timeout
        self.deadline = None if timeout is None else anyio.current_time() + timeout
        self.types: list[str] = []
        self.failure: Exception | None = None
        self.credits: CreditPolicy | None = None  # generate(credits=): the batch's policy
        self.finished = False
        # The leads of each request just accepted, by id(request), until its wait starts: the
        # waiter then holds them until its outcomes are out.
        self.kept: dict[int, list[Any]] = {}

    def message_types(self, campaign: Campaign | Mapping[str, Any]) -> list[str]:
        """The campaign's message types, the documented ones first."""
        sequence = self.api.campaign_wire(campaign).get("message_sequence") or []
        types = [s if isinstance(s, str) else str(s.get("messageType")) for s in sequence]
        return [t for t in types if t in MESSAGE_FIELDS] + [
            t for t in types if t not in MESSAGE_FIELDS
        ]

    async def run(
        self,
        campaign: Campaign | Mapping[str, Any],
        leads: LeadSource,
        policy: BatchPolicy,
        on_progress: ProgressCallback | None,
        on_accepted: AcceptedCallback | None = None,
        accepted: Iterable[AcceptedRequest] = (),
        ledger: BatchLedger | None = None,
    ) -> None:
        """Submit, await every accepted request, and account for every other lead."""
        async with self.send:
            try:
                self.types = self.message_types(campaign)
                async with anyio.create_task_group() as waiters:
                    for request in accepted:
                        waiters.start_soon(self.complete, request)
                    batch = await self.submit(
                        waiters, campaign, leads, policy, on_progress, on_accepted, ledger
                    )
                    if batch is not None:
                        await self.unsent(batch)
            except Exception as exc:  # raised by open_generate, outside the task groups
                self.failure = _leaf(exc)
            self.finished = True

    async def submit(
        self,
        waiters: anyio.abc.TaskGroup,
        campaign: Campaign | Mapping[str, Any],
        leads: LeadSource,
        policy: BatchPolicy,
        on_progress: ProgressCallback | None,
        also_on_accepted: AcceptedCallback | None = None,
        ledger: BatchLedger | None = None,
    ) -> BatchSubmission | None:
        """Run the batch, starting a waiter per accepted request; the batch's result."""

        async def on_accepted(request: AcceptedRequest) -> None:
            # The caller's callback first (a journal makes the request durable), then the wait,
            # which starts whatever the callback does: Upscale has the request, so its leads
            # must come out even when the callback raised (the batch then stops, CALLBACK_ERROR).
            leads = self.kept.pop(id(request), None)
            try:
                if also_on_accepted is not None:
                    result = also_on_accepted(request)
                    if inspect.isawaitable(result):
                        await result
            finally:
                waiters.start_soon(self.complete, request, leads)

        try:
            return await submit_batch(
                self.api,
                campaign,
                leads,
                policy=policy,
                on_progress=on_progress,
                on_accepted=on_accepted,
                on_rejected=self.rejected,
                ledger=ledger,
                credits=self.credits,
                keep_leads=self.keep,
            )
        except BatchInterruptedError as exc:
            # Still account for every lead it saw (the accepted ones are being awaited),
            # then raise once everything is out.
            self.failure = exc
            return exc.partial

    def keep(self, request: AcceptedRequest, leads: list[Any]) -> None:
        """Hold the leads of a request just accepted until its ``on_accepted`` (the batch's)."""
        self.kept[id(request)] = leads

    async def _counted(self, outcome: LeadOutcome) -> None:
        assert self.api.telemetry is not None
        self.api.telemetry.leads(outcome.outcome)
        await self.send.send(outcome)

    async def rejected(self, rejected: RejectedLead) -> None:
        """Hand out a lead set aside by validation."""
        await self.emit(
            LeadOutcome(
                lead_id=rejected.lead_id,
                outcome="rejected",
                errors=tuple(rejected.messages),
                reason="; ".join(rejected.messages),
                lead=rejected.lead,
            )
        )

    async def unsent(self, batch: BatchSubmission) -> None:
        """Hand out the leads of failed chunks and the leads never sent."""
        for chunk in batch.failed:
            for lead in chunk.leads:
                await self.emit(
                    LeadOutcome(
                        lead_id=lead_id(lead),
                        outcome="submit_failed",
                        reason=f"{chunk.error_type}: {chunk.error}",
                        lead=lead,
                    )
                )
        stop = batch.stopped_by.value if batch.stopped_by else "stopped"
        for lead in batch.not_submitted:
            await self.emit(
                LeadOutcome(
                    lead_id=lead_id(lead),
                    outcome="not_submitted",
                    reason=f"not submitted ({stop}); resubmit it",
                    lead=lead,
                )
            )

    async def complete(self, request: AcceptedRequest, leads: list[Any] | None = None) -> None:
        """Await one accepted request and hand out its leads (``timed_out`` past the deadline).

        ``leads``: the request's leads as given (in the order of its ids), for the outcomes
        that are not ``generated``; dropped with this task once they are out.
        """
        result: RetrievedMessages | None = None
        deadline = self.deadline
        try:
            with anyio.move_on_after(None if deadline is None else deadline - anyio.current_time()):
                result = await self.completion.wait_one(request.secure_request_id)
        except Exception as exc:  # one request's failure must not end the others (or group)
            await self.wait_failed(request, exc, leads)
            return
        if result is None:
            for lead_id_, given in _given(request, leads):
                await self.emit(
                    LeadOutcome(
                        lead_id=lead_id_,
                        outcome="timed_out",
                        secure_request_id=request.secure_request_id,
                        reason=f"not complete after {self.timeout} s; retrieve it later",
                        lead=given,
                    )
                )
            return
        for outcome in _outcomes_for(request, result, self.types, leads):
            await self.emit(outcome)

    async def wait_failed(
        self, request: AcceptedRequest, error: Exception, leads: list[Any] | None = None
    ) -> None:
        """Hand out each lead of a request whose wait failed as ``failed``, with the error."""
        reason = (
            f"waiting for request {request.secure_request_id} failed: "
            f"{type(error).__name__}: {error}; retrieve it later with retrieve_messages"
        )
        for lead_id_, given in _given(request, leads):
            await self.emit(
                LeadOutcome(
                    lead_id=lead_id_,
                    outcome="failed",
                    secure_request_id=request.secure_request_id,
                    reason=reason,
                    error=error,
                    lead=given,
                )
            )


def _leaf(error: Exception) -> Exception:
    """The error itself, never a group: the first leaf of a task group's exception group.

    Every other error of the group, however deeply nested, is noted on the one returned.
    """
    if not isinstance(error, ExceptionGroup):
        return error
    first, *others = _leaves(error)
    for other in others:
        first.add_note(f"also raised: {type(other).__name__}: {other}")
    return first


def _leaves(error: Exception) -> list[Exception]:
    if isinstance(error, ExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in _leaves(inner)]
    return [error]


@asynccontextmanager
async def open_generate(
    api: Api,
    campaign: Campaign | Mapping[str, Any],
    leads: LeadSource,
    *,
    hub: CompletionWaiter | None,
    poll: PollPolicy,
    batch: BatchPolicy,
    timeout: float | None,
    on_progress: ProgressCallback | None,
    on_accepted: AcceptedCallback | None = None,
    accepted: Iterable[AcceptedRequest] = (),
    ledger: BatchLedger | None = None,
    credits: CreditPolicy | None = None,
) -> AsyncIterator[Outcomes]:
    """Run a :class:`_Pipeline` in a task group while the caller reads its outcomes.

    The structured shape of trio's ``as_safe_channel``: the caller never iterates inside our
    task group, so leaving the block (early, or by raising) cancels the pipeline cleanly and
    the caller's exception comes out unchanged.
    """
    if ledger is not None:
        accepted = list(accepted)
        if accepted:
            raise ValueError(
                "generate: pass ledger= or accepted=, not both: the ledger already hands over "
                "the requests it holds (their leads would come out twice)"
            )
        if on_accepted is not None and on_accepted == getattr(ledger, "record", None):
            raise ValueError(
                "generate: the journal is passed as ledger= and its record as on_accepted=: "
                "pass it as ledger= only (it records each chunk itself)"
            )
    send, receive = anyio.create_memory_object_stream[LeadOutcome](max_buffer_size=batch.chunk_size)
    pipeline = _Pipeline(api, send, hub=hub, poll=poll, timeout=timeout)
    pipeline.credits = credits
    raised: Exception | None = None
    async with anyio.create_task_group() as tg:
        tg.start_soon(
            pipeline.run, campaign, leads, batch, on_progress, on_accepted, accepted, ledger
        )
        try:
            async with receive:
                yield receive
        except Exception as exc:
            # Re-raised below, outside the task group, so that it is not wrapped in a group.
            raised = exc
        finally:
            # Whatever the caller did, nothing of the pipeline outlives the block.
            tg.cancel_scope.cancel()
    if raised is not None:
        raise raised
    if pipeline.finished and pipeline.failure is not None:
        if isinstance(pipeline.failure, anyio.BrokenResourceError):
            # Only leaving the block closes the stream: the caller left early (break, return),
            # and the pipeline, sending an outcome then, stopped. Nothing to report.
            return
        raise pipeline.failure
