"""retrieve, sequences, account, emulator and demo, as subprocesses."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from upscale_async.emulator import DOC_EXAMPLE_ID

from .conftest import ExternalEmulator, records, run_cli, valid_leads, write_csv


def _service(emulator: ExternalEmulator) -> list[str]:
    return ["--base-url", emulator.base_url, "--api-key", emulator.api_key]


def test_retrieve_prints_the_request_as_json(tmp_path: Path, emulator: ExternalEmulator) -> None:
    """retrieve ID prints the request's status and per-lead messages as JSON."""
    result = run_cli(*_service(emulator), "retrieve", DOC_EXAMPLE_ID, cwd=tmp_path)
    assert result.code == 0, result.stderr
    data = orjson.loads(result.stdout)
    assert data["secure_request_id"] == DOC_EXAMPLE_ID
    assert data["complete"] is True
    assert [lead["external_prospect_id"] for lead in data["leads"]] == [
        "lead_001",
        "lead_002",
        "lead_003",
    ]
    assert data["leads"][0]["outreach_message"]


def test_retrieve_an_unknown_id_exits_1(tmp_path: Path, emulator: ExternalEmulator) -> None:
    """retrieve of an id the service does not know prints the 404 and exits 1."""
    result = run_cli(*_service(emulator), "retrieve", "no-such-id", cwd=tmp_path)
    assert result.code == 1
    assert "HTTP 404" in result.stderr


def test_sequences_filters(tmp_path: Path, emulator: ExternalEmulator) -> None:
    """sequences passes the four filters and prints the matching templates."""
    result = run_cli(
        *_service(emulator),
        "sequences",
        "--sequence-length",
        "short",
        "--saturated-markets",
        "true",
        cwd=tmp_path,
    )
    assert result.code == 0, result.stderr
    found = orjson.loads(result.stdout)
    assert found
    assert all(s["sequence_length"] == "short" and s["saturated_markets"] is True for s in found)


def test_sequences_bad_filter_is_a_usage_error(tmp_path: Path) -> None:
    """A filter value outside the documented ones is a usage error, exit 2."""
    result = run_cli("--emulator", "sequences", "--cadence-profile", "slow", cwd=tmp_path)
    assert result.code == 2
    assert "invalid choice: 'slow'" in result.stderr


def test_account_prints_credits(tmp_path: Path, emulator: ExternalEmulator) -> None:
    """account prints the account's status and credits."""
    result = run_cli(*_service(emulator), "account", cwd=tmp_path)
    assert result.code == 0, result.stderr
    data = orjson.loads(result.stdout)
    assert isinstance(data["credits_remaining"], int)
    assert data["plan_name"] == "Emulator plan"


def test_account_with_a_wrong_key_exits_2(tmp_path: Path, emulator: ExternalEmulator) -> None:
    """A key the service refuses (401) is a configuration error, exit 2."""
    result = run_cli("--base-url", emulator.base_url, "--api-key", "wrong", "account", cwd=tmp_path)
    assert result.code == 2
    assert "HTTP 401" in result.stderr


@pytest.mark.parametrize("command", [["retrieve", "x"], ["sequences"], ["account"]])
def test_commands_without_a_key_exit_2(tmp_path: Path, command: list[str]) -> None:
    """retrieve, sequences and account need an API key (or --emulator): exit 2 otherwise."""
    result = run_cli(*command, cwd=tmp_path)
    assert result.code == 2
    assert "no API key: pass --api-key or set UPSCALE_API_KEY" in result.stderr


def test_account_with_the_embedded_emulator(tmp_path: Path) -> None:
    """--emulator answers from the embedded emulator and says so."""
    result = run_cli("--emulator", "account", cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert "embedded Upscale emulator" in result.stderr
    assert orjson.loads(result.stdout)["credits_used"] == 0


def test_demo_writes_a_result_for_every_lead(tmp_path: Path) -> None:
    """demo writes the sample and a campaign, runs generate with webhooks, exit 0."""
    result = run_cli("demo", "--leads", 120, "--out", "demo", cwd=tmp_path)
    assert result.code == 0, result.stderr
    assert "receiving the emulator's webhooks" in result.stderr
    rows = records(tmp_path / "demo" / "results.jsonl")
    assert len(rows) == 120
    assert len({r["lead_id"] for r in rows}) == 120
    outcomes = {r["outcome"] for r in rows}
    assert outcomes == {"generated", "failed", "rejected"}
    assert "results:      demo/results.jsonl (120 records, one per lead)" in result.stdout
    assert (tmp_path / "demo" / "leads.csv").exists()
    assert (tmp_path / "demo" / "campaign.json").exists()


def test_version_and_help(tmp_path: Path) -> None:
    """--help lists the commands and exits 0."""
    result = run_cli("--help", cwd=tmp_path)
    assert result.code == 0
    for command in ("generate", "retrieve", "sequences", "account", "emulator", "demo"):
        assert command in result.stdout


def test_a_webhook_secret_with_poll_is_a_usage_error(tmp_path: Path) -> None:
    """``--poll`` starts no receiver, so a ``--webhook-secret`` beside it is refused (exit 2)."""
    result = run_cli(
        "generate",
        tmp_path / "leads.csv",
        "--campaign",
        tmp_path / "campaign.json",
        "--out",
        tmp_path / "out.jsonl",
        "--webhook-secret",
        "whsec_abc",
        "--poll",
        cwd=tmp_path,
    )
    assert result.code == 2
    assert "argument --poll: not allowed with argument --webhook-secret" in result.stderr


@pytest.mark.parametrize("clash", ["out", "leads", "campaign"])
def test_a_journal_that_is_another_file_of_the_run_is_refused(
    tmp_path: Path, campaign_file: Path, clash: str
) -> None:
    """``--journal`` naming ``--out`` (or an input) would overwrite or delete it: exit 2, before
    anything is read or sent, and the file is left as it was."""
    leads = tmp_path / "leads.csv"
    write_csv(leads, valid_leads(3))
    out = tmp_path / "out.jsonl"
    out.write_text("kept\n")
    target = {"out": out, "leads": leads, "campaign": campaign_file}[clash]
    before = target.read_bytes()
    result = run_cli(
        "generate",
        leads,
        "--campaign",
        campaign_file,
        "--out",
        out,
        "--journal",
        target,
        "-q",
        cwd=tmp_path,
    )
    assert result.code == 2, result.stderr
    assert f"--journal {target} is " in result.stderr
    assert "give another --journal path" in result.stderr
    assert target.read_bytes() == before
