"""The monthly review as CSV (one row per department, district and officer) and as a
printable HTML page. Both are built from a :class:`~gateway.reports.review.MonthlyReview` only."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from html import escape

from gateway.reports.review import Figures, MonthlyReview

__all__ = ["CSV_FIXED_COLUMNS", "csv_columns", "review_csv", "review_html"]

CSV_FIXED_COLUMNS = ("dimension", "key", "name", "received", "resolved", "resolved_within_deadline")
_AFTER_ESCALATION = (
    "flagged",
    "reopened",
    "closed_solved",
    "closed_no_response",
    "not_solved",
    "satisfaction",
    "median_days_to_resolve",
    "pending",
    "oldest_pending_ticket",
    "oldest_pending_days",
    "flag",
)


def _escalation_levels(review: MonthlyReview) -> list[str]:
    levels = list(review.levels)
    for f in _all_rows(review):
        levels += [code for code in f.escalated if code not in levels]
    return levels


def _all_rows(review: MonthlyReview) -> Iterator[Figures]:
    yield review.total
    yield from review.departments
    yield from review.districts
    yield from review.officers


def _sections(review: MonthlyReview) -> Iterator[tuple[str, list[Figures]]]:
    yield "total", [review.total]
    yield "department", review.departments
    yield "district", review.districts
    yield "officer", review.officers


def _flag(review: MonthlyReview, dimension: str, key: str) -> str:
    if dimension == "department" and any(f.department == key for f in review.flagged_departments):
        return "many_pending"
    if dimension == "officer" and any(o.officer == key for o in review.flagged_officers):
        return "escalates_often"
    return ""


def csv_columns(review: MonthlyReview) -> list[str]:
    return [
        *CSV_FIXED_COLUMNS,
        *(f"escalated_to_{code}" for code in _escalation_levels(review)),
        *_AFTER_ESCALATION,
    ]


def _cell(value: object) -> str:
    if value is None:
        return ""
    text = str(value)
    # A spreadsheet would run a cell starting with one of these as a formula.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def review_csv(review: MonthlyReview) -> str:
    """One header row, then the total, departments, districts and officers."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(csv_columns(review))
    levels = _escalation_levels(review)
    for dimension, rows in _sections(review):
        for f in rows:
            writer.writerow(
                [
                    _cell(v)
                    for v in (
                        dimension,
                        f.key,
                        f.name,
                        f.received,
                        f.resolved,
                        f.resolved_within_deadline,
                        *(f.escalated.get(code, 0) for code in levels),
                        f.flagged,
                        f.reopened,
                        f.closed_solved,
                        f.closed_no_response,
                        f.not_solved,
                        f.satisfaction,
                        f.median_days_to_resolve,
                        f.pending,
                        f.oldest_pending_ticket,
                        f.oldest_pending_days,
                        _flag(review, dimension, f.key),
                    )
                ]
            )
    return out.getvalue()


_CSS = """
body { font-family: "Noto Sans", Arial, sans-serif; font-size: 11pt; margin: 1.5em; color: #111; }
h1 { font-size: 16pt; margin: 0 0 .2em; }
h2 { font-size: 13pt; margin: 1.4em 0 .4em; }
p.meta { color: #444; margin: 0 0 1em; }
table { border-collapse: collapse; width: 100%; margin-bottom: 1em; }
th, td { border: 1px solid #999; padding: 3px 6px; }
th { background: #eee; text-align: left; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
tr.flagged td { background: #fde8e8; }
ul.flags li { margin: .2em 0; }
@media print {
  body { margin: 0; font-size: 9pt; }
  h2 { page-break-after: avoid; }
  table { page-break-inside: auto; }
  tr { page-break-inside: avoid; }
  thead { display: table-header-group; }
  tr.flagged td { background: none; font-weight: bold; }
  @page { size: A4 landscape; margin: 12mm; }
}
"""


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.0f}%"


def _num(value: object) -> str:
    return "–" if value is None else escape(str(value))


def _table(review: MonthlyReview, dimension: str, title: str, rows: list[Figures]) -> str:
    levels = _escalation_levels(review)
    head = [
        title,
        "Received",
        "Resolved",
        "Within deadline",
        *(f"Escalated to {code}" for code in levels),
        "Reopened",
        "Satisfaction",
        "Solved / no response / not solved",
        "Median days to resolve",
        "Pending",
        "Oldest pending",
    ]
    out = ["<table>", "<thead><tr>"]
    out += [f"<th>{escape(h)}</th>" for h in head]
    out.append("</tr></thead><tbody>")
    if not rows:
        out.append(f'<tr><td colspan="{len(head)}">No complaints.</td></tr>')
    for f in rows:
        flagged = _flag(review, dimension, f.key)
        out.append('<tr class="flagged">' if flagged else "<tr>")
        label = escape(f.name) + (f" <small>({escape(f.key)})</small>" if f.key != "*" else "")
        oldest = (
            f"{escape(f.oldest_pending_ticket)} ({f.oldest_pending_days} days)"
            if f.oldest_pending_ticket
            else "–"
        )
        cells = [
            f.received,
            f.resolved,
            f.resolved_within_deadline,
            *(f.escalated.get(code, 0) for code in levels),
            f.reopened,
        ]
        out.append(f"<td>{label}</td>")
        out += [f'<td class="n">{_num(v)}</td>' for v in cells]
        out.append(f'<td class="n">{_pct(f.satisfaction)}</td>')
        out.append(
            f'<td class="n">{f.closed_solved} / {f.closed_no_response} / {f.not_solved}</td>'
        )
        out.append(f'<td class="n">{_num(f.median_days_to_resolve)}</td>')
        out.append(f'<td class="n">{f.pending}</td>')
        out.append(f"<td>{oldest}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)


def _missed_calls_html(review: MonthlyReview) -> list[str]:
    """The month's missed calls (a state-wide review's only)."""
    m = review.missed_calls
    if m is None:
        return []
    return [
        "<h2>Missed calls</h2>",
        f"<p>{m.calls} missed calls from {m.numbers} numbers; {m.texted} texted back how to "
        "reach the service (at most once an hour per number).</p>",
    ]


def review_html(review: MonthlyReview, *, title: str) -> str:
    """A self-contained page (no scripts, no external resources) that prints cleanly."""
    scope = ", ".join(f"{k}: {v}" for k, v in review.scope.items() if v) or "the whole state"
    flags = []
    for d in review.flagged_departments:
        flags.append(f"<li>{escape(d.name)}: {d.pending} complaints pending</li>")
    for o in review.flagged_officers:
        flags.append(
            f"<li>{escape(o.name)} ({escape(o.officer)}): {o.escalated} escalated, "
            f"{o.resolved} resolved ({o.escalation_rate * 100:.0f}% escalated)</li>"
        )
    body = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)} — {escape(review.month)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}: monthly review {escape(review.month)}</h1>",
        f'<p class="meta">Scope: {escape(scope)}. Months in {escape(review.timezone)}; '
        f"pending as of {escape(review.as_of.strftime('%Y-%m-%d %H:%M'))} UTC.</p>",
        "<h2>Flags</h2>",
        f'<ul class="flags">{"".join(flags)}</ul>' if flags else "<p>None.</p>",
        "<h2>Total</h2>",
        _table(review, "total", "Scope", [review.total]),
        "<h2>By department</h2>",
        _table(review, "department", "Department", review.departments),
        "<h2>By district</h2>",
        _table(review, "district", "District", review.districts),
        "<h2>By officer</h2>",
        _table(review, "officer", "Officer", review.officers),
        *_missed_calls_html(review),
        "</body></html>",
    ]
    return "\n".join(body) + "\n"
