"""await_completion and generate: wait for requests by webhook (hub), by polling, or both.

A webhook is only a hint (D9): completion is always confirmed by one retrieve_messages call.
Without a hub each pending id is polled with exponential backoff and jitter; with a hub the
waiter sleeps until the webhook arrives and still polls every ``fallback_interval`` seconds in
case a delivery is lost. A shared limiter caps retrieve calls in flight across all ids.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncGenerator, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal, Protocol

import anyio
import attrs

from ._batch import LeadSource, ProgressCallback, submit_batch
from ._errors import (
    AuthenticationError,
    BatchInterruptedError,
    CompletionTimeoutError,
    RateLimitError,
    ServerError,
    TransportError,
)
from ._models import Campaign, CompletionEvent, LeadMessages, RetrievedMessages
from ._results import AcceptedRequest, BatchSubmission, RejectedLead, _lead_id
from ._spec.contract import MESSAGE_FIELDS

if TYPE_CHECKING:
    from ._client import UpscaleClient
    from ._config import PollPolicy

__all__ = ["CompletionWaiter", "LeadOutcome", "Outcome", "await_completion", "generate"]

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
    """

    lead_id: str | None
    outcome: Outcome
    secure_request_id: str | None = None
    messages: Mapping[str, str | None] = attrs.field(factory=dict, hash=False)
    reason: str | None = None
    errors: tuple[str, ...] = ()
    lead: Any = None
    result: LeadMessages | None = None


class _Completion:
    def __init__(
        self,
        client: UpscaleClient,
        *,
        hub: CompletionWaiter | None,
        poll: PollPolicy,
    ) -> None:
        self.client = client
        self.hub = hub
        self.poll = poll
        self.limiter = anyio.CapacityLimiter(poll.max_concurrent)
        self.random = random.Random()
        self.last_seen: dict[str, RetrievedMessages | None] = {}
        self.results: dict[str, RetrievedMessages] = {}

    def _interval(self, poll: int) -> float:
        return self.poll.interval(poll, self.random.uniform(-1.0, 1.0))

    async def _retrieve(self, secure_request_id: str) -> RetrievedMessages | None:
        try:
            async with self.limiter:
                result = await self.client.retrieve_messages(secure_request_id)
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
                return result
            if notified:
                # The webhook came before retrieve agrees (or the retrieve failed): poll.
                return await self._poll(secure_request_id)

    async def one(self, secure_request_id: str) -> RetrievedMessages:
        self.last_seen.setdefault(secure_request_id, None)
        if self.hub is not None:
            result = await self._via_hub(self.hub, secure_request_id)
        else:
            result = await self._poll(secure_request_id)
        self.results[secure_request_id] = result
        return result


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
    client: UpscaleClient,
    ids: Iterable[str] | BatchSubmission | str,
    *,
    hub: CompletionWaiter | None,
    poll: PollPolicy,
    timeout: float | None,
) -> list[RetrievedMessages]:
    wanted = _ids(ids)
    unique = list(dict.fromkeys(wanted))
    completion = _Completion(client, hub=hub, poll=poll)
    try:
        with anyio.fail_after(timeout):
            async with anyio.create_task_group() as tg:
                for secure_request_id in unique:
                    tg.start_soon(completion.one, secure_request_id)
    except TimeoutError:
        pending = [i for i in unique if i not in completion.results]
        raise CompletionTimeoutError(
            f"{len(pending)} of {len(unique)} requests were not complete after {timeout} s; "
            "`pending` lists them and `last_seen` has the last progress of each",
            pending=pending,
            last_seen={i: completion.last_seen.get(i) for i in pending},
            completed=[completion.results[i] for i in unique if i in completion.results],
        ) from None
    return [completion.results[i] for i in wanted]


def _outcomes_for(
    request: AcceptedRequest, result: RetrievedMessages, types: list[str]
) -> list[LeadOutcome]:
    by_id = {lead.external_prospect_id: lead for lead in result.leads}
    reason = result.metadata.failed_messages_reason
    out: list[LeadOutcome] = []
    for lead_id in request.lead_ids:
        lead = by_id.get(lead_id)
        if lead is None:
            out.append(
                LeadOutcome(
                    lead_id=lead_id,
                    outcome="failed",
                    secure_request_id=request.secure_request_id,
                    reason="the lead is missing from the retrieve_messages answer",
                )
            )
            continue
        messages = {t: lead.message(t) for t in types}
        generated = any(v is not None for v in messages.values())
        out.append(
            LeadOutcome(
                lead_id=lead_id,
                outcome="generated" if generated else "failed",
                secure_request_id=request.secure_request_id,
                messages=messages,
                reason=None if generated else (reason or "no message was generated"),
                result=lead,
            )
        )
    return out


async def generate(
    client: UpscaleClient,
    campaign: Campaign | Mapping[str, Any],
    leads: LeadSource,
    *,
    hub: CompletionWaiter | None,
    poll: PollPolicy,
    chunk_size: int,
    concurrency: int,
    timeout: float | None,
    on_progress: ProgressCallback | None,
) -> AsyncGenerator[LeadOutcome, None]:
    wire = client.campaign_wire(campaign)
    sequence = wire.get("message_sequence") or []
    types = [s if isinstance(s, str) else str(s.get("messageType")) for s in sequence]
    types = [t for t in types if t in MESSAGE_FIELDS] + [
        t for t in types if t not in MESSAGE_FIELDS
    ]
    completion = _Completion(client, hub=hub, poll=poll)
    send, receive = anyio.create_memory_object_stream[LeadOutcome](max_buffer_size=chunk_size)
    deadline = None if timeout is None else anyio.current_time() + timeout

    async def complete(request: AcceptedRequest) -> None:
        result: RetrievedMessages | None = None
        with anyio.move_on_after(None if deadline is None else deadline - anyio.current_time()):
            result = await completion.one(request.secure_request_id)
        if result is None:
            for lead_id in request.lead_ids:
                await send.send(
                    LeadOutcome(
                        lead_id=lead_id,
                        outcome="timed_out",
                        secure_request_id=request.secure_request_id,
                        reason=f"not complete after {timeout} s; retrieve it later",
                    )
                )
            return
        for outcome in _outcomes_for(request, result, types):
            await send.send(outcome)

    failure: list[BaseException] = []

    async def produce() -> None:
        async with send:
            try:
                await produce_all()
            except Exception as exc:  # re-raised below, outside the task groups
                failure.append(exc)

    async def produce_all() -> None:
        async with anyio.create_task_group() as waiters:

            def on_accepted(request: AcceptedRequest) -> None:
                waiters.start_soon(complete, request)

            async def on_rejected(rejected: RejectedLead) -> None:
                await send.send(
                    LeadOutcome(
                        lead_id=rejected.lead_id,
                        outcome="rejected",
                        errors=tuple(rejected.messages),
                        reason="; ".join(rejected.messages),
                        lead=rejected.lead,
                    )
                )

            try:
                batch = await submit_batch(
                    client,
                    campaign,
                    leads,
                    chunk_size=chunk_size,
                    concurrency=concurrency,
                    on_progress=on_progress,
                    on_accepted=on_accepted,
                    on_rejected=on_rejected,
                )
            except (AuthenticationError, BatchInterruptedError) as exc:
                # The batch stopped early: still account for every lead it saw (the accepted
                # ones are awaited by the waiters), then raise once everything is out.
                failure.append(exc)
                if exc.partial is None:
                    return
                batch = exc.partial
            for chunk in batch.failed:
                for lead in chunk.leads:
                    await send.send(
                        LeadOutcome(
                            lead_id=_lead_id(lead),
                            outcome="submit_failed",
                            reason=f"{chunk.error_type}: {chunk.error}",
                            lead=lead,
                        )
                    )
            for lead in batch.not_submitted:
                await send.send(
                    LeadOutcome(
                        lead_id=_lead_id(lead),
                        outcome="not_submitted",
                        reason=f"not submitted ({batch.stopped_by}); resubmit it",
                        lead=lead,
                    )
                )

    closed_early = False
    async with anyio.create_task_group() as tg:
        tg.start_soon(produce)
        async with receive:
            try:
                async for outcome in receive:
                    yield outcome
            except GeneratorExit:
                # The consumer closed the iterator: stop the pipeline, leave nothing running.
                closed_early = True
                tg.cancel_scope.cancel()
    if failure and not closed_early:
        raise failure[0]
