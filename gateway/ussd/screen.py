"""Composing USSD screens that fit the network: numbered lists split into pages, and
dynamic text shortened, so that no screen exceeds its budget.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gateway.text.encoding import measure_screen

__all__ = ["Budget", "Page", "compose", "paginate", "shorten_to_fit"]

ELLIPSIS = ".."


@dataclass(frozen=True, slots=True)
class Budget:
    """The screen budget of one language: 182 GSM-7 characters, or ``ucs2`` when any
    character of the screen needs UCS-2 (80, or fewer where handsets show less Indic text)."""

    ucs2: int = 80
    gsm7: int = 182

    def fits(self, text: str) -> bool:
        return measure_screen(text, ucs2_budget=self.ucs2, gsm7_budget=self.gsm7).fits


@dataclass(frozen=True, slots=True)
class Page:
    start: int
    """Index of the first item on this page."""
    stop: int
    """One past the last item."""
    lines: tuple[str, ...]
    footer: str

    def text(self, header: str) -> str:
        return compose(header, self.lines, self.footer)


def compose(header: str, lines: Sequence[str], footer: str) -> str:
    return "\n".join(part for part in (header, *lines, footer) if part)


def shorten_to_fit(text: str, fits: Callable[[str], bool], *, min_keep: int = 1) -> str:
    """``text`` cut short (with ``..``) until ``fits`` accepts the result built from it."""
    if fits(text):
        return text
    lo, hi = min_keep, len(text)
    best = text[:min_keep] + ELLIPSIS
    while lo <= hi:  # binary search on the kept length: fits() is monotonic in it
        mid = (lo + hi) // 2
        candidate = text[:mid].rstrip() + ELLIPSIS
        if fits(candidate):
            best, lo = candidate, mid + 1
        else:
            hi = mid - 1
    return best


def paginate(
    header: str,
    items: Sequence[str],
    *,
    budget: Budget,
    more: str,
    back: str | None,
    first_page_back: bool,
) -> list[Page]:
    """Split numbered ``items`` into pages that each fit ``budget``.

    Every page shows ``header``; a page followed by another ends with ``more`` (``98 More``);
    ``back`` (``0 Back``) ends every page but the first, and the first too when
    ``first_page_back``. An item too long for a page of its own is shortened.
    """

    def footer(has_more: bool, page_index: int) -> str:
        parts = []
        if has_more:
            parts.append(more)
        if back and (page_index > 0 or first_page_back):
            parts.append(back)
        return " ".join(parts)

    pages: list[Page] = []
    start = 0
    n = len(items)
    if n == 0:
        return [Page(0, 0, (), footer(False, 0))]
    while start < n:
        index = len(pages)
        stop = start
        # Grow the page while it fits with the "more" footer; the last page needs none.
        while stop < n:
            last = stop + 1 == n
            candidate = compose(header, items[start : stop + 1], footer(not last, index))
            if not budget.fits(candidate):
                break
            stop += 1
        if stop == start:
            # Not even one item fits beside the header: shorten that item.
            last = start + 1 == n
            foot = footer(not last, index)

            def fits_alone(s: str, foot: str = foot) -> bool:
                return budget.fits(compose(header, [s], foot))

            item = shorten_to_fit(items[start], fits_alone)
            pages.append(Page(start, start + 1, (item,), foot))
            start += 1
            continue
        foot = footer(stop < n, index)
        pages.append(Page(start, stop, tuple(items[start:stop]), foot))
        start = stop
    return pages
