"""OpenTelemetry for upscale_async (the ``otel`` extra): spans and metrics through your providers.

``pip install 'upscale_async[otel]'`` installs ``opentelemetry-api`` only; the SDK and exporters
stay your choice. Nothing here is imported unless you import this module, and a client made
without ``telemetry=`` never calls it. Pass one :class:`OpenTelemetry` to the client and, for
the webhook counts, to the receiver::

    from upscale_async.otel import OpenTelemetry

    telemetry = OpenTelemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)
    async with UpscaleClient(telemetry=telemetry) as client: ...
    WebhookReceiver(hub, verifier=verifier, telemetry=telemetry)

The spans and metrics are listed on :class:`OpenTelemetry`.
"""

from ._otel import OpenTelemetry

__all__ = ["OpenTelemetry"]

OpenTelemetry.__module__ = __name__
