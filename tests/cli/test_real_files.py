"""Real files: encodings, delimiters, stdin and stdout, the output format, resending from CSV."""

from __future__ import annotations

import codecs
import csv
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

from upscale_async.cli._files import LEAD_FIELDS

from .conftest import (
    Result,
    clean_env,
    external_emulator,
    records,
    run_cli,
    valid_leads,
    write_csv,
)

ACCENTED = ("Andrés", "Müller")


def _leads(n: int) -> list[dict[str, Any]]:
    """Valid leads, the first two with names outside ASCII."""
    leads = valid_leads(n)
    leads[0]["first_name"], leads[1]["last_name"] = ACCENTED
    return leads


def _write(path: Path, leads: list[dict[str, Any]], *, encoding: str, delimiter: str) -> Path:
    with path.open("w", encoding=encoding, newline="") as f:
        writer = csv.writer(f, delimiter=delimiter)
        writer.writerow(LEAD_FIELDS)
        for lead in leads:
            writer.writerow([lead.get(k) or "" for k in LEAD_FIELDS])
    return path


def _run_with_stdin(*args: object, stdin: bytes, cwd: Path) -> Result:
    """Run the command line with ``stdin`` as its standard input."""
    done = subprocess.run(
        [sys.executable, "-m", "upscale_async", *map(str, args)],
        cwd=cwd,
        env=clean_env(),
        input=stdin,
        capture_output=True,
        timeout=60,
    )
    stderr = done.stderr.decode()
    assert "Traceback" not in stderr, stderr
    return Result(done.returncode, done.stdout.decode(), stderr)


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_latin1_file_with_encoding_generates_every_lead(
    tmp_path: Path, campaign_file: Path
) -> None:
    """--encoding latin-1 reads an Excel-style file: every lead generated, accents intact."""
    source = _write(tmp_path / "leads.csv", _leads(6), encoding="latin-1", delimiter=",")
    result = run_cli(
        "generate", source, "--campaign", campaign_file, "--out", "r.jsonl",
        "--encoding", "latin-1", cwd=tmp_path,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    rows = records(tmp_path / "r.jsonl")
    assert [r["outcome"] for r in rows] == ["generated"] * 6
    assert "Hi Andrés," in rows[0]["messages"]["connection_request"]


def test_latin1_file_without_encoding_hints_at_cp1252(tmp_path: Path, campaign_file: Path) -> None:
    """A latin-1 file read as UTF-8: its lines are rejected with a hint to pass --encoding."""
    source = _write(tmp_path / "leads.csv", _leads(4), encoding="latin-1", delimiter=",")
    result = run_cli(
        "generate", source, "--campaign", campaign_file, "--out", "r.jsonl", cwd=tmp_path
    )
    assert result.code == 2
    assert (
        f"upscale-async: error: {source} line 2: not valid utf-8 text; if the file comes from "
        "Excel or Windows, try --encoding cp1252 (or --encoding latin-1)"
    ) in result.stderr.splitlines()
    rows = records(tmp_path / "r.jsonl")
    assert {r["line"] for r in rows if r["outcome"] == "rejected"} >= {2, 3}
    assert len(rows) == 4


def test_unknown_encoding_is_a_usage_error(tmp_path: Path, campaign_file: Path) -> None:
    """--encoding with a name Python does not know exits 2 and names good encodings."""
    source = _write(tmp_path / "leads.csv", _leads(2), encoding="utf-8", delimiter=",")
    result = run_cli(
        "generate", source, "--campaign", campaign_file, "--out", "r.jsonl",
        "--encoding", "klingon", cwd=tmp_path,
    )  # fmt: skip
    assert result.code == 2
    assert "argument --encoding: unknown encoding; use a name such as utf-8" in result.stderr


def test_semicolon_file_is_sniffed(tmp_path: Path, campaign_file: Path) -> None:
    """A ';'-separated CSV is read without options: every lead generated."""
    source = _write(tmp_path / "leads.csv", _leads(5), encoding="utf-8", delimiter=";")
    result = run_cli(
        "generate", source, "--campaign", campaign_file, "--out", "r.jsonl", cwd=tmp_path
    )
    assert result.code == 0, result.stderr
    assert [r["outcome"] for r in records(tmp_path / "r.jsonl")] == ["generated"] * 5


def test_explicit_tab_delimiter(tmp_path: Path, campaign_file: Path) -> None:
    """--delimiter tab reads a tab-separated file."""
    source = _write(tmp_path / "leads.tsv", _leads(3), encoding="utf-8", delimiter="\t")
    result = run_cli(
        "generate", source, "--campaign", campaign_file, "--out", "r.jsonl",
        "--in-format", "csv", "--delimiter", "tab", cwd=tmp_path,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert len(records(tmp_path / "r.jsonl")) == 3


def test_unrecognised_delimiter_header_error_suggests_delimiter(
    tmp_path: Path, campaign_file: Path
) -> None:
    """A header split by no known delimiter: exit 2, the message names the delimiter option."""
    source = _write(tmp_path / "leads.csv", _leads(2), encoding="utf-8", delimiter=":")
    result = run_cli(
        "generate", source, "--campaign", campaign_file, "--out", "r.jsonl", cwd=tmp_path
    )
    assert result.code == 2
    assert "read with the delimiter ',': pass --delimiter if the file uses another" in (
        result.stderr
    )


def test_stdin_leads_end_to_end(tmp_path: Path, campaign_file: Path) -> None:
    """`generate - ... < leads.csv` (latin-1, ';') reads stdin: every lead generated."""
    source = _write(tmp_path / "leads.csv", _leads(5), encoding="latin-1", delimiter=";")
    result = _run_with_stdin(
        "generate", "-", "--campaign", campaign_file, "--out", "o.jsonl", "--encoding", "latin-1",
        stdin=source.read_bytes(), cwd=tmp_path,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    rows = records(tmp_path / "o.jsonl")
    assert [r["outcome"] for r in rows] == ["generated"] * 5


def test_stdin_problems_are_named_stdin(tmp_path: Path, campaign_file: Path) -> None:
    """A bad row read from stdin is reported as '<stdin> line N'."""
    source = _write(tmp_path / "leads.csv", _leads(2), encoding="utf-8", delimiter=",")
    data = source.read_bytes() + b"lead_broken,x\n"
    result = _run_with_stdin(
        "generate", "-", "--campaign", campaign_file, "--out", "o.jsonl",
        stdin=data, cwd=tmp_path,
    )  # fmt: skip
    assert result.code == 2
    assert "<stdin> line 4: malformed CSV row: 2 fields where the header has 7" in result.stderr


def test_stdout_results_keep_stderr_for_the_summary(tmp_path: Path, campaign_file: Path) -> None:
    """--out - writes the JSON lines to stdout; progress and summary stay on stderr."""
    source = _write(tmp_path / "leads.csv", _leads(4), encoding="utf-8", delimiter=",")
    result = run_cli("generate", source, "--campaign", campaign_file, "--out", "-", cwd=tmp_path)
    assert result.code == 0, result.stderr
    rows = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [r["outcome"] for r in rows] == ["generated"] * 4
    assert "4 leads in" in result.stderr
    assert "results written to <stdout>" in result.stderr


def test_unknown_out_extension_exits_2(tmp_path: Path, campaign_file: Path) -> None:
    """--out o.xlsx is a usage error naming the extension and --out-format; nothing is written."""
    source = _write(tmp_path / "leads.csv", _leads(2), encoding="utf-8", delimiter=",")
    result = run_cli(
        "generate", source, "--campaign", campaign_file, "--out", "o.xlsx", cwd=tmp_path
    )
    assert result.code == 2
    assert "--out o.xlsx: unknown extension '.xlsx'" in result.stderr
    assert "--out-format jsonl or --out-format csv" in result.stderr
    assert not (tmp_path / "o.xlsx").exists()


def test_ndjson_and_json_extensions_write_json_lines(tmp_path: Path, campaign_file: Path) -> None:
    """--out o.ndjson writes JSON lines, as .jsonl and .json do."""
    source = _write(tmp_path / "leads.csv", _leads(2), encoding="utf-8", delimiter=",")
    result = run_cli(
        "generate", source, "--campaign", campaign_file, "--out", "o.ndjson", cwd=tmp_path
    )
    assert result.code == 0, result.stderr
    assert [r["outcome"] for r in records(tmp_path / "o.ndjson")] == ["generated"] * 2


def test_csv_results_carry_the_lead_of_leads_not_generated(
    tmp_path: Path, campaign_file: Path
) -> None:
    """CSV results hold the lead's columns for a rejected lead and leave them empty when generated."""
    leads = _leads(3)
    leads[1]["lead_linkedin"] = "not a url"
    source = _write(tmp_path / "leads.csv", leads, encoding="utf-8", delimiter=",")
    result = run_cli(
        "generate", source, "--campaign", campaign_file, "--out", "r.csv", cwd=tmp_path
    )
    assert result.code == 1, result.stderr
    rows = {r["lead_id"]: r for r in _csv_rows(tmp_path / "r.csv")}
    rejected = rows[leads[1]["automation_tool_lead_id"]]
    assert rejected["outcome"] == "rejected"
    assert {f: rejected[f] for f in LEAD_FIELDS} == {f: leads[1].get(f) or "" for f in LEAD_FIELDS}
    generated = rows[leads[0]["automation_tool_lead_id"]]
    assert generated["outcome"] == "generated"
    assert all(generated[f] == "" for f in LEAD_FIELDS)


def test_csv_results_fed_back_send_only_the_leads_not_accepted(
    tmp_path: Path, campaign_file: Path
) -> None:
    """A results CSV after a 402, given back with --extra-fields ignore, sends the rest only."""
    leads = _leads(8)
    _write(tmp_path / "leads.csv", leads, encoding="utf-8", delimiter=",")
    with external_emulator("--credits", "6", "--no-webhooks") as emu:
        first = run_cli(
            "--base-url", emu.base_url, "--api-key", emu.api_key,
            "generate", "leads.csv", "--campaign", campaign_file, "--out", "results.csv",
            "--poll", "--poll-interval", 0.2, "--chunk-size", 3, "--concurrency", 1,
            cwd=tmp_path,
        )  # fmt: skip
    assert first.code == 1, first.stderr
    again = run_cli(
        "generate", "results.csv", "--campaign", campaign_file, "--out", "retry.jsonl",
        "--extra-fields", "ignore", cwd=tmp_path,
    )  # fmt: skip
    assert again.code == 0, again.stderr
    rows = records(tmp_path / "retry.jsonl")
    assert [r["lead_id"] for r in rows] == [x["automation_tool_lead_id"] for x in leads[3:]]
    assert {r["outcome"] for r in rows} == {"generated"}
    assert (
        "results.csv is a results file: rows Upscale already accepted (or repeating a lead id it "
        "was sent) are not sent again "
    ) in (again.stderr)


def test_unclosed_quote_from_stdin_latin1_semicolons_is_resynchronised(
    tmp_path: Path, campaign_file: Path
) -> None:
    """A quote never closed, read from stdin (latin-1, ';'): its row is rejected, no other lead lost.

    The quote runs into a later row's quoted field and stops there on a malformed quote; the
    rows it ran over are read again.
    """
    leads = _leads(12)
    leads[9]["lead_company"] = "Foo; Bar"  # written quoted: "Foo; Bar"
    source = _write(tmp_path / "leads.csv", leads, encoding="latin-1", delimiter=";")
    lines = source.read_bytes().splitlines(keepends=True)
    lines[3] = lines[3].replace(b";Globex;", b';"Globex;')
    result = _run_with_stdin(
        "generate", "-", "--campaign", campaign_file, "--out", "o.jsonl", "--encoding", "latin-1",
        stdin=b"".join(lines), cwd=tmp_path,
    )  # fmt: skip
    assert result.code == 2, result.stderr
    assert (
        "upscale-async: error: <stdin> line 4: unterminated quote opened on line 4 (the quoted "
        "field runs on to line 11, where the CSV is malformed: ';' expected after '\"'): close "
        'the quote (or escape it as "")'
    ) in result.stderr.splitlines()
    rows = records(tmp_path / "o.jsonl")
    assert [(r["line"], r["outcome"]) for r in rows if r["outcome"] != "generated"] == [
        (4, "rejected")
    ]
    generated = [r["lead_id"] for r in rows if r["outcome"] == "generated"]
    ids = [lead["automation_tool_lead_id"] for lead in leads]
    assert sorted(generated) == sorted(ids[:2] + ids[3:])
    [bad] = [r for r in rows if r["outcome"] == "rejected"]
    assert (bad["lead_id"], bad["raw"][:11]) == ("lead_00003", "lead_00003;")
    first = next(r for r in rows if r["lead_id"] == ids[0])
    assert "Hi Andrés," in first["messages"]["connection_request"]


def test_quoted_field_over_two_lines_is_one_field_and_lines_stay_right(
    tmp_path: Path, campaign_file: Path
) -> None:
    """A closed quoted field holding a line break is read as one field; later lines keep their numbers."""
    leads = _leads(4)
    leads[1]["lead_company"] = "Acme\nLabs"
    source = _write(tmp_path / "leads.csv", leads, encoding="utf-8", delimiter=",")
    with source.open("a", encoding="utf-8") as f:
        f.write("lead_broken,x\n")
    result = run_cli(
        "generate", source, "--campaign", campaign_file, "--out", "r.jsonl", cwd=tmp_path
    )
    assert result.code == 2, result.stderr
    assert f"{source} line 7: malformed CSV row: 2 fields where the header has 7" in result.stderr
    rows = records(tmp_path / "r.jsonl")
    assert {r["lead_id"]: r["outcome"] for r in rows} == {
        **{lead["automation_tool_lead_id"]: "generated" for lead in leads},
        "lead_broken": "rejected",
    }
    [bad] = [r for r in rows if r["outcome"] == "rejected"]
    assert (bad["line"], bad["raw"]) == (7, "lead_broken,x")


def _lead_text(n: int) -> str:
    """``n`` leads as CSV text, with accents (to be encoded as UTF-16 or UTF-32)."""
    rows = [LEAD_FIELDS, *([lead.get(k) or "" for k in LEAD_FIELDS] for lead in _leads(n))]
    return "".join(",".join(row) + "\r\n" for row in rows)


def _no_control_characters(text: str) -> None:
    """A message shows no NUL byte nor any other control character but its line breaks."""
    assert not [c for c in text if not c.isprintable() and c != "\n"], repr(text)


# How Excel ("Unicode text"), Notepad and iconv write UTF-16 and UTF-32: with a byte order mark
# in either order, or without one; what the message says it found, and the iconv command's -f.
_WIDE = {
    "utf-16-le-bom": (
        codecs.BOM_UTF16_LE, "utf-16-le",
        "the file is UTF-16 text (it starts with a UTF-16-LE byte order mark)", "utf-16",
    ),
    "utf-16-be-bom": (
        codecs.BOM_UTF16_BE, "utf-16-be",
        "the file is UTF-16 text (it starts with a UTF-16-BE byte order mark)", "utf-16",
    ),
    "utf-16-le-no-bom": (
        b"", "utf-16-le",
        "the file looks like UTF-16-LE text without a byte order mark (or is not text at all): "
        "it has NUL bytes among its first characters, the first at byte 2", "utf-16le",
    ),
    "utf-16-be-no-bom": (
        b"", "utf-16-be",
        "the file looks like UTF-16-BE text without a byte order mark (or is not text at all): "
        "it has NUL bytes among its first characters, the first at byte 1", "utf-16be",
    ),
    "utf-32-le-bom": (
        codecs.BOM_UTF32_LE, "utf-32-le",
        "the file is UTF-32 text (it starts with a UTF-32-LE byte order mark)", "utf-32",
    ),
    "utf-32-be-no-bom": (
        b"", "utf-32-be",
        "the file looks like UTF-32-BE text without a byte order mark (or is not text at all): "
        "it has NUL bytes among its first characters, the first at byte 1", "utf-32be",
    ),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(_WIDE))
@pytest.mark.parametrize("encoding", [None, "cp1252"])
def test_utf16_and_utf32_files_are_refused_with_the_iconv_command(
    tmp_path: Path, campaign_file: Path, kind: str, encoding: str | None
) -> None:
    """A UTF-16/32 leads file, whatever --encoding says: one message naming the file, what was
    found and the iconv command that converts it; no NUL byte printed, nothing written.

    Before, a UTF-16 file with a BOM got "not valid utf-8 text; ... try --encoding cp1252",
    and following that advice printed the header's NUL bytes as unknown columns.
    """
    bom, codec, found, iconv = _WIDE[kind]
    (tmp_path / "u16.csv").write_bytes(bom + _lead_text(3).encode(codec))
    options = [] if encoding is None else ["--encoding", encoding]
    result = run_cli(
        "generate", "u16.csv", "--campaign", campaign_file, "--out", "r.jsonl", *options,
        cwd=tmp_path,
    )  # fmt: skip
    assert result.code == 2, result.stderr
    read_as = encoding or "utf-8"
    assert result.stderr.splitlines() == [
        f"upscale-async: error: u16.csv: {found}, but the leads are read as {read_as} text, "
        "which needs an ASCII-compatible encoding; convert the file first: "
        f"iconv -f {iconv} -t utf-8 u16.csv > u16.utf8.csv (then give u16.utf8.csv)"
    ]
    _no_control_characters(result.stderr)
    assert not (tmp_path / "r.jsonl").exists()
    converted = subprocess.run(
        ["iconv", "-f", iconv, "-t", "utf-8", "u16.csv"], cwd=tmp_path, capture_output=True
    )
    if converted.returncode == 0:  # the command given works (where iconv is installed)
        assert converted.stdout.decode().removeprefix("\ufeff") == _lead_text(3)


@pytest.mark.parametrize("kind", ["utf-16-le-bom", "utf-16-le-no-bom", "utf-32-le-bom"])
def test_utf16_and_utf32_on_stdin_are_refused_with_the_iconv_command(
    tmp_path: Path, campaign_file: Path, kind: str
) -> None:
    """UTF-16/32 leads on stdin, JSON lines: refused the same way, the command pipes iconv."""
    bom, codec, found, iconv = _WIDE[kind]
    text = "".join(orjson.dumps(lead).decode() + "\n" for lead in _leads(3))
    result = _run_with_stdin(
        "generate", "-", "--campaign", campaign_file, "--out", "o.jsonl", "--in-format", "jsonl",
        stdin=bom + text.encode(codec), cwd=tmp_path,
    )  # fmt: skip
    assert result.code == 2, result.stderr
    assert result.stderr.splitlines() == [
        f"upscale-async: error: <stdin>: {found}, but the leads are read as utf-8 text, which "
        "needs an ASCII-compatible encoding; convert it first, piping it through iconv: "
        f"iconv -f {iconv} -t utf-8 LEADS | upscale-async generate - ..."
    ]
    _no_control_characters(result.stderr)


def test_stdin_read_ahead_loses_no_line(tmp_path: Path, campaign_file: Path) -> None:
    """The first bytes of stdin looked at for a byte order mark are read again: short first
    lines (blank, a bad record) keep their numbers and every lead after them is sent."""
    leads = _leads(3)
    text = "\n\n[1]\n" + "".join(orjson.dumps(lead).decode() + "\n" for lead in leads)
    result = _run_with_stdin(
        "generate", "-", "--campaign", campaign_file, "--out", "o.jsonl", "--in-format", "jsonl",
        stdin=text.encode(), cwd=tmp_path,
    )  # fmt: skip
    assert result.code == 2, result.stderr
    rows = records(tmp_path / "o.jsonl")
    assert [(r.get("line"), r["outcome"]) for r in rows if r["outcome"] != "generated"] == [
        (3, "rejected")
    ]
    assert sorted(r["lead_id"] for r in rows if r["outcome"] == "generated") == sorted(
        lead["automation_tool_lead_id"] for lead in leads
    )
    assert "Hi Andrés," in rows[1]["messages"]["connection_request"]


def test_control_characters_in_a_header_are_shown_escaped(
    tmp_path: Path, campaign_file: Path
) -> None:
    """An unknown column holding control characters is named with them escaped (\\x00, \\x1b)."""
    source = _write(tmp_path / "leads.csv", _leads(2), encoding="utf-8", delimiter=",")
    lines = source.read_bytes().splitlines(keepends=True)
    lines[0] = lines[0].replace(b"\r\n", b",no\x1b[31mte\x07s\r\n")
    source.write_bytes(b"".join(lines))
    result = run_cli(
        "generate", source, "--campaign", campaign_file, "--out", "r.jsonl", cwd=tmp_path
    )
    assert result.code == 2, result.stderr
    assert f"{source} line 1: unknown column(s) no\\x1b[31mte\\x07s; the columns" in result.stderr
    _no_control_characters(result.stderr)


def test_csv_results_fed_back_skip_and_count_the_pending_rows(
    tmp_path: Path, campaign_file: Path
) -> None:
    """A results CSV of an interrupted run given back: its ``pending`` rows (leads Upscale accepted
    and charged) are skipped and counted like ``generated`` ones, neither rejected nor sent."""
    leads = _leads(4)
    columns = [
        "lead_id", "outcome", "secure_request_id", "line", "connection_request", "reason",
        "errors", *LEAD_FIELDS, "lead_extra",
    ]  # fmt: skip

    def row(lead: dict[str, Any], outcome: str, request: str, filled: bool) -> list[str]:
        cells = [(lead.get(f) or "") if filled else "" for f in LEAD_FIELDS]
        return [lead["automation_tool_lead_id"], outcome, request, "", "", "", "", *cells, ""]

    with (tmp_path / "results.csv").open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerow(row(leads[0], "generated", "req-1", filled=False))
        writer.writerow(row(leads[1], "pending", "req-2", filled=False))
        writer.writerow(row(leads[2], "pending", "req-2", filled=True))
        writer.writerow(row(leads[3], "not_submitted", "", filled=True))
    again = run_cli(
        "generate", "results.csv", "--campaign", campaign_file, "--out", "retry.jsonl",
        "--extra-fields", "ignore", cwd=tmp_path,
    )  # fmt: skip
    assert again.code == 0, again.stderr
    rows = records(tmp_path / "retry.jsonl")
    assert [(r["lead_id"], r["outcome"]) for r in rows] == [
        (leads[3]["automation_tool_lead_id"], "generated")
    ]
    assert (
        "upscale-async: results.csv is a results file: rows Upscale already accepted (or "
        "repeating a lead id it was sent) are not sent again (1 generated, 2 pending)"
    ) in again.stderr.splitlines()
    summary = next(e for e in again.stderr.splitlines() if "credits used" in e)
    assert ": 1 generated, 0 failed, 0 rejected, 0 not submitted" in summary, summary
    assert summary.endswith("; 2 credits used"), summary  # one lead sent, 2 messages


def test_a_results_csv_fed_back_does_not_send_a_repeated_lead_id_again(
    tmp_path: Path, campaign_file: Path
) -> None:
    """A lead rejected for repeating an id that was sent carries its lead, but fed back it is
    skipped and counted: its twin is the lead Upscale has (it was sent again before)."""
    leads = _leads(4)
    twin = dict(leads[1], first_name="Other")  # the id of lead 1 again, with other data
    write_csv(tmp_path / "leads.csv", [*leads, twin])
    first = run_cli(
        "generate", "leads.csv", "--campaign", campaign_file, "--out", "out.csv", cwd=tmp_path
    )
    assert first.code == 1, first.stderr  # one lead not generated: the repeat
    again = run_cli(
        "generate", "out.csv", "--campaign", campaign_file, "--out", "retry.jsonl",
        "--extra-fields", "ignore", cwd=tmp_path,
    )  # fmt: skip
    assert again.code == 2, again.stderr
    assert (
        "upscale-async: out.csv is a results file: rows Upscale already accepted (or repeating a "
        "lead id it was sent) are not sent again (4 generated, 1 repeated id)"
    ) in again.stderr.splitlines()
    assert "out.csv: no leads to send again (Upscale accepted every lead of it)" in again.stderr
