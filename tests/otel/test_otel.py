"""upscale_async.otel: the documented spans and metrics, read with the SDK's in-memory exporters."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from aiohttp import web

pytest.importorskip("opentelemetry.sdk", reason="the otel tests need opentelemetry-sdk (dev)")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from upscale_async import (
    BatchPolicy,
    NotFoundError,
    PollPolicy,
    ResponseValidationError,
    RetryPolicy,
    UpscaleClient,
)
from upscale_async.emulator import DeliveryPlan, Emulator, Fault, FaultPlan
from upscale_async.otel import OpenTelemetry
from upscale_async.testing import sample_campaign, sample_leads
from upscale_async.webhooks import CompletionHub, StandardWebhooksVerifier, WebhookReceiver

POST = "POST /messages/request_message_generation"
GET = "GET /messages/retrieve_messages"


class Recorded:
    """An OpenTelemetry with in-memory span and metric exporters."""

    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])
        self.telemetry = OpenTelemetry(
            tracer_provider=tracer_provider, meter_provider=self.meter_provider
        )

    def finished(self) -> tuple[ReadableSpan, ...]:
        return self.spans.get_finished_spans()

    def names(self) -> Counter[str]:
        return Counter(span.name for span in self.finished())

    def points(self) -> dict[str, list[Any]]:
        """Metric name -> its data points (sums and histograms)."""
        data = self.reader.get_metrics_data()
        out: dict[str, list[Any]] = {}
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    out.setdefault(metric.name, []).extend(metric.data.data_points)
        return out

    def total(self, name: str, **attributes: Any) -> float:
        """The sum of a counter's points whose attributes include ``attributes``."""
        return sum(
            p.value
            for p in self.points().get(name, [])
            if all(p.attributes.get(k) == v for k, v in attributes.items())
        )


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    r = Recorded()
    yield r
    r.meter_provider.shutdown()


async def test_a_1000_lead_generate_has_the_documented_spans_and_metrics(
    recorded: Recorded,
) -> None:
    """1,000 leads in 10 chunks by webhook: 1 batch, 10 chunks, 10 POSTs, 10 waits, 10 GETs."""
    hub = CompletionHub()
    async with (
        Emulator(credits=10_000) as emu,
        hub,
        WebhookReceiver(
            hub,
            verifier=StandardWebhooksVerifier(emu.webhook_secret or ""),
            telemetry=recorded.telemetry,
        ) as rx,
        UpscaleClient(emu.api_key, base_url=emu.base_url, telemetry=recorded.telemetry) as client,
    ):
        campaign = sample_campaign(completion_notification_url=rx.url)
        outcomes: Counter[str] = Counter()
        with anyio.fail_after(60):
            async with client.generate(
                campaign,
                sample_leads(1000),
                hub=hub,
                batch=BatchPolicy(chunk_size=100, concurrency=4),
                poll=PollPolicy(fallback_interval=30),
            ) as results:
                async for outcome in results:
                    outcomes[outcome.outcome] += 1
        await emu.wait_deliveries(timeout=10)
    assert outcomes == {"generated": 1000}
    spans = recorded.finished()
    assert recorded.names() == {
        "upscale.batch": 1,
        "upscale.chunk": 10,
        POST: 10,
        "upscale.wait": 10,
        GET: 10,
    }
    by_id = {span.context.span_id: span for span in spans}
    [batch] = [s for s in spans if s.name == "upscale.batch"]
    assert batch.attributes is not None
    assert batch.attributes["upscale.batch.leads"] == 1000
    for span in spans:
        parent = by_id.get(span.parent.span_id) if span.parent else None
        if span.name == "upscale.chunk":
            assert parent is batch
        elif span.name == POST:
            assert parent is not None
            assert parent.name == "upscale.chunk"
            assert span.attributes is not None
            assert span.attributes["http.response.status_code"] == 200
            assert span.attributes["upscale.attempts"] == 1
        elif span.name == GET:
            assert parent is not None
            assert parent.name == "upscale.wait"
    assert recorded.total("upscale.client.requests") == 20
    assert recorded.total("upscale.client.requests", **{"http.request.method": "POST"}) == 10
    assert recorded.total("upscale.leads", **{"upscale.lead.outcome": "generated"}) == 1000
    assert recorded.total("upscale.webhooks.received") == 10
    assert recorded.total("upscale.webhooks.duplicate") == 0
    assert recorded.total("upscale.client.retries") == 0
    assert recorded.total("upscale.completion.fallback_polls") == 0
    [duration] = recorded.points()["upscale.client.request.duration"][:1]
    assert duration.count > 0


async def test_retries_429s_and_fallback_polls_are_recorded(recorded: Recorded) -> None:
    """A 429 then a 200: a retry event and counts; a lost webhook found by the fallback poll."""
    hub = CompletionHub()
    async with (
        Emulator() as emu,
        hub,
        WebhookReceiver(hub, verifier=StandardWebhooksVerifier(emu.webhook_secret or "")) as rx,
        UpscaleClient(
            emu.api_key,
            base_url=emu.base_url,
            telemetry=recorded.telemetry,
            retry=RetryPolicy(time_scale=0.0),
        ) as client,
    ):
        emu.faults.set("request_message_generation", FaultPlan(script=[Fault.http(429)]))
        emu.set_delivery_plan(DeliveryPlan(drop_first=100))  # every webhook lost
        accepted = await client.request_message_generation(
            sample_campaign(completion_notification_url=rx.url), sample_leads(3)
        )
        with anyio.fail_after(20):
            [result] = await client.await_completion(
                accepted.secure_request_id, hub=hub, poll=PollPolicy(fallback_interval=0.2)
            )
    assert result.is_complete
    [post] = [s for s in recorded.finished() if s.name == POST]
    assert [e.name for e in post.events] == ["retry"]
    assert post.events[0].attributes is not None
    assert post.events[0].attributes["error.type"] == "RateLimitError"
    assert post.attributes is not None
    assert post.attributes["upscale.attempts"] == 2
    assert post.attributes["upscale.secure_request_id"] == accepted.secure_request_id
    assert recorded.total("upscale.client.retries") == 1
    assert recorded.total("upscale.client.rate_limited") == 1
    assert recorded.total("upscale.client.requests", **{"http.response.status_code": 429}) == 1
    assert recorded.total("upscale.completion.fallback_polls") == 1


async def test_a_200_with_an_unreadable_body_counts_its_status_and_its_error(
    recorded: Recorded,
) -> None:
    """A 200 that is not JSON: status_code 200 and error.type ResponseValidationError (not
    no_response); a 404 keeps its status alone."""

    async def handler(request: web.Request) -> web.Response:
        if request.path.endswith("/account"):
            return web.Response(status=200, text="<html>oops</html>", content_type="text/html")
        return web.json_response({"error": "not found"}, status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)  # a free loopback port the OS picks
        await site.start()
        base = f"http://127.0.0.1:{runner.addresses[0][1]}/api/v2"
        async with UpscaleClient("k", base_url=base, telemetry=recorded.telemetry) as client:
            with pytest.raises(ResponseValidationError):
                await client.get_account()
            with pytest.raises(NotFoundError):
                await client.retrieve_messages("missing")
    finally:
        await runner.cleanup()
    points = {
        p.attributes["url.path"]: dict(p.attributes)
        for p in recorded.points()["upscale.client.requests"]
    }
    assert points["/account"] == {
        "http.request.method": "GET",
        "url.path": "/account",
        "http.response.status_code": 200,
        "error.type": "ResponseValidationError",
    }
    assert points["/messages/retrieve_messages"] == {
        "http.request.method": "GET",
        "url.path": "/messages/retrieve_messages",
        "http.response.status_code": 404,
    }
    [account] = [s for s in recorded.finished() if s.name == "GET /account"]
    assert account.status.status_code.name == "ERROR"


def test_the_default_client_never_imports_opentelemetry() -> None:
    """A client made without telemetry= imports no opentelemetry module (checked in a child)."""
    import subprocess
    import sys

    code = (
        "import sys, upscale_async, upscale_async.webhooks\n"
        "c = upscale_async.UpscaleClient('k', base_url='http://127.0.0.1:1')\n"
        "print([m for m in sys.modules if m.startswith('opentelemetry')])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_without_opentelemetry_the_import_error_names_the_extra() -> None:
    """Importing upscale_async.otel without opentelemetry-api says to install the 'otel' extra."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None\n"
        "try:\n"
        "    import upscale_async.otel\n"
        "except ImportError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert "pip install 'upscale_async[otel]'" in out.stdout
