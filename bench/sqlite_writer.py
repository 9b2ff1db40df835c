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

With --parts, what each part of that last case costs instead: the same backlogs with one index
of `station` dropped, or without the change log's statement, in rounds (each variant once a
round, in turn, so a machine that drifts moves them all), printing every round and the median.
With --against DIR, that last case on this checkout's migrations and on those of DIR (another
checkout, e.g. `git worktree add /tmp/before <commit>`) in alternating rounds, with the database
file's size after each.

    bench/sqlite_writer.py [--statements 200]
    bench/sqlite_writer.py --parts [--rounds 3]
    bench/sqlite_writer.py --against /tmp/before [--rounds 8]
"""
from __future__ import annotations

import argparse
import sqlite3
import statistics
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


def migrated(path: Path, without_index: str | None = None,
             checkout: Path = ROOT) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    for migration in sorted((checkout / "migrations" / "sqlite").iterdir()):
        conn.executescript((migration / "up.sql").read_text())
    conn.executescript("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA temp_store=MEMORY;")
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO station (name, timestamp, temperature, lat, lon) VALUES (?,?,?,?,?)",
                     [(f"seed-{i % 50}", 1_700_000_000 + i * 5, 10 + (i % 300) / 10, 59.9, 10.7)
                      for i in range(10_000)])
    conn.execute("COMMIT")
    if without_index:
        conn.execute(f"DROP INDEX {without_index}")
    return conn


def statement_values(k: int, repeated: bool) -> list:
    device, round_ = k % 16, k // 16
    values: list = []
    for n in range(ROWS):
        timestamp = 1_700_000_000 + n * 10 if repeated else 1_800_000_000 + (round_ * ROWS + n) * 10
        values += ["pi-bench" if repeated else f"pi-{device}", timestamp,
                   round(15 + (n % 100) / 10, 1), 59.91, 10.75]
    return values


def cpu_per_reading(statements: int, repeated: bool, set_based: bool,
                    without_index: str | None = None, log_changes: bool = True,
                    checkout: Path = ROOT, sizes: list[int] | None = None) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        conn = migrated(Path(tmp) / "writer.db", without_index, checkout)
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
                if log_changes:
                    conn.execute(LOG_CREATED, (last - ROWS + 1, last))
                conn.execute(COUNT_CREATED, (last - ROWS + 1, last))
            conn.execute("RELEASE upload")
            if k % 8 == 7:
                conn.execute("COMMIT")
            cpu += time.process_time() - started
        if conn.in_transaction:
            conn.execute("COMMIT")
        logged = conn.execute("SELECT COUNT(*) FROM station_changes").fetchone()[0]
        assert logged == 10_000 + (statements * ROWS if log_changes else 0), logged
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.close()
        if sizes is not None:
            sizes.append((Path(tmp) / "writer.db").stat().st_size)
        return cpu * 1e6 / (statements * ROWS)


def station_indexes() -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        conn = migrated(Path(tmp) / "schema.db")
        names = [row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'station' "
            "AND sql IS NOT NULL ORDER BY name")]
        conn.close()
        return names


def in_rounds(statements: int, rounds: int, variants: dict[str, dict],
              sizes: dict[str, list[int]] | None = None) -> dict[str, list[float]]:
    """Each variant's bulk-upload cost (`cpu_per_reading` with its options), once a round in
    turn, so a machine that drifts moves them all; prints every figure (and the database's size,
    when `sizes` collects them) as it comes."""
    figures: dict[str, list[float]] = {title: [] for title in variants}
    for round_ in range(1, rounds + 1):
        for title, options in variants.items():
            kept = sizes.setdefault(title, []) if sizes is not None else None
            figure = cpu_per_reading(statements, False, True, sizes=kept, **options)
            figures[title].append(figure)
            size = f"  {kept[-1] / 2**20:7.2f} MiB" if kept else ""
            print(f"round {round_}  {title:55} {figure:6.2f} us a reading{size}", flush=True)
    return figures


def parts(statements: int, rounds: int) -> None:
    whole = "everything (as the service writes a bulk upload)"
    variants: dict[str, dict] = {whole: {}}
    variants.update({f"without index {name}": {"without_index": name}
                     for name in station_indexes()})
    variants["without the change log's statement"] = {"log_changes": False}
    figures = in_rounds(statements, rounds, variants)
    everything = statistics.median(figures[whole])
    print(f"\nmedian of {rounds} rounds, and what the part costs (everything minus the variant):")
    for title, measured in figures.items():
        median = statistics.median(measured)
        part = "" if title == whole else f"   part {everything - median:5.2f} us"
        print(f"{title:55} {median:6.2f} us a reading{part}")


def against(statements: int, rounds: int, other: Path) -> None:
    sizes: dict[str, list[int]] = {}
    figures = in_rounds(statements, rounds,
                        {"this checkout": {"checkout": ROOT}, str(other): {"checkout": other}},
                        sizes)
    ours, theirs = figures["this checkout"], figures[str(other)]
    ratios = [mine / other_figure for mine, other_figure in zip(ours, theirs)]
    print(f"\nmedian of {rounds} rounds: this checkout {statistics.median(ours):.2f} us a reading, "
          f"{other} {statistics.median(theirs):.2f}; this / that per round "
          f"{', '.join(f'{ratio:.2f}' for ratio in ratios)} (median {statistics.median(ratios):.3f}); "
          f"database {sizes['this checkout'][-1] / 2**20:.2f} against "
          f"{sizes[str(other)][-1] / 2**20:.2f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--statements", type=int, default=200)
    parser.add_argument("--parts", action="store_true",
                        help="what each index and the change log cost a reading")
    parser.add_argument("--against", type=Path, metavar="DIR",
                        help="compare with the migrations of another checkout")
    parser.add_argument("--rounds", type=int, default=3, help="with --parts or --against")
    args = parser.parse_args()
    print(f"SQLite {sqlite3.sqlite_version}, {args.statements} statements of {ROWS} readings")
    if args.parts:
        parts(args.statements, args.rounds)
        return
    if args.against:
        against(args.statements, args.rounds, args.against.resolve())
        return
    for title, repeated, set_based in (
            ("the same readings every statement, triggers per row", True, False),
            ("devices' backlogs, triggers per row", False, False),
            ("devices' backlogs, as the service writes them", False, True)):
        best = min(cpu_per_reading(args.statements, repeated, set_based) for _ in range(3))
        print(f"{title:55} {best:6.2f} us a reading ({1e6 / best:,.0f} readings/s of CPU)",
              flush=True)


if __name__ == "__main__":
    main()
