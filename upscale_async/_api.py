"""The internal API object: what batches and completion need of a client, and nothing more.

An :class:`Api` is a transport plus one configuration (routes, timeout, retry policy, whether
unknown message types pass): it encodes and checks campaigns, sends a generation request,
retrieves messages, and runs every call through the retry loop. ``UpscaleClient`` builds one;
``_batch`` and ``_completion`` take it instead of the client, so they never reach back into
the public client. ``UpscaleClient.with_options`` makes another over the same transport.
"""

from __future__ import annotations

import random
import time
from collections.abc import AsyncIterable, Iterable, Mapping
from typing import Any

import attrs
import orjson

from ._config import DEFAULT_MAX_RESPONSE_SIZE, BatchPolicy, PollPolicy, RetryPolicy, Routes
from ._errors import (
    APIError,
    AuthenticationError,
    RequestTimeoutError,
    ResponseValidationError,
    UpscaleError,
    ValidationError,
)
from ._governor import RateGovernor
from ._models import Campaign, GenerationAccepted, Lead, RetrievedMessages, lead_wire
from ._observe import Observer
from ._retry import call_with_retries, deadline_error
from ._spec.contract import RETRIEVE_ID_PARAM
from ._spec.validation import Problem, check_campaign, check_leads, required, sequence_filter
from ._telemetry import Telemetry
from ._transport import Response, Transport
from ._wire import encode_request, structure, structure_retrieved

__all__ = ["Api", "Exchange", "Settings", "refuse_single_lead"]

_NO_OBSERVER = Observer(None, None, None)


@attrs.frozen
class Exchange:
    """One observed call: its 2xx response, the attempts it took and its seconds in all."""

    response: Response
    attempts: int
    elapsed: float
    secure_request_id: str | None = None


@attrs.frozen(kw_only=True)
class Settings:
    """One client's configuration; ``with_options`` evolves it, the transport stays shared."""

    routes: Routes
    timeout: float | None
    retry: RetryPolicy
    poll: PollPolicy
    batch: BatchPolicy
    allow_unknown_message_types: bool
    max_response_size: int | None = DEFAULT_MAX_RESPONSE_SIZE
    headers: Mapping[str, str] = attrs.field(factory=dict)
    """Headers added to every request (``with_options(headers=...)``)."""
    governor: RateGovernor | None = None
    """The client's rate governor, shared by its ``with_options`` views (None: none)."""


class Api:
    """Encode, validate and send: the calls ``_batch`` and ``_completion`` make."""

    __slots__ = ("_random", "observer", "settings", "telemetry", "transport")

    def __init__(
        self, transport: Transport, settings: Settings, observer: Observer | None = None
    ) -> None:
        self.transport = transport
        self.settings = settings
        self._random = random.Random()
        # None unless hooks, telemetry or UPSCALE_LOG are on: then every call is observed.
        self.observer = observer if observer is not None and observer.active else None
        #: The spans and counters of batches and waits (None: none are opened).
        self.telemetry: Telemetry | None = None
        if observer is not None and type(observer.telemetry) is not Telemetry:
            self.telemetry = observer.telemetry

    def campaign_wire(self, campaign: Campaign | Mapping[str, Any]) -> dict[str, Any]:
        """The wire object of a campaign under these routes (no ``lead_data``).

        A mapping goes through :meth:`Campaign.from_mapping`, so it gets exactly a Campaign's
        checks and normalisation (sequence numbering, upper-cased ``hiring_location``,
        conditional fields only with their type). Raises ValidationError listing every
        problem of a mapping (its unknown keys too); a ``lead_data`` key is left out.
        """
        if isinstance(campaign, Mapping):
            campaign = Campaign.from_mapping(
                {k: v for k, v in campaign.items() if k != "lead_data"},
                allow_unknown_message_types=self.settings.allow_unknown_message_types,
            )
        if isinstance(campaign, Campaign):
            return campaign.to_wire(sequence_as_strings=self.settings.routes.sequence_as_strings)
        raise TypeError(f"campaign must be a Campaign or a mapping, not {type(campaign).__name__}")

    def campaign_problems(self, campaign_wire: Mapping[str, Any]) -> list[Problem]:
        """Every client-side problem with a campaign's wire object."""
        return check_campaign(
            campaign_wire, allow_unknown_message_types=self.settings.allow_unknown_message_types
        )

    def encode_campaign(
        self, campaign: Campaign | Mapping[str, Any]
    ) -> tuple[dict[str, Any], bytes]:
        """A checked campaign's wire object and its JSON; ValidationError when it has problems."""
        wire = self.campaign_wire(campaign)
        problems = self.campaign_problems(wire)
        if problems:
            raise ValidationError(problems)
        return wire, orjson.dumps(wire)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> Response:
        """One API call, retried under the retry policy within its overall deadline."""
        if self.observer is not None or self.transport.key_provider is not None:
            return (await self.exchange(method, path, params=params, body=body)).response
        return await call_with_retries(
            self._attempt(method, path, params, body),
            self.settings.retry,
            method=method,
            path=path,
            rng=self._random,
            governor=self.settings.governor,
        )

    def _attempt(
        self, method: str, path: str, params: Mapping[str, str] | None, body: bytes | None
    ) -> Any:
        """One attempt of a call, given the seconds left of its deadline (``call_with_retries``)."""
        timeout = self.settings.timeout
        cap = self.settings.max_response_size
        extra = self.settings.headers or None
        send = self.transport.send

        async def attempt(left: float | None) -> Response:
            if left is None or (timeout is not None and timeout <= left):
                return await send(
                    method,
                    path,
                    params=params,
                    body=body,
                    timeout=timeout,
                    max_size=cap,
                    extra_headers=extra,
                )
            if left <= 0:
                raise deadline_error(method, path, 0.0)
            try:
                return await send(
                    method,
                    path,
                    params=params,
                    body=body,
                    timeout=left,
                    max_size=cap,
                    extra_headers=extra,
                )
            except RequestTimeoutError as exc:
                raise deadline_error(method, path, left) from exc

        return attempt

    async def exchange(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> Exchange:
        """:meth:`request`, observed: hooks, logs and telemetry see each attempt; the attempts
        and the time taken are returned with the response.

        With a rotating key (a callable ``api_key``), a 401 asks the key provider once more
        and, when it returns a new key, the call is made once more with it.
        """
        observer = self.observer or _NO_OBSERVER
        version = await self.transport.ensure_key()
        started = time.perf_counter()
        with observer.telemetry.call(method, path) as call:
            counter = _Counter()
            try:
                response = await self._observed(observer, call, counter, method, path, params, body)
            except AuthenticationError as exc:
                if not await self.transport.rotate_key(version):
                    if self.transport.key_provider is not None:
                        exc.add_note(
                            "the api_key callable was asked again after this 401 and returned "
                            "the same key; make it return the new key once the old is revoked"
                        )
                    raise
                response = await self._observed(observer, call, counter, method, path, params, body)
            observer.telemetry.call_ended(
                call,
                status=response.status,
                attempts=counter.attempts,
                request_id=response.headers.get("X-Request-Id"),
                secure_request_id=counter.secure_request_id,
            )
        return Exchange(
            response, counter.attempts, time.perf_counter() - started, counter.secure_request_id
        )

    # Long: the attempt closure and the retry callback share the call's counters.
    async def _observed(
        self,
        observer: Observer,
        call: Any,
        counter: _Counter,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        body: bytes | None,
    ) -> Response:
        """Run the retry loop with every attempt and retry reported to ``observer``."""
        plain = self._attempt(method, path, params, body)
        transport = self.transport
        extra = self.settings.headers or None

        async def attempt(left: float | None) -> Response:
            counter.attempts += 1
            n = counter.attempts
            headers = transport.headers(body is not None, extra)
            await observer.attempt_started(method, path, n, params, transport.url(path), headers)
            started = time.perf_counter()
            try:
                response: Response = await plain(left)
            except UpscaleError as exc:
                # An error status, or a 2xx whose body could not be read: the answer's status.
                status = exc.status if isinstance(exc, APIError | ResponseValidationError) else None
                seconds = time.perf_counter() - started
                await observer.attempt_ended(
                    call, method, path, n, params, seconds, status, {}, None, exc
                )
                raise
            seconds = time.perf_counter() - started
            counter.secure_request_id = await observer.attempt_ended(
                call,
                method,
                path,
                n,
                params,
                seconds,
                response.status,
                response.headers,
                response.data,
            )
            return response

        async def on_retry(error: UpscaleError, attempt_no: int, delay: float) -> None:
            await observer.retrying(call, method, path, attempt_no, delay, error)

        return await call_with_retries(
            attempt,
            self.settings.retry,
            method=method,
            path=path,
            rng=self._random,
            on_retry=on_retry,
            governor=self.settings.governor,
        )

    def generation_body(
        self,
        campaign: Campaign | Mapping[str, Any],
        leads: Iterable[Lead | Mapping[str, Any]],
    ) -> bytes:
        """The checked JSON body of one generation request; ValidationError lists every problem.

        TypeError, before anything else, when ``leads`` is not an iterable of leads (one lead
        given alone, a str, an async iterable...).
        """
        refuse_single_lead(leads, "list or iterator")
        try:
            leads = iter(leads)
        except TypeError:
            hint = ""
            if isinstance(leads, AsyncIterable):
                hint = (
                    " (an async iterable: collect it into a list first, or pass it to submit_batch)"
                )
            raise TypeError(
                "leads must be an iterable (list or iterator) of leads, "
                f"not {type(leads).__name__}{hint}"
            ) from None
        try:
            campaign_wire = self.campaign_wire(campaign)
        except ValidationError as exc:  # a mapping's problems: reported with the leads'
            campaign_wire, problems = {}, list(exc.errors)
        else:
            problems = self.campaign_problems(campaign_wire)
        leads_wire = [lead_wire(lead) for lead in leads]
        problems.extend(check_leads(leads_wire))
        if problems:
            raise ValidationError(problems)
        return encode_request(orjson.dumps(campaign_wire), leads_wire)

    async def post_generation(
        self, campaign_bytes: bytes, leads_wire: list[Any]
    ) -> GenerationAccepted:
        """POST already validated wire data (``campaign_bytes`` is the serialized campaign)."""
        response = await self.request(
            "POST",
            self.settings.routes.request_message_generation,
            body=encode_request(campaign_bytes, leads_wire),
        )
        return structure(response.data, GenerationAccepted)

    def retrieve_request(self, secure_request_id: str) -> tuple[dict[str, str], bytes | None]:
        """The query and body of a retrieve (ValidationError for a blank id)."""
        if not isinstance(secure_request_id, str) or not secure_request_id.strip():
            raise ValidationError([required(RETRIEVE_ID_PARAM)])
        body = None
        if self.settings.routes.retrieve_id_in_body:
            body = orjson.dumps({RETRIEVE_ID_PARAM: secure_request_id})
        return {RETRIEVE_ID_PARAM: secure_request_id}, body

    async def retrieve(self, secure_request_id: str) -> RetrievedMessages:
        """GET the messages of one request (complete, 200, or partial, 202)."""
        params, body = self.retrieve_request(secure_request_id)
        response = await self.request(
            "GET", self.settings.routes.retrieve_messages, params=params, body=body
        )
        return structure_retrieved(
            response.data, response.status, secure_request_id=secure_request_id
        )


def refuse_single_lead(leads: object, kinds: str) -> None:
    """TypeError when ``leads`` is one lead (a mapping or a Lead), a str or bytes, not an
    iterable of leads: iterating it would read its keys or characters as leads.

    ``kinds`` names what the caller takes, e.g. ``"list, iterator or async iterator"``.
    """
    if isinstance(leads, str | bytes | Mapping | Lead):
        raise TypeError(
            f"leads must be an iterable ({kinds}) of leads, "
            f"not a single {type(leads).__name__}; wrap one lead in a list"
        )


def sequence_params(given: Mapping[str, bool | str | None]) -> dict[str, str] | None:
    """The query of get_sequences from its filters (None when none is given); ValidationError
    lists every filter with a value outside its allowed ones."""
    params: dict[str, str] = {}
    problems: list[Problem] = []
    for name, value in given.items():
        if value is None:
            continue
        given_text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        text, problem = sequence_filter(name, given_text)  # the emulator's own rule and message
        if problem is not None:
            problems.append((name, problem))
        params[name] = text
    if problems:
        raise ValidationError(problems)
    return params or None


class _Counter:
    """What the attempts of one observed call found out."""

    __slots__ = ("attempts", "secure_request_id")

    def __init__(self) -> None:
        self.attempts = 0
        self.secure_request_id: str | None = None
