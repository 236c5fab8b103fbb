"""The CLI's files: reading leads (CSV, JSONL) lazily, the campaign file, writing results.

A problem that concerns the whole file (unreadable, empty, bad CSV header) raises
:class:`InputError` before anything is sent. A problem with one record (a CSV row with the
wrong number of fields, a line that is not a JSON object, bytes that are not UTF-8) does not
stop the run: the record is kept aside as a :class:`ParseProblem` and written to the results
as a ``rejected`` record naming its line, so leads already submitted are never lost.
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Final, Literal

import attrs
import orjson

from .. import Campaign, LeadOutcome, ValidationError
from .._spec.contract import LEAD_OPTIONAL_URL_FIELDS, LEAD_REQUIRED_FIELDS
from .._spec.validation import WithExtraFields

__all__ = [
    "LEAD_FIELDS",
    "InputError",
    "LeadFile",
    "LineLead",
    "ParseProblem",
    "ResultWriter",
    "count_records",
    "open_results",
    "read_campaign",
]

LEAD_FIELDS: Final = (*LEAD_REQUIRED_FIELDS, *LEAD_OPTIONAL_URL_FIELDS)
_KNOWN: Final = frozenset(LEAD_FIELDS)
_LEAD_PATH: Final = re.compile(r"\Alead_data\[\d+\]\.?")

ExtraPolicy = Literal["error", "ignore", "send"]


class InputError(Exception):
    """A problem with an input or output file: one message per problem, exit status 2."""

    def __init__(self, *messages: str) -> None:
        self.messages = list(messages)
        super().__init__("\n".join(messages))


class LineLead(WithExtraFields):
    """A lead read from a file, remembering its line (for the messages of rejected leads).

    Its keys that are not lead fields are sent (they are there only under
    ``--extra-fields send``: the other policies reject or drop them while reading).
    """

    __slots__ = ("line",)

    def __init__(self, data: Mapping[str, Any], line: int) -> None:
        super().__init__(data)
        self.line = line


@attrs.frozen
class ParseProblem:
    """A record that could not be read as a lead."""

    line: int
    message: str
    lead_id: str | None = None


def _describe(exc: OSError, path: Path) -> str:
    reason = exc.strerror or str(exc)
    return f"{path}: {reason}"


def read_campaign(path: Path) -> Campaign:
    """The campaign file as a validated Campaign; InputError listing every problem."""
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise InputError(f"cannot read campaign file {_describe(exc, path)}") from None
    except orjson.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: the campaign must be a JSON object")
    try:
        return Campaign.from_mapping(data)
    except ValidationError as exc:
        raise InputError(*(f"{path}: {message}" for message in exc.messages)) from None
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: {exc}") from None


class LeadFile:
    """Leads from a CSV file (header = lead wire names) or a JSONL file, read lazily.

    Iterate it once to get the leads (:class:`LineLead`); records that are not leads go to
    ``problems`` (drain them with :meth:`take_problems`) instead of stopping the iteration.
    Opening it checks the file (readable, a header with the required columns, at least one
    record) and raises :class:`InputError`.
    """

    def __init__(self, path: Path, fmt: Literal["csv", "jsonl"], extra: ExtraPolicy) -> None:
        self.path = path
        self.format = fmt
        self.extra = extra
        self.problems: list[ParseProblem] = []
        self.records = 0
        try:
            self._file: IO[bytes] = path.open("rb")
        except OSError as exc:
            raise InputError(f"cannot read leads file {_describe(exc, path)}") from None
        try:
            self._records = self._csv() if fmt == "csv" else self._jsonl()
            self._first = next(self._records, None)
        except BaseException:
            self._file.close()
            raise
        if self._first is None and not self.problems:
            self._file.close()
            raise InputError(f"{path}: contains no leads")

    def close(self) -> None:
        self._file.close()

    def __iter__(self) -> Iterator[LineLead]:
        first, self._first = self._first, None
        if first is not None:
            yield first
        yield from self._records

    def take_problems(self) -> list[ParseProblem]:
        problems, self.problems = self.problems, []
        return problems

    def _problem(self, line: int, message: str, lead_id: object = None) -> None:
        known = lead_id if isinstance(lead_id, str) and lead_id.strip() else None
        self.problems.append(ParseProblem(line, f"{self.path} line {line}: {message}", known))

    def _lines(self, bad: set[int]) -> Iterator[str]:
        """Decoded lines; a line that is not UTF-8 is noted in ``bad`` (and decoded loosely)."""
        for number, raw in enumerate(self._file, 1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a UTF-8 byte order mark, as spreadsheet exports write
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError:
                bad.add(number)
                yield raw.decode("utf-8", errors="replace")

    def _extra_keys(self, keys: list[str]) -> list[str]:
        return [k for k in keys if k not in _KNOWN]

    def _csv(self) -> Iterator[LineLead]:
        bad: set[int] = set()
        reader = csv.reader(self._lines(bad), strict=True)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise InputError(f"{self.path} line 1: bad CSV header: {exc}") from None
        if header is None or not any(h.strip() for h in header):
            raise InputError(f"{self.path}: contains no leads (no CSV header)")
        header = [h.strip() for h in header]
        self._check_header(header)
        keep = [h in _KNOWN or self.extra == "send" for h in header]
        yield from self._csv_rows(reader, header, keep, bad)

    def _check_header(self, header: list[str]) -> None:
        """Every problem with the CSV header at once, as one InputError."""
        problems: list[str] = []
        missing = [f for f in LEAD_REQUIRED_FIELDS if f not in header]
        if missing:
            problems.append(
                f"{self.path} line 1: the CSV header lacks the required column(s) "
                f"{', '.join(missing)} (columns are the lead wire names: {', '.join(LEAD_FIELDS)})"
            )
        repeated = sorted({h for h in header if header.count(h) > 1})
        if repeated:
            problems.append(f"{self.path} line 1: repeated column(s) {', '.join(repeated)}")
        extra = self._extra_keys(header)
        if extra and self.extra == "error":
            problems.append(
                f"{self.path} line 1: unknown column(s) {', '.join(extra)}; the columns are the "
                f"lead wire names ({', '.join(LEAD_FIELDS)}); pass --extra-fields ignore to drop "
                "them or --extra-fields send to send them with each lead"
            )
        if problems:
            raise InputError(*problems)

    def _csv_rows(
        self, reader: Any, header: list[str], keep: list[bool], bad: set[int]
    ) -> Iterator[LineLead]:
        """The leads of the CSV rows; an unreadable row is recorded as a problem, skipped."""
        width = len(header)
        id_column = header.index("automation_tool_lead_id")
        last = reader.line_num
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                self._problem(last + 1, f"malformed CSV: {exc}")
                last = reader.line_num
                continue
            line, last = last + 1, reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # a blank line
            self.records += 1
            if any(n in bad for n in range(line, last + 1)):
                self._problem(line, "not valid UTF-8 text", row[0] if row else None)
                continue
            if len(row) != width:
                self._problem(
                    line,
                    f"malformed CSV row: {len(row)} fields where the header has {width}",
                    row[id_column] if len(row) > id_column else None,
                )
                continue
            lead: dict[str, Any] = {}
            for name, value, wanted in zip(header, row, keep, strict=True):
                if wanted:
                    # An empty cell is a missing value: null for the optional URLs and extra
                    # columns; "" for required fields, which validation then reports as blank.
                    lead[name] = value if value or name in LEAD_REQUIRED_FIELDS else None
            yield LineLead(lead, line)

    def _jsonl(self) -> Iterator[LineLead]:
        bad: set[int] = set()
        for line, text in enumerate(self._lines(bad), 1):
            if not text.strip():
                continue
            self.records += 1
            if line in bad:
                self._problem(line, "not valid UTF-8 text")
                continue
            try:
                data = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                self._problem(line, f"not valid JSON: {exc}")
                continue
            if not isinstance(data, dict):
                kind = "an array" if isinstance(data, list) else f"a {type(data).__name__}"
                self._problem(line, f"expected a JSON object (one lead), got {kind}")
                continue
            extra = self._extra_keys(list(data))
            if extra:
                if self.extra == "error":
                    self._problem(
                        line,
                        f"unknown field(s) {', '.join(extra)} (pass --extra-fields ignore or send)",
                        data.get("automation_tool_lead_id"),
                    )
                    continue
                if self.extra == "ignore":
                    data = {k: v for k, v in data.items() if k in _KNOWN}
            yield LineLead(data, line)


def count_records(path: Path) -> int | None:
    """About how many records a leads file holds (its lines, less a CSV header), for the ETA.

    Reads the file in blocks without keeping it; None when that is not possible.
    """
    try:
        if not path.is_file():
            return None
        lines = 0
        last = b"\n"
        with path.open("rb") as f:
            while block := f.read(1 << 20):
                lines += block.count(b"\n")
                last = block[-1:]
        if last != b"\n":
            lines += 1
        return lines
    except OSError:
        return None


class ResultWriter:
    """Writes one record per lead as JSON lines or CSV, flushing after each record."""

    def __init__(
        self, file: IO[str], fmt: Literal["jsonl", "csv"], types: list[str], source: Path
    ) -> None:
        self.file = file
        self.source = source
        self.format = fmt
        self.types = types
        self._csv = None
        if fmt == "csv":
            self._csv = csv.writer(file)
            self._csv.writerow(
                ["lead_id", "outcome", "secure_request_id", "line", *types, "reason", "errors"]
            )
            file.flush()

    def write(self, record: dict[str, Any]) -> None:
        if self._csv is None:
            self.file.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE).decode())
        else:
            messages = record.get("messages") or {}
            self._csv.writerow(
                [
                    record["lead_id"] or "",
                    record["outcome"],
                    record.get("secure_request_id") or "",
                    record.get("line") or "",
                    *(messages.get(t) or "" for t in self.types),
                    record.get("reason") or "",
                    " | ".join(record.get("errors") or ()),
                ]
            )
        self.file.flush()

    def outcome(self, outcome: LeadOutcome) -> None:
        record: dict[str, Any] = {"lead_id": outcome.lead_id, "outcome": outcome.outcome}
        line = getattr(outcome.lead, "line", None)
        if line is not None:
            record["line"] = line
        if outcome.secure_request_id is not None:
            record["secure_request_id"] = outcome.secure_request_id
        if outcome.outcome in ("generated", "failed") or outcome.messages:
            record["messages"] = dict(outcome.messages)
        errors = list(outcome.errors)
        reason = outcome.reason
        if errors and line is not None:
            # "lead_data[39].last_name is ..." names the lead's index in the stream; the
            # file's line is what the user can find.
            errors = [_LEAD_PATH.sub(f"{self.source} line {line}: ", e, count=1) for e in errors]
            reason = "; ".join(errors)
        if reason is not None:
            record["reason"] = reason
        if errors:
            record["errors"] = errors
        if outcome.lead is not None and outcome.outcome != "generated":
            # What is needed to fix or resubmit the lead.
            record["lead"] = dict(outcome.lead)
        self.write(record)

    def problem(self, problem: ParseProblem) -> None:
        self.write(
            {
                "lead_id": problem.lead_id,
                "outcome": "rejected",
                "line": problem.line,
                "reason": problem.message,
                "errors": [problem.message],
            }
        )


def open_results(path: Path, inputs: list[Path]) -> IO[str]:
    """Open the results file for writing (truncating it); InputError when it cannot be."""
    if path.is_dir():
        raise InputError(f"--out {path} is a directory; give a file name such as results.jsonl")
    for source in inputs:
        try:
            if path.exists() and os.path.samefile(path, source):
                raise InputError(f"--out {path} is an input file; it would be overwritten")
        except OSError:
            pass
    try:
        return path.open("w", encoding="utf-8", newline="")
    except OSError as exc:
        raise InputError(f"cannot write results file {_describe(exc, path)}") from None
