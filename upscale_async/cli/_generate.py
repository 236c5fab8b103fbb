"""``upscale-async generate``: leads file in, one result per lead out, then a summary."""

from __future__ import annotations

import os
import shlex
import signal
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final, Literal

import anyio
import attrs

from .. import (
    AcceptedRequest,
    Account,
    BatchInterruptedError,
    BatchJournal,
    BatchPolicy,
    BatchProgress,
    Campaign,
    LeadOutcome,
    Outcomes,
    PollPolicy,
    RetryPolicy,
    StopReason,
    TransportError,
    UpscaleClient,
    UpscaleError,
)
from .._config import ENV_API_KEY
from ..webhooks import DEFAULT_WEBHOOK_PATH
from ._causes import ENV_WEBHOOK_SECRET, RetryLog, SignatureAlarm, cause_line
from ._files import ExtraPolicy, InputError, LeadFile, ResultWriter, count_records, open_results
from ._progress import Progress, fit_terminal
from ._resume import PENDING, LeadGate, Previous, default_journal, lead_key, open_journal

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


#: Stops that end the run with a summary and the command that resumes (the rest raise).
_INCOMPLETE_STOPS: Final = frozenset(
    {StopReason.INSUFFICIENT_CREDITS, StopReason.SERVICE_UNAVAILABLE, StopReason.AUTHENTICATION}
)
#: Outcomes that leave a lead to a resumed run.
_UNFINISHED: Final = (PENDING, "not_submitted", "submit_failed", "timed_out")


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
    resume: bool = False
    journal: Path | None = None
    """Where to keep the journal of accepted requests (default: beside ``out``)."""
    no_journal: bool = False
    verbose: bool = False
    """Print each retry of a request (by default they are counted, and named in the summary)."""

    @property
    def journal_path(self) -> Path | None:
        """The journal's path, or None when there is none (``--no-journal``, results on stdout)."""
        if self.no_journal or str(self.out) == "-":
            return None
        return self.journal or default_journal(self.out)

    def resume_command(self) -> str:
        """The command that continues this run (the same options, plus ``--resume``)."""
        words = ["upscale-async", "generate", str(self.leads), "--campaign"]
        words += [str(self.campaign_path), "--out", str(self.out)]
        if self.journal is not None:
            words += ["--journal", str(self.journal)]
        return shlex.join([*words, "--resume"]) + " (with the same other options)"


@attrs.frozen
class Files:
    """What a run opened before anything is sent: leads, results, journal, the run resumed."""

    leads: LeadFile
    out: IO[str]
    journal: BatchJournal | None = None
    previous: Previous | None = None
    temporary: Path | None = None
    """Where a resumed run writes; it replaces ``out`` when the run ends."""


@attrs.define
class Summary:
    counts: Counter[str] = attrs.Factory(Counter)
    credits_used: int | None = None
    elapsed: float = 0.0
    unreadable: int = 0
    """Records of the leads file that could not be read (written as rejected records)."""
    unreadable_messages: list[str] = attrs.Factory(list)
    """The first MAX_SHOWN of their messages, for stderr."""
    interrupted: int | None = None
    """The signal that stopped the run (SIGINT, SIGTERM), if one did."""
    advice: list[str] = attrs.Factory(list)
    """What to do next (how to resume), one line each."""
    stop: StopReason | None = None
    """Why the batch stopped early (credits, key, service), if it did."""
    cause: str | None = None
    """The last submit error (``"TypeName: message"``): the stop's cause or a failed chunk's."""
    base_url: str | None = None
    retries: int = 0
    """Retries of requests, counted (the CLI prints them only with -v)."""

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def all_generated(self) -> bool:
        return self.total > 0 and self.counts["generated"] == self.total

    def text(self) -> str:
        parts = ", ".join(f"{self.counts[key]} {label}" for key, label in OUTCOMES)
        if self.counts[PENDING]:
            parts += f", {self.counts[PENDING]} pending"
        credits = "" if self.credits_used is None else f"; {self.credits_used} credits used"
        return f"{self.total} leads in {self.elapsed:.1f} s: {parts}{credits}"


def _credits_left(account: Account) -> int | None:
    value = account.extra.get("credits_remaining", account.monthly_credits)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


#: The credits probe is a nicety: one attempt, so a dead URL is not retried before submitting.
_PROBE_RETRY: Final = RetryPolicy(attempts=1)


async def _credits(client: UpscaleClient, unreachable: list[bool] | None = None) -> int | None:
    """Credits left, when the (experimental) account endpoint tells; else None.

    ``unreachable`` gets True appended when the service could not be reached at all.
    """
    try:
        return _credits_left(await client.with_options(retry=_PROBE_RETRY).get_account())
    except TransportError:
        if unreachable is not None:
            unreachable.append(True)
        return None
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


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (the same path, or a link to it)."""
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and a.samefile(b))
    except OSError:
        return False


def _check_journal_path(options: GenerateOptions, path: Path) -> None:
    """InputError when the journal would be a file the run reads or writes otherwise."""
    others = {
        "--out": options.out,
        "the resumed results (--out + .resuming)": options.out.with_name(
            options.out.name + ".resuming"
        ),
        "the leads file": options.leads,
        "the campaign file": options.campaign_path,
    }
    for what, other in others.items():
        if str(other) != "-" and _same_file(path, other):
            raise InputError(
                f"--journal {path} is {what}: the journal must be a file of its own (the "
                f"default is {default_journal(options.out)}); give another --journal path"
            )


def _previous_and_journal(options: GenerateOptions) -> tuple[Previous | None, BatchJournal | None]:
    """The run being resumed (read before anything is overwritten) and the journal."""
    path = options.journal_path
    if options.resume and path is None:
        raise InputError("--resume needs a journal: --out must be a file, without --no-journal")
    if path is not None:
        _check_journal_path(options, path)
    previous = None
    if options.resume:
        types = list(options.campaign.message_types)
        previous = Previous.load(options.out, options.out_format, types)
    return previous, None if path is None else open_journal(path, resume=options.resume)


def open_files(options: GenerateOptions) -> Files:
    """Open the leads, the journal and the results file (before anything starts).

    InputError on problems; a journal left by an unfinished run is refused without --resume,
    before the results file is touched.
    """
    previous, journal = _previous_and_journal(options)
    temporary = None if previous is None else options.out.with_name(options.out.name + ".resuming")
    try:
        leads = LeadFile(
            options.leads,
            options.leads_format,
            options.extra_fields,
            encoding=options.encoding,
            delimiter=options.delimiter,
        )
    except BaseException:
        if journal is not None:
            journal.close()
        raise
    try:
        out = open_results(temporary or options.out, [options.leads, options.campaign_path])
    except BaseException:
        leads.close()
        if journal is not None:
            journal.close()
        raise
    return Files(leads, out, journal, previous, temporary)


async def _open_receiver(
    stack: AsyncExitStack, options: GenerateOptions, emu: Emulator | None, alarm: SignatureAlarm
) -> tuple[CompletionHub | None, Campaign]:
    """Start the webhook receiver (unless polling); the hub and the campaign to send."""
    from ..webhooks import CompletionHub, StandardWebhooksVerifier, WebhookReceiver

    campaign = options.campaign
    if options.poll:
        return None, campaign
    secret = _webhook_secret(options, emu)
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
        on_rejected=alarm.on_rejected,
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


def _webhook_secret(options: GenerateOptions, emu: Emulator | None) -> str | None:
    """The embedded emulator's own secret, else --webhook-secret, else the environment."""
    if emu is not None:
        return emu.webhook_secret
    return options.webhook_secret or os.environ.get(ENV_WEBHOOK_SECRET)


@contextmanager
def _catch_signals(caught: list[int]) -> Iterator[None]:
    """Until the pipeline listens, remember SIGINT and SIGTERM instead of dying of them."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signums = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.getsignal(s) for s in signums}
    for s in signums:
        signal.signal(s, lambda signum, _frame: caught.append(signum))
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


class _Run:
    """One ``generate`` run's output side: the results file, the counts and the display.

    It also handles SIGINT and SIGTERM: the first stops taking leads (the gate closes), lets
    the requests in flight be answered and journaled, then stops reading outcomes and writes
    a record for every lead that has none (``pending`` or ``not_submitted``); a second one
    stops at once.
    """

    def __init__(self, options: GenerateOptions, files: Files) -> None:
        self.options = options
        self.leads = files.leads
        self.journal = files.journal
        self.writer = ResultWriter(
            files.out, options.out_format, options.campaign.message_types, options.leads
        )
        self.summary = Summary()
        self.progress = Progress.choose(count_records(options.leads), quiet=options.quiet)
        if options.leads_format == "csv" and self.progress.total is not None:
            self.progress.total -= 1  # the header
        self.duplicates: list[Any] = []
        previous = files.previous
        self.awaited: list[AcceptedRequest] = []
        self.awaiting: dict[str, str] = {}  # lead id -> request id, for awaited leads
        self.accepted: list[AcceptedRequest] = []
        """The requests this run had accepted, journal or not: after an interrupt, their leads
        are ``pending`` with the request's id, never ``not_submitted``."""
        source: Iterable[Any] = self.leads
        if previous is not None and self.journal is not None:
            self.awaited, self.awaiting = previous.awaiting(self.journal)
            source = previous.unsent(self.leads, self.journal, self.duplicates.append)
            for record in previous.records:
                self.writer.write(record)
                self.record(record["outcome"])
        self.awaited_ids = {r.secure_request_id for r in self.awaited}
        self.gate = LeadGate(source)
        self.last: BatchProgress | None = None
        self.reading = anyio.CancelScope()
        self.alarm: SignatureAlarm | None = None
        self.early_signals: list[int] = []
        """Signals caught before the pipeline's handler was installed."""

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
        while self.duplicates:
            lead = self.duplicates.pop(0)
            message = (
                f"automation_tool_lead_id must be unique but {lead_key(lead)!r} was seen "
                "before (that lead was already sent)"
            )
            self.write(
                LeadOutcome(lead_id=lead_key(lead), outcome="rejected", reason=message, lead=lead)
            )

    def write(self, outcome: LeadOutcome) -> None:
        """Write one lead's record (none for a lead a resumed run already has)."""
        awaited = outcome.secure_request_id in self.awaited_ids
        if awaited and self.awaiting.pop(str(outcome.lead_id), None) is None:
            return  # final in the results being resumed
        self.writer.outcome(outcome)
        self.record(outcome.outcome)
        self.gate.settle(outcome)
        if outcome.outcome == "submit_failed" and outcome.reason:
            self.summary.cause = outcome.reason  # "TypeName: message", as the chunk failed

    def on_batch(self, progress: BatchProgress) -> None:
        self.progress.on_batch(progress)
        self.last = progress
        if self.summary.interrupted is not None:
            self.check_submitted()

    def check_submitted(self) -> None:
        """Once every lead taken is accounted for (nothing in flight), stop reading outcomes."""
        p = self.last
        seen = 0 if p is None else p.leads_seen
        done = 0
        if p is not None:
            done = p.leads_accepted + p.leads_rejected + p.leads_failed + p.leads_not_submitted
        if self.gate.count == seen == done:
            self.reading.cancel()

    def on_signal(self, signum: int) -> None:
        """SIGINT or SIGTERM: stop sending, then write what is left (a second one: at once)."""
        if self.summary.interrupted is not None:
            note("stopping at once: leads of requests still in flight are written not_submitted")
            self.reading.cancel()
            return
        self.summary.interrupted = int(signum)
        note(
            f"{signal.Signals(signum).name}: sending nothing more; waiting for the requests in "
            "flight, then writing a record for every lead (again to stop at once)"
        )
        self.gate.close()
        self.check_submitted()

    def take_early_signals(self) -> None:
        while self.early_signals:
            self.on_signal(self.early_signals.pop(0))

    async def watch_signals(self) -> None:
        """Handle SIGINT and SIGTERM while the pipeline runs (and those caught before it)."""
        self.take_early_signals()
        try:
            receiver = anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM)
            signals = receiver.__enter__()
        except (ValueError, RuntimeError, NotImplementedError):
            return  # not the main thread: Ctrl-C stays a KeyboardInterrupt
        try:
            self.take_early_signals()
            async for signum in signals:
                self.on_signal(signum)
        finally:
            receiver.__exit__(None, None, None)

    async def on_accepted(self, request: AcceptedRequest) -> None:
        """Remember an accepted request (in the journal too, when there is one)."""
        self.accepted.append(request)
        if self.journal is not None:
            await self.journal.record(request)

    def write_unfinished(self) -> None:
        """After an interrupt: a record for every lead that has none, in input order."""
        sent = {i: r.secure_request_id for r in self.accepted for i in r.lead_ids}
        for lead in list(self.gate.unsettled.values()):
            key = lead_key(lead)
            request_id = sent.get(key) if key is not None else None
            if request_id is not None:
                self.pending(key, request_id, lead)
            else:
                self.not_sent(lead)
        for key, request_id in self.awaiting.items():
            self.pending(key, request_id, None)
        self.awaiting.clear()
        for lead in self.gate.rest():
            self.drain_problems()
            self.not_sent(lead)
        self.drain_problems()

    def pending(self, lead_id: str | None, request_id: str, lead: Any) -> None:
        record: dict[str, Any] = {"lead_id": lead_id, "outcome": PENDING}
        line = getattr(lead, "line", None)
        if line is not None:
            record["line"] = line
        record["secure_request_id"] = request_id
        collect = (
            "--resume collects it"
            if self.journal is not None
            else f"collect it with: upscale-async retrieve {request_id}"
        )
        record["reason"] = f"accepted (and charged) before the run was interrupted; {collect}"
        if lead is not None:
            record["lead"] = dict(lead)  # as every record of a lead not generated
        self.writer.write(record)
        self.record(PENDING)

    def not_sent(self, lead: Any) -> None:
        reason = "not sent: the run was interrupted; " + (
            "--resume sends it"
            if self.journal is not None
            else "send it again (this record's lead, or the results file given back as leads)"
        )
        self.writer.outcome(
            LeadOutcome(lead_id=lead_key(lead), outcome="not_submitted", reason=reason, lead=lead)
        )
        self.record("not_submitted")

    async def read_outcomes(self, outcomes: Outcomes) -> None:
        """Write every outcome as it comes; after an interrupt, only those already out."""
        with self.reading:
            async for outcome in outcomes:
                self.drain_problems()
                self.write(outcome)
        if self.summary.interrupted is None:
            return
        while True:
            try:
                self.write(outcomes.receive_nowait())
            except (anyio.WouldBlock, anyio.EndOfStream):
                return

    async def write_outcomes(
        self,
        client: UpscaleClient,
        campaign: Campaign,
        hub: CompletionHub | None,
        embedded: bool,
        batch: BatchPolicy,
    ) -> None:
        """Run the pipeline and write one record per lead as it comes out."""
        options = self.options
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.progress.run)
            tg.start_soon(self.watch_signals)
            if hub is not None and self.alarm is not None:
                tg.start_soon(self.alarm.watch)
            try:
                async with client.generate(
                    campaign,
                    self.gate,
                    hub=hub,
                    poll=_poll_policy(options, embedded),
                    batch=batch,
                    timeout=options.timeout,
                    on_progress=self.on_batch,
                    on_accepted=self.on_accepted,
                    accepted=self.awaited,
                ) as outcomes:
                    await self.read_outcomes(outcomes)
            except BatchInterruptedError as exc:
                # Every lead is in the results already; credits running out, a refused key
                # and a service that looks down end the run with a summary saying why.
                if exc.reason not in _INCOMPLETE_STOPS:
                    raise
                cause = exc.__cause__ or exc
                self.summary.stop = exc.reason
                self.summary.cause = f"{type(cause).__name__}: {cause}"
            if self.summary.interrupted is not None:
                self.write_unfinished()
            self.drain_problems()
            tg.cancel_scope.cancel()

    def finish(self, files: Files) -> None:
        """Put a resumed run's results in place; keep or remove the journal; say what is next."""
        summary = self.summary
        if files.temporary is not None:
            os.replace(files.temporary, self.options.out)
        journal = files.journal
        if journal is not None:
            journal.close()
        unfinished = sum(summary.counts[k] for k in _UNFINISHED)
        if unfinished == 0 and summary.interrupted is None:
            if journal is not None:
                journal.path.unlink(missing_ok=True)  # nothing left to resume
            return
        line = None
        if summary.interrupted is None:
            line = cause_line(
                stop=summary.stop,
                cause=summary.cause,
                leads=summary.counts["not_submitted"] + summary.counts["submit_failed"],
                base_url=summary.base_url,
                retries=summary.retries,
                resume=None if journal is None else self.options.resume_command(),
            )
        if line is not None:
            summary.advice.append(line)
            return
        if journal is None:
            summary.advice.append(
                f"{unfinished} leads have no final record and there is no journal to --resume "
                f"from (--no-journal, or --out -): {summary.counts[PENDING]} pending were "
                "accepted and charged (collect each with: upscale-async retrieve ID, the "
                f"request named in its record); {summary.counts['not_submitted']} not sent "
                "carry their lead, to send again"
            )
            return
        summary.advice.append(
            f"{unfinished} leads have no final record (pending, not sent, or timed out); "
            f"the journal {journal.path} keeps what Upscale accepted. Continue with:"
        )
        summary.advice.append(f"  {self.options.resume_command()}")


async def run_generate(options: GenerateOptions, target: Target, files: Files) -> Summary:
    """Run the whole job (closing the files); raises UpscaleError from the SDK."""
    started = time.monotonic()
    with RetryLog.installed(verbose=options.verbose) as retries:
        run = await _run_pipeline(options, target, files)
        run.summary.retries = retries.retries
    run.finish(files)
    run.summary.elapsed = time.monotonic() - started
    return run.summary


async def _run_pipeline(options: GenerateOptions, target: Target, files: Files) -> _Run:
    """Open what the run needs, run it, and count the credits it used."""
    emu = target.emulator
    async with AsyncExitStack() as stack:
        stack.callback(files.leads.close)
        stack.enter_context(files.out)
        if files.journal is not None:
            stack.callback(files.journal.close)
        run = _Run(options, files)
        stack.enter_context(_catch_signals(run.early_signals))
        fallback = _poll_policy(options, emu is not None).fallback_interval
        run.alarm = SignatureAlarm(fallback, note)
        hub, campaign = await _open_receiver(stack, options, emu, run.alarm)
        client = UpscaleClient(target.api_key, base_url=target.base_url)
        await stack.enter_async_context(client)
        run.summary.base_url = client.base_url
        unreachable: list[bool] = []
        credits_before = None if emu is not None else await _credits(client, unreachable)
        batch = options.batch
        if unreachable:
            # The service did not answer the probe: the first chunk that fails after its
            # retries stops the run, rather than a second wave of chunks retrying as long.
            batch = attrs.evolve(batch, max_consecutive_failures=1)
        used_before = emu.state.credits_used() if emu is not None else 0
        run.progress.start()
        stack.callback(run.progress.stop)
        await run.write_outcomes(client, campaign, hub, emu is not None, batch)
        summary = run.summary
        if emu is not None:
            summary.credits_used = emu.state.credits_used() - used_before
        elif credits_before is not None:
            credits_after = await _credits(client)
            if credits_after is not None:
                summary.credits_used = credits_before - credits_after
    return run


def has_api_key(api_key: str | None) -> bool:
    return bool(api_key or os.environ.get(ENV_API_KEY))
