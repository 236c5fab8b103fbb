"""The fault matrix: under each injected fault, a 10,000-lead batch loses no lead and charges none twice.

Set ``UPSCALE_RELIABILITY_REPORT=path.json`` to write the figures of every scenario (faults
injected, requests sent per chunk, losses, double charges) for the README.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from upscale_async import (
    BatchInterruptedError,
    BatchPolicy,
    BatchSubmission,
    PollPolicy,
    RetrievedMessages,
    RetryPolicy,
    StopReason,
    UpscaleClient,
)
from upscale_async.emulator import DeliveryPlan, Emulator, Fault, FaultPlan
from upscale_async.webhooks import CompletionHub, StandardWebhooksVerifier, WebhookReceiver

from ..integration.conftest import campaign, leads

N = 10_000
POLICY = BatchPolicy(chunk_size=100, concurrency=8)
RETRY = RetryPolicy(attempts=10, wait_initial=0.01, wait_max=0.1, wait_jitter=0.01)
REPORT: list[dict[str, Any]] = []


@pytest.fixture(scope="module", autouse=True)
def write_report() -> Iterator[None]:
    yield
    path = os.environ.get("UPSCALE_RELIABILITY_REPORT")
    if path:
        with open(path, "wb") as f:
            f.write(orjson.dumps(REPORT, option=orjson.OPT_INDENT_2))


def check_accounted(
    emu: Emulator, batch: BatchSubmission, results: list[RetrievedMessages]
) -> dict[str, int]:
    """Every lead exactly once, accepted, complete, and charged at most once per type."""
    fates = Counter(i for _, i in batch.accepted_lead_ids())
    assert sum(fates.values()) == N
    assert len(fates) == N
    assert batch.complete
    assert not batch.rejected
    assert all(r.is_complete for r in results)
    returned = Counter(lead.external_prospect_id for r in results for lead in r.leads)
    assert returned == fates
    assert not emu.state.double_charges()
    assert len(emu.state.charge_counts()) == N * 2
    return {
        "leads": N,
        "lost": N - len(returned),
        "double_charges": len(emu.state.double_charges()),
    }


SERVER_FAULTS = [
    pytest.param(
        "*",
        FaultPlan(rate=0.3, choices=(Fault.http(429, retry_after=0.02),), seed=1),
        {},
        id="429-storm-with-retry-after",
    ),
    pytest.param(
        "*",
        FaultPlan(
            script=[Fault.http(500), Fault.http(502), Fault.http(503)] * 3,
            rate=0.1,
            choices=(Fault.http(500), Fault.http(502), Fault.http(503)),
            seed=2,
        ),
        {},
        id="5xx-bursts",
    ),
    pytest.param(
        "*",
        FaultPlan(rate=0.1, choices=(Fault.drop_before(),), seed=3),
        {},
        id="dropped-before-processing",
    ),
    pytest.param(
        "*",
        FaultPlan(rate=0.1, choices=(Fault.drop_after(),), seed=4),
        {},
        id="dropped-after-processing",
    ),
    pytest.param(
        "request_message_generation",
        FaultPlan(rate=0.05, choices=(Fault.slow(0.8),), seed=5),
        {"timeout": 0.3},
        id="slower-than-the-timeout",
    ),
]


@pytest.mark.parametrize(("endpoint", "plan", "client_options"), SERVER_FAULTS)
async def test_server_faults(
    endpoint: str, plan: FaultPlan, client_options: dict[str, Any]
) -> None:
    """Each server fault: every lead accounted for exactly once, nothing charged twice."""
    async with Emulator(webhook_secret=None) as emu:
        emu.faults.set(endpoint, plan)
        async with UpscaleClient(
            emu.api_key, base_url=emu.base_url, retry=RETRY, **client_options
        ) as client:
            batch = await client.submit_batch(campaign(), leads(N), batch=POLICY)
            results = await client.await_completion(
                batch, poll=PollPolicy(initial=0.02, max_interval=0.1), timeout=120
            )
        figures = check_accounted(emu, batch, results)
        posts = emu.state.endpoint_counts["request_message_generation"]
        REPORT.append(
            {
                "scenario": plan_name(endpoint, plan, client_options),
                "faults_injected": len(emu.state.faults),
                "requests_per_chunk": round(posts / len(batch.accepted), 3),
                **figures,
            }
        )
        assert emu.state.faults  # the scenario really injected faults


def plan_name(endpoint: str, plan: FaultPlan, options: dict[str, Any]) -> str:
    kinds = sorted(
        {f"{f.kind}{f.status or ''}" for f in plan.choices + tuple(x for x in plan.script if x)}
    )
    return f"{endpoint}: {'+'.join(kinds)} rate={plan.rate} {options or ''}".strip()


WEBHOOK_FAULTS = [
    pytest.param(DeliveryPlan(drop_first=100, rate=0.3, seed=1), 0.3, id="webhooks-lost"),
    pytest.param(DeliveryPlan(duplicates=3), 30.0, id="webhooks-duplicated"),
    pytest.param(DeliveryPlan(drop_first=1, rate=0.5, seed=2), 30.0, id="webhooks-reordered"),
    pytest.param(DeliveryPlan(drop_first=2), 0.05, id="webhooks-delayed-past-the-fallback-poll"),
]


@pytest.mark.parametrize(("delivery", "fallback"), WEBHOOK_FAULTS)
async def test_webhook_faults(delivery: DeliveryPlan, fallback: float) -> None:
    """Lost, duplicated, reordered or late webhooks: every request still completes once."""
    hub = CompletionHub()
    async with Emulator(webhook_time_scale=0.01, webhook_attempts=4, deliveries=delivery) as emu:
        verifier = StandardWebhooksVerifier(emu.webhook_secret or "")
        async with (
            WebhookReceiver(hub, verifier=verifier) as receiver,
            UpscaleClient(emu.api_key, base_url=emu.base_url, retry=RETRY) as client,
        ):
            batch = await client.submit_batch(campaign(receiver.url), leads(N), batch=POLICY)
            poll = PollPolicy(initial=0.02, max_interval=0.2, fallback_interval=fallback)
            results = await client.await_completion(batch, hub=hub, poll=poll, timeout=120)
            await emu.wait_deliveries(10.0)
        figures = check_accounted(emu, batch, results)
        retrieves = emu.state.endpoint_counts["retrieve_messages"]
        outcomes = Counter(d.outcome for d in emu.state.deliveries)
        REPORT.append(
            {
                "scenario": f"webhooks: drop_first={delivery.drop_first} "
                f"duplicates={delivery.duplicates} rate={delivery.rate}",
                "faults_injected": outcomes["dropped"] + outcomes["duplicate"],
                "retrieves_per_request": round(retrieves / len(batch.accepted), 3),
                **figures,
            }
        )
        assert outcomes["dropped"] + outcomes["duplicate"] > 0
    assert (await hub.stats()).waiters == 0


async def test_down_service_retry_budget() -> None:
    """A service that is down: the breaker bounds requests per chunk and every lead is reported."""
    async with Emulator(webhook_secret=None) as emu:
        emu.faults.set("*", FaultPlan(rate=1.0, choices=(Fault.http(503),)))
        async with UpscaleClient(emu.api_key, base_url=emu.base_url, retry=RETRY) as client:
            with pytest.raises(BatchInterruptedError) as info:
                await client.submit_batch(campaign(), leads(N), batch=POLICY)
        posts = emu.state.endpoint_counts["request_message_generation"]
    chunks = N // 100
    batch = info.value.partial
    assert info.value.reason is StopReason.SERVICE_UNAVAILABLE
    assert batch.stopped_by == "service_unavailable"
    assert batch.failed_count + batch.not_submitted_count == N
    assert posts <= (8 + 3) * RETRY.attempts
    REPORT.append(
        {
            "scenario": "service down (every POST 503)",
            "faults_injected": posts,
            "requests_per_chunk": round(posts / chunks, 3),
            "leads": N,
            "lost": N - batch.failed_count - batch.not_submitted_count,
            "double_charges": 0,
        }
    )
