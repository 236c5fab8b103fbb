"""Accepting generation requests (credits, dedupe) and generating them at a configured rate."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

import orjson

from ._config import EmulatorConfig
from ._state import Account, Campaign, EmulatorState, GenerationRequest, LeadRow, Source

__all__ = ["DOC_EXAMPLE_ID", "Engine", "utc_now"]

_NO_WEB_PRESENCE: Final = "_nowebpresence"
#: The longest the scheduler sleeps between progress updates, so partial results stay fresh.
_TICK: Final = 0.02
#: The id used in the documentation's retrieve example (S2), preloaded with ``doc_examples``.
DOC_EXAMPLE_ID: Final = "550e8400-e29b-41d4-a716-446655440000"


def utc_now() -> str:
    """ISO 8601 UTC with a ``Z``, as in the documented payloads."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _digest(body: Mapping[str, Any]) -> bytes:
    """The dedupe key of a request body: a hash of its canonical JSON."""
    return hashlib.blake2b(orjson.dumps(body, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()


def _campaign(body: Mapping[str, Any]) -> Campaign:
    """The parts of a request body the message texts are rendered from."""
    location = body.get("hiring_location")
    return Campaign(
        proposition_company_name=body["proposition_company_name"],
        tone=body.get("tone_preference") or "normal",
        signoff_name=body.get("signoff_name") or None,
        material_link=body.get("material_link"),
        hiring_location=location.upper() if isinstance(location, str) else None,
        job_title=body.get("job_title"),
    )


class Engine:
    """Takes validated bodies, charges credits, and advances generation in the background."""

    def __init__(
        self,
        config: EmulatorConfig,
        state: EmulatorState,
        on_complete: Callable[[GenerationRequest], None],
    ) -> None:
        self._config = config
        self._state = state
        self._on_complete = on_complete
        self._queue: deque[GenerationRequest] = deque()
        self._wake = asyncio.Event()
        self._threshold = int(config.failure_rate * 2**32)
        self._instant = config.messages_per_second == 0 and config.latency == 0

    # -- submission -----------------------------------------------------------------------
    def submit(
        self, api_key: str, body: Mapping[str, Any], types: Sequence[str]
    ) -> tuple[str, bool] | None:
        """Accept a valid body: ``(secure_request_id, deduplicated)``, or None without credits.

        Nothing is stored or charged when credits are short.
        """
        account = self._state.accounts[api_key]
        digest = _digest(body)
        account.posts[digest] += 1
        existing = account.bodies.get(digest)
        if existing is not None:  # the same body again: the same request, charged once (D8)
            self._state.submissions += 1
            self._state.dedupe_hits += 1
            return existing, True
        pairs = account.pairs
        rows: list[LeadRow] = []
        failed: list[int] = []
        failed_starts: list[int] = []
        fresh: list[tuple[int, tuple[str, str]]] = []
        reused: dict[tuple[int, int], Source] = {}
        needed = 0
        kinds = tuple(types)
        for i, lead in enumerate(body["lead_data"]):
            lead_id = lead["automation_tool_lead_id"]
            rows.append((lead_id, lead["lead_linkedin"], lead["lead_company"], lead["first_name"]))
            fails = self.fails(lead_id)
            if fails:
                failed.append(i)
                failed_starts.append(i * len(kinds) - len(reused))
            for j, kind in enumerate(kinds):
                key = (lead_id, kind)
                source = pairs.get(key)
                if source is not None:
                    reused[i, j] = source
                    continue
                # Credits are checked for every new pair; failing leads are never charged.
                needed += 1
                if not fails:
                    fresh.append((i, key))
        if needed > account.credits:
            return None

        request = GenerationRequest(
            id=str(uuid.uuid4()),
            api_key=api_key,
            customer_id=body["automation_tool_customer_id"],
            campaign_id=body["automation_tool_campaign_id"],
            campaign=_campaign(body),
            types=kinds,
            leads=rows,
            failed=tuple(failed),
            failed_starts=tuple(failed_starts),
            completion_url=body["completion_notification_url"],
            submitted_at=time.time(),
            start_at=time.monotonic() + self._config.latency,
            reused=reused or None,
        )
        self._commit(account, digest, request, fresh)
        return request.id, False

    def _commit(
        self,
        account: Account,
        digest: bytes,
        request: GenerationRequest,
        fresh: list[tuple[int, tuple[str, str]]],
    ) -> None:
        """Charge the new pairs, remember the body for dedupe, and queue the request."""
        state = self._state
        pairs = account.pairs
        charges = account.charges
        for i, key in fresh:
            pairs[key] = (request, i)
            charges[key] += 1
        account.credits -= len(fresh)
        account.used += len(fresh)
        account.bodies[digest] = request.id
        state.requests[request.id] = request
        state.submissions += 1
        if self._instant or not request.work:
            self._advance(request, request.work)
        else:
            self._queue.append(request)
            self._wake.set()

    def fails(self, lead_id: str) -> bool:
        """Whether a lead cannot be personalised: always for ``*_nowebpresence``, else seeded."""
        if lead_id.endswith(_NO_WEB_PRESENCE):
            return True
        if not self._threshold:
            return False
        return zlib.crc32(f"{self._config.seed}:{lead_id}".encode()) < self._threshold

    def add_doc_example(self, api_key: str) -> None:
        """Store the documentation's retrieve example (S2) as a completed request, uncharged."""
        leads: list[LeadRow] = [
            ("lead_001", "https://linkedin.com/in/john-doe", "Acme Corp", "John"),
            ("lead_002", "https://linkedin.com/in/jane-smith", "Digital Innovations LLC", "Jane"),
            ("lead_003", "https://linkedin.com/in/bob-johnson", "Johnson & Co", "Bob"),
        ]
        request = GenerationRequest(
            id=DOC_EXAMPLE_ID,
            api_key=api_key,
            customer_id="customer_12345",
            campaign_id="campaign_67890",
            campaign=Campaign("Acme Corporation", "formal", None, None, None, None),
            types=("connection_request", "first_follow_up"),
            leads=leads,
            failed=(),
            failed_starts=(),
            completion_url="https://your-webhook-endpoint.com/webhook",
            submitted_at=time.time(),
            start_at=time.monotonic(),
        )
        request.done = request.work
        request.completed_at = utc_now()
        self._state.requests[request.id] = request

    # -- generation -----------------------------------------------------------------------
    def _advance(self, request: GenerationRequest, done: int) -> None:
        state = self._state
        before_failed = request.failed_count()
        processed = done - request.done
        request.done = done
        failed = request.failed_count() - before_failed
        state.messages_failed += failed
        state.messages_generated += processed - failed
        if request.complete:
            request.completed_at = utc_now()
            self._on_complete(request)

    async def run(self) -> None:
        """The scheduler: one token bucket shared by every queued request, in arrival order."""
        rate = self._config.messages_per_second
        queue = self._queue
        budget = 0.0
        last = time.monotonic()
        while True:
            if not queue:
                self._wake.clear()
                await self._wake.wait()
                budget, last = 0.0, time.monotonic()
                continue
            request = queue[0]
            now = time.monotonic()
            if now < request.start_at:
                await asyncio.sleep(request.start_at - now)
                budget, last = 0.0, max(last, request.start_at)
                continue
            remaining = request.work - request.done
            if rate == 0:
                self._advance(request, request.work)
            else:
                budget = min(budget + (now - last) * rate, max(1.0, rate * _TICK) + remaining)
                last = now
                step = min(int(budget), remaining)
                if step:
                    budget -= step
                    self._advance(request, request.done + step)
            if request.complete:
                queue.popleft()
                continue
            await asyncio.sleep(min(_TICK, max((1.0 - budget) / rate, 0.0)))
