"""The completion webhook sender (D9, D10): signed, retried on a scaled schedule, tamperable.

By default it sends only to loopback targets: :func:`refusal` decides, from the URL alone,
before any socket or DNS lookup.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
import time
import uuid
import zlib
from typing import Final, Literal

import aiohttp
import orjson
from yarl import URL

from .._spec.signing import decode_secret, standard_headers
from ._config import DeliveryPlan, EmulatorConfig
from ._generation import utc_now
from ._state import DeliveryRecord, EmulatorState, GenerationRequest

__all__ = ["WebhookSender", "refusal", "retry_delay"]

_USER_AGENT: Final = "upscale-async-emulator/webhooks"
_LOOPBACK_V4: Final = ipaddress.ip_network("127.0.0.0/8")
_LOOPBACK_V6: Final = ipaddress.ip_address("::1")
_OPT_IN: Final = "--allow-external-webhooks / allow_external_webhooks=True"
Outcome = Literal["delivered", "failed", "dropped", "duplicate", "refused"]

logger = logging.getLogger("upscale_async.emulator")


def refusal(url: str | URL, *, allow_external: bool = False) -> str | None:
    """Why the emulator will not POST to ``url``, or None when it may.

    Without ``allow_external`` only loopback targets are allowed: the host ``localhost`` or an
    IP literal in 127.0.0.0/8 or ``::1``. Any other host name is refused without resolving it
    (a DNS lookup is itself traffic, and a name can resolve to anything). The URL is parsed with
    yarl, as the sender parses it, so the host checked is the host it would connect to.
    """
    if allow_external:
        return None
    try:
        target = url if isinstance(url, URL) else URL(url)
        host = target.host
    except (TypeError, ValueError) as exc:
        return f"not a valid URL ({exc})"
    if target.scheme not in ("http", "https"):
        return "not an http(s) URL"
    if not host:
        return "no host"
    if host == "localhost":
        return None
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"{host} is a host name other than localhost (not resolved)"
    if address == _LOOPBACK_V6 or (address.version == 4 and address in _LOOPBACK_V4):
        return None
    return f"{host} is not a loopback address"


def retry_delay(k: int, rng: random.Random, scale: float) -> float:
    """D10: the wait before retry ``k`` (1-based): ``k**4 + 15 + U(0, 30k)`` seconds, scaled."""
    return (k**4 + 15 + rng.uniform(0, 30 * k)) * scale


class WebhookSender:
    """Sends one completion event per finished request, owning its tasks and its session."""

    def __init__(self, config: EmulatorConfig, state: EmulatorState) -> None:
        self._config = config
        self._state = state
        self._key = None if config.webhook_secret is None else decode_secret(config.webhook_secret)
        self.plan: DeliveryPlan = config.deliveries
        self._rng = random.Random(config.seed)
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        """Events still being delivered (or waiting for a retry)."""
        return len(self._tasks)

    def notify(self, request: GenerationRequest) -> None:
        """Schedule the completion event of a finished request (nothing without a secret)."""
        if self._key is None:
            return
        payload = {
            "secure_request_id": request.id,
            "status": "complete",
            "completed_at": request.completed_at,
            "requested_messages_count": request.total,
            "generated_messages_count": request.generated_count(),
            "webhook_triggered_at": utc_now(),
        }
        webhook_id = f"msg_{uuid.uuid4().hex}"
        url = request.completion_url
        why = refusal(url, allow_external=self._config.allow_external_webhooks)
        if why is not None:
            # Decided before any socket: nothing leaves the machine; clients fall back to polling.
            logger.warning(
                "webhook to %s refused: %s; the emulator delivers only to loopback targets "
                "unless started with %s",
                url,
                why,
                _OPT_IN,
            )
            self._log(request.id, webhook_id, 1, "refused", None, f"refused: {why}", url)
            return
        task = asyncio.get_running_loop().create_task(
            self._deliver(request.id, url, webhook_id, orjson.dumps(payload))
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float | None = None) -> None:
        """Wait until every scheduled event is delivered or out of attempts."""
        async with asyncio.timeout(timeout):
            while self._tasks:
                await asyncio.wait(set(self._tasks))

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- internals ------------------------------------------------------------------------
    def _chosen(self, plan: DeliveryPlan, request_id: str) -> bool:
        if plan.is_noop:
            return False
        selector = plan.request_ids
        if selector is not None:
            if callable(selector):
                if not selector(request_id):
                    return False
            elif request_id not in selector:
                return False
        if plan.rate >= 1.0:
            return True
        draw = zlib.crc32(f"{plan.seed}:{request_id}".encode()) / 2**32
        return draw < plan.rate

    async def _deliver(self, request_id: str, url: str, webhook_id: str, body: bytes) -> None:
        plan = self.plan
        chosen = self._chosen(plan, request_id)
        scale = self._config.webhook_time_scale
        for attempt in range(1, self._config.webhook_attempts + 1):
            if attempt > 1:
                await asyncio.sleep(retry_delay(attempt - 1, self._rng, scale))
            if chosen and attempt <= plan.drop_first:
                self._log(request_id, webhook_id, attempt, "dropped", None, None, url)
                continue
            status, error = await self._post(url, webhook_id, body)
            if status is not None and 200 <= status < 300:
                self._log(request_id, webhook_id, attempt, "delivered", status, None, url)
                for _ in range(plan.duplicates - 1 if chosen else 0):
                    status, error = await self._post(url, webhook_id, body)
                    self._log(request_id, webhook_id, attempt, "duplicate", status, error, url)
                return
            self._log(request_id, webhook_id, attempt, "failed", status, error, url)

    async def _post(self, url: str, webhook_id: str, body: bytes) -> tuple[int | None, str | None]:
        assert self._key is not None
        if self._session is None:
            # trust_env=False: no proxy from the environment can carry a loopback POST outward.
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._config.webhook_timeout),
                trust_env=False,
            )
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": _USER_AGENT,
            **standard_headers(self._key, webhook_id, timestamp, body),
        }
        try:
            # No redirects: a loopback target must not send the emulator anywhere else.
            async with self._session.post(
                URL(url), data=body, headers=headers, allow_redirects=False
            ) as response:
                await response.read()
                return response.status, None
        except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
            return None, f"{type(exc).__name__}: {exc}"

    def _log(
        self,
        request_id: str,
        webhook_id: str,
        attempt: int,
        outcome: Outcome,
        status: int | None,
        error: str | None,
        url: str,
    ) -> None:
        if self._config.verbose:
            logger.info(
                "webhook %s attempt %d: %s%s%s",
                url,
                attempt,
                outcome,
                "" if status is None else f" {status}",
                "" if error is None else f" ({error})",
            )
        self._state.deliveries.append(
            DeliveryRecord(
                request_id, webhook_id, attempt, outcome, status, error, time.time(), url
            )
        )
