"""Raw responses: each endpoint's parsed result with the HTTP details of the call that got it.

``client.with_raw_response`` is a :class:`RawClient`: the same four endpoints, each returning a
:class:`RawResponse` (in the manner of openai-python's ``with_raw_response``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

import attrs

from ._api import Api, Exchange, sequence_params
from ._errors import ResponseValidationError
from ._models import (
    Account,
    Campaign,
    GenerationAccepted,
    Lead,
    RetrievedMessages,
    SequenceTemplate,
)
from ._wire import structure, structure_retrieved, structure_sequences

__all__ = ["RawClient", "RawResponse"]

T = TypeVar("T")


@attrs.frozen(kw_only=True)
class RawResponse(Generic[T]):
    """An endpoint's parsed result (``parsed``) and how the call that got it went.

    ``status`` and ``headers`` are the final (2xx) answer's; ``request_id`` is its
    ``X-Request-Id`` header when the service sent one (else None); ``elapsed`` the seconds the
    whole call took, every attempt and retry wait included; ``attempts`` how many attempts it
    took (1: no retry); ``secure_request_id`` the request's id when the call has one (a
    retrieve, or an accepted generation).
    """

    parsed: T
    status: int
    headers: Mapping[str, str] = attrs.field(repr=False)
    request_id: str | None
    elapsed: float
    attempts: int
    method: str
    path: str
    secure_request_id: str | None = None


def _raw(exchange: Exchange, parsed: T, method: str, path: str) -> RawResponse[T]:
    response = exchange.response
    return RawResponse(
        parsed=parsed,
        status=response.status,
        headers=response.headers,
        request_id=response.headers.get("X-Request-Id"),
        elapsed=exchange.elapsed,
        attempts=exchange.attempts,
        method=method,
        path=path,
        secure_request_id=exchange.secure_request_id,
    )


class RawClient:
    """The endpoints of an :class:`~upscale_async.UpscaleClient`, each returning a
    :class:`RawResponse` (``client.with_raw_response``).

    Same arguments, validation, retries and errors as the client's own methods; only the return
    value differs. Example::

        raw = await client.with_raw_response.retrieve_messages(secure_request_id)
        print(raw.status, raw.request_id, raw.attempts, raw.elapsed)
        messages = raw.parsed
    """

    __slots__ = ("_api",)

    def __init__(self, api: Api) -> None:
        self._api = api

    def __repr__(self) -> str:
        return f"<RawClient base_url={self._api.transport.base_url!r}>"

    async def _call(
        self,
        method: str,
        path: str,
        parse: Callable[[Exchange], T],
        *,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
    ) -> RawResponse[T]:
        exchange = await self._api.exchange(method, path, params=params, body=body)
        return _raw(exchange, parse(exchange), method, path)

    async def request_message_generation(
        self,
        campaign: Campaign | Mapping[str, Any],
        leads: Iterable[Lead | Mapping[str, Any]],
    ) -> RawResponse[GenerationAccepted]:
        """``UpscaleClient.request_message_generation``, with the raw response."""
        body = self._api.generation_body(campaign, leads)
        path = self._api.settings.routes.request_message_generation
        return await self._call(
            "POST", path, lambda e: structure(e.response.data, GenerationAccepted), body=body
        )

    async def retrieve_messages(self, secure_request_id: str) -> RawResponse[RetrievedMessages]:
        """``UpscaleClient.retrieve_messages``, with the raw response."""
        params, body = self._api.retrieve_request(secure_request_id)
        return await self._call(
            "GET",
            self._api.settings.routes.retrieve_messages,
            lambda e: structure_retrieved(
                e.response.data, e.response.status, secure_request_id=secure_request_id
            ),
            params=params,
            body=body,
        )

    async def get_sequences(
        self,
        *,
        sequence_length: str | None = None,
        campaign_objective: str | None = None,
        cadence_profile: str | None = None,
        saturated_markets: bool | str | None = None,
    ) -> RawResponse[list[SequenceTemplate]]:
        """``UpscaleClient.get_sequences``, with the raw response."""
        params = sequence_params(
            {
                "sequence_length": sequence_length,
                "campaign_objective": campaign_objective,
                "cadence_profile": cadence_profile,
                "saturated_markets": saturated_markets,
            }
        )
        return await self._call(
            "GET",
            self._api.settings.routes.get_sequences,
            lambda e: structure_sequences(e.response.data),
            params=params,
        )

    async def get_account(self) -> RawResponse[Account]:
        """``UpscaleClient.get_account``, with the raw response."""
        return await self._call("GET", self._api.settings.routes.account, _account)


def _account(exchange: Exchange) -> Account:
    data = exchange.response.data
    if data is None:
        raise ResponseValidationError("the account endpoint answered with an empty body")
    return structure(data, Account)
