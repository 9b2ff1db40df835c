#!/usr/bin/env python3
"""What SQLite's one writer spends a reading on, without the service around it: Python's sqlite3
on a file migrated with migrations/sqlite (10,000 readings seeded, WAL, synchronous=FULL),
inserting 1,000-reading multi-row statements in savepoints, eight to a transaction, as the group
commit does. Prints CPU microseconds a reading, best of three, for:

- the same 1,000 readings every statement (bench/run's "the same readings every request" cell);
- devices' backlogs (16 devices, each statement newer than its device's last), with the change
  log's and the count's triggers firing for every row;
- the same backlogs written as the service writes a bulk upload: the triggers stood aside
  (station_bulk_insert), then one statement each for the change log and the count.

    bench/sqlite_writer.py [--statements 200]
"""
from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROWS = 1000
INSERT = ("INSERT INTO station (name, timestamp, temperature, lat, lon) VALUES "
          + ",".join(["(?,?,?,?,?)"] * ROWS))
LOG_CREATED = """INSERT INTO station_changes
    (kind, station_id, name, timestamp, temperature, lat, lon, changed_at)
    SELECT 'created', id, name, timestamp, temperature, lat, lon,
           CAST(strftime('%s', 'now') AS INTEGER)
    FROM station WHERE id BETWEEN ?1 AND ?2 ORDER BY id"""
COUNT_CREATED = """UPDATE station_count
    SET readings = readings + (?2 - shard + 16) / 16 - (?1 - 1 - shard + 16) / 16"""


def migrated(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    for migration in sorted((ROOT / "migrations" / "sqlite").iterdir()):
        conn.executescript((migration / "up.sql").read_text())
    conn.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA temp_store=MEMORY;")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO station (name, timestamp, temperature, lat, lon) VALUES (?,?,?,?,?)",
                     [(f"seed-{i % 50}", 1_700_000_000 + i * 5, 10 + (i % 300) / 10, 59.9, 10.7)
                      for i in range(10_000)])
    conn.execute("COMMIT")
    return conn


def statement_values(k: int, repeated: bool) -> list:
    device, round_ = k % 16, k // 16
    values: list = []
    for n in range(ROWS):
        timestamp = 1_700_000_000 + n * 10 if repeated else 1_800_000_000 + (round_ * ROWS + n) * 10
        values += ["pi-bench" if repeated else f"pi-{device}", timestamp,
                   round(15 + (n % 100) / 10, 1), 59.91, 10.75]
    return values


def cpu_per_reading(statements: int, repeated: bool, set_based: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        conn = migrated(Path(tmp) / "writer.db")
        cpu = 0.0
        for k in range(statements):
            values = statement_values(k, repeated)
            started = time.process_time()
            if k % 8 == 0:
                conn.execute("BEGIN")
            conn.execute("SAVEPOINT upload")
            if set_based:
                conn.execute("INSERT INTO station_bulk_insert (singleton) VALUES (1)")
            conn.execute(INSERT, values)
            if set_based:
                last = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
                conn.execute("DELETE FROM station_bulk_insert")
                conn.execute(LOG_CREATED, (last - ROWS + 1, last))
                conn.execute(COUNT_CREATED, (last - ROWS + 1, last))
            conn.execute("RELEASE upload")
            if k % 8 == 7:
                conn.execute("COMMIT")
            cpu += time.process_time() - started
        if conn.in_transaction:
            conn.execute("COMMIT")
        logged = conn.execute("SELECT COUNT(*) FROM station_changes").fetchone()[0]
        assert logged == 10_000 + statements * ROWS, logged
        conn.close()
        return cpu * 1e6 / (statements * ROWS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--statements", type=int, default=200)
    args = parser.parse_args()
    print(f"SQLite {sqlite3.sqlite_version}, {args.statements} statements of {ROWS} readings")
    for title, repeated, set_based in (
            ("the same readings every statement, triggers per row", True, False),
            ("devices' backlogs, triggers per row", False, False),
            ("devices' backlogs, as the service writes them", False, True)):
        best = min(cpu_per_reading(args.statements, repeated, set_based) for _ in range(3))
        print(f"{title:55} {best:6.2f} us a reading ({1e6 / best:,.0f} readings/s of CPU)",
              flush=True)


if __name__ == "__main__":
    main()
