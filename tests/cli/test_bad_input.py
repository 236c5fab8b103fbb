"""Bad input: a clear message naming the file (and line), the right exit status, no traceback."""

from __future__ import annotations

import csv
from pathlib import Path

import orjson

from upscale_async.cli._demo import DEMO_CAMPAIGN
from upscale_async.cli._files import LEAD_FIELDS

from .conftest import Result, records, run_cli, valid_leads, write_csv, write_jsonl


def _generate(
    tmp_path: Path, leads: str, campaign: str = "campaign.json", *extra: object
) -> Result:
    return run_cli(
        "generate", leads, "--campaign", campaign, "--out", "results.jsonl", *extra, cwd=tmp_path
    )


def test_malformed_csv_row_is_a_rejected_record_and_the_run_goes_on(
    tmp_path: Path, campaign_file: Path
) -> None:
    """A CSV row with the wrong number of fields: named on stderr and recorded, the rest generate, exit 2."""
    path = write_csv(tmp_path / "leads.csv", valid_leads(4))
    lines = path.read_text().splitlines(keepends=True)
    lines.insert(3, "lead_broken,https://www.linkedin.com/in/broken,Broken Co\n")
    path.write_text("".join(lines))
    result = _generate(tmp_path, "leads.csv")
    assert result.code == 2
    assert (
        "upscale-async: error: leads.csv line 4: malformed CSV row: 3 fields where the header has 7"
    ) in result.stderr.splitlines()
    rows = records(tmp_path / "results.jsonl")
    assert len(rows) == 5
    [bad] = [r for r in rows if r["outcome"] == "rejected"]
    assert bad["lead_id"] == "lead_broken"
    assert bad["line"] == 4
    assert bad["reason"] == "leads.csv line 4: malformed CSV row: 3 fields where the header has 7"
    assert sum(r["outcome"] == "generated" for r in rows) == 4


def test_malformed_json_line_is_a_rejected_record_and_the_run_goes_on(
    tmp_path: Path, campaign_file: Path
) -> None:
    """A line that is not JSON or not an object: named and recorded, the rest generate, exit 2."""
    path = write_jsonl(tmp_path / "leads.jsonl", valid_leads(3))
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1:1] = [b'{"automation_tool_lead_id": "oops",\n', b"[1, 2]\n"]
    path.write_bytes(b"".join(lines))
    result = _generate(tmp_path, "leads.jsonl")
    assert result.code == 2
    assert "upscale-async: error: leads.jsonl line 2: not valid JSON" in result.stderr
    rows = records(tmp_path / "results.jsonl")
    bad = {r["line"]: r["reason"] for r in rows if r["outcome"] == "rejected"}
    assert bad[2].startswith("leads.jsonl line 2: not valid JSON")
    assert bad[3] == "leads.jsonl line 3: expected a JSON object (one lead), got an array"
    assert sum(r["outcome"] == "generated" for r in rows) == 3


def test_campaign_missing_a_field_exits_2_naming_file_and_field(tmp_path: Path) -> None:
    """A campaign file missing a field: one message per problem with the file name, exit 2."""
    campaign = {k: v for k, v in DEMO_CAMPAIGN.items() if k != "proposition_company_url"}
    campaign["tone_preference"] = "loud"
    (tmp_path / "campaign.json").write_bytes(orjson.dumps(campaign))
    write_csv(tmp_path / "leads.csv", valid_leads(2))
    result = _generate(tmp_path, "leads.csv")
    assert result.code == 2
    assert result.stderr.splitlines() == [
        "upscale-async: error: campaign.json: proposition_company_url is required but was "
        "missing or blank",
        "upscale-async: error: campaign.json: tone_preference must be one of formal, normal, casual",
    ]
    assert not (tmp_path / "results.jsonl").exists()


def test_campaign_that_is_not_json_exits_2(tmp_path: Path) -> None:
    """A campaign file that is not JSON is named, with exit 2."""
    (tmp_path / "campaign.json").write_text("{nope")
    write_csv(tmp_path / "leads.csv", valid_leads(1))
    result = _generate(tmp_path, "leads.csv")
    assert result.code == 2
    assert "campaign.json: not valid JSON" in result.stderr


def test_unreadable_leads_path_exits_2(tmp_path: Path, campaign_file: Path) -> None:
    """A leads path that does not exist is named, with exit 2, before anything starts."""
    result = _generate(tmp_path, "missing.csv")
    assert result.code == 2
    assert result.stderr.strip() == (
        "upscale-async: error: cannot read leads file missing.csv: No such file or directory"
    )


def test_directory_as_leads_exits_2(tmp_path: Path, campaign_file: Path) -> None:
    """A directory given as the leads file is named, with exit 2."""
    (tmp_path / "leads.csv").mkdir()
    result = _generate(tmp_path, "leads.csv")
    assert result.code == 2
    assert "cannot read leads file leads.csv" in result.stderr


def test_unreadable_campaign_path_exits_2(tmp_path: Path) -> None:
    """A campaign path that does not exist is named, with exit 2."""
    write_csv(tmp_path / "leads.csv", valid_leads(1))
    result = _generate(tmp_path, "leads.csv", "nope.json")
    assert result.code == 2
    assert "cannot read campaign file nope.json: No such file or directory" in result.stderr


def test_directory_as_output_exits_2(tmp_path: Path, campaign_file: Path) -> None:
    """--out naming a directory is an input error, exit 2."""
    write_csv(tmp_path / "leads.csv", valid_leads(1))
    (tmp_path / "out").mkdir()
    result = run_cli(
        "generate", "leads.csv", "--campaign", "campaign.json", "--out", "out", cwd=tmp_path
    )
    assert result.code == 2
    assert "--out out is a directory" in result.stderr


def test_csv_header_without_required_columns_exits_2(tmp_path: Path, campaign_file: Path) -> None:
    """A CSV header that lacks required lead columns is named, with exit 2."""
    (tmp_path / "leads.csv").write_text("automation_tool_lead_id,first_name\nx,y\n")
    result = _generate(tmp_path, "leads.csv")
    assert result.code == 2
    assert (
        "leads.csv line 1: the CSV header lacks the required column(s) lead_linkedin, "
        "lead_company, last_name"
    ) in result.stderr


def test_unknown_csv_column_exits_2_unless_told(tmp_path: Path, campaign_file: Path) -> None:
    """An unknown column is an input error by default; --extra-fields ignore drops it."""
    path = write_csv(tmp_path / "leads.csv", valid_leads(2))
    text = path.read_text().splitlines()
    path.write_text("\n".join([text[0] + ",crm_owner"] + [t + ",ann" for t in text[1:]]) + "\n")
    result = _generate(tmp_path, "leads.csv")
    assert result.code == 2
    assert "leads.csv line 1: unknown column(s) crm_owner" in result.stderr
    ignored = _generate(tmp_path, "leads.csv", "campaign.json", "--extra-fields", "ignore")
    assert ignored.code == 0, ignored.stderr


def test_empty_leads_file_exits_2(tmp_path: Path, campaign_file: Path) -> None:
    """A leads file with no leads is an input error, exit 2."""
    (tmp_path / "leads.jsonl").write_text("\n\n")
    result = _generate(tmp_path, "leads.jsonl")
    assert result.code == 2
    assert "leads.jsonl: contains no leads" in result.stderr


def test_bad_option_value_is_a_usage_error(tmp_path: Path, campaign_file: Path) -> None:
    """A bad option value is a usage error, exit 2."""
    result = _generate(tmp_path, "leads.csv", "campaign.json", "--chunk-size", "0")
    assert result.code == 2
    assert "--chunk-size: must be at least 1" in result.stderr


def test_bad_campaign_and_missing_leads_are_reported_together(tmp_path: Path) -> None:
    """A bad campaign file and an unreadable leads file are both named in one run, exit 2."""
    (tmp_path / "campaign.json").write_bytes(orjson.dumps({"automation_tool_customer_id": "c"}))
    result = _generate(tmp_path, "missing.csv")
    assert result.code == 2
    errors = result.stderr.splitlines()
    assert (
        "upscale-async: error: campaign.json: completion_notification_url is required but was "
        "missing or blank"
    ) in errors
    assert (
        "upscale-async: error: cannot read leads file missing.csv: No such file or directory"
        in errors
    )
    assert "Traceback" not in result.stderr


def _stray_quote(path: Path, n: int, row: int) -> tuple[list[str], str]:
    """``n`` leads the emulator generates as CSV, the lead of ``row`` (from 1) with ``"Acme``, a quote never closed.

    Returns the lead ids and the broken line's text (it is line ``row + 1``).
    """
    # Every 40th sample lead is invalid (valid_leads leaves out only the first of them).
    leads = [x for x in valid_leads(n + n // 30) if int(x["automation_tool_lead_id"][5:]) % 40]
    leads = leads[:n]
    lines = write_csv(path, leads).read_text().splitlines(keepends=True)
    fields = lines[row].split(",")
    fields[2] = '"Acme'
    lines[row] = ",".join(fields)
    path.write_text("".join(lines))
    return [lead["automation_tool_lead_id"] for lead in leads], lines[row].rstrip("\n")


def test_unclosed_quote_mid_file_rejects_its_row_and_every_other_lead_is_sent(
    tmp_path: Path, campaign_file: Path
) -> None:
    """A quote never closed on line 12 of 100 leads: that row is rejected, the 99 others generate.

    The reader gives up on the quote at the end of the file and reads again from line 13.
    """
    ids, broken = _stray_quote(tmp_path / "leads.csv", 100, 11)
    result = _generate(tmp_path, "leads.csv")
    assert result.code == 2
    message = (
        "leads.csv line 12: unterminated quote opened on line 12 (the quoted field runs to the "
        'end of the file, line 101): close the quote (or escape it as "")'
    )
    assert f"upscale-async: error: {message}" in result.stderr.splitlines()
    assert "100 leads in" in result.stderr
    assert "99 generated, 0 failed, 1 rejected" in result.stderr
    rows = records(tmp_path / "results.jsonl")
    assert len(rows) == 100
    [bad] = [r for r in rows if r["outcome"] == "rejected"]
    assert (bad["lead_id"], bad["line"], bad["reason"]) == (ids[10], 12, message)
    assert bad["raw"] == broken
    generated = [r["lead_id"] for r in rows if r["outcome"] == "generated"]
    assert sorted(generated) == sorted(ids[:10] + ids[11:])


def test_unclosed_quote_past_the_field_size_limit_loses_no_lead(
    tmp_path: Path, campaign_file: Path
) -> None:
    """5,000 leads, a quote never closed on line 12: the field-size limit ends it, none is lost."""
    ids, broken = _stray_quote(tmp_path / "leads.csv", 5000, 11)
    result = _generate(tmp_path, "leads.csv")
    assert result.code == 2
    [error] = [e for e in result.stderr.splitlines() if "error:" in e]
    assert error.startswith(
        "upscale-async: error: leads.csv line 12: unterminated quote opened on line 12 (the "
        "quoted field runs past the CSV field-size limit of 131072 characters, to line "
    )
    assert error.endswith('): close the quote (or escape it as "")')
    assert "5000 leads in" in result.stderr
    assert "4999 generated, 0 failed, 1 rejected" in result.stderr
    rows = records(tmp_path / "results.jsonl")
    assert len(rows) == 5000
    [bad] = [r for r in rows if r["outcome"] == "rejected"]
    assert (bad["lead_id"], bad["line"], bad["raw"]) == (ids[10], 12, broken)
    assert sorted(r["lead_id"] for r in rows) == sorted(ids)


def _leads_with_notes(path: Path) -> tuple[list[dict[str, object]], dict[str, object]]:
    """Three leads as JSON lines, the second (line 2) with a field no lead has: ``notes``."""
    leads: list[dict[str, object]] = [*valid_leads(3)]
    leads[1] = {**leads[1], "notes": "met at the expo"}
    write_jsonl(path, leads)
    return leads, leads[1]


def test_lead_with_an_unknown_field_is_rejected_with_its_lead_and_can_be_sent_again(
    tmp_path: Path, campaign_file: Path
) -> None:
    """A JSON-lines lead with an unknown key: its rejected record carries the lead as read; that
    lead, given back with --extra-fields ignore, is sent and generated."""
    _, noted = _leads_with_notes(tmp_path / "leads.jsonl")
    result = _generate(tmp_path, "leads.jsonl")
    assert result.code == 2, result.stderr
    message = "leads.jsonl line 2: unknown field(s) notes (pass --extra-fields ignore or send)"
    assert f"upscale-async: error: {message}" in result.stderr.splitlines()
    rows = records(tmp_path / "results.jsonl")
    assert len(rows) == 3
    [bad] = [r for r in rows if r["outcome"] != "generated"]
    assert bad == {
        "lead_id": noted["automation_tool_lead_id"],
        "outcome": "rejected",
        "line": 2,
        "reason": message,
        "errors": [message],
        "lead": noted,
    }
    # jq -c 'select(.outcome=="rejected") | .lead' results.jsonl > retry.jsonl
    write_jsonl(tmp_path / "retry.jsonl", [bad["lead"]])
    again = run_cli(
        "generate", "retry.jsonl", "--campaign", "campaign.json", "--out", "retry-results.jsonl",
        "--extra-fields", "ignore", cwd=tmp_path,
    )  # fmt: skip
    assert again.code == 0, again.stderr
    [sent] = records(tmp_path / "retry-results.jsonl")
    assert (sent["lead_id"], sent["outcome"]) == (noted["automation_tool_lead_id"], "generated")


def test_lead_with_an_unknown_field_fills_its_csv_results_row_and_the_csv_can_be_fed_back(
    tmp_path: Path, campaign_file: Path
) -> None:
    """The same lead with CSV results: its rejected row fills the lead's columns (``notes`` in
    lead_extra); the results CSV given back with --extra-fields ignore sends that lead only."""
    _, noted = _leads_with_notes(tmp_path / "leads.jsonl")
    result = run_cli(
        "generate", "leads.jsonl", "--campaign", "campaign.json", "--out", "results.csv",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.code == 2, result.stderr
    with (tmp_path / "results.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    [bad] = [r for r in rows if r["outcome"] != "generated"]
    assert (bad["lead_id"], bad["outcome"], bad["line"]) == (
        noted["automation_tool_lead_id"],
        "rejected",
        "2",
    )
    assert {f: bad[f] for f in LEAD_FIELDS} == {f: noted.get(f) or "" for f in LEAD_FIELDS}
    assert orjson.loads(bad["lead_extra"]) == {"notes": "met at the expo"}
    again = run_cli(
        "generate", "results.csv", "--campaign", "campaign.json", "--out", "retry.jsonl",
        "--extra-fields", "ignore", cwd=tmp_path,
    )  # fmt: skip
    assert again.code == 0, again.stderr
    [sent] = records(tmp_path / "retry.jsonl")
    assert (sent["lead_id"], sent["outcome"]) == (noted["automation_tool_lead_id"], "generated")
    assert "(2 generated)" in again.stderr


def test_csv_with_old_mac_line_breaks_is_a_header_error_not_a_traceback(
    tmp_path: Path, campaign_file: Path
) -> None:
    """Lines ended by CR alone (the header then holds a line break): exit 2, a header message."""
    path = write_csv(tmp_path / "leads.csv", valid_leads(2))
    path.write_bytes(path.read_bytes().replace(b"\r\n", b"\r"))
    result = _generate(tmp_path, "leads.csv")
    assert result.code == 2
    assert result.stderr.startswith("upscale-async: error: leads.csv line 1: bad CSV header: ")


def test_closed_quoted_field_over_lines_in_a_row_of_the_wrong_width_is_one_rejected_record(
    tmp_path: Path, campaign_file: Path
) -> None:
    """Rows whose quoted field runs over two lines and is closed, with 6 and 8 fields (the header
    has 7): each is one rejected record naming its lines; the text inside its quotes is not read
    as rows (it held ``r1b``, which was posted as a lead), and the rows after it are read."""
    header = ",".join(LEAD_FIELDS)
    r1 = (
        'r1,https://www.linkedin.com/in/r1,"Acme\n'
        'r1b,https://www.linkedin.com/in/r1b,Acme,Bob",Ann,,'
    )
    r2 = 'r2,https://www.linkedin.com/in/r2,"Line one\nline two",Ann,Lee,,,extra'
    (tmp_path / "leads.csv").write_text(
        f"{header}\n"
        "r0,https://www.linkedin.com/in/r0,Co0,Ann,Lee,,\n"
        f"{r1}\n{r2}\n"
        "r3,https://www.linkedin.com/in/r3,Co3,Ann,Lee,,\n"
    )
    result = _generate(tmp_path, "leads.csv")
    assert result.code == 2, result.stderr
    first = "leads.csv line 3: malformed CSV row: 6 fields where the header has 7 (lines 3-4)"
    second = "leads.csv line 5: malformed CSV row: 8 fields where the header has 7 (lines 5-6)"
    errors = [e for e in result.stderr.splitlines() if "error:" in e]
    assert errors == [f"upscale-async: error: {first}", f"upscale-async: error: {second}"]
    assert "4 leads in" in result.stderr
    assert "2 generated, 0 failed, 2 rejected" in result.stderr
    assert "4 credits used" in result.stderr  # r0 and r3 only, 2 messages each
    rows = records(tmp_path / "results.jsonl")
    assert sorted((r["lead_id"], r["outcome"], r.get("line")) for r in rows) == [
        ("r0", "generated", None),
        ("r1", "rejected", 3),
        ("r2", "rejected", 5),
        ("r3", "generated", None),
    ]
    bad = {r["lead_id"]: r for r in rows if r["outcome"] == "rejected"}
    assert (bad["r1"]["reason"], bad["r1"]["raw"]) == (first, r1)
    assert (bad["r2"]["reason"], bad["r2"]["raw"]) == (second, r2)
