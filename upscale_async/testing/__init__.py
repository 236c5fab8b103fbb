"""Helpers for testing code that talks to Upscale: a running emulator, sample data, signed webhooks.

- :class:`EmulatorThread` runs the emulator on its own thread and event loop, for sync and async
  tests alike; the pytest plugin (``upscale_async.testing.pytest_plugin``, installed as a
  ``pytest11`` entry point) wraps it as the ``upscale_emulator`` fixture::

      def test_generate(upscale_emulator):
          client = UpscaleClient(upscale_emulator.api_key, base_url=upscale_emulator.base_url)
          ...

      @pytest.mark.upscale_emulator(credits=5, messages_per_second=100)
      async def test_small_account(upscale_emulator): ...

- :func:`sample_campaign` / :func:`sample_lead` / :func:`sample_leads` / :func:`iter_sample_leads`
  build deterministic sample data with the wire keys (the API documentation's example values),
  and :func:`make_campaign` / :func:`make_leads` the same as models::

      batch = await client.submit_batch(make_campaign(), iter_sample_leads(10_000))

- :func:`signed_webhook` / :func:`signed_webhook_headers` sign a body the way the emulator
  (Standard Webhooks, D9) does, for tests of your own webhook receiver.

Importing this package imports neither pytest nor the emulator until they are used.
"""

from ._factories import (
    iter_sample_leads,
    make_campaign,
    make_leads,
    sample_campaign,
    sample_lead,
    sample_leads,
)
from ._thread import EmulatorThread
from ._webhooks import signed_webhook, signed_webhook_headers

__all__ = [
    "EmulatorThread",
    "iter_sample_leads",
    "make_campaign",
    "make_leads",
    "sample_campaign",
    "sample_lead",
    "sample_leads",
    "signed_webhook",
    "signed_webhook_headers",
]

for _name in __all__:
    globals()[_name].__module__ = __name__
del _name
