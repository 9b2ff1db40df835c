#!/usr/bin/env python3
"""Deep paging at 1 M and 10 M rows: page numbers against cursors, and a filtered time range.

Loads a synthetic network (10 stations, one reading each every 3 s) straight into a migrated
database, starts the dist build of the service on it, and times, one request at a time over a
kept-alive connection:

  - the first page, by page number (with `count`) and by cursor (without);
  - page 1,000 by page number (`OFFSET 9990`, plus the count);
  - the same depth by cursor (the token found by walking 999 `next` links first);
  - a one-hour time range (`timestamp__gte`/`__lt`, ordered by time), by cursor and by page number;
  - the first cursor page newest first (`ordering=-timestamp`) and by name descending
    (`ordering=-name`, where every station's readings tie on the first key);
  - `/station/latest/` (every station's newest reading; `--stations 1000` for a network of 1,000);
  - `/station/aggregate/` over all of one station's readings, in hourly buckets;
  - `/station/aggregate/` over a month of 10-second readings (259,200 rows) of one more station,
    `station-month`, loaded beside the network, in hourly buckets.

Each figure is the median and 95th percentile of 200 requests after 20 warm-up requests, both as
the client saw it and as the server logged it (`latency_us` of its request log). The table goes to
stdout and to bench/results/paging-*.md.

    bench/paging                                   # SQLite at 1 M and 10 M rows
    bench/paging --postgres-url postgres://postgres@127.0.0.1/postgres   # and PostgreSQL
    bench/paging --sizes 20000 --requests 20       # a quick smoke run
    bench/paging --binary /tmp/old --sizes 1000000 # an earlier build, without building
    bench/paging --sizes 10000000 --stations 1000  # latest and aggregates at 10 M over 1,000 names
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import http.client
import json
import os
import re
import secrets
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import (  # noqa: E402  (bench.py holds the shared helpers)
    BINARY,
    RESULTS,
    ROOT,
    build,
    free_port,
    git_commit,
    log,
    machine,
    wait_until_listening,
)

FIRST_TIMESTAMP = 1_600_000_000
STATIONS = 10
SECONDS_BETWEEN_READINGS = 3
# One more station with a month of readings 10 s apart: what the home page's 30-day chart reads.
MONTH_STATION = "station-month"
MONTH_READINGS = 30 * 24 * 360
MONTH_SECONDS_APART = 10


def row_sql(i: str) -> str:
    """The columns of synthetic row number `i` (an SQL expression), identical on both engines."""
    return (
        f"'station-' || ({i} % {STATIONS}), "
        f"{FIRST_TIMESTAMP} + ({i} / {STATIONS}) * {SECONDS_BETWEEN_READINGS}, "
        f"(({i} * 7919) % 6000) / 100.0 - 20, "
        f"59 + (({i} % {STATIONS}) % 300) * 0.1, "
        f"10 + ({i} % {STATIONS}) * 0.1"
    )


def month_sql(i: str) -> str:
    """The columns of the month station's reading number `i` (an SQL expression)."""
    return (
        f"'{MONTH_STATION}', {FIRST_TIMESTAMP} + {i} * {MONTH_SECONDS_APART}, "
        f"(({i} * 7919) % 6000) / 100.0 - 20, 60.5, 11.5"
    )


def load_sqlite(path: Path, rows: int) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA synchronous = OFF")
        conn.execute("PRAGMA cache_size = -1000000")
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            f"INSERT INTO station (name, timestamp, temperature, lat, lon) SELECT {row_sql('i')} FROM n",
            (rows - 1,),
        )
        conn.execute(
            "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
            f"INSERT INTO station (name, timestamp, temperature, lat, lon) SELECT {month_sql('i')} FROM n",
            (MONTH_READINGS - 1,),
        )
        conn.commit()
        conn.execute("ANALYZE")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def psql(url: str, sql: str) -> None:
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url, "-c", sql], check=True,
                   stdout=subprocess.DEVNULL)


def load_postgres(url: str, rows: int) -> None:
    psql(url, "INSERT INTO station (name, timestamp, temperature, lat, lon) "
              f"SELECT {row_sql('i')} FROM generate_series(0::bigint, {rows - 1}) AS i")
    psql(url, "INSERT INTO station (name, timestamp, temperature, lat, lon) "
              f"SELECT {month_sql('i')} FROM generate_series(0::bigint, {MONTH_READINGS - 1}) AS i")
    psql(url, "VACUUM ANALYZE station")


def with_database(server_url: str, name: str) -> str:
    parts = urlsplit(server_url)
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{parts.netloc}/{name}{query}"


class Service:
    """The dist binary serving `database_url`, with its log in a file."""

    def __init__(self, database_url: str, workdir: Path) -> None:
        self.env = {**os.environ, "DATABASE_URL": database_url, "RUST_LOG": "info"}
        subprocess.run([BINARY, "migrate"], env=self.env, check=True, stdout=subprocess.DEVNULL)
        self.password = secrets.token_urlsafe(18)
        subprocess.run([BINARY, "createsuperuser", "--username", "bench"], env=self.env,
                       input=self.password + "\n", text=True, check=True,
                       stdout=subprocess.DEVNULL)
        self.log_path = workdir / "server.log"
        self.workdir = workdir

    def start(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [BINARY, "serve", "--bind", f"127.0.0.1:{self.port}"],
            env=self.env, stdout=subprocess.DEVNULL, stderr=self.log_path.open("w"),
        )
        wait_until_listening(self.port, self.process)
        token = base64.b64encode(f"bench:{self.password}".encode()).decode()
        self.headers = {"Authorization": f"Basic {token}"}
        self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)

    def stop(self) -> None:
        self.connection.close()
        self.process.terminate()
        self.process.wait(timeout=30)

    def get(self, path: str) -> dict:
        self.connection.request("GET", path, headers=self.headers)
        response = self.connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise SystemExit(f"GET {path}: {response.status} {body[:200]!r}")
        return json.loads(body)

    def server_latencies_ms(self, last: int) -> list[float]:
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        found = [int(m.group(1)) / 1000 for line in lines
                 if (m := re.search(r"latency_us=(\d+)", line))]
        return found[-last:]


def path_of(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


def time_requests(service: Service, path: str, warmup: int, requests: int) -> dict[str, float]:
    for _ in range(warmup):
        service.get(path)
    client = []
    for _ in range(requests):
        started = time.perf_counter()
        service.get(path)
        client.append((time.perf_counter() - started) * 1000)
    time.sleep(0.2)  # let the last log lines reach the file
    server = service.server_latencies_ms(requests)

    def p95(values: list[float]) -> float:
        return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else values[0]

    return {"client_p50": statistics.median(client), "client_p95": p95(client),
            "server_p50": statistics.median(server), "server_p95": p95(server)}


def measure(service: Service, rows: int, warmup: int, requests: int) -> dict[str, dict]:
    deep_page = 1000 if rows >= 10_000 else max(1, rows // 10 // 2)
    log(f"    walking {deep_page - 1} cursor pages to reach page {deep_page} ...")
    link = "/station/?cursor="
    for _ in range(deep_page - 1):
        link = path_of(service.get(link)["next"])
    middle = FIRST_TIMESTAMP + (rows // STATIONS // 2) * SECONDS_BETWEEN_READINGS
    time_range = f"timestamp__gte={middle}&timestamp__lt={middle + 3600}&ordering=timestamp"
    queries = {
        "first page, by number (with count)": "/station/",
        "first page, by cursor": "/station/?cursor=",
        f"page {deep_page:,} by number (with count)": f"/station/?page={deep_page}",
        f"page {deep_page:,} by cursor": link,
        "one-hour time range, by cursor": f"/station/?{time_range}&cursor=",
        "one-hour time range, by number (with count)": f"/station/?{time_range}",
        "newest first (ordering=-timestamp), by cursor": "/station/?ordering=-timestamp&cursor=",
        "by name, descending (ordering=-name), by cursor": "/station/?ordering=-name&cursor=",
        f"latest reading of each of {STATIONS + 1:,} stations (page 1, count)": "/station/latest/",
    }
    per_station = rows // STATIONS
    span = per_station * SECONDS_BETWEEN_READINGS
    interval = 3600 * max(1, -(-span // (3600 * 10_000)))
    queries[f"aggregate of one station's {per_station:,} readings, {interval // 3600} h buckets"] = (
        f"/station/aggregate/?name=station-3&timestamp__gte={FIRST_TIMESTAMP}"
        f"&timestamp__lt={FIRST_TIMESTAMP + span + 1}&interval={interval}")
    month_span = MONTH_READINGS * MONTH_SECONDS_APART
    queries[f"aggregate of a month of 10 s readings ({MONTH_READINGS:,}), 1 h buckets"] = (
        f"/station/aggregate/?name={MONTH_STATION}&timestamp__gte={FIRST_TIMESTAMP}"
        f"&timestamp__lt={FIRST_TIMESTAMP + month_span}&interval=3600")
    results = {}
    for title, path in queries.items():
        figures = time_requests(service, path, warmup, requests)
        log(f"    {title:45} server p50 {figures['server_p50']:8.2f} ms  p95 "
            f"{figures['server_p95']:8.2f} ms  (client p50 {figures['client_p50']:8.2f} ms)")
        results[title] = figures
    return results


def run_backend(backend: str, rows: int, args: argparse.Namespace, workdir: Path) -> dict:
    log(f"== {backend}, {rows:,} rows")
    drop = None
    if backend == "sqlite":
        database = workdir / f"paging-{rows}.db"
        database.unlink(missing_ok=True)
        url = f"sqlite://{database}"
        service = Service(url, workdir)
        started = time.monotonic()
        load_sqlite(database, rows)
    else:
        name = f"station_paging_{rows}_{secrets.token_hex(4)}"
        psql(args.postgres_url, f"CREATE DATABASE {name}")
        drop = f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        url = with_database(args.postgres_url, name)
        service = Service(url, workdir)
        started = time.monotonic()
        load_postgres(url, rows)
    log(f"    loaded in {time.monotonic() - started:.0f} s")
    service.start()
    try:
        return measure(service, rows, args.warmup, args.requests)
    finally:
        service.stop()
        if drop:
            psql(args.postgres_url, drop)
        elif backend == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(f"{workdir}/paging-{rows}.db{suffix}").unlink(missing_ok=True)


def table(results: dict[tuple[str, int], dict]) -> str:
    columns = list(results)
    header = "| query | " + " | ".join(f"{b} {r:,} rows" for b, r in columns) + " |"
    lines = [header, "|---|" + "---:|" * len(columns)]
    titles = list(next(iter(results.values())))
    for n, title in enumerate(titles):
        cells = []
        for column in columns:
            # Page titles name the depth, which is the same for every size of one run.
            figures = list(results[column].values())[n]
            cells.append(f"{figures['server_p50']:.2f} / {figures['server_p95']:.2f}")
        lines.append(f"| {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    global STATIONS, BINARY
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000000,10000000",
                        help="comma-separated row counts (default: 1000000,10000000)")
    parser.add_argument("--postgres-url", default=os.environ.get("BENCH_POSTGRES_URL"),
                        help="also run on the PostgreSQL server here (a database to connect to)")
    parser.add_argument("--stations", type=int, default=STATIONS,
                        help=f"station names the readings are spread over (default {STATIONS})")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--no-results-file", action="store_true")
    parser.add_argument("--binary", help="measure this build instead of building the dist one")
    args = parser.parse_args()
    STATIONS = args.stations
    sizes = [int(size) for size in args.sizes.split(",")]
    backends = ["sqlite"] + (["postgres"] if args.postgres_url else [])
    if args.binary:
        BINARY = args.binary
    else:
        build()
    results: dict[tuple[str, int], dict] = {}
    with tempfile.TemporaryDirectory(prefix="station-paging-", dir=ROOT / "target") as work:
        for backend in backends:
            for rows in sizes:
                results[(backend, rows)] = run_backend(backend, rows, args, Path(work))
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H%M")
    report = (
        f"# Deep paging, {stamp} UTC\n\n"
        f"Command: `bench/paging --sizes {args.sizes} --stations {STATIONS}"
        + (" --postgres-url …" if args.postgres_url else "")
        + (f" --binary {args.binary}` (a build given, in a checkout at commit {git_commit()})"
           if args.binary else f"` at commit {git_commit()}")
        + f" on {machine()}.\n\n"
        "Server-side latency (the service's own request log), median / 95th percentile in ms, "
        f"{args.requests} sequential requests each after {args.warmup} warm-up requests; "
        f"10 readings a page; {MONTH_READINGS:,} readings of `{MONTH_STATION}` besides the rows "
        "counted.\n\n" + table(results) + "\n"
    )
    print(report)
    if not args.no_results_file:
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / f"paging-{stamp}.md").write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
