"""The command (``python -m upscale_async.emulator``) and the seed documents' curl examples.

The curl commands below are copied verbatim from the seed documents (S2 has four; S0 has a
JSON example body, sent the same way). Only the host part of the URL is replaced.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

REAL_HOST = "https://app.upscaleoutreach.com"
ROOT = Path(__file__).resolve().parents[2]

S2_GENERATE = r"""curl --location 'https://app.upscaleoutreach.com/api/v2/request_message_generation' \
--header 'Api-Key: your_api_key_here' \
--header 'Content-Type: application/json' \
--data '{
  "completion_notification_url": "https://your-webhook-endpoint.com/webhook",
  "automation_tool_customer_id": "customer_12345",
  "automation_tool_campaign_id": "campaign_67890",
  "proposition_company_name": "Acme Corporation",
  "proposition_company_url": "https://www.acmecorp.com",
  "message_sequence": ["connection_request", "first_follow_up"],
  "tone_preference": "casual",
  "lead_data": [
    {
      "automation_tool_lead_id": "lead_001",
      "lead_linkedin": "https://linkedin.com/in/john-doe",
      "lead_company": "Tech Solutions Inc",
      "first_name": "John",
      "last_name": "Doe",
      "lead_company_website_url": "https://www.techsolutions.com",
      "lead_specified_url": null
    },
    {
      "automation_tool_lead_id": "lead_002",
      "lead_linkedin": "https://linkedin.com/in/jane-smith",
      "lead_company": "Digital Innovations LLC",
      "first_name": "Jane",
      "last_name": "Smith",
      "lead_company_website_url": "https://www.digitalinnovations.com",
      "lead_specified_url": null
    }
  ]
}'"""

S2_RETRIEVE = r"""curl --location --request GET 'https://app.upscaleoutreach.com/api/v2/retrieve_messages' \
--header 'Api-Key: your_api_key_here' \
--header 'Content-Type: application/json' \
--data '{
  "request_message_generation_secure_request_id": "550e8400-e29b-41d4-a716-446655440000"
}'"""

S2_SEQUENCES = r'''curl -X GET "https://app.upscaleoutreach.com/api/v2/get_sequences" \
  -H "Api-Key: your_api_key_here" \
  -H "Content-Type: application/json"'''

S2_ACCOUNT = r'''curl -X GET "https://app.upscaleoutreach.com/api/v2/account" \
  -H "Api-Key: your_api_key_here" \
  -H "Content-Type: application/json"'''

S0_BODY = r"""{
  "completion_notification_url": "https://your-webhook-endpoint.com/webhook",
  "automation_tool_customer_id": "customer_12345",
  "automation_tool_campaign_id": "campaign_67890",
  "automation_tool_campaign_name": "Campaign 1 - North America",
  "proposition_company_name": "Acme Corporation",
  "proposition_company_url": "https://www.acmecorp.com",
  "message_sequence": [{ "step": 1, "messageType": "connection_request" }, { "step": 2, "messageType": "first_follow_up" }],
  "tone_preference": "formal",
  "signoff_name": "Sarah",
  "lead_data": [
    {
      "automation_tool_lead_id": "lead_001",
      "lead_linkedin": "https://linkedin.com/in/john-doe",
      "lead_company": "Tech Solutions Inc",
      "first_name": "John",
      "last_name": "Doe",
      "lead_company_website_url": "https://www.techsolutions.com",
      "lead_specified_url": null
    },
    {
      "automation_tool_lead_id": "lead_002",
      "lead_linkedin": "https://linkedin.com/in/jane-smith",
      "lead_company": "Digital Innovations LLC",
      "first_name": "Jane",
      "last_name": "Smith",
      "lead_company_website_url": "https://www.digitalinnovations.com",
      "lead_specified_url": null
    }
  ]
}"""

S0_GENERATE = (
    "curl --location 'https://app.upscaleoutreach.com/api/v2/messages/request_message_generation' "
    "--header 'Api-Key: your_api_key_here' --header 'Content-Type: application/json' "
    f"--data '{S0_BODY}'"
)


class Command:
    """The emulator command running as a subprocess on a free port."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "upscale_async.emulator", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        self.lines: list[str] = []
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("Press Ctrl-C"):
                break
        self.values = dict(
            line.split(": ", 1) for line in self.lines if line.split(":", 1)[0].isidentifier()
        )
        self.base_url = self.values["base_url"]
        self.root = self.base_url.removesuffix("/api/v2")

    def stop(self) -> tuple[int, str, str]:
        self.process.send_signal(signal.SIGINT)
        out, err = self.process.communicate(timeout=15)
        return self.process.returncode, out, err


@pytest.fixture(scope="module")
def command() -> Iterator[Command]:
    running = Command(
        "--api-key",
        "your_api_key_here",
        "--legacy-campaign-name",
        "--doc-examples",
        "--no-webhooks",
    )
    yield running
    code, _, err = running.stop()
    assert code == 0, err
    assert "Traceback" not in err


def test_command_prints_url_and_key_and_stops_on_sigint() -> None:
    """The command prints its base URL, key and secret, serves, and exits 0 on SIGINT."""
    import urllib.request

    running = Command("--api-key", "cli-key", "--credits", "7")
    assert running.base_url.startswith("http://127.0.0.1:")
    assert running.base_url.endswith("/api/v2")
    assert running.values["api_key"] == "cli-key"
    assert running.values["webhook_secret"].startswith("whsec_")
    request = urllib.request.Request(running.base_url + "/account", headers={"Api-Key": "cli-key"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert orjson.loads(response.read())["monthly_credits"] == 7
    code, out, err = running.stop()
    assert code == 0, err
    assert "Traceback" not in err
    assert "stopped" in out


def test_command_stops_on_sigterm() -> None:
    """SIGTERM stops the command cleanly too."""
    running = Command()
    running.process.send_signal(signal.SIGTERM)
    _, err = running.process.communicate(timeout=15)
    assert running.process.returncode == 0, err
    assert "Traceback" not in err


def curl(command: Command, text: str) -> tuple[int, Any]:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    line = text.replace(REAL_HOST, command.root)
    assert "127.0.0.1" in line
    done = subprocess.run(
        ["bash", "-c", line + " --silent --show-error --write-out '\n%{http_code}'"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    body, _, status = done.stdout.rpartition("\n")
    return int(status), orjson.loads(body)


def assert_uuid4(value: str) -> None:
    assert uuid.UUID(value).version == 4
    assert str(uuid.UUID(value)) == value


def test_curl_s2_generate(command: Command) -> None:
    """S2's generation curl (v1 body, plain-string sequence) answers 200 Success with a UUID v4."""
    status, body = curl(command, S2_GENERATE)
    assert status == 200
    assert body["message"] == "Success"
    assert_uuid4(body["secure_request_id"])


def test_curl_s0_generate(command: Command) -> None:
    """S0's example body, curled to the newest path, answers 200 Success with a UUID v4."""
    status, body = curl(command, S0_GENERATE)
    assert status == 200
    assert set(body) == {"message", "secure_request_id"}
    assert_uuid4(body["secure_request_id"])


def test_curl_s2_retrieve(command: Command) -> None:
    """S2's retrieve curl (a JSON body on GET) answers 200 with the documented shape."""
    status, body = curl(command, S2_RETRIEVE)
    assert status == 200
    meta = body["metadata"]
    assert meta["request_message_generation_api_request_secure_request_id"] == (
        "550e8400-e29b-41d4-a716-446655440000"
    )
    assert_uuid4(meta["retrieve_messages_api_request_secure_request_id"])
    assert meta["failed_messages_count"] is None
    assert meta["failed_messages_reason"] is None
    assert body["account"] == {"automation_tool_customer_id": "customer_12345"}
    campaign = body["campaign"]
    assert campaign["automation_tool_campaign_id"] == "campaign_67890"
    assert campaign["message_sequence"] == ["connection_request", "first_follow_up"]
    ids = [lead["external_prospect_id"] for lead in campaign["leads_data"]]
    assert ids == ["lead_001", "lead_002", "lead_003"]
    first = campaign["leads_data"][0]
    assert first["linkedin"] == "https://linkedin.com/in/john-doe"
    assert first["outreach_message"].startswith("Dear John")
    assert first["share_material_message"] is None
    assert first["hiring_activity_message"] is None


def test_curl_s2_sequences(command: Command) -> None:
    """S2's get_sequences curl answers 200 with a list of sequences."""
    status, body = curl(command, S2_SEQUENCES)
    assert status == 200
    assert body["sequences"]


def test_curl_s2_account(command: Command) -> None:
    """S2's account curl answers 200 with the placeholder keys."""
    status, body = curl(command, S2_ACCOUNT)
    assert status == 200
    assert {"created_at", "plan_name", "monthly_credits", "monthly_allowance"} <= set(body)


def test_command_verbose_logs_each_request() -> None:
    """--verbose logs each request (method, path, status, elapsed) on stderr."""
    import urllib.request

    running = Command("--api-key", "cli-key", "--no-webhooks", "--verbose")
    request = urllib.request.Request(running.base_url + "/account", headers={"Api-Key": "cli-key"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
    code, _, err = running.stop()
    assert code == 0, err
    assert "GET /api/v2/account 200 " in err


def test_command_safety_flags_reach_the_config() -> None:
    """--allow-external-webhooks and --body-timeout set the config; external webhooks are off."""
    from upscale_async.emulator.__main__ import _parser, config_from_args

    default = config_from_args(_parser().parse_args([]))
    assert (default.allow_external_webhooks, default.verbose) == (False, False)
    args = ["--allow-external-webhooks", "--body-timeout", "2.5", "--verbose"]
    opted = config_from_args(_parser().parse_args(args))
    assert (opted.allow_external_webhooks, opted.body_timeout, opted.verbose) == (True, 2.5, True)


def test_a_webhook_secret_and_no_webhooks_together_are_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--webhook-secret S --no-webhooks`` contradicts itself: exit 2, naming both."""
    from upscale_async.emulator.__main__ import _parser

    with pytest.raises(SystemExit) as stopped:
        _parser().parse_args(["--webhook-secret", "whsec_x", "--no-webhooks"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "argument --no-webhooks: not allowed with argument --webhook-secret" in err
