"""The aiohttp.web application: routes on both path generations (D1), auth, errors, faults."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware

from .._spec.contract import (
    ERR_INVALID_KEY,
    ERR_INVALID_OR_REVOKED,
    ERR_NO_CREDITS,
    ERR_REVOKED_KEY,
    FAILURE_REASON,
    MESSAGE_FIELDS,
    RETRIEVE_ID_PARAM,
)
from .._spec.validation import check_sequence, join_messages, required, validate_generation_body
from ._faults import FaultKind
from ._sequences import filter_sequences
from ._state import EmulatorState, GenerationRequest
from ._texts import message_field, render

if TYPE_CHECKING:
    from ._config import EmulatorConfig
    from ._faults import FaultInjector
    from ._generation import Engine

__all__ = ["API_PREFIX", "build_app"]

logger = logging.getLogger("upscale_async.emulator")

API_PREFIX: Final = "/api/v2"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CAMPAIGN_NAME_REQUIRED: Final = required("automation_tool_campaign_name")
_MISSING_ID: Final = f"{RETRIEVE_ID_PARAM} is required but was missing or blank"
#: Error texts for statuses the contract leaves undocumented (§6).
_STATUS_TEXT: Final = {
    400: "Bad request",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timeout",
    413: "Request body too large",
    429: "Too many requests, please retry later",
    500: "Internal server error",
    502: "Bad gateway",
    503: "Service unavailable",
}
_FIELD_ORDER: Final = tuple(
    MESSAGE_FIELDS[kind]
    for kind in (
        "connection_request",
        "first_follow_up",
        "share_material",
        "hiring_activity",
        "stage_ambition",
    )
)
#: Endpoints whose errors carry ``"status": "error"`` (§8 #9).
_STATUS_ERROR_PATHS: Final = ("retrieve_messages", "get_sequences", "account")


def _json(
    data: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(data), status=status, headers=headers, content_type="application/json"
    )


def _error(message: str, status: int, *, with_status: bool) -> web.Response:
    body = {"error": message, "status": "error"} if with_status else {"error": message}
    return _json(body, status)


def _wants_status(path: str) -> bool:
    return path.endswith(_STATUS_ERROR_PATHS)


class _Handlers:
    """The request handlers, over the emulator's parts (not the Emulator itself: no cycle)."""

    def __init__(
        self,
        config: EmulatorConfig,
        state: EmulatorState,
        engine: Engine,
        faults: FaultInjector,
        created_at: str,
    ) -> None:
        self.config = config
        self.state = state
        self.engine = engine
        self.faults = faults
        self.created_at = created_at
        # The base row of leads_data: every message key, null until generated, in the order of
        # the documented examples (the assumed stage_ambition_message last).
        self.empty_messages: dict[str, None] = dict.fromkeys(_FIELD_ORDER)

    # -- auth -------------------------------------------------------------------------------
    def auth(
        self, request: web.Request, *, with_status: bool, combined: bool
    ) -> str | web.Response:
        key = request.headers.get("Api-Key", "").strip()
        if key in self.state.accounts:
            return key
        if combined:
            message = ERR_INVALID_OR_REVOKED
        elif key in self.config.revoked_keys or key in self.state.revoked_keys:
            message = ERR_REVOKED_KEY
        else:
            message = ERR_INVALID_KEY
        return _error(message, 401, with_status=with_status)

    # -- endpoints --------------------------------------------------------------------------
    async def generate(self, request: web.Request) -> web.StreamResponse:
        key = self.auth(request, with_status=False, combined=False)
        if isinstance(key, web.Response):
            return key
        raw = await request.read()
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return _error(f"Malformed JSON body: {exc}", 400, with_status=False)
        config = self.config
        problems = validate_generation_body(
            body, allow_unknown_message_types=config.allow_unknown_message_types
        )
        if not config.require_campaign_name:  # v1 bodies have no campaign name (§8 #12)
            problems = [p for p in problems if p != _CAMPAIGN_NAME_REQUIRED]
        limit = config.max_leads_per_request
        leads = body.get("lead_data") if isinstance(body, dict) else None
        if limit is not None and isinstance(leads, list) and len(leads) > limit:
            at = next(
                (n for n, (path, _) in enumerate(problems) if path.startswith("lead_data[")), None
            )
            problem = (
                "lead_data",
                f"lead_data must contain at most {limit} leads but had {len(leads)}",
            )
            problems.insert(len(problems) if at is None else at, problem)
        if problems:
            return _error(join_messages(problems), 422, with_status=False)
        _, types = check_sequence(
            body["message_sequence"], allow_unknown_message_types=config.allow_unknown_message_types
        )
        accepted = self.engine.submit(key, body, list(dict.fromkeys(types)))
        if accepted is None:
            return _error(ERR_NO_CREDITS, 402, with_status=False)
        return _json({"message": "Success", "secure_request_id": accepted[0]})

    async def retrieve(self, request: web.Request) -> web.StreamResponse:
        key = self.auth(request, with_status=True, combined=False)
        if isinstance(key, web.Response):
            return key
        request_id: object = request.query.get(RETRIEVE_ID_PARAM)
        if not (isinstance(request_id, str) and request_id.strip()) and request.body_exists:
            raw = await request.read()
            if raw.strip():
                try:
                    data = orjson.loads(raw)
                except orjson.JSONDecodeError as exc:
                    return _error(f"Malformed JSON body: {exc}", 400, with_status=True)
                if isinstance(data, dict):
                    request_id = data.get(RETRIEVE_ID_PARAM)
        if not (isinstance(request_id, str) and request_id.strip()):
            return _error(_MISSING_ID, 422, with_status=True)
        found = self.state.requests.get(request_id.strip())
        if found is None or found.api_key != key:
            return _error(f"{RETRIEVE_ID_PARAM} not found: {request_id}", 404, with_status=True)
        return self.messages(found)

    def messages(self, req: GenerationRequest) -> web.Response:
        types = req.types
        width = len(types)
        fields = [message_field(kind) for kind in types]
        base = dict(self.empty_messages)
        base.update(dict.fromkeys(fields))
        done = req.done
        failed = set(req.failed)
        reused = req.reused
        campaign = req.campaign
        leads_data: list[dict[str, Any]] = []
        work = 0  # the work index of the next message that is not reused
        for i, row in enumerate(req.leads):
            entry: dict[str, Any] = {"external_prospect_id": row[0], "linkedin": row[1], **base}
            if i in failed:  # failed leads are never reused: all their messages are work
                if work < done:
                    entry["linkedin"] = None
                work += width
            else:
                for j in range(width):
                    source = reused.get((i, j)) if reused else None
                    if source is not None:
                        origin, index = source
                        entry[fields[j]] = render(types[j], origin.leads[index], origin.campaign)
                    else:
                        if work < done:
                            entry[fields[j]] = render(types[j], row, campaign)
                        work += 1
            leads_data.append(entry)
        metadata = self.metadata(req)
        complete = req.complete
        body = {
            "metadata": metadata,
            "account": {"automation_tool_customer_id": req.customer_id},
            "campaign": {
                "automation_tool_campaign_id": req.campaign_id,
                "message_sequence": list(types),
                "leads_data": leads_data,
            },
        }
        return _json(body, 200 if complete else 202)

    def metadata(self, req: GenerationRequest) -> dict[str, Any]:
        """The ``metadata`` object of a retrieve answer: counts, status and its message."""
        requested = req.total
        failed_count = req.failed_count()
        generated = req.generated_count()
        complete = req.complete
        if complete:
            status_message = f"Generation complete: {generated} of {requested} messages generated"
            if failed_count:
                status_message += f", {failed_count} failed"
        else:
            status_message = (
                f"Generation in progress: {req.processed_count()} of {requested} messages processed"
            )
        metadata: dict[str, Any] = {
            "request_message_generation_api_request_secure_request_id": req.id,
            "retrieve_messages_api_request_secure_request_id": str(uuid.uuid4()),
            "requested_messages_count": requested,
            "generated_messages_count": generated,
            "failed_messages_count": failed_count or None,
            "failed_messages_reason": FAILURE_REASON if failed_count else None,
            "generation_status": "complete" if complete else "in_progress",
            "status_message": status_message,
        }
        if self.config.emit_singular_counts:
            metadata["requested_message_count"] = requested
            metadata["generated_message_count"] = generated
        return metadata

    async def sequences(self, request: web.Request) -> web.StreamResponse:
        key = self.auth(request, with_status=True, combined=True)
        if isinstance(key, web.Response):
            return key
        found = filter_sequences(request.query)
        if isinstance(found, str):
            return _error(found, 422, with_status=True)
        return _json({"sequences": found})

    async def account(self, request: web.Request) -> web.StreamResponse:
        key = self.auth(request, with_status=True, combined=True)
        if isinstance(key, web.Response):
            return key
        account = self.state.accounts[key]
        # Invented: credits_remaining and credits_used, the live fields; the docs' placeholder
        # body has only the first four.
        return _json(
            {
                "created_at": self.created_at,
                "plan_name": "Emulator plan",
                "monthly_credits": account.credits,
                "monthly_allowance": account.allowance,
                "credits_remaining": account.credits,
                "credits_used": account.used,
            }
        )

    # -- faults -----------------------------------------------------------------------------
    def endpoint(self, name: str, handler: Handler) -> Handler:
        """Wrap a handler with request counting and the endpoint's fault plan."""
        state = self.state
        faults = self.faults

        async def handle(request: web.Request) -> web.StreamResponse:
            state.endpoint_counts[name] += 1
            fault = faults.next(name)
            if fault is None:
                return await handler(request)
            if fault.kind is FaultKind.STATUS:
                headers = {}
                if fault.retry_after is not None:
                    headers["Retry-After"] = format(fault.retry_after, "g")
                text = _STATUS_TEXT.get(fault.status, "Injected fault")
                body = (
                    {"error": text, "status": "error"} if _wants_status(name) else {"error": text}
                )
                return _json(body, fault.status, headers)
            if fault.kind is FaultKind.DELAY:
                await asyncio.sleep(fault.delay)
                return await handler(request)
            if fault.kind is FaultKind.DROP_BEFORE:
                _drop(request)
                return web.Response(status=500)
            response = await handler(request)  # DROP_AFTER: the request counts, the answer is lost
            _drop(request)
            return response

        return handle


def _drop(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


def _json_errors(state: EmulatorState) -> Middleware:
    """Every error answered with a JSON body: aiohttp's own (404, 405, 413) and server bugs."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            text = _STATUS_TEXT.get(exc.status, exc.reason)
            if exc.status == 404:
                text = f"Not found: no endpoint at {request.path}"
            elif exc.status == 405:
                text = f"Method not allowed: {request.method} {request.path}"
            headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
            with_status = _wants_status(request.path)
            return _json(_body(text, with_status), exc.status, headers)
        except ConnectionError:
            raise
        except Exception as exc:
            # A bug in the emulator, not a client error: logged for tests, answered as JSON.
            text = f"Internal server error: {type(exc).__name__}: {exc}"
            state.server_errors.append(f"{request.method} {request.path}: {text}")
            return _json(_body(text, _wants_status(request.path)), 500)

    return middleware


def _body(text: str, with_status: bool) -> dict[str, str]:
    return {"error": text, "status": "error"} if with_status else {"error": text}


def _closing(request: web.Request, text: str, status: int) -> web.Response:
    """An error answered with ``Connection: close``: the rest of the body is never read."""
    response = _json(_body(text, _wants_status(request.path)), status)
    response.force_close()
    return response


def _body_limits(config: EmulatorConfig) -> Middleware:
    """Every route reads at most ``max_body_size`` bytes, within ``body_timeout`` seconds.

    A declared Content-Length over the cap is answered 413 before a byte of the body is read; a
    body that is longer than it said (chunked, or compressed) is cut at the cap; a body that
    arrives too slowly (or never, after a Content-Length that lies) is answered 408. The body is
    read here, once, so handlers find it already in memory.
    """
    limit = config.max_body_size
    timeout = config.body_timeout
    too_large = f"Request body too large: at most {limit} bytes are accepted"
    too_slow = f"Request timeout: the body was not received within {timeout:g} s"

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        declared = request.content_length
        if declared is not None and declared > limit:
            return _closing(request, too_large, 413)
        if request.body_exists:
            try:
                async with asyncio.timeout(timeout):
                    body = await request.read()
            except TimeoutError:
                return _closing(request, too_slow, 408)
            except web.HTTPRequestEntityTooLarge:
                return _closing(request, too_large, 413)
            if len(body) > limit:  # aiohttp versions differ on the boundary: decide it here
                return _closing(request, too_large, 413)
        return await handler(request)

    return middleware


def _access_log() -> Middleware:
    """``verbose``: one INFO line per request (method, path, status, elapsed)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        started = time.perf_counter()
        status = "no answer"
        try:
            response = await handler(request)
            status = str(response.status)
            return response
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            logger.info("%s %s %s %.1f ms", request.method, request.path_qs, status, elapsed)

    return middleware


def build_app(
    config: EmulatorConfig,
    state: EmulatorState,
    engine: Engine,
    faults: FaultInjector,
    created_at: str,
) -> web.Application:
    """The application serving both path generations under ``/api/v2``."""
    handlers = _Handlers(config, state, engine, faults, created_at)
    middlewares = [_json_errors(state), _body_limits(config)]
    if config.verbose:
        middlewares.insert(0, _access_log())
    # One byte of slack: aiohttp versions disagree on whether the cap itself is allowed, so
    # _body_limits makes the exact decision (a body of max_body_size bytes is accepted).
    app = web.Application(client_max_size=config.max_body_size + 1, middlewares=middlewares)
    routes: list[tuple[str, str, tuple[str, ...], Handler]] = [
        (
            "POST",
            "request_message_generation",
            ("/messages/request_message_generation", "/request_message_generation"),
            handlers.generate,
        ),
        (
            "GET",
            "retrieve_messages",
            ("/messages/retrieve_messages", "/retrieve_messages"),
            handlers.retrieve,
        ),
        (
            "GET",
            "get_sequences",
            ("/sequences/get_sequences", "/get_sequences"),
            handlers.sequences,
        ),
        ("GET", "account", ("/account",), handlers.account),
    ]
    for method, name, paths, handler in routes:
        wrapped = handlers.endpoint(name, handler)
        for path in paths:
            app.router.add_route(method, API_PREFIX + path, wrapped)
    return app
