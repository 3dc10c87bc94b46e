"""What the command line draws on a terminal: the campaign bar of ``notify --follow`` and
the phone simulator's screen box."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

from wcwidth import wcswidth

from gateway.campaigns.progress import Progress
from gateway.cli.notify import CampaignBar
from gateway.cli.simulate import _box
from tests.conftest import Phone


def on_screen(output: str) -> list[str]:
    """The lines a terminal shows after ``output``: a carriage return goes back to the
    start of the line, and what follows overwrites what was there, no more."""
    lines: list[list[str]] = [[]]
    column = 0
    for ch in output:
        if ch == "\n":
            lines.append([])
            column = 0
        elif ch == "\r":
            column = 0
        else:
            line = lines[-1]
            if column < len(line):
                line[column] = ch
            else:
                line.append(ch)
            column += 1
    return ["".join(line) for line in lines]


def progress(status: str, sent: int, queued: int, **kw: object) -> Progress:
    values: dict[str, object] = {
        "status": status,
        "expected": 4,
        "recipients": 4,
        "written": True,
        "queued": queued,
        "sent": sent,
        "delivered": 0,
        "failed": 0,
        "cancelled": 0,
        "skipped": 0,
        **kw,
    }
    return Progress(**values)  # type: ignore[arg-type]


def test_the_campaign_bar_redraws_one_line_and_leaves_nothing_of_a_longer_one() -> None:
    out = io.StringIO()  # no terminal: what is written is all there is
    bar = CampaignBar(7, file=out)
    morning = datetime(2026, 11, 25, 3, 30, tzinfo=UTC)
    bar.show(progress("sending", 0, 4, waiting_until=morning))  # a long line
    bar.show(progress("sending", 2, 2))
    bar.show(progress("done", 4, 0))  # shorter
    bar.close()
    written = out.getvalue()
    lines = on_screen(written)
    assert lines[-1] == "" and len(lines) == 2, "one line, redrawn in place, then a newline"
    last_drawn = written.rstrip("\n").split("\r")[-1].rstrip()
    assert lines[0].rstrip() == last_drawn, "nothing left of a longer line drawn before"
    assert "quiet hours" not in lines[0]
    assert lines[0].startswith("campaign 7: 100%|")
    assert re.search(r" 4/4 \[\d\d:\d\d<[\d:?]+, [\d.?]+ SMS/s, ", lines[0]), lines[0]
    assert lines[0].rstrip().endswith("sent 4  delivered 0  failed 0  queued 0  (done)]")


def test_the_bar_shows_the_waiting_state_while_it_lasts() -> None:
    out = io.StringIO()
    bar = CampaignBar(7, file=out)
    bar.show(progress("sending", 0, 4, waiting_until=datetime(2026, 11, 25, 3, 30, tzinfo=UTC)))
    (line,) = on_screen(out.getvalue())
    assert "0/4" in line and "(sending)  waiting for quiet hours to end at 03:30 UTC" in line


def assert_aligned(box: str, screen: str) -> None:
    lines = box.split("\n")[:-1]  # the budget note follows the box
    widths = {wcswidth(line) for line in lines}
    assert len(widths) == 1, "\n".join(f"{wcswidth(line):3} {line}" for line in lines)
    assert [line[2:].rstrip(" │") for line in lines[1:-1]] == screen.split("\n")


async def test_the_simulator_box_aligns_every_script(phone: Phone) -> None:
    languages = await phone.dial()  # the state's languages in their scripts, then "More"
    assert "हिन्दी" in languages and "English" in languages and "ਪੰਜਾਬੀ" in languages
    first_group = next(line for line in languages.splitlines() if "More A-" in line)
    more = await phone.send(first_group.split(" ", 1)[0])
    assert "Bangla" in more  # the other languages by their Latin names
    await phone.dial()
    hindi = await phone.send("1")
    assert "शिकायत" in hindi
    await phone.dial()
    english = await phone.send("2")
    for screen in (languages, more, hindi, english):
        assert_aligned(_box(screen, "80/80 UCS2"), screen)
