"""Phone numbers from a CSV file: a campaign's audience, read as a stream.

The file is read with the :mod:`csv` module in the dialect sniffed from its first lines
(``,``, ``;``, tab or ``|``; quoted fields, even across lines, as Excel writes them), a
byte-order mark dropped (Excel's "CSV UTF-8"). The number is the first column; a first row
without digits there is a header; blank rows are skipped. Every other row either gives a
number that can receive an SMS (:func:`gateway.text.phone.normalize_phone` with ``sms=True``)
or is refused, with its line number and the reason; the first
:data:`REFUSED_ROWS_LISTED` are listed, the rest counted by reason.
"""

from __future__ import annotations

import csv
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from gateway.text.phone import InvalidPhoneNumber, normalize_phone

__all__ = ["REFUSED_ROWS_LISTED", "CsvReport", "NumberReader", "RefusedRow", "parse_numbers"]

REFUSED_ROWS_LISTED = 20
DELIMITERS = ",;\t|"
SNIFF_CHARS = 8192
"""How much of the file's start the dialect is guessed from."""
MAX_QUOTED_LINES = 20
"""A quoted field still open after this many lines is taken for a stray quote."""
NO_NUMBER = "no_number"
UNREADABLE = "unreadable"


@dataclass(frozen=True)
class RefusedRow:
    """A row of the file that gave no number, and why."""

    line: int
    """Where the row starts in the file (1-based)."""
    reason: str
    """A :class:`gateway.text.phone.PhoneProblem` value, ``no_number`` or ``unreadable``."""
    message: str

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class CsvReport:
    """What an uploaded CSV of phone numbers gave."""

    lines: int
    numbers: int
    """Distinct valid numbers added."""
    duplicates: int
    bad_lines: int
    """Rows refused."""
    bad_line_numbers: list[int] = field(default_factory=list)
    """The first few refused rows' line numbers (1-based), to find them in the file."""
    refused: list[RefusedRow] = field(default_factory=list)
    """The first :data:`REFUSED_ROWS_LISTED` refused rows, with the reason."""
    refused_by_reason: dict[str, int] = field(default_factory=dict)
    """Every refused row, counted by reason."""
    delimiter: str = ","

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> list[str]:
        """The report as lines of text, for the command line."""
        out = [
            f"CSV: {self.numbers} numbers, {self.duplicates} duplicate(s), "
            f"{self.bad_lines} row(s) refused"
            + (f" ({_counts(self.refused_by_reason)})" if self.bad_lines else "")
        ]
        out += [f"  {row}" for row in self.refused]
        if self.bad_lines > len(self.refused):
            out.append(f"  ... and {self.bad_lines - len(self.refused)} more")
        return out


def _counts(by_reason: dict[str, int]) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in sorted(by_reason.items()))


class _Excel(csv.excel):
    def __init__(self, delimiter: str) -> None:
        super().__init__()
        self.delimiter = delimiter


class _Lines:
    """The lines handed to :func:`csv.reader`; refilled between rows."""

    def __init__(self) -> None:
        self.queue: deque[str] = deque()

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        if not self.queue:
            raise StopIteration
        return self.queue.popleft()


class NumberReader:
    """Reads a CSV of phone numbers given in pieces of text of any size (a file, a
    request body as it arrives): :meth:`feed` and :meth:`finish` return the numbers read
    so far, E.164, in file order (duplicates included); :meth:`report` says the rest."""

    def __init__(self, *, region: str) -> None:
        self.region = region
        self._tail = ""
        self._started = False
        self._head: list[str] | None = []  # lines kept until the dialect is sniffed
        self._head_chars = 0
        self._delimiter = ","
        self._quote: str | None = '"'
        self._held: list[str] = []  # a row's lines while a quoted field is open
        self._lines = _Lines()
        self._reader = csv.reader(self._lines)  # in the sniffed dialect once it is known
        self._line_no = 0
        self._header_possible = True
        self._numbers: list[str] = []
        self.accepted = 0
        self.refused: list[RefusedRow] = []
        self.refused_count = 0
        self.by_reason: dict[str, int] = {}

    def feed(self, text: str) -> list[str]:
        """Read ``text``, the next piece of the file; the numbers of its complete rows."""
        if not self._started:
            self._started = True
            text = text.removeprefix("\ufeff")
        lines = (self._tail + text).splitlines(keepends=True)
        # The last piece may be a line cut short (or a "\r" whose "\n" is still to come).
        self._tail = lines.pop() if lines else ""
        for line in lines:
            self._line(line)
        return self._take()

    def finish(self) -> list[str]:
        """The end of the file: the numbers of the rows still held."""
        if self._tail:
            self._line(self._tail)
            self._tail = ""
        self._sniff()
        while self._held:  # a quote never closed: its line alone, the lines after afresh
            held, self._held = self._held, []
            self._parse(held[:1])
            for rest in held[1:]:
                self._row_line(rest)
        return self._take()

    def report(self, *, numbers: int, duplicates: int) -> CsvReport:
        """The report, once finished; ``numbers`` (distinct, added) and ``duplicates``
        are the caller's count, which de-duplicates."""
        return CsvReport(
            lines=self._line_no,
            numbers=numbers,
            duplicates=duplicates,
            bad_lines=self.refused_count,
            bad_line_numbers=[r.line for r in self.refused],
            refused=list(self.refused),
            refused_by_reason=dict(sorted(self.by_reason.items())),
            delimiter=self._delimiter,
        )

    def _take(self) -> list[str]:
        out, self._numbers = self._numbers, []
        return out

    def _line(self, line: str) -> None:
        if self._head is None:
            self._row_line(line)
            return
        self._head.append(line)
        self._head_chars += len(line)
        if self._head_chars >= SNIFF_CHARS:
            self._sniff()

    def _sniff(self) -> None:
        """Guess the dialect from the lines held, then read them."""
        if self._head is None:
            return
        head, self._head = self._head, None
        sample = [line for line in head if line.strip()]
        dialect: Any = csv.excel
        try:
            dialect = csv.Sniffer().sniff("".join(sample), delimiters=DELIMITERS)
        except csv.Error:
            # The sniffer wants the same count on nine rows in ten: else the separator
            # found on the most rows (commas for one column).
            dialect = _Excel(max(DELIMITERS, key=lambda d: sum(d in line for line in sample)))
        self._delimiter = dialect.delimiter
        self._quote = None if dialect.quoting == csv.QUOTE_NONE else dialect.quotechar
        self._reader = csv.reader(self._lines, dialect)
        for line in head:
            self._row_line(line)

    def _row_line(self, line: str) -> None:
        """Hold ``line`` until its row is complete (its quotes closed), then read the row."""
        held = self._held
        held.append(line)
        if self._quote is not None and len(held) == 1 and self._quote not in line:
            self._held = []
            self._parse(held)
            return
        text = "".join(held)
        open_quote = self._quote is not None and text.count(self._quote) % 2 == 1
        if not open_quote:
            self._held = []
            self._parse(held)
        elif len(held) >= MAX_QUOTED_LINES:
            # A quote never closed: its line is read alone, the lines after it afresh.
            self._held = []
            self._parse(held[:1])
            for rest in held[1:]:
                self._row_line(rest)

    def _parse(self, lines: list[str]) -> None:
        reader = self._reader
        self._lines.queue.extend(lines)
        # Usually one row; more when a quote inside a field (5'6") misled the holding.
        while self._lines.queue:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except csv.Error as e:
                self._refuse(start, UNREADABLE, f"not a CSV row ({e})")
                continue
            self._row(start, row)
        self._line_no = reader.line_num

    def _row(self, line: int, row: list[str]) -> None:
        cell = row[0].strip() if row else ""
        if not cell:
            if any(c.strip() for c in row):
                self._refuse(line, NO_NUMBER, "no number in the first column")
            return
        header_possible, self._header_possible = self._header_possible, False
        try:
            self._numbers.append(normalize_phone(cell, region=self.region, sms=True))
        except InvalidPhoneNumber as e:
            if header_possible and not any(ch.isdigit() for ch in cell):
                return  # the header
            self._refuse(line, e.problem.value, e.reason)
            return
        self.accepted += 1

    def _refuse(self, line: int, reason: str, message: str) -> None:
        self.refused_count += 1
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1
        if len(self.refused) < REFUSED_ROWS_LISTED:
            self.refused.append(RefusedRow(line, reason, message))


def parse_numbers(text: str, *, region: str) -> tuple[list[str], CsvReport]:
    """The distinct numbers of a small CSV held in memory (a preview), and its report."""
    reader = NumberReader(region=region)
    found = reader.feed(text) + reader.finish()
    distinct = list(dict.fromkeys(found))
    return distinct, reader.report(numbers=len(distinct), duplicates=len(found) - len(distinct))
