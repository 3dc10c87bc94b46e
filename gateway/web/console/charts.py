"""The monthly review's charts, drawn on the server as SVG.

Server-side SVG rather than a charting library: nothing to ship, pin or audit in the
browser, nothing for the Content-Security-Policy to allow (no script, no inline style:
colours are SVG presentation attributes), the charts print as
sharply as the text, and a page works without JavaScript. Each chart is an ``img`` with a
title; the tables beside it hold the same figures for screen readers and copying.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

__all__ = ["Series", "bar_chart", "stacked_bars", "trend_chart"]

WIDTH = 400
"""The drawing's width: its text stays readable when a phone shows it 300 pixels wide."""
LABEL_WIDTH = 120
ROW = 14
FONT = 12


@dataclass(frozen=True)
class Series:
    """One measure of a chart: its legend and its colour."""

    name: str
    colour: str


def _svg(title: str, height: int, parts: list[str]) -> Markup:
    body = "".join(parts)
    return Markup(
        f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {height}" '
        f'xmlns="http://www.w3.org/2000/svg" font-size="{FONT}" '
        f'font-family="system-ui, Noto Sans, Noto Sans Devanagari, sans-serif">'
        f"<title>{escape(title)}</title>{body}</svg>"
    )


def _legend(series: Sequence[Series], y: int) -> list[str]:
    parts, x = [], 0
    for s in series:
        parts.append(f'<rect x="{x}" y="{y - 10}" width="12" height="12" fill="{s.colour}"/>')
        parts.append(f'<text x="{x + 16}" y="{y}">{escape(s.name)}</text>')
        x += 24 + 7 * len(s.name)
    return parts


def _label(text: str, limit: int = 18) -> str:
    return escape(text if len(text) <= limit else text[: limit - 1] + "…")


def bar_chart(
    title: str, rows: Sequence[tuple[str, Sequence[int]]], series: Sequence[Series]
) -> Markup:
    """Horizontal bars: for each row (a label and one value per series) a bar per series,
    on one scale, the value written after each bar."""
    top = 22
    group = ROW * len(series) + 10
    height = top + group * max(len(rows), 1) + 4
    most = max((v for _, values in rows for v in values), default=0) or 1
    span = WIDTH - LABEL_WIDTH - 30
    parts = _legend(series, 12)
    for i, (label, values) in enumerate(rows):
        y = top + i * group
        parts.append(f'<text x="0" y="{y + group / 2}">{_label(label)}</text>')
        for j, (value, s) in enumerate(zip(values, series, strict=True)):
            w = round(span * value / most, 1)
            by = y + j * ROW
            parts.append(
                f'<rect x="{LABEL_WIDTH}" y="{by}" width="{w}" height="{ROW - 2}" '
                f'fill="{s.colour}"/>'
            )
            parts.append(f'<text x="{LABEL_WIDTH + w + 4}" y="{by + ROW - 3}">{value}</text>')
    if not rows:
        parts.append(f'<text x="0" y="{top + 12}">–</text>')
    return _svg(title, height, parts)


def stacked_bars(
    title: str,
    rows: Sequence[tuple[str, Sequence[int], str]],
    series: Sequence[Series],
) -> Markup:
    """One bar per row split into its series' shares of the row's whole, with a note (the
    satisfaction, say) after it."""
    top = 22
    height = top + (ROW + 8) * max(len(rows), 1) + 4
    span = WIDTH - LABEL_WIDTH - 50
    parts = _legend(series, 12)
    for i, (label, values, note) in enumerate(rows):
        y = top + i * (ROW + 8)
        whole = sum(values)
        parts.append(f'<text x="0" y="{y + ROW - 3}">{_label(label)}</text>')
        x = float(LABEL_WIDTH)
        if whole == 0:
            parts.append(
                f'<rect x="{x}" y="{y}" width="{span}" height="{ROW}" fill="none" '
                'stroke="#8a949e" stroke-dasharray="3 3"/>'
            )
        for value, s in zip(values, series, strict=True):
            w = round(span * value / whole, 1) if whole else 0
            if w:
                parts.append(
                    f'<rect x="{x}" y="{y}" width="{w}" height="{ROW}" fill="{s.colour}"/>'
                )
            x += w
        parts.append(f'<text x="{LABEL_WIDTH + span + 4}" y="{y + ROW - 3}">{escape(note)}</text>')
    return _svg(title, height, parts)


def trend_chart(
    title: str, months: Sequence[str], values: Sequence[Sequence[int]], series: Sequence[Series]
) -> Markup:
    """A line per series over ``months`` (oldest first), each point's value written above."""
    top, bottom, left, right = 30, 20, 30, 30
    height = 190
    plot_h = height - top - bottom
    most = max((v for vs in values for v in vs), default=0) or 1
    step = (WIDTH - left - right) / max(len(months) - 1, 1)
    parts = _legend(series, 12)
    base = top + plot_h
    parts.append(
        f'<line x1="{left}" y1="{base}" x2="{WIDTH - right}" y2="{base}" stroke="#8a949e"/>'
    )
    for i, month in enumerate(months):
        x = round(left + i * step, 1)
        parts.append(
            f'<text x="{x}" y="{height - 4}" text-anchor="middle">{escape(month)}</text>'
        )
    for vs, s in zip(values, series, strict=True):
        points = [
            (round(left + i * step, 1), round(base - plot_h * v / most, 1))
            for i, v in enumerate(vs)
        ]
        path = " ".join(f"{x},{y}" for x, y in points)
        parts.append(
            f'<polyline points="{path}" fill="none" stroke="{s.colour}" stroke-width="2"/>'
        )
        for (x, y), v in zip(points, vs, strict=True):
            parts.append(f'<circle cx="{x}" cy="{y}" r="3" fill="{s.colour}"/>')
            parts.append(f'<text x="{x}" y="{y - 5}" text-anchor="middle">{v}</text>')
    return _svg(title, height, parts)
