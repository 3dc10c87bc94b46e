"""Reading a CSV of phone numbers as a stream (gateway/text/csv_numbers.py): the same answer
however the file arrives in pieces, a stray quote costing one row, a bounded report."""

from __future__ import annotations

import pytest

from gateway.text.csv_numbers import REFUSED_ROWS_LISTED, CsvReport, NumberReader, parse_numbers
from tests.test_api_campaigns import CSV_FILES


def read_in_pieces(text: str, size: int) -> tuple[list[str], CsvReport]:
    reader = NumberReader(region="IN")
    found: list[str] = []
    for start in range(0, len(text), size):
        found += reader.feed(text[start : start + size])
    found += reader.finish()
    return found, reader.report(numbers=len(set(found)), duplicates=len(found) - len(set(found)))


@pytest.mark.parametrize("size", [1, 2, 7, 64, 4096])
@pytest.mark.parametrize(("case", "text"), [(c[0], c[1]) for c in CSV_FILES])
def test_a_file_in_pieces_reads_as_the_whole(case: str, text: str, size: int) -> None:
    whole, report = parse_numbers(text, region="IN")
    found, pieces_report = read_in_pieces(text, size)
    assert found == whole, case
    assert pieces_report == report, case


def test_a_stray_quote_costs_its_own_row_only() -> None:
    text = 'phone,name\n"9810000001,Ram\n9810000002,Sita\n9810000003,"Ali"\n'
    numbers, report = parse_numbers(text, region="IN")
    assert numbers == ["+919810000002", "+919810000003"]
    assert [(r.line, r.reason) for r in report.refused] == [(2, "not_a_number")]
    # Open in a later column, past the lines a quoted field may span: the number is read.
    long = '9810000001,"open\n' + "".join(f"98100{i:05d},x\n" for i in range(2, 60))
    numbers, report = parse_numbers(long, region="IN")
    assert len(numbers) == 59 and report.bad_lines == 0


def test_a_large_file_lists_the_first_refused_rows_and_counts_them_all() -> None:
    rows = [f"+9196{i:08d}" if i % 10 else "0177-2623456" for i in range(1, 100_001)]
    numbers, report = parse_numbers("\n".join(rows), region="IN")
    assert len(numbers) == 90_000 and report.lines == 100_000
    assert report.bad_lines == 10_000 and report.refused_by_reason == {"landline": 10_000}
    assert report.bad_line_numbers == list(range(10, 10 * REFUSED_ROWS_LISTED + 1, 10))
    text = "\n".join(report.describe())
    assert "line 10: a landline: cannot receive SMS" in text
    assert f"... and {10_000 - REFUSED_ROWS_LISTED} more" in text
