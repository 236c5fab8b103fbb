"""UpscaleClient: one coroutine per endpoint, plus submit_batch, await_completion and generate."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sized
from contextlib import AbstractAsyncContextManager
from typing import Any, Final, NoReturn

import aiohttp
import attrs
from anyio.abc import AsyncResource

from ._api import Api, Settings, sequence_params
from ._batch import (
    AcceptedCallback,
    LeadSource,
    ProgressCallback,
    RejectedCallback,
    submit_batch,
)
from ._completion import CompletionWaiter, Outcomes, await_completion, open_generate
from ._config import (
    DEFAULT_BASE_URL,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_RESPONSE_SIZE,
    DEFAULT_TIMEOUT,
    ENV_API_KEY,
    ENV_BASE_URL,
    BatchPolicy,
    PollPolicy,
    RetryPolicy,
    Routes,
    check_max_response_size,
)
from ._credits import CreditEstimate, CreditPolicy, estimate_credits
from ._errors import ConfigurationError, ResponseValidationError
from ._governor import GovernorPolicy, RateGovernor
from ._hooks import EventHooks
from ._ledger import BatchLedger
from ._models import (
    Account,
    Campaign,
    GenerationAccepted,
    Lead,
    RetrievedMessages,
    SequenceTemplate,
)
from ._observe import Observer, log_level_from_env
from ._raw import RawClient
from ._results import AcceptedRequest, BatchSubmission
from ._telemetry import Telemetry
from ._transport import KeyProvider, Transport, redact_url
from ._wire import structure, structure_sequences

__all__ = ["UpscaleClient"]

_HTTP_BASE: Final = re.compile(r"https?://[^\s/?#]+[^\s?#]*\Z", re.IGNORECASE)
_UNSET: Any = object()


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds or None, got {timeout!r}")


def _check_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Per-call headers as a dict; ValueError for a non-str pair or one the client owns."""
    out = dict(headers)
    for name, value in out.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise ValueError(f"headers must map str names to str values, got {name!r}: {value!r}")
        if name.lower() == "api-key":
            raise ValueError(
                "headers cannot set Api-Key: pass the key as UpscaleClient(api_key=...), a "
                "callable returning it if it rotates"
            )
    return out


def _governor(
    policy: GovernorPolicy | RateGovernor | None, max_connections: int
) -> RateGovernor | None:
    if policy is None or isinstance(policy, RateGovernor):
        return policy  # a governor of its own (shared by clients, or by replicas: RedisGovernor)
    if not isinstance(policy, GovernorPolicy):
        raise TypeError(
            f"governor must be a GovernorPolicy, a RateGovernor (such as "
            f"upscale_async.redis.RedisGovernor), or None for no governor, not "
            f"{type(policy).__name__}"
        )
    return RateGovernor(policy, max_connections=max_connections)


def _api_key(api_key: str | KeyProvider | None) -> str | KeyProvider:
    if api_key is not None and not isinstance(api_key, str):
        if not callable(api_key):
            raise ConfigurationError(
                f"api_key must be a str, or a function or coroutine function returning the "
                f"current key, not {type(api_key).__name__}"
            )
        return api_key
    key = api_key if api_key is not None else os.environ.get(ENV_API_KEY)
    if not key or key.isspace():
        raise ConfigurationError(
            f"No Upscale API key: pass UpscaleClient(api_key=...) or set the {ENV_API_KEY} "
            "environment variable (the key is in your Upscale account settings)."
        )
    return key


class UpscaleClient(AsyncResource):
    """An async client of the Upscale API, on one aiohttp session.

    ``api_key`` defaults to the ``UPSCALE_API_KEY`` environment variable and ``base_url`` to
    ``UPSCALE_BASE_URL`` (else the real service). Use it as an async context manager, or call
    :meth:`aclose`. A session passed as ``session=`` is borrowed and never closed.

    The configuration is frozen: :meth:`with_options` returns a client configured otherwise
    that shares this one's session (``client.retry = ...`` raises rather than doing nothing).
    ``poll`` and ``batch`` are the defaults of :meth:`await_completion`, :meth:`generate`
    and :meth:`submit_batch`. Every response body is read under ``max_response_size`` bytes
    (default ``DEFAULT_MAX_RESPONSE_SIZE``, 64 MiB; None: no cap). A plain-``http`` base URL
    to a host that is not loopback logs a warning (the API key would travel in clear text);
    credentials in the base URL never appear in a repr, log line or error.

    ``api_key`` may also be a function or coroutine function returning the current key (a key
    that rotates): it is asked on first use, and again after a 401, when the call is made once
    more with the new key before the 401 is raised. ``hooks`` (:class:`EventHooks`) are told
    of each request, response and retry; ``telemetry`` (``upscale_async.otel.OpenTelemetry``,
    or a :class:`Telemetry` of your own) records spans and metrics; ``UPSCALE_LOG=info`` (or
    ``debug``), read when the client is made, logs each request with its credentials hidden.
    :attr:`with_raw_response` gives each endpoint's status, headers, request id, time and
    attempts with its result.

    Every request goes through one :class:`RateGovernor` per client (``governor``, a
    :class:`GovernorPolicy`; None for none): a 429 or a burst of 5xx pauses all of the
    client's requests, submitting and polling alike, the number in flight adapts (additive
    increase, multiplicative decrease) within ``max_concurrency``, and a retry budget bounds the
    extra traffic a failing service can cause. Pass a :class:`RateGovernor` itself to share one
    between clients, or an ``upscale_async.redis.RedisGovernor`` to share it between replicas.

    Example::

        async with UpscaleClient() as client:
            accepted = await client.request_message_generation(campaign, leads)
            [result] = await client.await_completion([accepted.secure_request_id])

    aiohttp runs on asyncio only; anyio is used for structured concurrency on top of it.
    """

    __slots__ = ("_api", "_owns_transport")
    _api: Api
    _owns_transport: bool

    # Long: every option is checked here, each with its own message.
    def __init__(
        self,
        api_key: str | KeyProvider | None = None,
        *,
        base_url: str | None = None,
        routes: Routes | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        batch: BatchPolicy | None = None,
        session: aiohttp.ClientSession | None = None,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        allow_unknown_message_types: bool = False,
        max_response_size: int | None = DEFAULT_MAX_RESPONSE_SIZE,
        hooks: EventHooks | None = None,
        telemetry: Telemetry | None = None,
        headers: Mapping[str, str] | None = None,
        governor: GovernorPolicy | RateGovernor | None = GovernorPolicy(),
    ) -> None:
        key = _api_key(api_key)
        if hooks is not None and not isinstance(hooks, EventHooks):
            raise TypeError(f"hooks must be an EventHooks, not {type(hooks).__name__}")
        if telemetry is not None and not isinstance(telemetry, Telemetry):
            raise TypeError(
                "telemetry must be a Telemetry such as upscale_async.otel.OpenTelemetry(...), "
                f"not {type(telemetry).__name__}"
            )
        url = base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
        if not _HTTP_BASE.match(url):
            source = "base_url" if base_url else ENV_BASE_URL
            raise ConfigurationError(
                f"{source} must be an http(s) URL such as {DEFAULT_BASE_URL!r}, "
                f"got {redact_url(url)!r}"
            )
        _check_timeout(timeout)
        check_max_response_size(max_response_size)
        settings = Settings(
            routes=routes or Routes.newest(),
            timeout=timeout,
            retry=retry or RetryPolicy(),
            poll=poll or PollPolicy(),
            batch=batch or BatchPolicy(),
            allow_unknown_message_types=allow_unknown_message_types,
            max_response_size=max_response_size,
            headers=_check_headers(headers or {}),
            governor=_governor(governor, max_connections),
        )
        transport = Transport(
            base_url=url, api_key=key, session=session, max_connections=max_connections
        )
        observer = Observer(hooks, log_level_from_env(), telemetry)
        object.__setattr__(self, "_api", Api(transport, settings, observer))
        object.__setattr__(self, "_owns_transport", True)

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(
            f"UpscaleClient is frozen: {name!r} cannot be set; use "
            f"client.with_options({name}=...) for a client configured otherwise"
        )

    def __repr__(self) -> str:
        return f"<UpscaleClient base_url={self.base_url!r}>"

    def with_options(
        self,
        *,
        routes: Routes | None = None,
        timeout: float | None = _UNSET,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        batch: BatchPolicy | None = None,
        allow_unknown_message_types: bool | None = None,
        max_response_size: int | None = _UNSET,
        headers: Mapping[str, str] | None = None,
    ) -> UpscaleClient:
        """A client with some options changed that shares this client's session.

        Use it per call or per block: ``await client.with_options(timeout=5).get_account()``,
        or ``fast = client.with_options(retry=RetryPolicy(attempts=1))`` for a block.
        ``headers`` are added to those of this client (a value replaces the same name's);
        ``Api-Key`` cannot be set this way. The view keeps this client's key, hooks and
        telemetry. It is not separately closable: closing it does nothing, and it stops
        working when this client is closed.
        """
        changes: dict[str, Any] = {
            "routes": routes,
            "retry": retry,
            "poll": poll,
            "batch": batch,
            "allow_unknown_message_types": allow_unknown_message_types,
        }
        changes = {k: v for k, v in changes.items() if v is not None}
        if timeout is not _UNSET:
            _check_timeout(timeout)
            changes["timeout"] = timeout
        if max_response_size is not _UNSET:
            check_max_response_size(max_response_size)
            changes["max_response_size"] = max_response_size
        if headers is not None:
            changes["headers"] = {**self._api.settings.headers, **_check_headers(headers)}
        view = object.__new__(UpscaleClient)
        api = Api(
            self._api.transport, attrs.evolve(self._api.settings, **changes), self._api.observer
        )
        object.__setattr__(view, "_api", api)
        object.__setattr__(view, "_owns_transport", False)
        return view

    @property
    def with_raw_response(self) -> RawClient:
        """The endpoints, each returning a :class:`RawResponse` (result, status, headers,
        request id, elapsed time, attempts): ``(await
        client.with_raw_response.get_account()).parsed``."""
        return RawClient(self._api)

    @property
    def governor(self) -> RateGovernor | None:
        """The rate governor every request of this client (and its views) goes through, or
        None when made with ``governor=None``; see :class:`GovernorPolicy`."""
        return self._api.settings.governor

    @property
    def headers(self) -> Mapping[str, str]:
        """Headers added to every request (``with_options(headers=...)``), besides the client's."""
        return self._api.settings.headers

    @property
    def base_url(self) -> str:
        """The base URL every endpoint path is joined to."""
        return self._api.transport.base_url

    @property
    def routes(self) -> Routes:
        """The endpoint paths and wire shapes in use (:meth:`Routes.newest` by default)."""
        return self._api.settings.routes

    @property
    def timeout(self) -> float | None:
        """Seconds one attempt of one request may take (None: no limit)."""
        return self._api.settings.timeout

    @property
    def retry(self) -> RetryPolicy:
        """How requests are retried, and the overall deadline of one call."""
        return self._api.settings.retry

    @property
    def poll(self) -> PollPolicy:
        """The default polling of :meth:`await_completion` and :meth:`generate`."""
        return self._api.settings.poll

    @property
    def batch(self) -> BatchPolicy:
        """The default chunking of :meth:`submit_batch` and :meth:`generate`."""
        return self._api.settings.batch

    @property
    def allow_unknown_message_types(self) -> bool:
        """Whether message types outside the documented five pass validation."""
        return self._api.settings.allow_unknown_message_types

    @property
    def max_response_size(self) -> int | None:
        """Bytes one response body may have (None: no cap); a larger one raises at once."""
        return self._api.settings.max_response_size

    @property
    def closed(self) -> bool:
        """True once the client (or the client this view came from) was closed."""
        return self._api.transport.closed

    async def aclose(self) -> None:
        """Close the client's session (a borrowed session is left open). Idempotent.

        On a view made by :meth:`with_options` it does nothing: the original client owns
        the session.
        """
        if self._owns_transport:
            await self._api.transport.aclose()

    # -- the four endpoints ------------------------------------------------------------------

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
        api = self._api
        body = api.generation_body(campaign, leads)
        response = await api.request(
            "POST", api.settings.routes.request_message_generation, body=body
        )
        return structure(response.data, GenerationAccepted)

    async def retrieve_messages(self, secure_request_id: str) -> RetrievedMessages:
        """Fetch the messages of a request (one API call): complete (200) or partial (202).

        Check ``result.is_complete``; before completion only the messages generated so far
        are filled in.
        """
        return await self._api.retrieve(secure_request_id)

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
        params = sequence_params(
            {
                "sequence_length": sequence_length,
                "campaign_objective": campaign_objective,
                "cadence_profile": cadence_profile,
                "saturated_markets": saturated_markets,
            }
        )
        response = await self._api.request("GET", self.routes.get_sequences, params=params)
        return structure_sequences(response.data)

    async def get_account(self) -> Account:
        """Account status and credits (experimental: the endpoint is "Coming soon" upstream)."""
        response = await self._api.request("GET", self.routes.account)
        if response.data is None:
            raise ResponseValidationError("the account endpoint answered with an empty body")
        return structure(response.data, Account)

    async def estimate_credits(
        self, campaign: Campaign | Mapping[str, Any], leads: Iterable[Lead | Mapping[str, Any]]
    ) -> CreditEstimate:
        """What sending ``leads`` may cost, against the account's credits (one API call).

        ``leads`` must be a collection (a list, a tuple): an iterator would be used up. The
        figure is an upper bound: leads x the campaign's message types, a repeated lead id
        once; pairs generated earlier for the same lead ids and prospects Upscale cannot
        personalise cost nothing, and the SDK cannot know them beforehand.
        """
        if not isinstance(leads, Sized):
            raise TypeError(
                "estimate_credits needs a collection of leads (a list or tuple), not "
                f"{type(leads).__name__}: an iterator would be used up by counting it"
            )
        wire, _ = self._api.encode_campaign(campaign)
        return await estimate_credits(self._api, wire, leads)

    # -- batches and completion ---------------------------------------------------------------

    # Long: the docstring is the reference of batches (ledger, credits, callbacks).
    async def submit_batch(
        self,
        campaign: Campaign | Mapping[str, Any],
        leads: LeadSource,
        *,
        batch: BatchPolicy | None = None,
        on_progress: ProgressCallback | None = None,
        on_accepted: AcceptedCallback | None = None,
        on_rejected: RejectedCallback | None = None,
        into: BatchSubmission | None = None,
        ledger: BatchLedger | None = None,
        credits: CreditPolicy | None = None,
    ) -> BatchSubmission:
        """Submit any number of leads in chunks, concurrently, and account for every lead.

        ``leads`` (a list, iterator or async iterator of :class:`Lead` or wire-key mappings)
        is pulled lazily: at most ``chunk_size x concurrency`` leads (``batch``, default
        :attr:`batch`) are held at once. Each lead is validated once; invalid leads and
        repeated lead ids are set aside in ``rejected`` and the rest go on. A chunk that
        still fails after retries is recorded in ``failed`` and the others go on.

        A batch that stops early raises :class:`BatchInterruptedError`, always: ``.reason``
        says why (402 credits ran out, 401 key refused, the breaker after
        ``max_consecutive_failures`` failed chunks, the lead source or a callback raised),
        the cause is chained, and ``.partial`` accounts for every lead seen, with the leads
        never sent in ``not_submitted`` (in input order) to resume with the same call. On
        402 in-flight chunks finish before it is raised.

        ``on_progress`` gets a :class:`BatchProgress` after each chunk; ``on_accepted`` each
        accepted request as it is accepted, ``on_rejected`` each :class:`RejectedLead` as it
        is set aside (callbacks may be plain functions or coroutines). Cancellation
        propagates untouched; a :class:`BatchSubmission` passed as ``into=`` is filled in
        place, so what was accepted before it is never lost.

        ``ledger`` (a :class:`BatchJournal`, or ``upscale_async.redis.RedisLedger`` shared by
        many workers) records each accepted chunk. Chunk ``k`` is input leads
        ``[k * chunk_size, (k + 1) * chunk_size)``; before posting it the batch claims it: a
        chunk the ledger already holds (from an earlier run, or another worker) is not sent and
        counts as ``accepted`` with its recorded request, so every worker's result covers the
        whole batch; a chunk another live worker holds is kept and claimed again until it is
        recorded (or its lease expires and this worker takes it over). Give every worker the
        same input in the same order with the same ``chunk_size``
        (:class:`LedgerMismatchError` otherwise). ``on_accepted`` also hears of the chunks
        found recorded. A ledger that fails stops the batch (``StopReason.LEDGER``).

        ``credits`` (a :class:`CreditPolicy`) makes the batch credit-aware: the account is read
        and the estimate reported before anything is sent, no chunk is posted that the credits
        left cannot pay for (the last one is cut to what remains), and on running out
        ``on_insufficient_credits`` may wait for a top-up and resume the same batch in place.
        """
        return await submit_batch(
            self._api,
            campaign,
            leads,
            policy=batch or self.batch,
            on_progress=on_progress,
            on_accepted=on_accepted,
            on_rejected=on_rejected,
            into=into,
            ledger=ledger,
            credits=credits,
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

        When one id's wait fails (a 404 for an unknown id, a body that does not fit), the
        other ids wait on, then :class:`CompletionError` is raised with ``.completed`` (the
        results retrieved, in the order given), ``.errors`` (id -> exception) and ``.pending``;
        a 401 stops every other wait at once (their ids are ``pending``). Never a bare
        exception group.
        """
        return await await_completion(
            self._api, ids, hub=hub, poll=poll or self.poll, timeout=timeout
        )

    def generate(
        self,
        campaign: Campaign | Mapping[str, Any],
        leads: LeadSource,
        *,
        hub: CompletionWaiter | None = None,
        poll: PollPolicy | None = None,
        batch: BatchPolicy | None = None,
        timeout: float | None = None,
        on_progress: ProgressCallback | None = None,
        on_accepted: AcceptedCallback | None = None,
        accepted: Iterable[AcceptedRequest] = (),
        ledger: BatchLedger | None = None,
        credits: CreditPolicy | None = None,
    ) -> AbstractAsyncContextManager[Outcomes]:
        """The whole pipeline: submit, await, and hand out a :class:`LeadOutcome` per lead.

        Use it as ``async with client.generate(campaign, leads) as outcomes: async for
        outcome in outcomes: ...``. Submitting and waiting overlap: a request is awaited as
        soon as it is accepted, so the first results come out before the last chunk is sent.
        Every lead comes out exactly once (generated, failed, rejected, not_submitted,
        submit_failed or timed_out); the leads of a request whose wait failed (a 404, a 401
        during the wait) come out as ``failed`` with the exception in ``error``, and the other
        requests go on. Leaving the block early stops all work and leaves
        nothing running; an exception raised in your loop comes out unchanged. When the
        batch stopped early (see :meth:`submit_batch`), its :class:`BatchInterruptedError`
        is raised at the end of the block, after every lead has come out.

        ``on_accepted`` hears of each accepted request before it is awaited (pass
        ``BatchJournal.record`` to make it durable first). ``accepted`` are requests accepted
        earlier (``BatchJournal.accepted`` of an interrupted run): they are awaited with the
        batch and their leads come out like the batch's, without being sent again (leave
        them out of ``leads``, e.g. with ``journal.skip_accepted(leads)``).

        ``ledger`` replaces both: pass the whole input and a :class:`BatchJournal` or a
        ``RedisLedger`` (see :meth:`submit_batch`); the chunks it holds already are awaited,
        not sent. With a ledger shared by several workers each worker hands out every lead of
        the batch (the chunks other workers sent are awaited too); to split the collecting as
        well, run :meth:`submit_batch` on the workers and let one process collect the results:
        ``await_completion(r.secure_request_id for r in await ledger.accepted_requests())``.
        ``credits`` (a :class:`CreditPolicy`) makes the batch credit-aware (see
        :meth:`submit_batch`).
        """
        return open_generate(
            self._api,
            campaign,
            leads,
            hub=hub,
            poll=poll or self.poll,
            batch=batch or self.batch,
            timeout=timeout,
            on_progress=on_progress,
            on_accepted=on_accepted,
            accepted=accepted,
            ledger=ledger,
            credits=credits,
        )
