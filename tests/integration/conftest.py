"""Fixtures for SDK-against-emulator tests over real loopback HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from upscale_async import Campaign, MessageType, RetryPolicy
from upscale_async.testing import iter_sample_leads, make_campaign, sample_lead

FAST_RETRY = RetryPolicy(attempts=6, wait_initial=0.01, wait_max=0.05, wait_jitter=0.01)


def campaign(
    url: str = "http://127.0.0.1:9/unused",
    types: tuple[str, ...] = (MessageType.CONNECTION_REQUEST, MessageType.FIRST_FOLLOW_UP),
) -> Campaign:
    return make_campaign(completion_notification_url=url, message_types=types)


def lead(i: int, prefix: str = "lead") -> dict[str, Any]:
    """Lead ``i``, id ``f"{prefix}_{i:06d}"``."""
    return sample_lead(i, prefix=prefix)


def leads(n: int, prefix: str = "lead") -> Iterator[dict[str, Any]]:
    """A generator: the batch must pull it lazily."""
    return iter_sample_leads(n, prefix=prefix)
