"""The internal API object: what batches and completion need of a client, and nothing more.

An :class:`Api` is a transport plus one configuration (routes, timeout, retry policy, whether
unknown message types pass): it encodes and checks campaigns, sends a generation request,
retrieves messages, and runs every call through the retry loop. ``UpscaleClient`` builds one;
``_batch`` and ``_completion`` take it instead of the client, so they never reach back into
the public client. ``UpscaleClient.with_options`` makes another over the same transport.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

import attrs
import orjson

from ._config import DEFAULT_MAX_RESPONSE_SIZE, BatchPolicy, PollPolicy, RetryPolicy, Routes
from ._errors import RequestTimeoutError, ValidationError
from ._models import Campaign, GenerationAccepted, RetrievedMessages
from ._retry import call_with_retries, deadline_error
from ._spec.contract import RETRIEVE_ID_PARAM
from ._spec.validation import Problem, check_campaign, required
from ._transport import Response, Transport
from ._wire import encode_request, structure, structure_retrieved

__all__ = ["Api", "Settings"]


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


class Api:
    """Encode, validate and send: the calls ``_batch`` and ``_completion`` make."""

    __slots__ = ("_random", "settings", "transport")

    def __init__(self, transport: Transport, settings: Settings) -> None:
        self.transport = transport
        self.settings = settings
        self._random = random.Random()

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
        timeout = self.settings.timeout
        cap = self.settings.max_response_size

        async def attempt(left: float | None) -> Response:
            if left is None or (timeout is not None and timeout <= left):
                return await self.transport.send(
                    method, path, params=params, body=body, timeout=timeout, max_size=cap
                )
            if left <= 0:
                raise deadline_error(method, path, 0.0)
            try:
                return await self.transport.send(
                    method, path, params=params, body=body, timeout=left, max_size=cap
                )
            except RequestTimeoutError as exc:
                raise deadline_error(method, path, left) from exc

        return await call_with_retries(
            attempt, self.settings.retry, method=method, path=path, rng=self._random
        )

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

    async def retrieve(self, secure_request_id: str) -> RetrievedMessages:
        """GET the messages of one request (complete, 200, or partial, 202)."""
        if not isinstance(secure_request_id, str) or not secure_request_id.strip():
            raise ValidationError([required(RETRIEVE_ID_PARAM)])
        routes = self.settings.routes
        body = None
        if routes.retrieve_id_in_body:
            body = orjson.dumps({RETRIEVE_ID_PARAM: secure_request_id})
        response = await self.request(
            "GET",
            routes.retrieve_messages,
            params={RETRIEVE_ID_PARAM: secure_request_id},
            body=body,
        )
        return structure_retrieved(
            response.data, response.status, secure_request_id=secure_request_id
        )
