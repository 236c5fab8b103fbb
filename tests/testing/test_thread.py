"""EmulatorThread's lifecycle (start, stop, start again) and reads of its state from the test."""

from __future__ import annotations

import gc
import json
import sys
import threading
import time
import urllib.request
import warnings
from collections.abc import Callable, Iterator

import pytest

from upscale_async.emulator import Fault
from upscale_async.testing import EmulatorThread

from ..emulator.support import GENERATE, make_body


def get_status(url: str, key: str) -> int:
    request = urllib.request.Request(url, headers={"Api-Key": key})
    with urllib.request.urlopen(request, timeout=5) as response:
        return int(response.status)


def post_json(url: str, key: str, body: object) -> int:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Api-Key": key, "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


@pytest.fixture
def frequent_thread_switches() -> Iterator[None]:
    """Switch threads every 10 µs (not 5 ms), so a read interleaves with the emulator's writes."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(interval)


@pytest.mark.usefixtures("frequent_thread_switches")
def test_state_reads_from_the_test_thread_while_the_emulator_charges() -> None:
    """The state's query methods never see a container change under them.

    A thread posts 6 bodies of 600 leads (7,200 charges) while this one calls every query
    method in a loop; iterating the live ``charges`` Counter failed with "dictionary changed
    size during iteration".
    """
    errors: list[str] = []
    with EmulatorThread(credits=100_000, webhook_secret=None) as running:
        state, posted = running.state, threading.Event()
        statuses: list[int] = []

        def post_bodies() -> None:
            try:
                for n in range(6):
                    body = make_body(600, prefix=f"race{n}")
                    statuses.append(post_json(running.base_url + GENERATE, running.api_key, body))
            finally:
                posted.set()

        writer = threading.Thread(target=post_bodies, name="test-writer", daemon=True)
        writer.start()
        reads: list[Callable[[], object]] = [
            state.charge_counts,
            state.double_charges,
            state.body_posts,
            lambda: state.deliveries_for("none"),
            state.credits_used,
        ]
        deadline = time.monotonic() + 60
        while not posted.is_set() and time.monotonic() < deadline and len(errors) < 10:
            for read in reads:
                try:
                    read()
                except RuntimeError as exc:
                    errors.append(repr(exc))
        writer.join(60)
        assert not writer.is_alive()
        assert statuses == [200] * 6
        assert state.credits_used() == 6 * 600 * 2
        assert state.double_charges() == []
    assert errors == []


def test_a_stopped_thread_starts_a_new_emulator_and_waits_for_it() -> None:
    """start() after stop() runs a new emulator, listening when start() returns."""
    running = EmulatorThread(credits=10)
    running.start()
    try:
        first = running.emulator
        running.add_credits(5)
        running.stop()
        running.start()
        assert running.emulator is not first
        assert running.state.credits() == 10  # a fresh state, not the stopped one's 15
        assert get_status(running.base_url + "/account", running.api_key) == 200
    finally:
        running.stop()


def test_a_thread_can_start_again_after_failing_to_start() -> None:
    """A start() that failed leaves nothing behind: the next start() tries again."""
    running = EmulatorThread(credits=-1)
    for _ in range(2):
        with pytest.raises(RuntimeError, match="failed to start"):
            running.start()
    assert repr(running) == "<EmulatorThread not running>"


def test_a_stopped_thread_refuses_use_with_a_clear_error() -> None:
    """After stop() the handles and the methods raise RuntimeError, and leave no coroutine."""
    running = EmulatorThread()
    with running:
        assert running.base_url.startswith("http://127.0.0.1:")
    assert repr(running) == "<EmulatorThread not running>"
    uses: list[Callable[[], object]] = [
        lambda: running.emulator,
        lambda: running.base_url,
        lambda: running.state,
        lambda: running.add_credits(5),
        lambda: running.faults.set("account", [Fault.http(500)]),
        lambda: running.wait_deliveries(1),
        lambda: running.call(print, "never"),
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a coroutine never awaited would fail here
        for use in uses:
            with pytest.raises(RuntimeError, match="not running: start\\(\\) it first"):
                use()
        gc.collect()


def test_a_thread_never_started_refuses_use_with_a_clear_error() -> None:
    """Before start() the same clear error, not a failure of the event loop."""
    running = EmulatorThread()
    with pytest.raises(RuntimeError, match="not running: start\\(\\) it first"):
        running.wait_deliveries(1)
    with pytest.raises(RuntimeError, match="not running: start\\(\\) it first"):
        running.add_credits(1)
