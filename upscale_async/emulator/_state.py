"""What the emulator remembers: accounts and their credits, requests, charges, deliveries."""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Literal

import attrs

if TYPE_CHECKING:
    from ._faults import FaultRecord

__all__ = ["Account", "Campaign", "DeliveryRecord", "EmulatorState", "GenerationRequest"]

#: A stored lead, kept compact: (lead id, linkedin url, company, first name). Texts are rendered
#: from these on retrieve, never stored.
LeadRow = tuple[str, str, str, str]
#: Where a reused (lead, type) message comes from: the request that generated it, and the lead's
#: index in that request.
Source = tuple["GenerationRequest", int]


@attrs.frozen
class Campaign:
    """The campaign-level fields the texts use, shared by every lead of a request."""

    proposition_company_name: str
    tone: str
    signoff_name: str | None
    material_link: str | None
    hiring_location: str | None
    job_title: str | None


@attrs.define(eq=False)
class GenerationRequest:
    """One accepted request_message_generation call."""

    id: str
    api_key: str
    customer_id: str
    campaign_id: str
    campaign: Campaign
    types: tuple[str, ...]
    leads: list[LeadRow]
    failed: tuple[int, ...]
    """Sorted indices of the leads that cannot be personalised."""
    failed_starts: tuple[int, ...]
    """For each failed lead, the work index of its first message (failed leads are never reused)."""
    completion_url: str
    submitted_at: float
    start_at: float
    """``time.monotonic()`` at which generation may start (submission + latency)."""
    reused: dict[tuple[int, int], Source] | None = None
    """(lead index, type index) -> source, for pairs generated earlier: available at once."""
    done: int = 0
    """Work processed so far. The work is every message that is not reused, in lead-major
    order (lead by lead, types in sequence order)."""
    completed_at: str | None = None

    @property
    def total(self) -> int:
        """Messages requested: leads x types."""
        return len(self.leads) * len(self.types)

    @property
    def work(self) -> int:
        """Messages to generate (the requested ones that are not reused)."""
        return self.total - (len(self.reused) if self.reused else 0)

    @property
    def complete(self) -> bool:
        """True when every message of the request has been generated (or failed)."""
        return self.done >= self.work

    def failed_count(self, done: int | None = None) -> int:
        """Failed messages among the first ``done`` of the work (default: processed so far)."""
        done = self.done if done is None else done
        width = len(self.types)
        count = 0
        for start in self.failed_starts:
            if start >= done:
                break
            count += min(done - start, width)
        return count

    def generated_count(self) -> int:
        """Messages available: reused ones plus the work processed without failing."""
        reused = len(self.reused) if self.reused else 0
        return reused + self.done - self.failed_count()

    def processed_count(self) -> int:
        """Messages settled so far (generated, reused or failed)."""
        return (len(self.reused) if self.reused else 0) + self.done


@attrs.define(eq=False)
class Account:
    """The ledger of one API key."""

    api_key: str
    credits: int
    allowance: int
    pairs: dict[tuple[str, str], Source] = attrs.Factory(dict)
    """(lead id, message type) -> where its text comes from, for every pair charged so far."""
    bodies: dict[bytes, str] = attrs.Factory(dict)
    """Canonical body digest -> secure_request_id (D8)."""
    charges: Counter[tuple[str, str]] = attrs.Factory(Counter)
    """(lead id, message type) -> times charged; a correct run never exceeds 1."""
    posts: Counter[bytes] = attrs.Factory(Counter)
    """Canonical body digest -> times that body was posted and answered (dedupe hits included,
    credit refusals too): a body posted twice is one request (D8) sent twice."""
    used: int = 0


@attrs.frozen
class DeliveryRecord:
    """One webhook attempt (or dropped/duplicate send), as logged in ``state.deliveries``.

    ``refused``: the target is not loopback and external webhooks are not allowed; nothing was
    sent and nothing will be (``error`` says why).
    """

    request_id: str
    webhook_id: str
    attempt: int
    outcome: Literal["delivered", "failed", "dropped", "duplicate", "refused"]
    status: int | None
    error: str | None
    at: float
    url: str


@attrs.define(eq=False)
class EmulatorState:
    """Everything tests assert on: ``emu.state``.

    Read-only for tests, except through ``Emulator.add_credits``. The query methods may be
    called from another thread while the emulator runs (``EmulatorThread``): each iterates
    over a copy of a container taken in one C-level step (``dict(d)``, ``list(l)``, which
    hold the GIL throughout), never over the live one that the emulator's loop changes.
    """

    accounts: dict[str, Account]
    requests: dict[str, GenerationRequest] = attrs.Factory(dict)
    endpoint_counts: Counter[str] = attrs.Factory(Counter)
    """Requests seen per endpoint name, faulted ones included."""
    submissions: int = 0
    """request_message_generation calls answered 200 (dedupe hits included)."""
    dedupe_hits: int = 0
    messages_generated: int = 0
    messages_failed: int = 0
    deliveries: list[DeliveryRecord] = attrs.Factory(list)
    fault_log: list[FaultRecord] = attrs.Factory(list)
    server_errors: list[str] = attrs.Factory(list)
    """Unexpected exceptions answered as 500 (a correct run leaves this empty)."""
    started_at: float = attrs.Factory(time.time)
    revoked_keys: set[str] = attrs.Factory(set)
    """Keys revoked while running (``Emulator.rotate_key``): answered 401 "revoked"."""

    # -- ledger accessors -------------------------------------------------------------------
    def credits(self, api_key: str | None = None) -> int:
        """Credits left for ``api_key`` (default: the first valid key)."""
        return self._account(api_key).credits

    def credits_used(self, api_key: str | None = None) -> int:
        """The credits ``api_key`` (default: the first key) has spent."""
        return self._account(api_key).used

    def charge_counts(self) -> Counter[tuple[str, str, str]]:
        """(api key, lead id, message type) -> times charged. ``max(...) <= 1`` in a correct run."""
        counts: Counter[tuple[str, str, str]] = Counter()
        for key, account in dict(self.accounts).items():
            for (lead_id, kind), n in dict(account.charges).items():
                counts[key, lead_id, kind] = n
        return counts

    def body_posts(self) -> dict[str, int]:
        """``secure_request_id`` -> how many times its body was posted (1 when sent once)."""
        posts: dict[str, int] = {}
        for account in dict(self.accounts).values():
            bodies = dict(account.bodies)
            counts = dict(account.posts)  # after bodies: every body copied was posted
            for digest, request_id in bodies.items():
                posts[request_id] = counts.get(digest, 0)
        return posts

    def double_charges(self) -> list[tuple[str, str, str]]:
        """Every (api key, lead id, message type) charged more than once (empty when correct)."""
        return [pair for pair, n in self.charge_counts().items() if n > 1]

    @property
    def accepted(self) -> int:
        """Distinct requests accepted (dedupe hits excluded)."""
        return len(self.requests)

    @property
    def faults(self) -> list[FaultRecord]:
        """Every injected fault, in order."""
        return self.fault_log

    def request(self, request_id: str) -> GenerationRequest:
        """The stored request behind a ``secure_request_id`` (KeyError if unknown)."""
        return self.requests[request_id]

    def deliveries_for(self, request_id: str) -> list[DeliveryRecord]:
        """Every webhook delivery attempt for one request, in order."""
        return [d for d in list(self.deliveries) if d.request_id == request_id]

    def _account(self, api_key: str | None) -> Account:
        if api_key is None:
            return next(iter(dict(self.accounts).values()))
        return self.accounts[api_key]
