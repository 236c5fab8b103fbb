"""A batch pipeline: leads CSV in, JSONL of messages out, resumable after running out of credits.

    python examples/batch_pipeline.py examples/leads_sample.csv --out results.jsonl
    # against Upscale, after a 402: buy credits, then
    python examples/batch_pipeline.py examples/leads_sample.csv --out results.jsonl --resume

Each run saves what the batch did with every lead (``BatchSubmission.to_json()``) next to the
output. When credits run out (402) the batch stops starting chunks and hands back the rest as
``not_submitted``; ``--resume`` submits just those. With the local emulator (no
UPSCALE_API_KEY) the emulator starts with too few credits, so the run hits the 402, "buys"
credits and resumes by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import IO, Any

from upscale_async import (
    BatchInterruptedError,
    BatchPolicy,
    BatchSubmission,
    PollPolicy,
    UpscaleClient,
)

OPTIONAL = ("lead_company_website_url", "lead_specified_url")


def read_leads(path: Path) -> Iterator[dict[str, Any]]:
    """Leads from a CSV whose header is the lead wire names, one row at a time."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        for row in csv.DictReader(f):
            yield {k: (v or None) if k in OPTIONAL else v for k, v in row.items()}


def save(state: Path, batch: BatchSubmission) -> None:
    state.write_text(batch.to_json(), encoding="utf-8")


def write(out: IO[str], **record: Any) -> None:
    out.write(json.dumps(record) + "\n")


async def run(
    client: UpscaleClient, campaign: dict[str, Any], leads: Any, out: IO[str], state: Path
) -> BatchSubmission:
    """Submit, save the state, await completion and append one JSON line per lead."""
    try:
        batch = await client.submit_batch(
            campaign, leads, batch=BatchPolicy(chunk_size=50, concurrency=4)
        )
    except BatchInterruptedError as stopped:
        # Credits ran out, the key failed, the service looks down...: every lead is still
        # accounted for in `partial`; wait for what was accepted, resume the rest later.
        print(f"stopped early ({stopped.reason}): {stopped.__cause__}")
        batch = stopped.partial
    save(state, batch)  # persist before waiting: a crash loses nothing
    for rejected in batch.rejected:
        write(out, lead_id=rejected.lead_id, outcome="rejected", errors=rejected.messages)
    poll = PollPolicy(initial=0.5, max_interval=30)
    for result in await client.await_completion(batch, poll=poll, timeout=3600):
        for lead in result.leads:
            write(
                out,
                lead_id=lead.external_prospect_id,
                outcome="generated" if lead.has_messages else "failed",
                secure_request_id=result.secure_request_id,
                messages=lead.messages,
            )
    out.flush()
    counts = batch.counts()
    print(
        f"accepted {counts['accepted']}, rejected {counts['rejected']}, "
        f"failed {counts['failed']}, not submitted {counts['not_submitted']}"
        + (f" (stopped by {batch.stopped_by})" if batch.stopped_by else "")
    )
    return batch


async def main(args: argparse.Namespace) -> int:
    campaign = json.loads(args.campaign.read_text())
    state = args.out.with_suffix(".batch.json")
    api_key, base_url, emu = args.api_key, args.base_url, None
    async with AsyncExitStack() as stack:
        if not (api_key or os.environ.get("UPSCALE_API_KEY")):
            from upscale_async.emulator import Emulator

            # 300 credits cannot pay for ~550 messages: the first pass stops on a 402.
            emu = await stack.enter_async_context(
                Emulator(credits=300, webhook_secret=None, latency=0.2, messages_per_second=2000)
            )
            api_key, base_url = emu.api_key, emu.base_url
            print(f"no UPSCALE_API_KEY: using a local emulator at {base_url} (300 credits)")
        client = await stack.enter_async_context(UpscaleClient(api_key, base_url=base_url))

        if args.resume:
            leads: Any = BatchSubmission.from_json(state.read_bytes()).not_submitted
            mode = "a"
        else:
            leads, mode = read_leads(args.leads), "w"
        with args.out.open(mode, encoding="utf-8") as out:
            batch = await run(client, campaign, leads, out, state)
            while batch.not_submitted and emu is not None:
                print(f"out of credits: buying more, resuming {len(batch.not_submitted)} leads")
                emu.add_credits(1000)
                saved = BatchSubmission.from_json(state.read_bytes())  # as a new process would
                batch = await run(client, campaign, saved.not_submitted, out, state)
    if batch.not_submitted:
        print(
            f"{len(batch.not_submitted)} leads not submitted ({batch.stopped_by}); state in "
            f"{state}: fix the cause, then run again with --resume"
        )
        return 3
    print(f"done: results in {args.out}")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("leads", type=Path, help="CSV with the lead wire names as header")
    here = Path(__file__).parent
    parser.add_argument("--campaign", type=Path, default=here / "campaign.json")
    parser.add_argument("--out", type=Path, default=Path("results.jsonl"))
    parser.add_argument("--resume", action="store_true", help="submit the saved not_submitted")
    parser.add_argument("--api-key", help="default: $UPSCALE_API_KEY (else a local emulator)")
    parser.add_argument("--base-url", help="default: $UPSCALE_BASE_URL (else Upscale)")
    raise SystemExit(asyncio.run(main(parser.parse_args())))
