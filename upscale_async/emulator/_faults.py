"""Fault injection per endpoint: scripted or seeded-random 429/5xx, dropped connections, delays."""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Iterable, Sequence

import attrs

__all__ = ["ENDPOINTS", "Fault", "FaultInjector", "FaultKind", "FaultPlan", "FaultRecord"]

#: The endpoint names faults and request counts are keyed by (both path spellings share a name).
ENDPOINTS = ("request_message_generation", "retrieve_messages", "get_sequences", "account")


class FaultKind(enum.StrEnum):
    """What a :class:`Fault` does to a request."""

    STATUS = "status"
    """Answer with an error status (429 carries ``Retry-After``) without processing."""
    DROP_BEFORE = "drop_before"
    """Close the connection before the request is processed (nothing changes)."""
    DROP_AFTER = "drop_after"
    """Process the request fully (state, charges, id), then close the connection unanswered."""
    DELAY = "delay"
    """Wait ``delay`` seconds, then answer normally."""


@attrs.frozen
class Fault:
    """One injected fault. Build with the class methods: ``Fault.http(429, retry_after=1)``."""

    kind: FaultKind
    status: int = 0
    retry_after: float | None = None
    delay: float = 0.0

    @classmethod
    def http(cls, status: int, *, retry_after: float | None = None) -> Fault:
        """An error response (429, 500, 502, 503, ...); 429 defaults to ``Retry-After: 1``."""
        if status < 400:
            raise ValueError(f"a fault status must be an error status, got {status}")
        if status == 429 and retry_after is None:
            retry_after = 1.0
        return cls(FaultKind.STATUS, status=status, retry_after=retry_after)

    @classmethod
    def drop_before(cls) -> Fault:
        """Close the connection before the request is processed (nothing changes)."""
        return cls(FaultKind.DROP_BEFORE)

    @classmethod
    def drop_after(cls) -> Fault:
        """Process the request fully, then close the connection unanswered."""
        return cls(FaultKind.DROP_AFTER)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        """Wait ``seconds``, then answer normally.

        Raises:
            ValueError: ``seconds`` is negative.
        """
        if seconds < 0:
            raise ValueError("a delay must be >= 0 seconds")
        return cls(FaultKind.DELAY, delay=seconds)


#: What a seeded random plan draws from when no ``choices`` are given.
DEFAULT_CHOICES: tuple[Fault, ...] = (
    Fault.http(429, retry_after=0.05),
    Fault.http(500),
    Fault.http(502),
    Fault.http(503),
    Fault.drop_before(),
    Fault.drop_after(),
)


def _script(value: Iterable[Fault | None]) -> tuple[Fault | None, ...]:
    return tuple(value)


def _choices(value: Iterable[Fault]) -> tuple[Fault, ...]:
    return tuple(value)


@attrs.frozen
class FaultPlan:
    """The faults of one endpoint.

    ``script`` is consumed one entry per request (``None`` = behave); once it is used up, each
    request gets a fault with probability ``rate``, drawn uniformly from ``choices`` with a
    ``random.Random(seed)`` so a run is reproducible.
    """

    script: tuple[Fault | None, ...] = attrs.field(default=(), converter=_script)
    rate: float = 0.0
    choices: tuple[Fault, ...] = attrs.field(default=DEFAULT_CHOICES, converter=_choices)
    seed: int = 0

    def __attrs_post_init__(self) -> None:
        if not 0.0 <= self.rate <= 1.0:
            raise ValueError(f"rate must be between 0 and 1, got {self.rate!r}")
        if self.rate and not self.choices:
            raise ValueError("a plan with a rate needs at least one choice")


@attrs.frozen
class FaultRecord:
    """One injected fault, as logged in ``state.faults``."""

    endpoint: str
    fault: Fault
    at: float


class _Running:
    __slots__ = ("plan", "position", "rng")

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self.position = 0
        self.rng = random.Random(plan.seed)

    def next(self) -> Fault | None:
        plan = self.plan
        if self.position < len(plan.script):
            fault = plan.script[self.position]
            self.position += 1
            return fault
        if plan.rate and self.rng.random() < plan.rate:
            return self.rng.choice(plan.choices)
        return None


class FaultInjector:
    """The live fault plans (``emu.faults``), changeable while the emulator runs."""

    def __init__(self, log: list[FaultRecord] | None = None) -> None:
        self._running: dict[str, _Running] = {}
        self.log: list[FaultRecord] = [] if log is None else log

    def set(self, endpoint: str, plan: FaultPlan | Sequence[Fault | None]) -> None:
        """Replace the plan of ``endpoint`` (a name of ``ENDPOINTS`` or ``"*"`` for all of them).

        A plain list is a script: ``emu.faults.set("request_message_generation",
        [Fault.drop_after()])`` drops the next POST after processing it, then behaves.
        """
        if not isinstance(plan, FaultPlan):
            plan = FaultPlan(script=plan)
        for name in self._names(endpoint):
            self._running[name] = _Running(plan)

    def clear(self, endpoint: str = "*") -> None:
        """Remove the plan of one endpoint (default: every endpoint)."""
        for name in self._names(endpoint):
            self._running.pop(name, None)

    def plan(self, endpoint: str) -> FaultPlan | None:
        """The plan running on ``endpoint`` (a name of ``ENDPOINTS``), or None."""
        running = self._running.get(endpoint)
        return None if running is None else running.plan

    def next(self, endpoint: str) -> Fault | None:
        """The fault for the next request to ``endpoint`` (logged), or None."""
        running = self._running.get(endpoint)
        if running is None:
            return None
        fault = running.next()
        if fault is not None:
            self.log.append(FaultRecord(endpoint, fault, time.time()))
        return fault

    @staticmethod
    def _names(endpoint: str) -> tuple[str, ...]:
        if endpoint == "*":
            return ENDPOINTS
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; use one of {', '.join(ENDPOINTS)}")
        return (endpoint,)
