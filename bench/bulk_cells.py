#!/usr/bin/env python3
"""The bulk-upload cells of `bench/run` alone, on SQLite, against any build of the service: for
comparing builds quickly (each cell on a fresh server and a fresh copy of a 10,000-row database,
16 connections, basic auth, as `bench/run` measures them).

    bench/bulk_cells.py                       # target/dist/station-api, every cell, 5 s each
    bench/bulk_cells.py --binary /tmp/old --seconds 10 single backlog
    MALLOC_MMAP_THRESHOLD_=131072 bench/bulk_cells.py big    # the server inherits the environment

Cells: single (single creates), backlog (devices' 1,000-reading JSON backlogs), csv (the same
as CSV), repeated (the same 1,000 readings every request), big (10,000-reading backlogs).
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import bench

CELLS = {
    # name: (wrk mode, readings a request, media type)
    "single": ("create", 1, "application/json"),
    "backlog": ("backlog", 1000, "application/json"),
    "csv": ("backlog", 1000, "text/csv"),
    "repeated": ("upload", 1000, "application/json"),
    "big": ("backlog", 10_000, "application/json"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("cells", nargs="*", help=f"some of: {', '.join(CELLS)} (default: all)")
    parser.add_argument("--binary", default=bench.BINARY)
    parser.add_argument("--seconds", type=int, default=5)
    args = parser.parse_args()
    unknown = [name for name in args.cells if name not in CELLS]
    if unknown:
        parser.error(f"unknown cells: {', '.join(unknown)}")
    bench.BINARY = args.binary
    workdir = Path(tempfile.mkdtemp())
    store = bench.SqliteStore(workdir, 10_000)
    rates: dict[str, float] = {}
    for name in args.cells or list(CELLS):
        mode, items, media_type = CELLS[name]
        env = bench.upload_env(workdir, mode, items, media_type) if mode != "create" else None
        result = bench.measure_fresh(store, 10_000, 2, workdir / "server.log", mode, 16,
                                     args.seconds, env=env)
        rates[name] = result.rps * items
        versus = (f"  {rates[name] / rates['single']:.1f}x single creates"
                  if name != "single" and rates.get("single") else "")
        print(f"{name:9} {rates[name]:>9,.0f} readings/s  peak RSS {result.peak_rss_mib:6.1f} MiB  "
              f"CPU {result.cpu_us_per_request / items:6.2f} us a reading  errors {result.errors}"
              f"{versus}", flush=True)


if __name__ == "__main__":
    main()
