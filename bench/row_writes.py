"""The floor under a campaign's bookkeeping: each recipient's outbox row written (held)
and then updated (sent), in plain ``sqlite3`` with no framework, against the real table.

A fresh SQLite database is migrated with the gateway's own ``migrate`` command, then, per
batch of ``--batch`` recipients, the same two statements a campaign's runner issues: one
``INSERT ... ON CONFLICT DO NOTHING RETURNING`` of the batch (a two-segment Hindi text,
as ``bench/campaign.py`` sends) and one ``executemany`` of the ``UPDATE`` that records
the provider's ID, each in its own transaction, committed as the gateway does (WAL,
``synchronous`` FULL). Prints microseconds a recipient for each, to set beside the
plain client's share of the campaign benchmark (README, Performance).
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

ROOT = Path(__file__).resolve().parent.parent

COLUMNS = (
    "campaign_id",
    "recipient",
    "template",
    "language",
    "text",
    "encoding",
    "segments",
    "provider",
    "idempotency_key",
    "status",
    "attempts",
    "second_chance",
    "essential",
    "created_at",
    "updated_at",
)
TEXT = (
    "जल आपूर्ति: थियोग में आपूर्ति बहाल हो गई है। असुविधा के लिए खेद है। "
    "शिकायत या सुझाव के लिए 1100 पर कॉल करें या इस संदेश का उत्तर दें।"
)
UPDATE = (
    'UPDATE "outbound_message" SET "status" = ?1, "provider_message_id" = ?2, '
    '"provider_status" = ?3, "sent_at" = ?4, "updated_at" = ?5 WHERE "id" = ?6'
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


def measure(path: Path, recipients: int, batch: int) -> tuple[float, float]:
    """Seconds spent inserting and updating ``recipients`` rows, ``batch`` at a time."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA foreign_keys=OFF")  # no campaign row: the bookkeeping alone
    now = datetime.now(UTC).isoformat()
    width = len(COLUMNS)
    inserting = updating = 0.0
    for low in range(0, recipients, batch):
        n = min(batch, recipients - low)
        rows = [
            v
            for i in range(low, low + n)
            for v in (1, f"+9196{i:08d}", "area_update", "hi", TEXT, "ucs2", 2,
                      "africastalking", f"campaign:1:+9196{i:08d}", "sending", 1, 0, 0,
                      now, now)
        ]  # fmt: skip
        values = ", ".join(
            "(" + ", ".join(f"?{r * width + c + 1}" for c in range(width)) + ")" for r in range(n)
        )
        sql = (
            f'INSERT INTO "outbound_message" ({", ".join(COLUMNS)}) VALUES {values} '
            'ON CONFLICT ("idempotency_key") DO NOTHING RETURNING "id", "recipient"'
        )
        t0 = time.perf_counter()
        db.execute("BEGIN")
        written = db.execute(sql, rows).fetchall()
        db.execute("COMMIT")
        t1 = time.perf_counter()
        db.execute("BEGIN")
        db.executemany(
            UPDATE, [("sent", f"ATXid_{mid:032x}", "Success", now, now, mid) for mid, _ in written]
        )
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
