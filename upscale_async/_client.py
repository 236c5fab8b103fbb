"""UpscaleClient: one coroutine per endpoint, plus submit_batch, await_completion and generate."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncGenerator, Iterable, Mapping
from types import TracebackType
from typing import Any, Final, Self

import aiohttp
import orjson

from ._batch import (
    AcceptedCallback,
    LeadSource,
    ProgressCallback,
    RejectedCallback,
    submit_batch,
)
from ._completion import CompletionWaiter, LeadOutcome, await_completion, generate
from ._config import (
    DEFAULT_BASE_URL,
    DEFAULT_CHUNK_SIZE,
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_TIMEOUT,
    ENV_API_KEY,
    ENV_BASE_URL,
    PollPolicy,
    RetryPolicy,
    Routes,
)
from ._errors import ConfigurationError, ResponseValidationError, ValidationError
from ._models import (
    Account,
    Campaign,
    GenerationAccepted,
    Lead,
    RetrievedMessages,
    SequenceTemplate,
)
from ._results import BatchSubmission
from ._spec.contract import RETRIEVE_ID_PARAM, SEQUENCE_FILTER_DEFAULT, SEQUENCE_FILTERS
from ._spec.validation import Problem, check_campaign, check_leads, required
from ._transport import Transport
from ._wire import encode_request, structure, structure_retrieved, structure_sequences

__all__ = ["UpscaleClient"]

_HTTP_BASE: Final = re.compile(r"https?://[^\s/?#]+[^\s?#]*\Z", re.IGNORECASE)


def _lead_wire(lead: Lead | Mapping[str, Any]) -> Any:
    return lead.to_wire() if isinstance(lead, Lead) else lead


class UpscaleClient:
    """An async client of the Upscale API, on one aiohttp session.

    ``api_key`` defaults to the ``UPSCALE_API_KEY`` environment variable and ``base_url`` to
    ``UPSCALE_BASE_URL`` (else the real service). Use it as an async context manager, or call
    :meth:`aclose`. A session passed as ``session=`` is borrowed and never closed.

    Example::

        async with UpscaleClient() as client:
            accepted = await client.request_message_generation(campaign, leads)
            [result] = await client.await_completion([accepted.secure_request_id])

    aiohttp runs on asyncio only; anyio is used for structured concurrency on top of it.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        routes: Routes | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        session: aiohttp.ClientSession | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        allow_unknown_message_types: bool = False,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get(ENV_API_KEY)
        if not key or key.isspace():
            raise ConfigurationError(
                f"No Upscale API key: pass UpscaleClient(api_key=...) or set the {ENV_API_KEY} "
                "environment variable (the key is in your Upscale account settings)."
            )
        url = base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
        if not _HTTP_BASE.match(url):
            source = "base_url" if base_url else ENV_BASE_URL
            raise ConfigurationError(
                f"{source} must be an http(s) URL such as {DEFAULT_BASE_URL!r}, got {url!r}"
            )
        if timeout is not None and timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds or None, got {timeout!r}")
        self.routes = routes or Routes.newest()
        self.retry = retry or RetryPolicy()
        self.allow_unknown_message_types = allow_unknown_message_types
        self._transport = Transport(
            base_url=url,
            api_key=key,
            timeout=timeout,
            retry=self.retry,
            session=session,
            max_connections=max_connections,
        )

    def __repr__(self) -> str:
        return f"<UpscaleClient base_url={self._transport.base_url!r}>"

    @property
    def base_url(self) -> str:
        return self._transport.base_url

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client's session (a borrowed session is left open). Idempotent."""
        await self._transport.aclose()

    # -- the four endpoints ------------------------------------------------------------------

    def campaign_wire(self, campaign: Campaign | Mapping[str, Any]) -> dict[str, Any]:
        """The wire object of a campaign under this client's routes (no ``lead_data``)."""
        if isinstance(campaign, Campaign):
            return campaign.to_wire(sequence_as_strings=self.routes.sequence_as_strings)
        if isinstance(campaign, Mapping):
            return {k: v for k, v in campaign.items() if k != "lead_data"}
        raise TypeError(f"campaign must be a Campaign or a mapping, not {type(campaign).__name__}")

    def check_campaign(self, campaign_wire: Mapping[str, Any]) -> list[Problem]:
        """Every client-side problem with a campaign's wire object."""
        return check_campaign(
            campaign_wire, allow_unknown_message_types=self.allow_unknown_message_types
        )

    async def request_message_generation(
        self,
        campaign: Campaign | Mapping[str, Any],
        leads: Iterable[Lead | Mapping[str, Any]],
    ) -> GenerationAccepted:
        """Ask Upscale to generate the campaign's messages for ``leads`` (one API call).

        Everything is validated first; every problem is raised at once in a
        :class:`ValidationError` and nothing is sent. A retried or repeated identical request
        returns the same ``secure_request_id`` (the API deduplicates).

        Raises: ValidationError, AuthenticationError (401), InsufficientCreditsError (402),
        UnprocessableEntityError (422), ServerError / TransportError after retries.
        """
        campaign_wire = self.campaign_wire(campaign)
        leads_wire = [_lead_wire(lead) for lead in leads]
        problems = self.check_campaign(campaign_wire)
        problems.extend(check_leads(leads_wire))
        if problems:
            raise ValidationError(problems)
        return await self.post_generation(orjson.dumps(campaign_wire), leads_wire)

    async def post_generation(
        self, campaign_bytes: bytes, leads_wire: list[Any]
    ) -> GenerationAccepted:
        """POST already validated wire data (``campaign_bytes`` is the serialized campaign)."""
        response = await self._transport.request(
            "POST",
            self.routes.request_message_generation,
            body=encode_request(campaign_bytes, leads_wire),
        )
        return structure(response.data, GenerationAccepted)

    async def retrieve_messages(self, secure_request_id: str) -> RetrievedMessages:
        """Fetch the messages of a request (one API call): complete (200) or partial (202).

        Check ``result.is_complete``; before completion only the messages generated so far
        are filled in.
        """
        if not isinstance(secure_request_id, str) or not secure_request_id.strip():
            raise ValidationError([required(RETRIEVE_ID_PARAM)])
        body = None
        if self.routes.retrieve_id_in_body:
            body = orjson.dumps({RETRIEVE_ID_PARAM: secure_request_id})
        response = await self._transport.request(
            "GET",
            self.routes.retrieve_messages,
            params={RETRIEVE_ID_PARAM: secure_request_id},
            body=body,
        )
        return structure_retrieved(
            response.data, response.status, secure_request_id=secure_request_id
        )

    async def get_sequences(
        self,
        *,
        sequence_length: str | None = None,
        campaign_objective: str | None = None,
        cadence_profile: str | None = None,
        saturated_markets: bool | str | None = None,
    ) -> list[SequenceTemplate]:
        """List Upscale's sequence templates (one API call).

        With no filter every sequence is returned; with any filter the server filters on all
        four, an omitted filter (or the literal ``"default"``) taking its default.
        """
        given: dict[str, Any] = {
            "sequence_length": sequence_length,
            "campaign_objective": campaign_objective,
            "cadence_profile": cadence_profile,
            "saturated_markets": saturated_markets,
        }
        params: dict[str, str] = {}
        problems: list[Problem] = []
        for name, value in given.items():
            if value is None:
                continue
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            allowed, _ = SEQUENCE_FILTERS[name]
            if text != SEQUENCE_FILTER_DEFAULT and text not in allowed:
                problems.append(
                    (
                        name,
                        f"{name} must be one of {', '.join(allowed)} or default but was {text!r}",
                    )
                )
            params[name] = text
        if problems:
            raise ValidationError(problems)
        response = await self._transport.request(
            "GET", self.routes.get_sequences, params=params or None
        )
        return structure_sequences(response.data)

    async def get_account(self) -> Account:
        """Account status and credits (experimental: the endpoint is "Coming soon" upstream)."""
        response = await self._transport.request("GET", self.routes.account)
        if response.data is None:
            raise ResponseValidationError("the account endpoint answered with an empty body")
        return structure(response.data, Account)

    # -- batches and completion ---------------------------------------------------------------

    async def submit_batch(
        self,
        campaign: Campaign | Mapping[str, Any],
        leads: LeadSource,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        concurrency: int = DEFAULT_CONCURRENCY,
        on_progress: ProgressCallback | None = None,
        on_accepted: AcceptedCallback | None = None,
        on_rejected: RejectedCallback | None = None,
        into: BatchSubmission | None = None,
        max_consecutive_failures: int | None = 3,
    ) -> BatchSubmission:
        """Submit any number of leads in chunks, concurrently, and account for every lead.

        ``leads`` (a list, iterator or async iterator of :class:`Lead` or wire-key mappings)
        is pulled lazily: at most ``chunk_size x concurrency`` leads are held at once. Each
        lead is validated once; invalid leads and repeated lead ids are set aside in
        ``rejected`` and the rest go on. On 402 no new chunk starts, in-flight chunks finish
        and every lead not accepted is handed back in ``not_submitted``, in input order, to
        resume with the same call after buying credits. A chunk that still fails after
        retries is recorded in ``failed`` and the others go on, until
        ``max_consecutive_failures`` chunks in a row have failed: then the service looks
        down, no new chunk starts (``stopped_by == "service_unavailable"``) and the rest is
        handed back in ``not_submitted`` rather than hammering it (None: never stop).
        ``on_progress`` gets a
        :class:`BatchProgress` after each chunk; ``on_accepted`` each accepted request as it
        is accepted, ``on_rejected`` each :class:`RejectedLead` as it is set aside (callbacks
        may be plain functions or coroutines).

        Raises :class:`AuthenticationError` on 401 with ``.partial`` set to the
        :class:`BatchSubmission` so far, and :class:`BatchInterruptedError` (``.partial``)
        when the lead source raises. On cancellation the ``CancelledError`` carries
        ``.partial`` too, and a :class:`BatchSubmission` passed as ``into=`` is filled in
        place, so what was accepted is never lost.
        """
        return await submit_batch(
            self,
            campaign,
            leads,
            chunk_size=chunk_size,
            concurrency=concurrency,
            on_progress=on_progress,
            on_accepted=on_accepted,
            on_rejected=on_rejected,
            into=into,
            max_consecutive_failures=max_consecutive_failures,
        )

    async def await_completion(
        self,
        ids: Iterable[str] | BatchSubmission | str,
        *,
        hub: CompletionWaiter | None = None,
        poll: PollPolicy | None = None,
        timeout: float | None = None,
    ) -> list[RetrievedMessages]:
        """Wait until every request is complete; returns their results in the order given.

        With ``hub`` (a :class:`~upscale_async.webhooks.CompletionHub` fed by your webhook
        route) each id waits for its webhook and still polls every
        ``poll.fallback_interval`` seconds in case a delivery is lost; without one, each id
        is polled with exponential backoff and jitter. Either way completion is confirmed by
        one retrieve_messages call. After ``timeout`` seconds (one deadline for all ids)
        :class:`CompletionTimeoutError` carries the pending ids and the last progress seen.
        Cancellation leaves no waiter, task or open response behind.
        """
        return await await_completion(
            self, ids, hub=hub, poll=poll or PollPolicy(), timeout=timeout
        )

    def generate(
        self,
        campaign: Campaign | Mapping[str, Any],
        leads: LeadSource,
        *,
        hub: CompletionWaiter | None = None,
        poll: PollPolicy | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        concurrency: int = DEFAULT_CONCURRENCY,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> AsyncGenerator[LeadOutcome, None]:
        """The whole pipeline: submit, await, and yield a :class:`LeadOutcome` per lead.

        Submitting and waiting overlap: a request is awaited as soon as it is accepted, so
        the first results come out before the last chunk is sent. Every lead comes out
        exactly once (generated, failed, rejected, not_submitted, submit_failed or
        timed_out). To stop early, close the iterator: ``async with
        contextlib.aclosing(client.generate(...)) as outcomes: async for o in outcomes: ...``.
        """
        return generate(
            self,
            campaign,
            leads,
            hub=hub,
            poll=poll or PollPolicy(),
            chunk_size=chunk_size,
            concurrency=concurrency,
            timeout=timeout,
            on_progress=on_progress,
        )
