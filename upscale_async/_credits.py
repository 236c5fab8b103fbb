"""Credit-aware batches: a pre-flight estimate, a credit gate per batch, and waiting for a top-up.

What one lead costs is one credit per message type of the campaign (a type repeated in the
sequence counts once), minus what the API deduplicates (S0, D8): a (lead, type) pair already
generated for the key costs nothing, and prospects Upscale cannot personalise are not charged.
The SDK knows neither of those in advance, so every figure here is an upper bound: the estimate
counts the leads it is given (a repeated lead id once), and the gate reserves the upper bound of
each chunk in flight and reads the account again (``get_account``) before concluding that the
credits are gone.

The gate (``submit_batch(credits=CreditPolicy(...))``): before each chunk is posted it takes that
chunk's cost from the credits the account reported, less what chunks in flight may spend. A
chunk that does not fit is cut to the leads that do (the last credits are used), the rest waits;
when not one lead fits and nothing is in flight, the account is read again, and if the credits
are still short ``on_insufficient_credits`` is asked: it may wait for a top-up and return True
(the batch goes on in place, the same leads next) or return False (the batch stops as it does
on a 402 without a policy: ``StopReason.INSUFFICIENT_CREDITS``, the rest ``not_submitted``). A
402 the gate did not foresee (another process spent the credits) puts the chunk back the same
way: nothing is charged on a 402, so it is sent again only once it fits.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sized
from typing import Any, Final

import anyio
import attrs

from ._api import Api
from ._errors import InsufficientCreditsError, UpscaleError
from ._models import Account, lead_id
from ._results import StopReason
from ._wire import structure

__all__ = [
    "CreditEstimate",
    "CreditGate",
    "CreditPolicy",
    "CreditShortage",
    "credits_available",
    "open_gate",
    "send_within_credits",
    "estimate_credits",
    "read_credits",
]

logger: Final = logging.getLogger("upscale_async")

#: Seconds between two questions to ``on_insufficient_credits`` when it said to go on but the
#: credits are still short (so that a hook returning True at once cannot spin on the API).
ASK_AGAIN_AFTER: Final = 1.0

_UNKNOWN_TO_THE_SDK: Final = (
    "an upper bound: pairs of (lead id, message type) generated earlier for this API key cost "
    "nothing (S0, D8), and prospects Upscale cannot personalise are not charged; the SDK "
    "knows neither before sending"
)


@attrs.frozen(kw_only=True)
class CreditEstimate:
    """What a batch may cost, against the account's credits, before anything is sent.

    ``messages`` is ``leads x message_types`` (None when the leads were an iterator, which
    cannot be counted without using it up); ``known_free`` the messages the SDK knows cost
    nothing (a lead id repeated in the input is sent once); ``estimated`` the rest, an upper
    bound (:attr:`note` says why); ``available`` the credits the account reports (None: the
    account endpoint did not say).
    """

    leads: int | None
    message_types: int
    messages: int | None
    known_free: int
    available: int | None
    note: str = _UNKNOWN_TO_THE_SDK

    @property
    def estimated(self) -> int | None:
        """At most this many credits are spent (None: the leads could not be counted)."""
        return None if self.messages is None else self.messages - self.known_free

    @property
    def shortfall(self) -> int | None:
        """Credits missing for the upper bound (0: enough; None: unknown)."""
        if self.estimated is None or self.available is None:
            return None
        return max(0, self.estimated - self.available)

    @property
    def sufficient(self) -> bool | None:
        """True when the credits cover the upper bound, False when not, None when unknown."""
        shortfall = self.shortfall
        return None if shortfall is None else shortfall == 0


@attrs.frozen(kw_only=True)
class CreditShortage:
    """What ``on_insufficient_credits`` is told: the batch has paused, and why.

    ``available`` is the credits the account reports now (None: it does not say), ``needed``
    what one more lead costs (its message types), ``leads_waiting`` the leads of the chunk
    held back, and ``error`` the 402 when the service refused a chunk (None when the gate saw
    the shortage first and nothing was sent). Await :meth:`wait_for_top_up` to wait for credits.
    """

    available: int | None
    needed: int
    leads_waiting: int
    error: InsufficientCreditsError | None = None
    _read: Callable[[], Awaitable[int | None]] = attrs.field(alias="read", repr=False)

    async def wait_for_top_up(
        self, *, interval: float = 30.0, timeout: float | None = None
    ) -> bool:
        """Read the account every ``interval`` seconds until one more lead fits: True; False
        after ``timeout`` seconds (None: wait for ever). An account that does not report its
        credits is read once and True is returned (the batch then tries again)."""
        with anyio.move_on_after(timeout):
            while True:
                available = await self._read()
                if available is None or available >= self.needed:
                    return True
                await anyio.sleep(interval)
        return False


ShortageCallback = Callable[[CreditShortage], Awaitable[bool] | bool]
EstimateCallback = Callable[[CreditEstimate], Awaitable[None] | None]


@attrs.frozen(kw_only=True)
class CreditPolicy:
    """Make a batch credit-aware (``submit_batch(credits=...)``, ``generate(credits=...)``).

    Before anything is sent the account is read and ``on_estimate`` (optional) gets a
    :class:`CreditEstimate`; raise in it to stop before sending. While the batch runs, no chunk
    is posted that the credits left cannot pay for: the last chunk is cut to what remains. When
    not one more lead fits, ``on_insufficient_credits`` (optional) gets a
    :class:`CreditShortage` and returns True to go on once credits were added (the same batch,
    in place; ``shortage.wait_for_top_up()`` waits for them) or False to stop with
    ``StopReason.INSUFFICIENT_CREDITS``; without it the batch stops there. The credits are
    the account's ``credits_remaining``, else its ``monthly_credits`` (contract §5.2; the
    endpoint is experimental upstream); when the account cannot be read, or does not say, the
    batch sends as usual and a 402 is the signal (the same hook is asked). Example::

        policy = CreditPolicy(
            on_estimate=print,
            on_insufficient_credits=lambda s: s.wait_for_top_up(interval=60, timeout=3600),
        )
        await client.submit_batch(campaign, leads, credits=policy)
    """

    on_estimate: EstimateCallback | None = None
    on_insufficient_credits: ShortageCallback | None = None


def credits_available(account: Account) -> int | None:
    """The credits an account reports left: ``credits_remaining`` if given, else
    ``monthly_credits`` (§5.2: the credits left), else None."""
    remaining = account.extra.get("credits_remaining")
    if isinstance(remaining, int) and not isinstance(remaining, bool):
        return remaining
    return account.monthly_credits


async def read_credits(api: Api) -> int | None:
    """The account's credits left (None when the account endpoint fails or does not say)."""
    try:
        response = await api.request("GET", api.settings.routes.account)
        account = structure(response.data, Account)
    except UpscaleError as exc:
        logger.warning(
            "credits: could not read the account (%s: %s); going on without knowing the credits",
            type(exc).__name__,
            exc,
        )
        return None
    return credits_available(account)


def message_types(campaign_wire: Mapping[str, Any]) -> int:
    """The distinct message types of a campaign's sequence (what one new lead costs)."""
    kinds = set()
    for step in campaign_wire.get("message_sequence") or ():
        kinds.add(step.get("messageType") if isinstance(step, Mapping) else step)
    return max(1, len(kinds))


async def estimate_credits(
    api: Api, campaign_wire: Mapping[str, Any], leads: Iterable[Any] | None
) -> CreditEstimate:
    """The pre-flight :class:`CreditEstimate` (``leads`` None: not countable)."""
    per_lead = message_types(campaign_wire)
    count: int | None = None
    repeated = 0
    if leads is not None:
        seen: set[Any] = set()
        count = 0
        for lead in leads:
            count += 1
            key = lead_id(lead)
            if key is not None:
                if key in seen:
                    repeated += 1
                seen.add(key)
    return CreditEstimate(
        leads=count,
        message_types=per_lead,
        messages=None if count is None else count * per_lead,
        known_free=repeated * per_lead,
        available=await read_credits(api),
    )


async def call(callback: Callable[[Any], Any], arg: Any) -> Any:
    """Call a sync or async callback."""
    result = callback(arg)
    if inspect.isawaitable(result):
        result = await result
    return result


class CreditGate:
    """One batch's credits: what each chunk may spend before it is posted (see the module)."""

    def __init__(
        self, api: Api, policy: CreditPolicy, per_lead: int, available: int | None
    ) -> None:
        self.api = api
        self.policy = policy
        self.per_lead = per_lead
        self.balance = available  # None: the account does not say; a 402 is the only signal
        self.reserved = 0
        self.fresh = available is not None  # read since the last chunk settled
        self.refused: InsufficientCreditsError | None = None
        self.last_error: InsufficientCreditsError | None = None
        self.changed = anyio.Event()
        self.lock = anyio.Lock()
        self.asked = 0  # times on_insufficient_credits was asked
        self.resumed_at: float | None = None  # when it last said to go on

    async def admit(self, n: int, stopped: Callable[[], bool]) -> int:
        """How many of the next ``n`` leads may be posted now (reserved); 0: stop."""
        while not stopped():
            if self.balance is None:
                if self.refused is None:
                    self.reserved += n * self.per_lead
                    return n
                async with self.lock:
                    if self.refused is not None and not await self.ask(n):
                        return 0
                    self.refused = None
                continue
            fit = min(n, (self.balance - self.reserved) // self.per_lead)
            if fit >= 1:
                self.reserved += fit * self.per_lead
                return fit
            if self.reserved:
                await self.changed.wait()  # chunks in flight settle first
                continue
            async with self.lock:
                if self.reserved or self.balance - self.reserved >= self.per_lead:
                    continue
                if not self.fresh:
                    await self.refresh()
                    continue
                if not await self.ask(n):
                    return 0
                await self.refresh()
        return 0

    async def refresh(self) -> None:
        """Read the account's credits again."""
        self.balance = await read_credits(self.api)
        self.fresh = True
        self._changed()

    async def ask(self, waiting: int) -> bool:
        """Ask ``on_insufficient_credits`` whether to go on (False without it)."""
        hook = self.policy.on_insufficient_credits
        if hook is None:
            return False
        if self.resumed_at is not None:
            since = anyio.current_time() - self.resumed_at
            if since < ASK_AGAIN_AFTER:
                logger.warning(
                    "credits: on_insufficient_credits said to go on %.2f s ago but one more "
                    "lead still does not fit; asking again in %.2f s (return True only once "
                    "credits were added: CreditShortage.wait_for_top_up waits for them)",
                    since,
                    ASK_AGAIN_AFTER - since,
                )
                await anyio.sleep(ASK_AGAIN_AFTER - since)
        self.asked += 1
        shortage = CreditShortage(
            available=self.balance,
            needed=self.per_lead,
            leads_waiting=waiting,
            error=self.refused,
            read=lambda: read_credits(self.api),
        )
        logger.warning(
            "credits: %s credits left, %d needed per lead: pausing the batch (%d leads waiting) "
            "and asking on_insufficient_credits",
            "unknown" if self.balance is None else self.balance,
            self.per_lead,
            waiting,
        )
        resume = bool(await call(hook, shortage))
        if resume:
            self.resumed_at = anyio.current_time()
        return resume

    def settled(self, leads: int, outcome: str, error: BaseException | None = None) -> None:
        """A chunk of ``leads`` admitted leads is done: ``accepted``, ``refused`` (402),
        ``failed`` (it may have been charged) or ``stopped`` (a 401: handed back)."""
        cost = leads * self.per_lead
        self.reserved -= cost
        if self.balance is not None:
            if outcome in ("accepted", "failed"):
                self.balance -= cost  # the upper bound; the next refresh corrects it
            elif outcome == "refused":
                self.balance = self.reserved  # nothing more fits until the account is read
        if outcome == "refused":
            assert isinstance(error, InsufficientCreditsError)
            self.refused = self.last_error = error
        elif outcome == "accepted":
            self.refused = None  # the shortage a later one reports is not that 402's
        self.fresh = False
        self._changed()

    def _changed(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    def stop_cause(self) -> InsufficientCreditsError:
        """The error a batch stopped by the gate is chained to."""
        if self.last_error is not None:
            return self.last_error
        return InsufficientCreditsError(
            f"the account has {self.balance} credits left, fewer than the {self.per_lead} one "
            "more lead of this campaign costs (one per message type, from the account endpoint: "
            "credits_remaining, else monthly_credits); the batch stopped before "
            "sending more: add credits and resubmit not_submitted, or pass CreditPolicy("
            "on_insufficient_credits=...) to wait for a top-up and go on in place",
            status=402,
            method="POST",
            path=self.api.settings.routes.request_message_generation,
        )


async def open_gate(
    api: Api, policy: CreditPolicy, campaign_wire: Mapping[str, Any], leads: object
) -> CreditGate:
    """The pre-flight estimate (told to ``on_estimate``), then the batch's gate."""
    countable = None
    if isinstance(leads, Sized) and isinstance(leads, Iterable):
        countable = leads
    estimate = await estimate_credits(api, campaign_wire, countable)
    logger.info(
        "credits: the batch may cost up to %s credits (%s leads x %d message types, %d known "
        "free); the account has %s",
        estimate.estimated,
        estimate.leads,
        estimate.message_types,
        estimate.known_free,
        estimate.available,
    )
    if policy.on_estimate is not None:
        await call(policy.on_estimate, estimate)
    return CreditGate(api, policy, estimate.message_types, estimate.available)


# Long: one loop takes a chunk through the gate, cut and resent, accounting for every lead.
async def send_within_credits(
    batch: Any, gate: CreditGate, wire: list[Any], originals: list[Any], ids: list[str], start: int
) -> None:
    """Post one chunk of a running batch (``_batch._Batch``) through its credit gate: cut to the
    leads the credits pay for, the rest after them; a refused (402) part again once it fits."""
    while wire:
        try:
            n = await gate.admit(len(wire), lambda: batch.stop is not None)
        except Exception as exc:  # on_insufficient_credits raised
            batch.stopping(StopReason.CALLBACK_ERROR, exc)
            n = 0
        except BaseException:
            batch.unsent.append((start, originals))  # cancelled while waiting: never sent
            raise
        if n == 0:
            if batch.stop is None:
                batch.stopping(StopReason.INSUFFICIENT_CREDITS, gate.stop_cause())
            batch.unsent.append((start, originals))
            return
        batch.in_flight += 1
        try:
            outcome = await batch.send(wire[:n], originals[:n], ids[:n], start, refusable=True)
        except BaseException:
            gate.settled(n, "failed")  # cancelled in flight: it may have been charged
            if n < len(wire):
                batch.unsent.append((start + n, originals[n:]))
            raise
        gate.settled(n, outcome, batch.refusal)
        if outcome == "refused":
            continue  # nothing was charged: the same leads once they fit
        if outcome == "stopped":
            if n < len(wire):
                batch.unsent.append((start + n, originals[n:]))
            return
        wire, originals, ids, start = wire[n:], originals[n:], ids[n:], start + n
