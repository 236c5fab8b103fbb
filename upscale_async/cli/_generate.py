"""``upscale-async generate``: leads file in, one result per lead out, then a summary."""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final, Literal

import anyio
import attrs

from .. import (
    Account,
    BatchInterruptedError,
    BatchPolicy,
    Campaign,
    PollPolicy,
    StopReason,
    UpscaleClient,
    UpscaleError,
)
from .._config import ENV_API_KEY
from ..webhooks import DEFAULT_WEBHOOK_PATH
from ._files import ExtraPolicy, InputError, LeadFile, ResultWriter, count_records, open_results
from ._progress import Progress, fit_terminal

if TYPE_CHECKING:
    from ..emulator import Emulator
    from ..webhooks import CompletionHub

__all__ = [
    "DEMO_RATE",
    "ENV_WEBHOOK_SECRET",
    "OUTCOMES",
    "GenerateOptions",
    "Summary",
    "Target",
    "connect",
    "open_files",
    "run_generate",
]

ENV_WEBHOOK_SECRET: Final = "UPSCALE_WEBHOOK_SECRET"
#: Every outcome, in the order the summary names them.
OUTCOMES: Final = (
    ("generated", "generated"),
    ("failed", "failed"),
    ("rejected", "rejected"),
    ("not_submitted", "not submitted"),
    ("submit_failed", "submit failed"),
    ("timed_out", "timed out"),
)
#: The embedded emulator generates with a small latency, so that progress is visible.
EMULATOR_LATENCY: Final = 0.3
EMULATOR_RATE: Final = 20_000.0
#: The demo generates slower (messages per second), so that its progress can be watched.
DEMO_RATE: Final = 250.0
#: How many unreadable records the report names on stderr (all are in the results).
MAX_SHOWN: Final = 20
EMULATOR_POLL: Final = PollPolicy(initial=0.2, factor=1.5, max_interval=2.0, fallback_interval=5.0)


def note(message: str) -> None:
    print(fit_terminal(f"upscale-async: {message}"), file=sys.stderr, flush=True)


@attrs.frozen
class Target:
    """Where requests go: the service (or an emulator) by key and URL, and the embedded one."""

    api_key: str | None
    base_url: str | None
    emulator: Emulator | None = None


@asynccontextmanager
async def connect(
    *,
    api_key: str | None,
    base_url: str | None,
    embedded: bool,
    webhooks: bool,
    rate: float = EMULATOR_RATE,
) -> AsyncIterator[Target]:
    """The target of a command: the embedded emulator (started here) or the given service."""
    if not embedded:
        yield Target(api_key, base_url)
        return
    from ..emulator import DEFAULT_WEBHOOK_SECRET, Emulator

    async with Emulator(
        latency=EMULATOR_LATENCY,
        messages_per_second=rate,
        webhook_time_scale=0.01,
        # Without a receiver, send no webhooks at all: the campaign file's URL is not ours.
        webhook_secret=DEFAULT_WEBHOOK_SECRET if webhooks else None,
    ) as emu:
        note(
            f"using the embedded Upscale emulator at {emu.base_url} "
            "(synthetic messages; nothing is sent to Upscale)"
        )
        yield Target(emu.api_key, emu.base_url, emu)


_INCOMPLETE_STOPS: Final = frozenset(
    {StopReason.INSUFFICIENT_CREDITS, StopReason.SERVICE_UNAVAILABLE}
)


@attrs.frozen(kw_only=True)
class GenerateOptions:
    """Everything one ``generate`` run needs, from the command line or the demo."""

    leads: Path
    campaign: Campaign
    campaign_path: Path
    out: Path
    leads_format: Literal["csv", "jsonl"] = "csv"
    extra_fields: ExtraPolicy = "error"
    encoding: str = "utf-8"
    delimiter: str | None = None
    out_format: Literal["jsonl", "csv"] = "jsonl"
    batch: BatchPolicy = attrs.field(factory=BatchPolicy)
    poll: bool = False
    poll_interval: float | None = None
    webhook_host: str = "127.0.0.1"
    webhook_port: int = 0
    webhook_path: str = DEFAULT_WEBHOOK_PATH
    webhook_secret: str | None = None
    timeout: float | None = None
    quiet: bool = False


@attrs.define
class Summary:
    counts: Counter[str] = attrs.Factory(Counter)
    credits_used: int | None = None
    elapsed: float = 0.0
    unreadable: int = 0
    """Records of the leads file that could not be read (written as rejected records)."""
    unreadable_messages: list[str] = attrs.Factory(list)
    """The first MAX_SHOWN of their messages, for stderr."""

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def all_generated(self) -> bool:
        return self.total > 0 and self.counts["generated"] == self.total

    def text(self) -> str:
        parts = ", ".join(f"{self.counts[key]} {label}" for key, label in OUTCOMES)
        credits = "" if self.credits_used is None else f"; {self.credits_used} credits used"
        return f"{self.total} leads in {self.elapsed:.1f} s: {parts}{credits}"


def _credits_left(account: Account) -> int | None:
    value = account.extra.get("credits_remaining", account.monthly_credits)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


async def _credits(client: UpscaleClient) -> int | None:
    """Credits left, when the (experimental) account endpoint tells; else None."""
    try:
        return _credits_left(await client.get_account())
    except UpscaleError:
        return None


def _poll_policy(options: GenerateOptions, embedded: bool) -> PollPolicy:
    policy = EMULATOR_POLL if embedded else PollPolicy()
    if options.poll_interval is not None:
        policy = attrs.evolve(
            policy,
            initial=options.poll_interval,
            max_interval=max(policy.max_interval, options.poll_interval),
        )
    return policy


def open_files(options: GenerateOptions) -> tuple[LeadFile, IO[str]]:
    """Open the leads and the results file (before anything starts); InputError on problems."""
    leads = LeadFile(
        options.leads,
        options.leads_format,
        options.extra_fields,
        encoding=options.encoding,
        delimiter=options.delimiter,
    )
    try:
        out = open_results(options.out, [options.leads, options.campaign_path])
    except BaseException:
        leads.close()
        raise
    return leads, out


async def _open_receiver(
    stack: AsyncExitStack, options: GenerateOptions, emu: Emulator | None
) -> tuple[CompletionHub | None, Campaign]:
    """Start the webhook receiver (unless polling); the hub and the campaign to send."""
    from ..webhooks import CompletionHub, StandardWebhooksVerifier, WebhookReceiver

    campaign = options.campaign
    if options.poll:
        return None, campaign
    secret = (
        emu.webhook_secret
        if emu is not None
        else options.webhook_secret or os.environ.get(ENV_WEBHOOK_SECRET)
    )
    if not secret:
        note(
            f"no webhook secret (--webhook-secret or {ENV_WEBHOOK_SECRET}): "
            "waiting by polling instead of webhooks"
        )
        return None, campaign
    try:
        verifier = StandardWebhooksVerifier(secret)
    except (TypeError, ValueError) as exc:
        raise InputError(f"bad webhook secret: {exc}") from None
    hub = await stack.enter_async_context(CompletionHub())
    receiver = WebhookReceiver(
        hub,
        verifier=verifier,
        host=options.webhook_host,
        port=options.webhook_port,
        path=options.webhook_path,
    )
    try:
        await stack.enter_async_context(receiver)
    except OSError as exc:
        where = f"{options.webhook_host}:{options.webhook_port}"
        raise InputError(f"cannot listen for webhooks on {where}: {exc}") from None
    if emu is not None:
        note(f"receiving the emulator's webhooks at {receiver.url}")
        return hub, attrs.evolve(campaign, completion_notification_url=receiver.url)
    note(
        f"receiving webhooks at {receiver.url}; the campaign's "
        f"completion_notification_url ({campaign.completion_notification_url}) "
        "must route to it (polling slowly as a fallback)"
    )
    return hub, campaign


class _Run:
    """One ``generate`` run's output side: the results file, the counts and the display."""

    def __init__(self, options: GenerateOptions, leads: LeadFile, out: IO[str]) -> None:
        self.options = options
        self.leads = leads
        self.writer = ResultWriter(
            out, options.out_format, options.campaign.message_types, options.leads
        )
        self.summary = Summary()
        self.progress = Progress.choose(count_records(options.leads), quiet=options.quiet)
        if options.leads_format == "csv" and self.progress.total is not None:
            self.progress.total -= 1  # the header

    def record(self, outcome: str) -> None:
        """Count one lead's outcome."""
        self.summary.counts[outcome] += 1
        self.progress.record(outcome)

    def drain_problems(self) -> None:
        """Write a record for each unreadable line of the leads file found so far."""
        summary = self.summary
        for problem in self.leads.take_problems():
            self.writer.problem(problem)
            self.record("rejected")
            summary.unreadable += 1
            if len(summary.unreadable_messages) < MAX_SHOWN:
                summary.unreadable_messages.append(problem.message)

    async def write_outcomes(
        self, client: UpscaleClient, campaign: Campaign, hub: CompletionHub | None, embedded: bool
    ) -> None:
        """Run the pipeline and write one record per lead as it comes out."""
        options = self.options
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.progress.run)
            try:
                async with client.generate(
                    campaign,
                    self.leads,
                    hub=hub,
                    poll=_poll_policy(options, embedded),
                    batch=options.batch,
                    timeout=options.timeout,
                    on_progress=self.progress.on_batch,
                ) as outcomes:
                    async for outcome in outcomes:
                        self.drain_problems()
                        self.writer.outcome(outcome)
                        self.record(outcome.outcome)
            except BatchInterruptedError as exc:
                # Every lead is in the results already; credits running out and a service
                # that looks down end the run as incomplete, the rest as errors.
                if exc.reason not in _INCOMPLETE_STOPS:
                    raise
                note(f"stopped early: {exc.__cause__ or exc}")
            self.drain_problems()
            tg.cancel_scope.cancel()


async def run_generate(
    options: GenerateOptions, target: Target, leads: LeadFile, out: IO[str]
) -> Summary:
    """Run the whole job (closing both files); raises UpscaleError from the SDK."""
    started = time.monotonic()
    emu = target.emulator
    async with AsyncExitStack() as stack:
        stack.callback(leads.close)
        stack.enter_context(out)
        run = _Run(options, leads, out)
        hub, campaign = await _open_receiver(stack, options, emu)
        client = UpscaleClient(target.api_key, base_url=target.base_url)
        await stack.enter_async_context(client)
        credits_before = None if emu is not None else await _credits(client)
        used_before = emu.state.credits_used() if emu is not None else 0
        run.progress.start()
        stack.callback(run.progress.stop)
        await run.write_outcomes(client, campaign, hub, embedded=emu is not None)
        summary = run.summary
        if emu is not None:
            summary.credits_used = emu.state.credits_used() - used_before
        elif credits_before is not None:
            credits_after = await _credits(client)
            if credits_after is not None:
                summary.credits_used = credits_before - credits_after
    summary.elapsed = time.monotonic() - started
    return summary


def has_api_key(api_key: str | None) -> bool:
    return bool(api_key or os.environ.get(ENV_API_KEY))
