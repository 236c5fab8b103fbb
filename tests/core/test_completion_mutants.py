"""The polling and hub loops of ``_completion.py`` against fakes: the waits they choose.

Mutation testing showed that no test pinned down the jitter range, the backoff's poll count,
or that a hub timeout goes back to the hub (not to polling); these tests do, without a network
(a fake API answering "in progress" a given number of times, and a fake hub).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import attrs
import pytest

from upscale_async import CompletionEvent, PollPolicy, Telemetry, TransportError
from upscale_async._completion import _Completion, await_completion


@attrs.define
class Answer:
    """What _Completion reads of a retrieve answer."""

    is_complete: bool


class FakeApi:
    """retrieve() answers "in progress" ``pending`` times, then "complete"."""

    def __init__(self, pending: int) -> None:
        self.pending = pending
        self.calls = 0

    async def retrieve(self, secure_request_id: str) -> Answer:
        self.calls += 1
        return Answer(is_complete=self.calls > self.pending)


class FlakyApi(FakeApi):
    """retrieve() fails once (after its retries, as the client would raise), then completes."""

    async def retrieve(self, secure_request_id: str) -> Answer:
        self.calls += 1
        if self.calls == 1:
            raise TransportError("connection failed: down", method="GET", path="/r")
        return Answer(is_complete=True)


class FakeHub:
    """wait() times out the first ``timeouts`` times, then returns an event at once."""

    def __init__(self, timeouts: int) -> None:
        self.timeouts = timeouts
        self.calls = 0

    async def wait(self, secure_request_id: str, timeout: float | None = None) -> CompletionEvent:
        self.calls += 1
        if self.calls <= self.timeouts:
            raise TimeoutError
        return CompletionEvent(secure_request_id=secure_request_id, status="complete")


def completion(api: Any, poll: PollPolicy, hub: Any = None) -> _Completion:
    return _Completion(api, hub=hub, poll=poll)


def test_the_jitter_spreads_each_wait_both_ways_within_its_bound() -> None:
    """With jitter 0.5 the first wait is spread over [0.5, 1.5] x initial, on both sides."""
    waiter = completion(FakeApi(0), PollPolicy(initial=1.0, jitter=0.5))
    waiter.random = random.Random(1234)
    waits = [waiter._interval(1) for _ in range(2_000)]
    assert all(0.5 <= w <= 1.5 for w in waits)
    assert min(waits) < 0.55
    assert max(waits) > 1.45


async def test_polling_backs_off_one_step_per_poll() -> None:
    """Without a hub the waits before successive polls are initial, x factor, x factor^2..."""
    api = FakeApi(pending=3)
    waiter = completion(api, PollPolicy(initial=0.001, factor=2.0, max_interval=1.0, jitter=0.0))
    waits: list[float] = []
    interval = waiter._interval

    def recorded(poll: int) -> float:
        waits.append(interval(poll))
        return waits[-1]

    waiter._interval = recorded  # type: ignore[method-assign]
    with anyio.fail_after(5):
        result = await waiter.wait_one("req-1")
    assert result.is_complete
    assert api.calls == 4
    assert waits == [0.001, 0.002, 0.004, 0.008]


async def test_a_hub_timeout_goes_back_to_the_hub_not_to_polling() -> None:
    """After the hub's fallback timeout (and an unfinished retrieve) the hub is waited on again."""
    api = FakeApi(pending=1)
    hub = FakeHub(timeouts=1)
    slow = PollPolicy(initial=30.0, max_interval=30.0, fallback_interval=30.0)
    waiter = completion(api, slow, hub)
    with anyio.fail_after(5):  # polling would first wait about 30 s
        result = await waiter.wait_one("req-1")
    assert result.is_complete
    assert (hub.calls, api.calls) == (2, 2)


async def test_a_failed_poll_is_logged_with_the_id_and_the_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A poll that failed after retries is logged (id and error) and polled again."""
    api = FlakyApi(pending=0)
    waiter = completion(api, PollPolicy(initial=0.001, jitter=0.0))
    with caplog.at_level(logging.WARNING, logger="upscale_async"), anyio.fail_after(5):
        result = await waiter.wait_one("req-1")
    assert result.is_complete
    assert api.calls == 2
    [record] = [r for r in caplog.records if r.name == "upscale_async"]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "polling req-1 failed after retries, will poll again: connection failed: down (GET /r)"
    )


async def test_await_completion_waits_through_the_hub() -> None:
    """await_completion(hub=) is woken by the hub, long before its first poll would be due."""
    api = FakeApi(pending=0)
    hub = FakeHub(timeouts=0)
    slow = PollPolicy(initial=30.0, max_interval=30.0, fallback_interval=30.0)
    with anyio.fail_after(5):  # polling would first wait about 30 s
        results = await await_completion(
            api,  # type: ignore[arg-type]
            ["req-1", "req-2"],
            hub=hub,
            poll=slow,
            timeout=20,
        )
    assert [r.is_complete for r in results] == [True, True]
    assert hub.calls == 2


class Recording(Telemetry):
    """A Telemetry that records the waits and the fallback finds it hears of."""

    def __init__(self) -> None:
        self.waits: list[str] = []
        self.found: list[str] = []

    @contextmanager
    def wait(self, secure_request_id: str) -> Iterator[None]:
        self.waits.append(secure_request_id)
        yield

    def fallback_poll_found(self, secure_request_id: str) -> None:
        self.found.append(secure_request_id)


class TelemetryApi(FakeApi):
    """A FakeApi with telemetry, as the client's Api has when given one."""

    def __init__(self, pending: int, telemetry: Telemetry) -> None:
        super().__init__(pending)
        self.telemetry = telemetry


async def test_a_fallback_poll_that_finds_the_request_complete_is_logged_and_counted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The hub timed out and the fallback retrieve says complete: a debug line and telemetry."""
    telemetry = Recording()
    api = TelemetryApi(0, telemetry)
    hub = FakeHub(timeouts=1)
    poll = PollPolicy(initial=30.0, max_interval=30.0, fallback_interval=7.5)
    waiter = completion(api, poll, hub)
    with caplog.at_level(logging.DEBUG, logger="upscale_async"), anyio.fail_after(5):
        result = await waiter.wait_one("req-9")
    assert result.is_complete
    assert (hub.calls, api.calls) == (1, 1)
    assert telemetry.waits == ["req-9"]
    assert telemetry.found == ["req-9"]
    [record] = [r for r in caplog.records if "fallback poll" in r.getMessage()]
    assert record.levelno == logging.DEBUG
    assert record.getMessage() == (
        "the fallback poll found req-9 complete: no webhook for it came within 7.5 s"
    )
    assert record.secure_request_id == "req-9"  # type: ignore[attr-defined]


async def test_a_hub_wake_up_is_not_a_fallback_find() -> None:
    """Woken by the hub, the wait is measured but no fallback find is reported."""
    telemetry = Recording()
    api = TelemetryApi(0, telemetry)
    waiter = completion(api, PollPolicy(fallback_interval=7.5), FakeHub(timeouts=0))
    with anyio.fail_after(5):
        result = await waiter.wait_one("req-1")
    assert result.is_complete
    assert telemetry.waits == ["req-1"]
    assert telemetry.found == []
