"""generate: every outcome that is not ``generated`` carries its lead, as it was given.

So that the leads not generated can be sent again (the CLI writes ``lead`` into its results
file), and without the pipeline holding every accepted lead until the end.
"""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from upscale_async import (
    BatchJournal,
    BatchPolicy,
    Lead,
    LeadOutcome,
    NotFoundError,
    PollPolicy,
    RetryPolicy,
    UpscaleClient,
)
from upscale_async.emulator import Emulator, Fault

from .conftest import FAST_RETRY, campaign, lead

FAST_POLL = PollPolicy(initial=0.02, factor=1.5, max_interval=0.2)


def lid(given: Any) -> str:
    return str(given["automation_tool_lead_id"])


async def test_a_lead_upscale_could_not_personalise_comes_out_with_its_lead() -> None:
    """A ``_nowebpresence`` lead is failed in the answer; its outcome carries the lead given."""
    source = [lead(i) for i in range(6)]
    source[1]["first_name"] = ""  # rejected: the chunk's leads as sent are not its leads given
    source[4]["automation_tool_lead_id"] = "lead_000004_nowebpresence"
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            async with client.generate(
                campaign(), iter(source), poll=FAST_POLL, batch=BatchPolicy(chunk_size=3)
            ) as outcomes:
                found = {o.lead_id: o async for o in outcomes}
    failed = found["lead_000004_nowebpresence"]
    assert failed.outcome == "failed"
    assert failed.lead is source[4]
    assert found[lid(source[1])].lead is source[1]  # rejected: as before
    generated = [o for o in found.values() if o.outcome == "generated"]
    assert len(generated) == 4
    assert all(o.lead is None for o in generated)


async def test_a_lead_object_not_personalised_comes_out_as_the_same_object() -> None:
    """Leads given as Lead objects come back as those objects, not as their wire dicts."""
    data = lead(2)
    data["automation_tool_lead_id"] = "lead_000002_nowebpresence"
    source = [Lead.from_mapping(lead(1)), Lead.from_mapping(data)]
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            async with client.generate(campaign(), source, poll=FAST_POLL) as outcomes:
                found = {o.lead_id: o async for o in outcomes}
    assert found["lead_000002_nowebpresence"].outcome == "failed"
    assert found["lead_000002_nowebpresence"].lead is source[1]
    assert found[lid(lead(1))].outcome == "generated"


async def test_a_timed_out_lead_comes_out_with_its_lead() -> None:
    """Leads of a request not complete by the deadline come out as timed_out with their lead."""
    source = [lead(1), lead(2), lead(3)]
    async with Emulator(webhook_secret=None, latency=30.0) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            async with client.generate(
                campaign(),
                iter(source),
                poll=FAST_POLL,
                batch=BatchPolicy(chunk_size=2),
                timeout=0.4,
            ) as outcomes:
                found = {o.lead_id: o async for o in outcomes}
    assert [o.outcome for o in found.values()] == ["timed_out"] * 3
    for given in source:
        assert found[lid(given)].lead is given


async def test_a_lead_whose_wait_failed_comes_out_with_its_lead() -> None:
    """A request whose wait failed (a 404) hands out each of its leads as failed, with it."""
    source = [lead(1), lead(2)]
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url, retry=FAST_RETRY) as client:
            emu.faults.set("retrieve_messages", [Fault.http(404)])
            async with client.generate(campaign(), source, poll=FAST_POLL, timeout=10) as out:
                found = [outcome async for outcome in out]
    assert [o.outcome for o in found] == ["failed", "failed"]
    assert all(isinstance(o.error, NotFoundError) for o in found)
    assert [o.lead for o in found] == source
    assert found[0].lead is source[0]


async def test_a_lead_whose_chunk_failed_at_submit_comes_out_with_its_lead() -> None:
    """A chunk that failed at submit (after retries) hands out its leads with them."""
    source = [lead(1), lead(2)]
    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(
            emu.api_key, base_url=emu.base_url, retry=RetryPolicy(attempts=1)
        ) as client:
            emu.faults.set("request_message_generation", [Fault.http(500)])
            async with client.generate(
                campaign(),
                source,
                poll=FAST_POLL,
                batch=BatchPolicy(chunk_size=1, concurrency=1),
                timeout=10,
            ) as outcomes:
                found = {o.lead_id: o async for o in outcomes}
    assert found[lid(source[0])].outcome == "submit_failed"
    assert found[lid(source[0])].lead is source[0]
    assert found[lid(source[1])].outcome == "generated"
    assert found[lid(source[1])].lead is None


async def test_a_chunk_the_ledger_holds_comes_out_with_its_leads(tmp_path: Path) -> None:
    """With ledger=, a chunk accepted in an earlier run is awaited; its leads come out with it."""
    source = [lead(i) for i in range(4)]
    async with Emulator(webhook_secret=None, latency=30.0) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            with BatchJournal(tmp_path / "j") as journal:
                policy = BatchPolicy(chunk_size=2)
                await client.submit_batch(campaign(), source[:2], batch=policy, ledger=journal)
                posts = emu.state.endpoint_counts["request_message_generation"]
                async with client.generate(
                    campaign(), source, poll=FAST_POLL, batch=policy, ledger=journal, timeout=0.4
                ) as outcomes:
                    found = {o.lead_id: o async for o in outcomes}
            assert emu.state.endpoint_counts["request_message_generation"] == posts + 1
    assert [o.outcome for o in found.values()] == ["timed_out"] * 4
    for given in source:
        assert found[lid(given)].lead is given


async def test_a_request_given_as_accepted_comes_out_without_leads() -> None:
    """accepted= requests of an earlier run: their leads were not given to this run (None)."""
    async with Emulator(webhook_secret=None, latency=30.0) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            batch = await client.submit_batch(campaign(), [lead(1)])
            async with client.generate(
                campaign(), [], poll=FAST_POLL, accepted=batch.accepted, timeout=0.3
            ) as outcomes:
                [found] = [o async for o in outcomes]
    assert (found.outcome, found.lead_id, found.lead) == ("timed_out", lid(lead(1)), None)


class _Traced(dict[str, Any]):
    """A lead a weak reference can follow (a plain dict cannot be)."""


async def test_the_leads_of_requests_handed_out_are_not_kept() -> None:
    """Once a request's outcomes are out, the pipeline holds none of its leads."""
    alive: list[weakref.ref[_Traced]] = []

    def source() -> Iterator[_Traced]:
        for i in range(300):
            item = _Traced(lead(i))
            if i % 50 == 7:
                item["automation_tool_lead_id"] = f"lead_{i:06d}_nowebpresence"
            alive.append(weakref.ref(item))
            yield item

    async with Emulator(webhook_secret=None) as emu:
        async with UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
            async with client.generate(
                campaign(), source(), poll=FAST_POLL, batch=BatchPolicy(chunk_size=10)
            ) as outcomes:
                kinds: dict[str, int] = {}
                failed: list[LeadOutcome] = []
                async for outcome in outcomes:
                    kinds[outcome.outcome] = kinds.get(outcome.outcome, 0) + 1
                    if outcome.outcome == "failed":
                        failed.append(outcome)  # these keep their leads, through the outcome
                gc.collect()
                assert sum(ref() is not None for ref in alive) == len(failed)
    assert kinds == {"generated": 294, "failed": 6}
    assert all(isinstance(o.lead, _Traced) for o in failed)
