"""``upscale-async generate`` end to end, as a subprocess against an emulator."""

from __future__ import annotations

import csv
import socket
from pathlib import Path

import orjson
import pytest

from upscale_async.cli._demo import DEMO_CAMPAIGN
from upscale_async.cli._files import LEAD_FIELDS

from .conftest import (
    ExternalEmulator,
    external_emulator,
    records,
    run_cli,
    valid_leads,
    write_csv,
    write_jsonl,
)

TYPES = ["connection_request", "first_follow_up"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_generate_with_webhooks_writes_every_lead(
    tmp_path: Path, campaign_file: Path, fmt: str
) -> None:
    """Without an API key, generate uses the embedded emulator and its webhooks; exit 0."""
    leads = valid_leads(25)
    source = (write_csv if fmt == "csv" else write_jsonl)(tmp_path / f"leads.{fmt}", leads)
    out = tmp_path / "results.jsonl"
    result = run_cli("generate", source, "--campaign", campaign_file, "--out", out, cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert "using the embedded Upscale emulator" in result.stderr
    assert "receiving the emulator's webhooks at http://127.0.0.1:" in result.stderr
    rows = records(out)
    assert sorted(r["lead_id"] for r in rows) == sorted(x["automation_tool_lead_id"] for x in leads)
    assert {r["outcome"] for r in rows} == {"generated"}
    assert all(list(r["messages"]) == TYPES and all(r["messages"].values()) for r in rows)
    assert all(r["secure_request_id"] for r in rows)
    assert "25 leads in" in result.stderr
    assert "25 generated" in result.stderr


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_generate_with_poll_needs_no_receiver(
    tmp_path: Path, campaign_file: Path, fmt: str
) -> None:
    """--poll waits by polling only: no webhook receiver is started, every lead is generated."""
    leads = valid_leads(15)
    source = (write_csv if fmt == "csv" else write_jsonl)(tmp_path / f"leads.{fmt}", leads)
    out = tmp_path / "results.jsonl"
    result = run_cli(
        "generate", source, "--campaign", campaign_file, "--out", out, "--poll", cwd=tmp_path
    )
    assert result.code == 0, result.stderr
    assert "webhook" not in result.stderr
    assert [r["outcome"] for r in records(out)] == ["generated"] * 15


def test_csv_output_has_a_column_per_message_type(tmp_path: Path, campaign_file: Path) -> None:
    """--out results.csv writes a CSV with one column per message type of the campaign."""
    source = write_csv(tmp_path / "leads.csv", valid_leads(5))
    out = tmp_path / "results.csv"
    result = run_cli("generate", source, "--campaign", campaign_file, "--out", out, cwd=tmp_path)
    assert result.code == 0, result.stderr
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        "lead_id", "outcome", "secure_request_id", "line", *TYPES, "reason", "errors",
        *LEAD_FIELDS, "lead_extra",
    ]  # fmt: skip
    assert len(rows) == 5
    assert all(row["outcome"] == "generated" and row["first_follow_up"] for row in rows)


def test_leads_not_generated_are_recorded_and_exit_1(tmp_path: Path, campaign_file: Path) -> None:
    """An invalid lead is 'rejected' with its message and line, a no-web-presence lead 'failed'."""
    leads = valid_leads(6)
    leads[2] = {**leads[2], "first_name": ""}
    leads[4] = {**leads[4], "automation_tool_lead_id": "lead_x_nowebpresence"}
    write_csv(tmp_path / "leads.csv", leads)
    out = tmp_path / "results.jsonl"
    result = run_cli(
        "generate", "leads.csv", "--campaign", campaign_file, "--out", out, cwd=tmp_path
    )
    assert result.code == 1
    by_id = {r["lead_id"]: r for r in records(out)}
    assert len(by_id) == 6
    rejected = by_id[leads[2]["automation_tool_lead_id"]]
    assert rejected["outcome"] == "rejected"
    assert rejected["line"] == 4
    assert rejected["errors"] == [
        "leads.csv line 4: first_name is required but was missing or blank"
    ]
    failed = by_id["lead_x_nowebpresence"]
    assert failed["outcome"] == "failed"
    assert "web presence" in failed["reason"]
    assert "6 leads in" in result.stderr
    assert "4 generated, 1 failed, 1 rejected, 0 not submitted" in result.stderr


def test_summary_reports_credits_used(tmp_path: Path, campaign_file: Path) -> None:
    """The summary names the credits the run used (two message types per generated lead)."""
    source = write_jsonl(tmp_path / "leads.jsonl", valid_leads(4))
    out = tmp_path / "results.jsonl"
    result = run_cli("generate", source, "--campaign", campaign_file, "--out", out, cwd=tmp_path)
    assert "; 8 credits used" in result.stderr


def test_plain_progress_lines_when_stderr_is_not_a_tty(tmp_path: Path, campaign_file: Path) -> None:
    """Off a terminal, progress is plain lines on stderr (at least the final one)."""
    source = write_csv(tmp_path / "leads.csv", valid_leads(3))
    out = tmp_path / "results.jsonl"
    result = run_cli("generate", source, "--campaign", campaign_file, "--out", out, cwd=tmp_path)
    assert "upscale-async: submitted 3, completed 3/~3, generated 3" in result.stderr
    quiet = run_cli(
        "generate", source, "--campaign", campaign_file, "--out", out, "-q", cwd=tmp_path
    )
    assert "completed 3" not in quiet.stderr


def test_generate_against_a_service_with_webhooks(
    tmp_path: Path, emulator: ExternalEmulator
) -> None:
    """With a key, the campaign's URL is kept and must reach the receiver on --webhook-port."""
    port = _free_port()
    campaign = {
        **DEMO_CAMPAIGN,
        "automation_tool_campaign_id": "campaign_external_webhooks",
        "completion_notification_url": f"http://127.0.0.1:{port}/hooks/upscale",
    }
    campaign_file = tmp_path / "campaign.json"
    campaign_file.write_bytes(orjson.dumps(campaign))
    source = write_csv(tmp_path / "leads.csv", valid_leads(8))
    out = tmp_path / "results.jsonl"
    result = run_cli(
        "--base-url", emulator.base_url, "--api-key", emulator.api_key,
        "generate", source, "--campaign", campaign_file, "--out", out,
        "--webhook-port", port, "--webhook-path", "/hooks/upscale",
        "--timeout", 20,
        cwd=tmp_path,
        UPSCALE_WEBHOOK_SECRET=emulator.webhook_secret,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert "embedded" not in result.stderr
    assert f"receiving webhooks at http://127.0.0.1:{port}/hooks/upscale" in result.stderr
    assert [r["outcome"] for r in records(out)] == ["generated"] * 8
    assert "; 16 credits used" in result.stderr  # from the account endpoint, before and after


def test_service_without_webhook_secret_falls_back_to_polling(
    tmp_path: Path, emulator: ExternalEmulator, campaign_file: Path
) -> None:
    """With a key but no webhook secret, generate says so and polls."""
    campaign = {**DEMO_CAMPAIGN, "completion_notification_url": "http://127.0.0.1:9/none"}
    campaign_file.write_bytes(orjson.dumps(campaign))
    source = write_jsonl(tmp_path / "leads.jsonl", valid_leads(3))
    out = tmp_path / "results.jsonl"
    result = run_cli(
        "--base-url", emulator.base_url, "--api-key", emulator.api_key,
        "generate", source, "--campaign", campaign_file, "--out", out, "--poll-interval", 0.2,
        cwd=tmp_path,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert "no webhook secret" in result.stderr
    assert "polling" in result.stderr
    assert len(records(out)) == 3


def test_out_of_credits_leaves_leads_not_submitted_with_the_lead(
    tmp_path: Path, campaign_file: Path
) -> None:
    """After a 402 the rest is recorded 'not_submitted' with the lead to resubmit; exit 1."""
    leads = valid_leads(12)
    source = write_jsonl(tmp_path / "leads.jsonl", leads)
    out = tmp_path / "results.jsonl"
    with external_emulator("--credits", "6", "--no-webhooks") as emu:
        result = run_cli(
            "--base-url", emu.base_url, "--api-key", emu.api_key,
            "generate", source, "--campaign", campaign_file, "--out", out,
            "--poll", "--poll-interval", 0.2, "--chunk-size", 3, "--concurrency", 1,
            cwd=tmp_path,
        )  # fmt: skip
    assert result.code == 1
    rows = records(out)
    by_outcome = {o: [r for r in rows if r["outcome"] == o] for o in ("generated", "not_submitted")}
    assert [r["lead_id"] for r in by_outcome["generated"]] == [
        x["automation_tool_lead_id"] for x in leads[:3]
    ]
    assert [r["lead"] for r in by_outcome["not_submitted"]] == leads[3:]
    assert "9 not submitted" in result.stderr
    assert "; 6 credits used" in result.stderr
