"""The CLI's files: reading leads (CSV, JSONL) lazily, the campaign file, writing results.

A problem that concerns the whole file (unreadable, empty, bad CSV header, unknown
encoding) raises :class:`InputError` before anything is sent. A problem with one record (a CSV
row with the wrong number of fields, a line that is not a JSON object, bytes that are not text
in the file's encoding) does not stop the run: the record is kept aside as a
:class:`ParseProblem` and written to the results as a ``rejected`` record naming its line (with
its text), so leads already submitted are never lost. A record whose quoted fields close but
whose fields are too few or too many is rejected whole, naming its lines (the text inside its
quotes is never read as rows). A CSV quote that is never closed (its field runs to the end of
the file, past the field-size limit, over more than :data:`MAX_RECORD_LINES` lines, or into a
malformed quote) rejects the record it opened and the reader starts again on the line after the
quote's, so no later row is lost. A lead
rejected for its fields (an unknown key) keeps its fields in its record, to be sent again. A
UTF-16 or UTF-32 file (a byte order mark, or NUL bytes among its first bytes) is refused with
the ``iconv`` command that converts it, whatever ``--encoding`` says. Messages show control
characters escaped. ``-`` names stdin (leads) or stdout (results).
"""

from __future__ import annotations

import codecs
import csv
import os
import re
import shlex
import sys
from collections import Counter, deque
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
    "display_name",
    "is_stdio",
    "open_results",
    "output_format",
    "read_campaign",
]

LEAD_FIELDS: Final = (*LEAD_REQUIRED_FIELDS, *LEAD_OPTIONAL_URL_FIELDS)
_KNOWN: Final = frozenset(LEAD_FIELDS)
_LEAD_PATH: Final = re.compile(r"\Alead_data\[\d+\]\.?")

#: The delimiters a CSV header is sniffed for (the one that finds the most lead columns wins).
DELIMITERS: Final = (",", ";", "\t", "|")
DEFAULT_ENCODING: Final = "utf-8"
#: The extensions ``--out`` is written by, without ``--out-format``.
OUT_FORMATS: Final = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv"}
#: Outcomes of a results CSV fed back as input that are not sent again: Upscale accepted (and
#: charged) them: ``pending`` ones (of an interrupted run) and ``timed_out`` ones can be fetched
#: with ``retrieve``, and ``generated`` rows hold no lead.
_ACCEPTED_OUTCOMES: Final = ("generated", "pending", "timed_out")
#: The reason of a results row rejected for repeating a lead id (the SDK's or the CLI's message):
#: its twin is the lead that was sent, so a results file fed back does not send it either.
_REPEATED_ID: Final = re.compile(r"automation_tool_lead_id must be unique (?:in a batch )?but ")
#: A CSV record is given up on (as an unterminated quote) when it spans more physical lines.
MAX_RECORD_LINES: Final = 2000
#: How many characters of an unreadable record's text its rejected record carries.
RAW_SHOWN: Final = 2000
#: The failure of a CSV record that ran over MAX_RECORD_LINES lines.
_TOO_LONG: Final = "too long"
#: How many of a leads file's first bytes are looked at for a UTF-16/32 byte order mark or NULs.
_HEAD_BYTES: Final = 64
#: The byte order marks of UTF-32 and UTF-16 (UTF-32-LE's first, as it starts with UTF-16-LE's).
_WIDE_BOMS: Final = (
    (codecs.BOM_UTF32_LE, "UTF-32", "UTF-32-LE"),
    (codecs.BOM_UTF32_BE, "UTF-32", "UTF-32-BE"),
    (codecs.BOM_UTF16_LE, "UTF-16", "UTF-16-LE"),
    (codecs.BOM_UTF16_BE, "UTF-16", "UTF-16-BE"),
)
_ENCODING_HINT: Final = (
    "if the file comes from Excel or Windows, try --encoding cp1252 (or --encoding latin-1)"
)

ExtraPolicy = Literal["error", "ignore", "send"]


def is_stdio(path: Path) -> bool:
    """Whether ``path`` is ``-``: stdin for the leads, stdout for the results."""
    return str(path) == "-"


def display_name(path: Path, stream: str = "stdin") -> str:
    """The file's name in messages (``<stdin>`` for ``-``)."""
    return f"<{stream}>" if is_stdio(path) else str(path)


def check_encoding(name: str) -> str:
    """The codec's canonical name; InputError for an unknown or not line-based encoding."""
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise InputError(
            f"--encoding {name}: unknown encoding; use a name such as utf-8, cp1252 or latin-1"
        ) from None
    if '\n,;"'.encode(info.name) != b'\n,;"':
        # UTF-16/32 files are not read line by line as bytes; converting them is one command.
        raise InputError(
            f"--encoding {name}: not supported (the leads are read line by line, which needs "
            f"an ASCII-compatible encoding); convert the file first, for example: "
            f"iconv -f {name} -t utf-8 leads.csv > leads-utf8.csv"
        )
    return info.name


def output_format(path: Path, given: str | None) -> Literal["jsonl", "csv"]:
    """The results format: ``given``, else from ``path``'s extension (none, or ``-``: jsonl)."""
    if given is not None:
        return "csv" if given == "csv" else "jsonl"
    suffix = path.suffix.lower()
    if is_stdio(path) or not suffix:
        return "jsonl"
    if suffix not in OUT_FORMATS:
        raise InputError(
            f"--out {path}: unknown extension {path.suffix!r} (results are JSON lines for "
            ".jsonl, .ndjson or .json, CSV for .csv); rename the file or pass "
            "--out-format jsonl or --out-format csv"
        )
    return "csv" if OUT_FORMATS[suffix] == "csv" else "jsonl"


def _sniff(header: str) -> str:
    """The delimiter that splits the header line into the most lead wire names (else ",")."""
    best, found = ",", 0
    for delimiter in DELIMITERS:
        try:
            fields = next(csv.reader([header], delimiter=delimiter), [])
        except csv.Error:
            continue  # reading the header itself then says what is wrong with it
        score = sum(1 for f in fields if f.strip() in _KNOWN)
        if score > found:
            best, found = delimiter, score
    return best


def _printable(text: str) -> str:
    """``text`` with its control and other invisible characters escaped (``\\x00``, ``\\ufeff``).

    Messages quote what files hold (column names, keys); a NUL or an escape sequence must not
    reach the terminal.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def _wide_text(head: bytes) -> tuple[str, str] | None:
    """What a file's first bytes show of UTF-16 or UTF-32 text, and iconv's name for it (or None).

    A byte order mark says which; without one, NUL bytes (which no text in an ASCII-compatible
    encoding has) are taken for UTF-16 or UTF-32, the order told by where the first NUL is.
    """
    for bom, family, order in _WIDE_BOMS:
        if head.startswith(bom):
            found = f"the file is {family} text (it starts with a {order} byte order mark)"
            return found, family.lower()
    first = head.find(b"\0")
    if first < 0:
        return None
    width = "32" if b"\0\0\0" in head else "16"
    order = "BE" if first % 2 == 0 else "LE"
    return (
        f"the file looks like UTF-{width}-{order} text without a byte order mark (or is not "
        f"text at all): it has NUL bytes among its first characters, the first at byte "
        f"{first + 1}",
        f"utf-{width}{order.lower()}",
    )


class InputError(Exception):
    """A problem with an input or output file: one message per problem, exit status 2.

    Control characters in the messages are escaped.
    """

    def __init__(self, *messages: str) -> None:
        self.messages = [_printable(m) for m in messages]
        super().__init__("\n".join(self.messages))


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
    #: The record's text as read (at most RAW_SHOWN characters, then a note of the rest).
    raw: str | None = None
    #: The lead as read, when the record was read into one but refused for its fields.
    lead: Mapping[str, Any] | None = None


class _RecordTooLong(Exception):
    """A CSV record has run over MAX_RECORD_LINES physical lines without ending."""


class _Lines:
    """A file's numbered physical lines for ``csv.reader``, keeping the current record's lines.

    :meth:`start` begins a record; ``record`` then holds the lines the reader has taken for it
    (at most MAX_RECORD_LINES, and csv's field-size limit bounds their text), and
    :meth:`again` puts lines back to be read again: memory stays bounded whatever the file's size.
    """

    def __init__(self, source: Iterator[tuple[int, str]]) -> None:
        self._source = source
        self._again: deque[tuple[int, str]] = deque()
        self.record: list[tuple[int, str]] = []
        self.ended = False
        """Whether the current record reached the end of the file."""

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if len(self.record) >= MAX_RECORD_LINES:
            raise _RecordTooLong
        if self._again:
            item = self._again.popleft()
        else:
            taken = next(self._source, None)
            if taken is None:
                self.ended = True
                raise StopIteration
            item = taken
        self.record.append(item)
        return item[1]

    def start(self) -> None:
        self.record, self.ended = [], False

    def again(self, lines: list[tuple[int, str]]) -> None:
        self._again.extendleft(reversed(lines))


def _quote_line(texts: list[str], delimiter: str) -> int:
    """Which of a record's lines opened the last quoted field that ran past a line's end (or 0).

    Follows csv's rules: a quote opens a field only at its start; ``""`` inside is a quote.
    """
    found = opened = 0
    inside, at_start = False, True
    for index, text in enumerate(texts):
        if inside:
            found = opened
        position = 0
        while position < len(text):
            char = text[position]
            if inside and char == '"':
                if text.startswith('"', position + 1):
                    position += 1
                else:
                    inside = False
            elif char == '"' and at_start and not inside:
                inside, opened = True, index
            at_start = not inside and char in (delimiter, "\r", "\n")
            position += 1
    return found


def _lead_id(text: str, column: int, delimiter: str) -> str | None:
    """The lead id of a broken record's first line, when a field before its last holds it."""
    try:
        row = next(csv.reader([text], delimiter=delimiter), [])
    except csv.Error:
        return None
    return row[column] if column < len(row) - 1 else None


def _raw(lines: list[tuple[int, str]]) -> str:
    """The text of a record's lines, without the last line break, shortened to RAW_SHOWN."""
    text = "".join(line for _, line in lines).removesuffix("\n").removesuffix("\r")
    if len(text) <= RAW_SHOWN:
        return text
    return f"{text[:RAW_SHOWN]}... ({len(text) - RAW_SHOWN} more characters)"


def _quote_trouble(failure: str, lines: _Lines) -> str:
    """Where a quoted field that ran over lines ended, and why it was given up on."""
    end = lines.record[-1][0]
    if failure == _TOO_LONG:
        return f"the quoted field runs on over more than {MAX_RECORD_LINES} lines, to line {end}"
    if lines.ended:
        return f"the quoted field runs to the end of the file, line {end}"
    if "field limit" in failure:
        return (
            f"the quoted field runs past the CSV field-size limit of {csv.field_size_limit()} "
            f"characters, to line {end}"
        )
    return f"the quoted field runs on to line {end}, where the CSV is malformed: {failure}"


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
    record) and raises :class:`InputError`. ``-`` reads stdin. ``encoding`` is any
    ASCII-compatible codec; the CSV ``delimiter`` is sniffed from the header unless given.
    A results CSV of ``generate`` fed back as input (it has ``lead_id`` and ``outcome``
    columns) sends its leads again except those Upscale accepted (``generated``, ``pending``,
    ``timed_out``); ``skipped`` counts those rows by outcome.
    """

    # Long: one place opens the file and checks it before anything is sent; splitting it
    # would scatter the close-on-failure handling.
    def __init__(
        self,
        path: Path,
        fmt: Literal["csv", "jsonl"],
        extra: ExtraPolicy,
        *,
        encoding: str = DEFAULT_ENCODING,
        delimiter: str | None = None,
    ) -> None:
        self.path = path
        self.name = display_name(path)
        self.format = fmt
        self.extra = extra
        self.encoding = check_encoding(encoding)
        self.delimiter = delimiter
        self.problems: list[ParseProblem] = []
        self.records = 0
        self.skipped: Counter[str] = Counter()
        self._stdin = is_stdio(path)
        try:
            self._file: IO[bytes] = sys.stdin.buffer if self._stdin else path.open("rb")
        except OSError as exc:
            raise InputError(f"cannot read leads file {_describe(exc, path)}") from None
        try:
            self._head = self._file.read(_HEAD_BYTES)  # read again first, by _byte_lines
            self._refuse_wide_text()
            self._records = self._csv() if fmt == "csv" else self._jsonl()
            self._first = next(self._records, None)
        except BaseException:
            self.close()
            raise
        if self._first is None and not self.problems:
            self.close()
            if self.skipped:
                raise InputError(
                    f"{self.name}: no leads to send again (Upscale accepted every lead of it)"
                )
            raise InputError(f"{self.name}: contains no leads")

    def close(self) -> None:
        if not self._stdin:
            self._file.close()

    def __iter__(self) -> Iterator[LineLead]:
        first, self._first = self._first, None
        if first is not None:
            yield first
        yield from self._records

    def take_problems(self) -> list[ParseProblem]:
        problems, self.problems = self.problems, []
        return problems

    def _problem(
        self,
        line: int,
        message: str,
        lead_id: object = None,
        raw: str | None = None,
        lead: Mapping[str, Any] | None = None,
    ) -> None:
        known = lead_id if isinstance(lead_id, str) and lead_id.strip() else None
        text = _printable(f"{self.name} line {line}: {message}")
        self.problems.append(ParseProblem(line, text, known, raw, lead))

    def _refuse_wide_text(self) -> None:
        """InputError for a UTF-16 or UTF-32 file, naming what was found and how to convert it.

        They are not read line by line as bytes, whatever --encoding says (--encoding utf-16
        itself is refused by check_encoding).
        """
        found = _wide_text(self._head)
        if found is None:
            return
        what, source = found
        if self._stdin:
            fix = (
                "convert it first, piping it through iconv: "
                f"iconv -f {source} -t utf-8 LEADS | upscale-async generate - ..."
            )
        else:
            converted = shlex.quote(str(self.path.with_stem(f"{self.path.stem}.utf8")))
            fix = (
                f"convert the file first: iconv -f {source} -t utf-8 "
                f"{shlex.quote(str(self.path))} > {converted} (then give {converted})"
            )
        raise InputError(
            f"{self.name}: {what}, but the leads are read as {self.encoding} text, which needs "
            f"an ASCII-compatible encoding; {fix}"
        )

    def _byte_lines(self) -> Iterator[bytes]:
        """The file's lines, as iterating it splits them, the bytes read ahead included."""
        head, self._head = self._head, b""
        *lines, rest = head.split(b"\n")
        for line in lines:
            yield line + b"\n"
        rest += self._file.readline()
        if rest:
            yield rest
        yield from self._file

    def _undecodable(self) -> str:
        hint = f"; {_ENCODING_HINT}" if self.encoding == "utf-8" else " (see --encoding)"
        return f"not valid {self.encoding} text{hint}"

    def _lines(self, bad: set[int]) -> Iterator[tuple[int, str]]:
        """Numbered decoded lines; one that does not decode is in ``bad`` (decoded loosely)."""
        encoding = self.encoding
        for number, raw in enumerate(self._byte_lines(), 1):
            if number == 1 and raw.startswith(codecs.BOM_UTF8) and encoding == "utf-8":
                raw = raw[3:]  # a UTF-8 byte order mark, as spreadsheet exports write
            try:
                yield number, raw.decode(encoding)
            except UnicodeDecodeError:
                bad.add(number)
                yield number, raw.decode(encoding, errors="replace")

    def _extra_keys(self, keys: list[str]) -> list[str]:
        return [k for k in keys if k not in _KNOWN]

    def _csv(self) -> Iterator[LineLead]:
        bad: set[int] = set()
        lines = _Lines(self._lines(bad))
        first = next(lines, None)
        delimiter = self.delimiter or _sniff(first or "")
        lines.again(lines.record)
        lines.start()
        reader = csv.reader(lines, delimiter=delimiter, strict=True)
        try:
            header = next(reader, None)
        except csv.Error as exc:
            raise InputError(f"{self.name} line 1: bad CSV header: {exc}") from None
        except _RecordTooLong:
            raise InputError(
                f"{self.name} line 1: bad CSV header: a quoted field runs on over more than "
                f"{MAX_RECORD_LINES} lines; close its quote"
            ) from None
        if header is None or not any(h.strip() for h in header):
            raise InputError(f"{self.name}: contains no leads (no CSV header)")
        if 1 in bad:
            raise InputError(f"{self.name} line 1: the CSV header is {self._undecodable()}")
        header = [h.strip() for h in header]
        self._check_header(header, delimiter)
        keep = [h in _KNOWN or self.extra == "send" for h in header]
        yield from self._csv_rows(self._csv_records(reader, lines, header, bad), header, keep)
        if self.skipped:
            counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(self.skipped.items()))
            print(
                f"upscale-async: {self.name} is a results file: rows Upscale already accepted "
                f"(or repeating a lead id it was sent) are not sent again ({counts})",
                file=sys.stderr,
                flush=True,
            )

    def _check_header(self, header: list[str], delimiter: str) -> None:
        """Every problem with the CSV header at once, as one InputError."""
        problems: list[str] = []
        missing = [f for f in LEAD_REQUIRED_FIELDS if f not in header]
        if missing:
            problems.append(
                f"{self.name} line 1: the CSV header lacks the required column(s) "
                f"{', '.join(missing)} (columns are the lead wire names: {', '.join(LEAD_FIELDS)}; "
                f"read with the delimiter {delimiter!r}: pass --delimiter if the file uses "
                "another one)"
            )
        repeated = sorted({h for h in header if header.count(h) > 1})
        if repeated:
            problems.append(f"{self.name} line 1: repeated column(s) {', '.join(repeated)}")
        extra = self._extra_keys(header)
        if extra and self.extra == "error":
            problems.append(
                f"{self.name} line 1: unknown column(s) {', '.join(extra)}; the columns are the "
                f"lead wire names ({', '.join(LEAD_FIELDS)}); pass --extra-fields ignore to drop "
                "them or --extra-fields send to send them with each lead"
            )
        if problems:
            raise InputError(*problems)

    def _csv_records(
        self, reader: Any, lines: _Lines, header: list[str], bad: set[int]
    ) -> Iterator[tuple[int, list[str]]]:
        """The CSV rows of the header's width with their first line; the others are problems."""
        width = len(header)
        id_column = header.index("automation_tool_lead_id")
        delimiter = reader.dialect.delimiter
        while True:
            lines.start()
            failure: str | None = None
            try:
                row: list[str] = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                row, failure = [], str(exc)
            except _RecordTooLong:
                row, failure = [], _TOO_LONG
            if failure is None and (not row or (len(row) == 1 and not row[0].strip())):
                continue  # a blank line
            self.records += 1
            record = lines.record
            line = record[0][0]
            if failure is not None:
                lead_id = _lead_id(record[0][1], id_column, delimiter)
                self._broken(lines, delimiter, failure, lead_id)
                continue
            if any(n in bad for n, _ in record):
                self._problem(line, self._undecodable(), row[0], _raw(record))
            elif len(row) != width:
                # csv read the record without an error, so its quotes are closed: it is one
                # record (its lines are not read again), rejected whole.
                where = f" (lines {line}-{record[-1][0]})" if len(record) > 1 else ""
                self._problem(
                    line,
                    f"malformed CSV row: {len(row)} fields where the header has {width}{where}",
                    row[id_column] if len(row) > id_column else None,
                    _raw(record),
                )
            else:
                yield line, row

    def _broken(self, lines: _Lines, delimiter: str, failure: str, lead_id: str | None) -> None:
        """A CSV record csv could not read, as a problem; one whose quote ran on (over lines, to
        the end of the file, past the field-size limit or into a malformed quote) keeps only the
        lines up to the quote's, the rest are read again.
        """
        record = lines.record
        if len(record) == 1 and not lines.ended:
            self._problem(record[0][0], f"malformed CSV: {failure}", lead_id, _raw(record))
            return
        texts = [text for _, text in record]
        opened = _quote_line(texts, delimiter)
        lines.again(record[opened + 1 :])
        why = _quote_trouble(failure, lines)
        self._problem(
            record[0][0],
            f"unterminated quote opened on line {record[opened][0]} ({why}): close the quote "
            '(or escape it as "")',
            lead_id,
            _raw(record[: opened + 1]),
        )

    def _csv_rows(
        self, rows: Iterator[tuple[int, list[str]]], header: list[str], keep: list[bool]
    ) -> Iterator[LineLead]:
        """The leads of the CSV rows (a results CSV: those Upscale did not accept)."""
        outcome_column = header.index("outcome") if {"lead_id", "outcome"} <= set(header) else None
        reason_column = (
            header.index("reason") if outcome_column is not None and "reason" in header else None
        )
        for line, row in rows:
            if outcome_column is not None and row[outcome_column] in _ACCEPTED_OUTCOMES:
                self.skipped[row[outcome_column]] += 1
                continue
            if reason_column is not None and _REPEATED_ID.search(row[reason_column]):
                self.skipped["repeated id"] += 1
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
        for line, text in self._lines(bad):
            if not text.strip():
                continue
            self.records += 1
            raw = _raw([(line, text)])
            if line in bad:
                self._problem(line, self._undecodable(), raw=raw)
                continue
            try:
                data = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                self._problem(line, f"not valid JSON: {exc}", raw=raw)
                continue
            if not isinstance(data, dict):
                kind = "an array" if isinstance(data, list) else f"a {type(data).__name__}"
                self._problem(line, f"expected a JSON object (one lead), got {kind}", raw=raw)
                continue
            extra = self._extra_keys(list(data))
            if extra:
                if self.extra == "error":
                    self._problem(
                        line,
                        f"unknown field(s) {', '.join(extra)} (pass --extra-fields ignore or send)",
                        data.get("automation_tool_lead_id"),
                        lead=data,  # its record carries it, to be sent again
                    )
                    continue
                if self.extra == "ignore":
                    data = {k: v for k, v in data.items() if k in _KNOWN}
            yield LineLead(data, line)


def count_records(path: Path) -> int | None:
    """About how many records a leads file holds (its lines, less a CSV header), for the ETA.

    Reads the file in blocks without keeping it; None when that is not possible (stdin).
    """
    try:
        if is_stdio(path) or not path.is_file():
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
    """Writes one record per lead as JSON lines or CSV, flushing after each record.

    A CSV has one column per message type, then the lead's columns (its wire names, filled
    for every lead not generated, so the file can be fed back as input) and ``lead_extra``
    (the lead's other fields as a JSON object, when it has any).
    """

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
                [
                    "lead_id", "outcome", "secure_request_id", "line", *types, "reason", "errors",
                    *LEAD_FIELDS, "lead_extra",
                ]
            )  # fmt: skip
            file.flush()

    def write(self, record: dict[str, Any]) -> None:
        if self._csv is None:
            self.file.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE).decode())
        else:
            messages = record.get("messages") or {}
            lead = record.get("lead") or {}
            extra = {k: v for k, v in lead.items() if k not in _KNOWN}
            self._csv.writerow(
                [
                    record["lead_id"] or "",
                    record["outcome"],
                    record.get("secure_request_id") or "",
                    record.get("line") or "",
                    *(messages.get(t) or "" for t in self.types),
                    record.get("reason") or "",
                    " | ".join(record.get("errors") or ()),
                    *(_cell(lead.get(f)) for f in LEAD_FIELDS),
                    orjson.dumps(extra).decode() if extra else "",
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
            name = display_name(self.source)
            errors = [_LEAD_PATH.sub(f"{name} line {line}: ", e, count=1) for e in errors]
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
        record: dict[str, Any] = {
            "lead_id": problem.lead_id,
            "outcome": "rejected",
            "line": problem.line,
            "reason": problem.message,
            "errors": [problem.message],
        }
        if problem.raw is not None:
            # The record's text, so that nothing read is lost (JSON lines only: a CSV has no
            # column for it).
            record["raw"] = problem.raw
        if problem.lead is not None:
            # The lead as read (a CSV fills the lead's columns), to fix and send again.
            record["lead"] = dict(problem.lead)
        self.write(record)


def _cell(value: Any) -> str:
    """A lead field as a CSV cell: None is empty, text as it is, anything else as JSON."""
    if value is None:
        return ""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def open_results(path: Path, inputs: list[Path]) -> IO[str]:
    """Open the results file for writing (truncating it); InputError when it cannot be.

    ``-`` is stdout (left open when the returned file is closed).
    """
    if is_stdio(path):
        sys.stdout.flush()
        return open(sys.stdout.fileno(), "w", encoding="utf-8", newline="", closefd=False)
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
