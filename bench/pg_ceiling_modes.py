#!/usr/bin/env python3
"""The PostgreSQL ceiling as `bench/run --postgres-url` runs it (its 8 connections shared, each
taking many requests' statements at once), the same ceiling with each connection lent to one
request at a time (`--exclusive`, as a pool such as r2d2, deadpool or bb8 lends them), and the
service, one after another on fresh copies of the same seeded database, in rounds. What the
shared ceiling gains over the exclusive one is what sending several requests' statements down
one connection is worth; the service's ratio to each says how much of its distance from the
ceiling that explains.

    bench/pg_ceiling_modes.py --postgres-url postgres://postgres@127.0.0.1:5432/postgres
    bench/pg_ceiling_modes.py --postgres-url … --rounds 3 --seconds 10 --scenarios retrieve

Writes its table to bench/results/pg-ceiling-modes-<time>.md as well (not with --no-results-file).

Uses the dist builds `bench/run` makes (`target/dist/station-api`, `target/dist/examples/pg_ceiling`);
64 connections, 10,000 rows, basic auth for the service, as `bench/run`'s cells.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import bench

ROWS = 10_000
WORKERS = 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--postgres-url", required=True,
                        help="a server the benchmark may create its databases on")
    parser.add_argument("--binary", default=bench.BINARY)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--scenarios", nargs="+", default=["retrieve", "list"],
                        choices=bench.PG_CEILING_SCENARIOS)
    parser.add_argument("--no-results-file", action="store_true",
                        help="print the table only, without writing bench/results/pg-ceiling-modes-<time>.md")
    args = parser.parse_args()
    bench.BINARY = args.binary
    workdir = Path(tempfile.mkdtemp())
    store = bench.PostgresStore(bench.same_transport_as_the_ceiling(args.postgres_url), ROWS)
    lines = [
        f"`{bench.command_line('bench/pg_ceiling_modes.py')}` at "
        f"`{bench.git_commit()}`, {bench.machine()}; {args.connections} connections, "
        f"{args.seconds} s a cell; CPU µs a request: the server's own, then PostgreSQL's.",
        "",
        "| round | scenario | shared ceiling req/s (CPU µs, PostgreSQL µs) "
        "| exclusive ceiling req/s (CPU µs, PostgreSQL µs) "
        "| service req/s (CPU µs, PostgreSQL µs) "
        "| exclusive / shared | service / shared | service / exclusive |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    print("\n".join(lines), flush=True)
    errors = 0
    try:
        for round_number in range(1, args.rounds + 1):
            for scenario in args.scenarios:
                shared = ceiling_cell(store, scenario, args, exclusive=False)
                exclusive = ceiling_cell(store, scenario, args, exclusive=True)
                served = bench.measure_fresh(store, ROWS, WORKERS, workdir / "server.log",
                                             scenario, args.connections, args.seconds,
                                             on_postgres=True)
                lines.append(
                    f"| {round_number} | {scenario} | {figures(shared)} | {figures(exclusive)} "
                    f"| {figures(served)} | {exclusive.rps / shared.rps:.2f} "
                    f"| {served.rps / shared.rps:.2f} | {served.rps / exclusive.rps:.2f} |")
                print(lines[-1], flush=True)
                errors += shared.errors + exclusive.errors + served.errors
    finally:
        store.close()
    if not args.no_results_file:
        bench.write_result("pg-ceiling-modes-", "\n".join(lines) + "\n")
    if errors:
        raise SystemExit(f"{errors} requests failed: the figures above do not count")


def ceiling_cell(store: bench.PostgresStore, scenario: str, args: argparse.Namespace,
                 exclusive: bool) -> bench.Measurement:
    ceiling = bench.start_pg_ceiling(store.fresh_url(), WORKERS, exclusive)
    try:
        return bench.measure(ceiling, scenario, args.connections, args.seconds, on_postgres=True)
    finally:
        ceiling.stop()


def figures(result: bench.Measurement) -> str:
    errors = f", {result.errors} errors" if result.errors else ""
    return (f"{result.rps:,.0f} ({result.cpu_us_per_request:.1f}, "
            f"{result.database_cpu_us_per_request or 0:.1f}){errors}")


if __name__ == "__main__":
    main()
