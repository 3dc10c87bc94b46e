"""The floor under a campaign's bookkeeping: each recipient's outbox row written (held)
and then updated (sent), in plain ``sqlite3`` with no framework, against the real table.

A fresh SQLite database is migrated with the gateway's own ``migrate`` command. Then, per
batch of ``--batch`` recipients, the two statements a campaign's runner issues, with the
rows the gateway builds (:func:`~gateway.sms.outbox.new_message_row`,
:func:`~gateway.sms.delivery.sent_row`): one ``INSERT ... ON CONFLICT DO NOTHING
RETURNING`` of the batch, held (a two-segment Hindi text, as ``bench/campaign.py``
sends), and one ``executemany`` of the ``UPDATE`` that records the provider's answer,
each in its own transaction, committed as the gateway does (WAL, ``synchronous`` FULL).
Prints microseconds a recipient for each, to set beside the plain client's share of the
campaign benchmark (README, Performance).
Run: ``python bench/row_writes.py --recipients 100000``.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from gateway.channels.base import RecipientResult, SendOutcome
from gateway.sms.delivery import SENT_COLUMNS, sent_row
from gateway.sms.outbox import NEW_MESSAGE_COLUMNS, new_message_row
from gateway.sms.templates import RenderedSms
from gateway.text.encoding import measure_sms

ROOT = Path(__file__).resolve().parent.parent

TEXT = (
    "जल आपूर्ति: थियोग में आपूर्ति बहाल हो गई है। असुविधा के लिए खेद है। "
    "शिकायत या सुझाव के लिए 1100 पर कॉल करें या इस संदेश का उत्तर दें।"
)
INSERT_TAIL = ' ON CONFLICT ("idempotency_key") DO NOTHING RETURNING "id", "recipient"'
UPDATE = (
    'UPDATE "outbound_message" SET '
    + ", ".join(f'"{c}" = ?' for c in SENT_COLUMNS)
    + ' WHERE "id" = ?'
)


def migrated(path: Path) -> None:
    """A new database at ``path`` with every migration applied."""
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{path}"}
    subprocess.run(
        [sys.executable, "-m", "gateway", "migrate"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )


def notice() -> RenderedSms:
    """The campaign's message, as the template book would render it."""
    measured = measure_sms(TEXT)
    return RenderedSms(
        template="area_update",
        language="hi",
        text=TEXT,
        dlt_template_id=None,
        encoding=measured.encoding,
        segments=measured.segments,
    )


def insert_sql(n: int) -> str:
    """The held batch's insert for ``n`` rows, in SQLite's placeholders."""
    width = len(NEW_MESSAGE_COLUMNS)
    values = ", ".join(
        "(" + ", ".join(f"?{r * width + c + 1}" for c in range(width)) + ")" for r in range(n)
    )
    names = ", ".join(f'"{c}"' for c in NEW_MESSAGE_COLUMNS)
    return f'INSERT INTO "outbound_message" ({names}) VALUES {values}{INSERT_TAIL}'


def measure(path: Path, recipients: int, batch: int) -> tuple[float, float]:
    """Seconds spent inserting and updating ``recipients`` rows, ``batch`` at a time."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA foreign_keys=OFF")  # no campaign row: the bookkeeping alone
    sms, now = notice(), datetime.now(UTC)
    inserting = updating = 0.0
    for low in range(0, recipients, batch):
        phones = [f"+9196{i:08d}" for i in range(low, min(low + batch, recipients))]
        rows = [
            v
            for phone in phones
            for v in new_message_row(
                sms,
                recipient=phone,
                provider="africastalking",
                idempotency_key=f"campaign:1:{phone}",
                at=now,
                campaign_id=1,
                held=True,
            )
        ]
        t0 = time.perf_counter()
        db.execute("BEGIN")
        written = db.execute(insert_sql(len(phones)), rows).fetchall()
        db.execute("COMMIT")
        t1 = time.perf_counter()
        answers = [
            sent_row(
                mid,
                RecipientResult(phone, SendOutcome.ACCEPTED, "Success", f"ATXid_{mid:032x}"),
                at=now,
            )
            for mid, phone in written
        ]
        db.execute("BEGIN")
        db.executemany(UPDATE, answers)
        db.execute("COMMIT")
        t2 = time.perf_counter()
        inserting += t1 - t0
        updating += t2 - t1
    db.close()
    return inserting, updating


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sampark-rows-") as tmp:
        path = Path(tmp) / "rows.db"
        migrated(path)
        inserting, updating = measure(path, args.recipients, args.batch)
    per = 1e6 / args.recipients
    print(f"Outbox rows, {args.recipients:,} recipients in batches of {args.batch}, SQLite")
    print(f"  written (held):   {inserting * per:6.1f} µs a recipient")
    print(f"  updated (sent):   {updating * per:6.1f} µs a recipient")
    print(f"  both:             {(inserting + updating) * per:6.1f} µs a recipient")


if __name__ == "__main__":
    main()
