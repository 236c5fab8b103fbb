"""``python -m upscale_async.emulator``: run the emulator until Ctrl-C (SIGINT) or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from ._config import (
    DEFAULT_API_KEY,
    DEFAULT_BODY_TIMEOUT,
    DEFAULT_CREDITS,
    DEFAULT_WEBHOOK_SECRET,
    EmulatorConfig,
)
from ._server import Emulator

__all__ = ["main"]


def _add_safety_args(parser: argparse.ArgumentParser) -> None:
    """The flags that bound what the emulator reads and where it sends webhooks, and logging."""
    add = parser.add_argument
    add(
        "--body-timeout",
        type=float,
        default=DEFAULT_BODY_TIMEOUT,
        help=f"seconds to receive a request body, else 408 (default: {DEFAULT_BODY_TIMEOUT:g})",
    )
    add(
        "--allow-external-webhooks",
        action="store_true",
        help=(
            "also POST webhooks to non-loopback URLs. RISK: anyone who can reach the emulator "
            "can then make it send signed POSTs to any host it can reach (public hosts, your "
            "LAN, cloud metadata addresses such as 169.254.169.254). Without it, webhooks go "
            "only to localhost, 127.0.0.0/8 and ::1; others are refused and logged"
        ),
    )
    add(
        "--verbose",
        action="store_true",
        help="log each request (method, path, status, elapsed) and each webhook attempt",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m upscale_async.emulator",
        description="Run a local Upscale API emulator (both path generations under /api/v2).",
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    add("--port", type=int, default=8080, help="port to bind, 0 for a free one (default: 8080)")
    add(
        "--api-key",
        action="append",
        dest="api_keys",
        help=f"a valid key (repeatable; default: {DEFAULT_API_KEY})",
    )
    add(
        "--revoked-key",
        action="append",
        dest="revoked_keys",
        default=[],
        help="a revoked key (repeatable)",
    )
    add(
        "--credits",
        type=int,
        default=DEFAULT_CREDITS,
        help=f"credits per key; a request beyond them gets 402 (default: {DEFAULT_CREDITS})",
    )
    either = parser.add_mutually_exclusive_group()  # a secret, or no webhooks: not both
    either.add_argument(
        "--webhook-secret", default=DEFAULT_WEBHOOK_SECRET, help="whsec_ secret signing webhooks"
    )
    either.add_argument(
        "--no-webhooks", action="store_true", help="no webhook secret: send no webhooks"
    )
    add("--messages-per-second", type=float, default=0.0, help="generation rate (0 = instant)")
    add("--latency", type=float, default=0.0, help="seconds before a request starts generating")
    add(
        "--failure-rate", type=float, default=0.0, help="share of leads that cannot be personalised"
    )
    add("--seed", type=int, default=0, help="seed for failures, jitter and faults")
    add("--webhook-time-scale", type=float, default=1.0, help="multiplies the webhook retry delays")
    add("--max-leads-per-request", type=int, default=None, help="reject larger requests with 422")
    add("--max-body-size", type=int, default=None, help="reject larger bodies with 413 (bytes)")
    _add_safety_args(parser)
    add(
        "--legacy-campaign-name",
        action="store_true",
        help="do not require automation_tool_campaign_name (v1 requests)",
    )
    add("--allow-unknown-message-types", action="store_true", help="accept unknown messageTypes")
    add("--singular-counts", action="store_true", help="also emit *_message_count in retrieve")
    add(
        "--doc-examples",
        action="store_true",
        help="preload the documentation's retrieve example id (550e8400-...)",
    )
    return parser


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    extra = {} if args.max_body_size is None else {"max_body_size": args.max_body_size}
    return EmulatorConfig(
        host=args.host,
        port=args.port,
        api_keys=tuple(args.api_keys or (DEFAULT_API_KEY,)),
        revoked_keys=tuple(args.revoked_keys),
        credits=args.credits,
        webhook_secret=None if args.no_webhooks else args.webhook_secret,
        messages_per_second=args.messages_per_second,
        latency=args.latency,
        failure_rate=args.failure_rate,
        seed=args.seed,
        webhook_time_scale=args.webhook_time_scale,
        max_leads_per_request=args.max_leads_per_request,
        require_campaign_name=not args.legacy_campaign_name,
        allow_unknown_message_types=args.allow_unknown_message_types,
        emit_singular_counts=args.singular_counts,
        doc_examples=args.doc_examples,
        body_timeout=args.body_timeout,
        allow_external_webhooks=args.allow_external_webhooks,
        verbose=args.verbose,
        **extra,
    )


async def serve(config: EmulatorConfig) -> None:
    """Run until SIGINT or SIGTERM, printing where the emulator listens."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        async with Emulator(config) as emu:
            print(f"Upscale emulator listening on {emu.base_url}", flush=True)
            print(f"base_url: {emu.base_url}", flush=True)
            print(f"api_key: {emu.api_key}", flush=True)
            print(
                f"webhook_secret: {emu.webhook_secret or '(none: webhooks are not sent)'}",
                flush=True,
            )
            print("Press Ctrl-C to stop.", flush=True)
            await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # Warnings (refused webhooks) always reach stderr; --verbose adds a line per request.
    logging.basicConfig(
        level=logging.INFO if config.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        asyncio.run(serve(config))
    except OSError as exc:
        print(f"error: cannot listen on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 1
    print("Upscale emulator stopped.", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
