"""generate's on_accepted and accepted: journal what is accepted, await it in a later run."""

from __future__ import annotations

from pathlib import Path

from upscale_async import BatchJournal, BatchPolicy, PollPolicy, UpscaleClient
from upscale_async.emulator import Emulator

from .conftest import campaign, lead

POLL = PollPolicy(initial=0.05, factor=1.5, max_interval=0.2)


async def test_on_accepted_hears_every_request_before_its_leads_come_out(tmp_path: Path) -> None:
    """generate(on_accepted=journal.record) journals each request before its leads come out."""
    source = [lead(i) for i in range(30)]
    async with Emulator() as emu, UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
        with BatchJournal(tmp_path / "j") as journal:
            seen: list[int] = []
            async with client.generate(
                campaign(),
                source,
                poll=POLL,
                batch=BatchPolicy(chunk_size=10),
                on_accepted=journal.record,
            ) as outcomes:
                async for outcome in outcomes:
                    journaled = {i for r in journal.accepted for i in r.lead_ids}
                    seen.append(outcome.lead_id in journaled)
    assert len(seen) == 30
    assert all(seen)


async def test_accepted_requests_are_awaited_without_being_sent_again(tmp_path: Path) -> None:
    """generate(accepted=...) hands out the leads of earlier requests and posts nothing more."""
    source = [lead(i) for i in range(20)]
    async with Emulator() as emu, UpscaleClient(emu.api_key, base_url=emu.base_url) as client:
        batch = await client.submit_batch(campaign(), source, batch=BatchPolicy(chunk_size=10))
        posts = emu.state.endpoint_counts["request_message_generation"]
        async with client.generate(campaign(), [], poll=POLL, accepted=batch.accepted) as outcomes:
            got = [o async for o in outcomes]
        assert emu.state.endpoint_counts["request_message_generation"] == posts
    assert sorted(o.lead_id for o in got) == sorted(d["automation_tool_lead_id"] for d in source)
    assert {o.outcome for o in got} == {"generated"}
