"""The pytest plugin (``upscale_emulator`` fixture) and the webhook signing helpers."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import aiohttp
import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from upscale_async.emulator import DEFAULT_WEBHOOK_SECRET, Fault
from upscale_async.testing import EmulatorThread, signed_webhook, signed_webhook_headers

from ..emulator.support import GENERATE, make_body


def get_json(url: str, key: str) -> tuple[int, object]:
    request = urllib.request.Request(url, headers={"Api-Key": key})
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, json.loads(response.read())


def test_fixture_in_a_sync_test(upscale_emulator: EmulatorThread) -> None:
    """A plain (sync) test gets a running emulator with base_url, key and secret."""
    assert upscale_emulator.base_url.startswith("http://127.0.0.1:")
    assert upscale_emulator.webhook_secret == DEFAULT_WEBHOOK_SECRET
    status, _ = get_json(upscale_emulator.base_url + "/account", upscale_emulator.api_key)
    assert status == 200
    assert upscale_emulator.state.endpoint_counts["account"] == 1


@pytest.mark.upscale_emulator(credits=5, webhook_secret=None)
async def test_fixture_in_an_async_test(upscale_emulator: EmulatorThread) -> None:
    """An async test talks to the threaded emulator; the marker configures it."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            upscale_emulator.base_url + GENERATE,
            json=make_body(2),
            headers={"Api-Key": upscale_emulator.api_key},
        ) as response,
    ):
        assert response.status == 200
    assert upscale_emulator.state.credits() == 1
    assert upscale_emulator.add_credits(4) == 5


def test_fixture_faults_from_the_test_thread(upscale_emulator: EmulatorThread) -> None:
    """Fault plans can be set from the test's thread."""
    upscale_emulator.faults.set("account", [Fault.http(503)])
    with pytest.raises(urllib.error.HTTPError) as raised:
        get_json(upscale_emulator.base_url + "/account", upscale_emulator.api_key)
    assert raised.value.code == 503
    raised.value.close()
    status, _ = get_json(upscale_emulator.base_url + "/account", upscale_emulator.api_key)
    assert status == 200


def test_thread_start_failure_is_reported() -> None:
    """A configuration error surfaces from start() instead of hanging."""
    with pytest.raises(RuntimeError, match="failed to start"), EmulatorThread(credits=-1):
        pass


def test_signed_webhook_headers_verify() -> None:
    """signed_webhook_headers produces headers the standardwebhooks package accepts."""
    body = b'{"secure_request_id":"x","status":"complete"}'
    headers = signed_webhook_headers(body, DEFAULT_WEBHOOK_SECRET, webhook_id="msg_1")
    assert headers["webhook-id"] == "msg_1"
    assert Webhook(DEFAULT_WEBHOOK_SECRET).verify(body, headers)["status"] == "complete"


def test_signed_webhook_payload() -> None:
    """signed_webhook serialises a payload and signs it."""
    body, headers = signed_webhook({"secure_request_id": "y"}, DEFAULT_WEBHOOK_SECRET)
    assert orjson.loads(body) == {"secure_request_id": "y"}
    assert Webhook(DEFAULT_WEBHOOK_SECRET).verify(body, headers) == {"secure_request_id": "y"}


def test_marker_with_a_positional_argument_is_a_usage_error(tmp_path: Path) -> None:
    """``upscale_emulator(5)`` fails the test, naming the marker, instead of ignoring the 5."""
    (tmp_path / "test_positional.py").write_text(
        "import pytest\n\n"
        "@pytest.mark.upscale_emulator(5)\n"
        "def test_positional(upscale_emulator):\n"
        "    pass\n",
        encoding="utf-8",
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_default_fixture_loop_scope=function",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 error" in done.stdout
    assert (
        "@pytest.mark.upscale_emulator takes keyword options only, "
        "e.g. @pytest.mark.upscale_emulator(credits=5); got positional (5,)"
    ) in done.stdout
