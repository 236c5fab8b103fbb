"""The ``upscale-async`` command (also ``python -m upscale_async``).

::

    upscale-async generate leads.csv --campaign campaign.json --out results.jsonl
    upscale-async retrieve SECURE_REQUEST_ID
    upscale-async sequences [--sequence-length short|medium|long ...]
    upscale-async account
    upscale-async emulator [--port 8080 ...]
    upscale-async demo [--leads 300] [--out ./upscale-demo]

Without an API key (``--api-key`` or ``UPSCALE_API_KEY``), ``generate`` runs against the
embedded emulator and says so; ``demo`` always does. Exit status: 0 success (for ``generate``:
every lead generated), 1 some leads not generated or the service failed, 2 usage or input errors
(for ``generate``, also when some records of the leads file could not be read: the run goes on
and they are in the results as ``rejected`` records naming their line), 130 interrupted by
SIGINT and 143 by SIGTERM (every lead has a record; ``--resume`` continues).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, Final, Literal, NoReturn

import anyio
import attrs
import orjson

from .. import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_CONCURRENCY,
    AuthenticationError,
    BatchInterruptedError,
    BatchPolicy,
    ConfigurationError,
    RetrievedMessages,
    SequenceStep,
    StopReason,
    UpscaleClient,
    UpscaleError,
    ValidationError,
    __version__,
)
from .._config import ENV_API_KEY, ENV_BASE_URL
from .._spec.contract import SEQUENCE_FILTER_DEFAULT, SEQUENCE_FILTERS
from ..webhooks import DEFAULT_WEBHOOK_PATH
from ._files import (
    DEFAULT_ENCODING,
    InputError,
    check_encoding,
    display_name,
    is_stdio,
    output_format,
    read_campaign,
)
from ._generate import (
    DEMO_RATE,
    EMULATOR_RATE,
    ENV_WEBHOOK_SECRET,
    GenerateOptions,
    Summary,
    connect,
    has_api_key,
    note,
    open_files,
    run_generate,
)

__all__ = ["main"]

EXIT_OK: Final = 0
EXIT_INCOMPLETE: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130
DEMO_LEADS: Final = 300
DEMO_DIR: Final = "upscale-demo"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _add_global_options(parser: argparse.ArgumentParser, *, after_command: bool) -> None:
    """--api-key, --base-url, --emulator: before the command, or after it (same meaning)."""
    # After the command they default to SUPPRESS, so that they do not undo the ones before it.
    default: dict[str, Any] = {"default": argparse.SUPPRESS} if after_command else {}
    group = parser.add_argument_group("global options (before or after the command)")
    group.add_argument("--api-key", help=f"Upscale API key (default: ${ENV_API_KEY})", **default)
    group.add_argument(
        "--base-url", help=f"API base URL (default: ${ENV_BASE_URL}, else Upscale)", **default
    )
    group.add_argument(
        "--emulator",
        action="store_true",
        help="use the embedded emulator even when an API key is set",
        **default,
    )
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="print each retry of a request (by default generate counts them in its summary)",
        **default,
    )


def _delimiter(text: str) -> str:
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
    value = named.get(text.lower(), text)
    if len(value) != 1 or value in '"\r\n':
        raise argparse.ArgumentTypeError(
            f"expected one character (or tab, comma, semicolon, pipe), got {text!r}"
        )
    return value


def _encoding(text: str) -> str:
    try:
        return check_encoding(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix(f"--encoding {text}: ")) from None


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 seconds, got {text}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0-65535, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="upscale-async",
        description="Personalised LinkedIn outreach messages from the Upscale API, from the shell.",
        epilog=(
            f"Environment: {ENV_API_KEY} (API key), {ENV_BASE_URL} (API base URL), "
            f"{ENV_WEBHOOK_SECRET} (webhook signing secret). Without an API key, generate uses "
            "the embedded emulator; demo always does. Exit status: 0 success, 1 some leads not "
            "generated or a service error, 2 usage or input error (including unreadable "
            "records in the leads file), 130 interrupted (SIGINT), 143 terminated (SIGTERM): "
            "every lead has a record, and --resume continues."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_global_options(parser, after_command=False)
    commands = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=_Parser, help="the command to run"
    )
    commands.required = True
    _add_generate(commands)
    _add_small_commands(commands)
    for name, sub in commands.choices.items():
        if name != "emulator":  # its options are the emulator's own
            _add_global_options(sub, after_command=True)
    return parser


def _add_generate(commands: Any) -> None:
    gen = commands.add_parser(
        "generate",
        help="generate messages for a CSV or JSONL file of leads",
        description=(
            "Stream leads from LEADS (CSV with the lead wire names as header, or JSON lines), "
            "submit them in chunks, await completion and write one record per lead to --out "
            "as results arrive, then a summary on stderr. A record that cannot be read (a CSV "
            "row with the wrong number of fields, a line that is not a JSON object) is written "
            "as a 'rejected' record naming its line and the run goes on (exit status 2 at the "
            "end). Against the real service "
            "the campaign's completion_notification_url must route to the webhook receiver "
            "(--webhook-host/--webhook-port/--webhook-path); with the embedded emulator it is "
            "replaced by the receiver's URL."
        ),
    )
    gen.add_argument(
        "leads", metavar="LEADS", type=Path, help="leads file (.csv or .jsonl), - for stdin"
    )
    gen.add_argument("--campaign", required=True, type=Path, help="campaign JSON file")
    gen.add_argument(
        "--out", required=True, type=Path, help="results file (overwritten), - for stdout"
    )
    gen.add_argument(
        "--out-format",
        choices=("jsonl", "csv"),
        help=(
            "results format (default: from the --out extension: .jsonl/.ndjson/.json or .csv; "
            "jsonl for - or no extension)"
        ),
    )
    _add_reading(gen)
    gen.add_argument(
        "--chunk-size",
        type=_positive_int,
        default=DEFAULT_CHUNK_SIZE,
        help=f"leads per request (default: {DEFAULT_CHUNK_SIZE})",
    )
    gen.add_argument(
        "--concurrency",
        type=_positive_int,
        default=DEFAULT_CONCURRENCY,
        help=f"requests in flight at once (default: {DEFAULT_CONCURRENCY})",
    )
    _add_waiting(gen)
    gen.add_argument(
        "--timeout",
        type=_seconds,
        help="overall deadline in seconds; leads not complete by then are 'timed_out'",
    )
    gen.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    _add_resume(gen)


def _add_resume(gen: argparse.ArgumentParser) -> None:
    group = gen.add_argument_group("interrupt and resume")
    group.add_argument(
        "--resume",
        action="store_true",
        help=(
            "continue an interrupted run: keep its final records, collect the requests Upscale "
            "already accepted (from the journal) and send only the leads never accepted; "
            "--out is rewritten with one record per lead"
        ),
    )
    group.add_argument(
        "--journal",
        type=Path,
        help="journal of accepted requests (default: OUT.journal, removed when the run finishes)",
    )
    group.add_argument(
        "--no-journal", action="store_true", help="keep no journal (the run cannot be resumed)"
    )


def _add_reading(gen: argparse.ArgumentParser) -> None:
    """The options that say how to read LEADS."""
    gen.add_argument(
        "--in-format",
        choices=("csv", "jsonl"),
        help="leads format (default: from the LEADS extension: .csv, else JSON lines; csv for -)",
    )
    gen.add_argument(
        "--encoding",
        type=_encoding,
        default=DEFAULT_ENCODING,
        help=(
            f"text encoding of the leads file (default: {DEFAULT_ENCODING}); Excel on Windows "
            "writes cp1252: try --encoding cp1252 or latin-1"
        ),
    )
    gen.add_argument(
        "--delimiter",
        type=_delimiter,
        help="CSV delimiter: one character, or tab (default: sniffed from the header: , ; tab |)",
    )
    gen.add_argument(
        "--extra-fields",
        choices=("error", "ignore", "send"),
        default="error",
        help=(
            "columns/keys that are not lead fields: an input error (default), ignored, or sent "
            "with each lead as extra fields"
        ),
    )


def _add_waiting(gen: argparse.ArgumentParser) -> None:
    hooks = gen.add_argument_group("waiting for completion (webhooks by default)")
    hooks.add_argument("--webhook-host", default="127.0.0.1", help="default: 127.0.0.1")
    hooks.add_argument("--webhook-port", type=_port, default=0, help="default: 0 (a free port)")
    hooks.add_argument(
        "--webhook-path", default=DEFAULT_WEBHOOK_PATH, help=f"default: {DEFAULT_WEBHOOK_PATH}"
    )
    either = hooks.add_mutually_exclusive_group()  # a secret is for the receiver --poll omits
    either.add_argument(
        "--webhook-secret",
        help=f"whsec_ secret that signs Upscale's webhooks (default: ${ENV_WEBHOOK_SECRET})",
    )
    either.add_argument("--poll", action="store_true", help="no webhook receiver: poll only")
    hooks.add_argument(
        "--poll-interval", type=_seconds, help="first poll interval in seconds (then backoff)"
    )


def _add_small_commands(commands: Any) -> None:
    ret = commands.add_parser("retrieve", help="print the messages of a request as JSON")
    ret.add_argument("secure_request_id", metavar="ID", help="the request's secure_request_id")

    seq = commands.add_parser("sequences", help="print Upscale's sequence templates as JSON")
    for name, (allowed, default) in SEQUENCE_FILTERS.items():
        seq.add_argument(
            "--" + name.replace("_", "-"),
            choices=(*allowed, SEQUENCE_FILTER_DEFAULT),
            help=f"filter on {name} (the server assumes {default!r} when omitted)",
        )

    commands.add_parser("account", help="print the account's status and credits as JSON")

    emu = commands.add_parser(
        "emulator",
        help="run the local Upscale emulator (python -m upscale_async.emulator)",
        add_help=False,
    )
    emu.add_argument("emulator_args", nargs="*", help="see upscale-async emulator --help")

    demo = commands.add_parser(
        "demo",
        help="write sample leads and a campaign, and run generate on them with the emulator",
    )
    demo.add_argument("--leads", type=_positive_int, default=DEMO_LEADS, help="default: 300")
    demo.add_argument(
        "--out", type=Path, default=Path(DEMO_DIR), help=f"directory (default: ./{DEMO_DIR})"
    )
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress display")


# -- output helpers -------------------------------------------------------------------------


def _print_json(data: Any) -> None:
    sys.stdout.write(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode() + "\n")


def _plain(obj: Any) -> dict[str, Any]:
    """An attrs model as a JSON-ready dict, its ``extra`` keys merged in."""
    data = attrs.asdict(obj, recurse=True)
    extra = data.pop("extra", None) or {}
    data.update(extra)
    return data


def _retrieved_json(result: RetrievedMessages) -> dict[str, Any]:
    return {
        "secure_request_id": result.secure_request_id,
        "complete": result.is_complete,
        "http_status": result.http_status,
        "metadata": _plain(result.metadata),
        "account": dict(result.account),
        "automation_tool_campaign_id": result.automation_tool_campaign_id,
        "message_sequence": [
            s.to_wire() if isinstance(s, SequenceStep) else s for s in result.message_sequence
        ],
        "leads": [dict(lead.raw) for lead in result.leads],
        **dict(result.extra),
    }


# -- commands -------------------------------------------------------------------------------


def _key_or_exit(args: argparse.Namespace) -> bool:
    """Whether to use the embedded emulator; exits 2 when there is neither key nor --emulator."""
    if args.emulator:
        return True
    if not has_api_key(args.api_key):
        raise InputError(
            f"no API key: pass --api-key or set {ENV_API_KEY} "
            "(or pass --emulator to ask the embedded emulator)"
        )
    return False


async def _simple(args: argparse.Namespace, call: Callable[[UpscaleClient], Awaitable[Any]]) -> int:
    embedded = _key_or_exit(args)
    async with (
        connect(
            api_key=args.api_key, base_url=args.base_url, embedded=embedded, webhooks=False
        ) as target,
        UpscaleClient(target.api_key, base_url=target.base_url) as client,
    ):
        _print_json(await call(client))
    return EXIT_OK


async def _retrieve(client: UpscaleClient, request_id: str) -> Any:
    return _retrieved_json(await client.retrieve_messages(request_id))


async def _sequences(client: UpscaleClient, args: argparse.Namespace) -> Any:
    found = await client.get_sequences(
        sequence_length=args.sequence_length,
        campaign_objective=args.campaign_objective,
        cadence_profile=args.cadence_profile,
        saturated_markets=args.saturated_markets,
    )
    return [_plain(s) for s in found]


async def _account(client: UpscaleClient) -> Any:
    return _plain(await client.get_account())


def _in_format(path: Path, given: str | None) -> Literal["csv", "jsonl"]:
    if given is not None:
        return "csv" if given == "csv" else "jsonl"
    return "csv" if is_stdio(path) or path.suffix.lower() == ".csv" else "jsonl"


def _generate_options(args: argparse.Namespace) -> GenerateOptions:
    # Report a bad campaign file and an unreadable leads file together, not one per run.
    problems: list[str] = []
    try:
        campaign = read_campaign(args.campaign)
    except InputError as exc:
        problems.extend(exc.messages)
    try:
        if not is_stdio(args.leads):
            with open(args.leads, "rb"):
                pass
    except OSError as exc:
        problems.append(f"cannot read leads file {args.leads}: {exc.strerror or exc}")
    try:
        out_format = output_format(args.out, args.out_format)
    except InputError as exc:
        problems.extend(exc.messages)
    if problems:
        raise InputError(*problems)
    in_format = _in_format(args.leads, args.in_format)
    return GenerateOptions(
        leads=args.leads,
        leads_format=in_format,
        extra_fields=args.extra_fields,
        encoding=args.encoding,
        delimiter=args.delimiter,
        campaign=campaign,
        campaign_path=args.campaign,
        out=args.out,
        out_format=out_format,
        batch=BatchPolicy(chunk_size=args.chunk_size, concurrency=args.concurrency),
        poll=args.poll,
        poll_interval=args.poll_interval,
        webhook_host=args.webhook_host,
        webhook_port=args.webhook_port,
        webhook_path=args.webhook_path,
        webhook_secret=args.webhook_secret,
        timeout=args.timeout,
        quiet=args.quiet,
        resume=args.resume,
        journal=args.journal,
        no_journal=args.no_journal,
        verbose=args.verbose,
    )


async def _run(
    options: GenerateOptions,
    *,
    api_key: str | None,
    base_url: str | None,
    embedded: bool,
    rate: float = EMULATOR_RATE,
) -> Summary:
    files = open_files(options)
    async with connect(
        api_key=api_key,
        base_url=base_url,
        embedded=embedded,
        webhooks=not options.poll,
        rate=rate,
    ) as target:
        return await run_generate(options, target, files)


def _report(summary: Summary, out: Path) -> None:
    for message in summary.unreadable_messages:
        print(f"upscale-async: error: {message}", file=sys.stderr)
    more = summary.unreadable - len(summary.unreadable_messages)
    if more:
        print(f"upscale-async: error: ... and {more} more unreadable records", file=sys.stderr)
    note(summary.text())
    note(f"results written to {display_name(out, 'stdout')}")
    missing = summary.counts["not_submitted"] + summary.counts["submit_failed"]
    for line in summary.advice:
        note(line)
    if missing and not summary.advice:
        note(
            f"{missing} leads were not accepted (records 'not_submitted'/'submit_failed' carry "
            "the lead): fix the cause (credits, key, service) and run them again"
        )
    if summary.counts["timed_out"]:
        note("timed-out leads can be fetched later with: upscale-async retrieve ID")


async def _generate(args: argparse.Namespace) -> int:
    options = _generate_options(args)
    embedded = args.emulator or not has_api_key(args.api_key)
    if embedded and args.webhook_secret:
        note("--webhook-secret is ignored: the embedded emulator signs with its own secret")
    summary = await _run(options, api_key=args.api_key, base_url=args.base_url, embedded=embedded)
    _report(summary, options.out)
    if summary.interrupted is not None:
        return 128 + summary.interrupted  # 130 for SIGINT, 143 for SIGTERM
    if summary.unreadable or summary.stop is StopReason.AUTHENTICATION:
        # An input error (a record, or the key), even though the rest of the run went on.
        return EXIT_USAGE
    return EXIT_OK if summary.all_generated else EXIT_INCOMPLETE


def _write_demo(directory: Path, n: int) -> tuple[Path, Path]:
    from ._demo import write_sample

    if directory.exists() and not directory.is_dir():
        raise InputError(f"--out {directory} is not a directory")
    try:
        return write_sample(directory, n)
    except OSError as exc:
        raise InputError(f"cannot write the demo files into {directory}: {exc}") from None


async def _demo(args: argparse.Namespace) -> int:
    directory: Path = args.out
    leads, campaign_path = _write_demo(directory, args.leads)
    results = directory / "results.jsonl"
    print(f"sample leads: {leads}\ncampaign:     {campaign_path}", flush=True)
    campaign = read_campaign(campaign_path)
    options = GenerateOptions(
        leads=leads,
        campaign=campaign,
        campaign_path=campaign_path,
        out=results,
        batch=BatchPolicy(chunk_size=50),
        timeout=120.0,
        quiet=args.quiet,
    )
    summary = await _run(options, api_key=None, base_url=None, embedded=True, rate=DEMO_RATE)
    _report(summary, results)
    print(f"results:      {results} ({summary.total} records, one per lead)", flush=True)
    # The sample has invalid leads and leads with no web presence on purpose: the demo
    # succeeds when every lead is accounted for as generated, failed or rejected.
    expected = summary.counts["generated"] + summary.counts["failed"] + summary.counts["rejected"]
    return EXIT_OK if summary.total == args.leads == expected else EXIT_INCOMPLETE


async def _dispatch(args: argparse.Namespace) -> int:
    command = args.command
    if command == "generate":
        return await _generate(args)
    if command == "demo":
        return await _demo(args)
    if command == "retrieve":
        request_id: str = args.secure_request_id
        return await _simple(args, lambda client: _retrieve(client, request_id))
    if command == "sequences":
        return await _simple(args, lambda client: _sequences(client, args))
    if command == "account":
        return await _simple(args, _account)
    raise AssertionError(f"unknown command {command!r}")


def _leaf(exc: BaseException) -> BaseException:
    """The one interesting exception inside (nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def _fail(message: str, code: int) -> int:
    for line in message.splitlines() or [message]:
        print(f"upscale-async: error: {line}", file=sys.stderr, flush=True)
    return code


def _emulator_args(argv: list[str]) -> list[str] | None:
    """The arguments after ``emulator`` when that is the command (passed through untouched)."""
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in ("--api-key", "--base-url"):
            i += 2
        elif token.startswith("-"):
            i += 1
        else:
            return argv[i + 1 :] if token == "emulator" else None
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    rest = _emulator_args(argv)
    if rest is not None:
        from ..emulator.__main__ import main as emulator_main

        return emulator_main(rest)
    args = _parser().parse_args(argv)
    try:
        return anyio.run(_dispatch, args, backend="asyncio")
    except KeyboardInterrupt:
        return _fail("interrupted; the results written so far are kept", EXIT_INTERRUPTED)
    except BaseException as raised:
        exc = _leaf(raised)
        if isinstance(exc, InputError):
            return _fail(str(exc), EXIT_USAGE)
        if isinstance(exc, ValidationError):
            return _fail("\n".join(exc.messages), EXIT_USAGE)
        if isinstance(exc, BatchInterruptedError) and exc.reason is StopReason.AUTHENTICATION:
            exc = exc.__cause__ or exc  # the key: fix it and run again
        if isinstance(exc, ConfigurationError | AuthenticationError):
            return _fail(str(exc), EXIT_USAGE)
        if isinstance(exc, BatchInterruptedError):
            return _fail(str(exc), EXIT_INCOMPLETE)
        if isinstance(exc, UpscaleError):
            return _fail(str(exc), EXIT_INCOMPLETE)
        if isinstance(exc, OSError):
            return _fail(str(exc), EXIT_INCOMPLETE)
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
