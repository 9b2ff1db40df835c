#!/usr/bin/env python3
"""Load benchmark for station-api against an actix-web "ceiling" server, both on loopback.

Runs each scenario with wrk at several connection counts, first against the ceiling (constant
bodies, no auth, no database: examples/ceiling.rs), then against the dist build of the service
(`cargo build --profile dist`: the release build with fat LTO) on SQLite with a seeded table and
HTTP basic auth, and prints a Markdown table with requests/s,
p50/p99 latency, errors, the server's peak RSS and the ratio to the ceiling measured in the same
run. The table is also written to bench/results/.

    bench/run                 # full run: 5 scenarios x 1/16/64/256 connections, 10 s each
    bench/run --postgres-url postgres://postgres@127.0.0.1/postgres   # and on PostgreSQL too,
                              # also against a PostgreSQL ceiling (examples/pg_ceiling.rs)
    bench/run --quick         # smoke run for CI: 2 s, 16 connections, 1,000 rows
    bench/run --soak          # 10 minutes of the mixed load at a steady rate, RSS every 10 s
    bench/run --instructions  # instructions per request (callgrind), repeatable on a noisy machine
                              # (retrieve also with metrics on)
    bench/run --fanout        # the event stream: 1,000 clients at 200 readings/s, and the API
                              # with 1,000 idle subscribers beside it
    bench/run --metrics-ab    # retrieve at 64 connections, metrics off and on in alternating
                              # cells (off, on, on, off, ...), and the median of the pairs' ratios
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import json
import os
import platform
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LUA = ROOT / "bench" / "scenario.lua"
SCENARIOS = ["retrieve", "list", "filtered", "create", "mixed"]
SCENARIO_TITLES = {
    "retrieve": "retrieve one station",
    "list": "list page 1 (10 items, with count)",
    "filtered": "list a filtered page (one hour, by time, with count)",
    "create": "create",
    "mixed": "mixed 80% reads / 20% creates",
}
# SQLite only: the create scenario again with the service's durability opt-out, at the
# connection count the targets are set at, so the cost of `synchronous=full` (the default:
# every acknowledged write survives a power cut) is read off the same run.
FAST_CREATE = "create-normal"
FAST_CREATE_TITLE = "create, `--sqlite-synchronous normal` (not power-cut safe)"
FAST_CREATE_CONNECTIONS = 64
# SQLite only: the retrieve scenario again with Prometheus metrics on (`--metrics-bind`), right
# after the plain one, so the hot path's cost of counting is read off the same run (the goal:
# within 5% of metrics off). One scrape after the cell shows the counter kept up.
METRICS_RETRIEVE = "retrieve-metrics"
METRICS_RETRIEVE_TITLE = "retrieve one station, metrics on (`--metrics-bind`)"
METRICS_CONNECTIONS = 64
# The seeded readings are 5 s apart from FIRST_TIMESTAMP, so this hour holds 720 of them.
FIRST_TIMESTAMP = 1_700_000_000
FILTERED_QUERY = (f"timestamp__gte={FIRST_TIMESTAMP + 10_000}"
                  f"&timestamp__lt={FIRST_TIMESTAMP + 13_600}&ordering=timestamp")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_listening(port: int, process: subprocess.Popen, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited early with status {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listened on port {port} within {seconds} s")


def proc_status_kib(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def reset_peak_rss(pid: int) -> None:
    """Writing 5 to clear_refs resets VmHWM, so each scenario gets its own peak."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w", encoding="ascii") as refs:
            refs.write("5")
    except OSError:
        pass


@dataclass
class Measurement:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    statuses: dict[str, int]
    peak_rss_mib: float = 0.0
    cpu_us_per_request: float = 0.0
    # The database server's CPU a request, where it runs on this machine (PostgreSQL cells).
    database_cpu_us_per_request: float | None = None

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def run_wrk(port: int, scenario: str, connections: int, seconds: int, env: dict[str, str]) -> Measurement:
    threads = max(1, min(2, connections))
    env = {**env, "BENCH_FILTER": FILTERED_QUERY}
    command = [
        "wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s",
        "-s", str(LUA), f"http://127.0.0.1:{port}",
    ]
    result = subprocess.run(
        command, env={**os.environ, **env, "BENCH_MODE": scenario},
        capture_output=True, text=True, check=False,
    )
    line = next((l for l in result.stdout.splitlines() if l.startswith("BENCH_JSON ")), None)
    if result.returncode != 0 or line is None:
        raise SystemExit(f"wrk failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    data = json.loads(line.removeprefix("BENCH_JSON "))
    statuses = {code: count for code, count in data["statuses"].items()}
    bad_statuses = sum(count for code, count in statuses.items() if not code.startswith("2"))
    socket_errors = data["connect_errors"] + data["read_errors"] + data["write_errors"] + data["timeouts"]
    return Measurement(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=bad_statuses + socket_errors,
        statuses=statuses,
    )


@dataclass
class Server:
    name: str
    process: subprocess.Popen
    port: int
    env: dict[str, str] = field(default_factory=dict)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.process.kill()


def build() -> None:
    log("building the dist binary (the release build, with whole-program optimization) and the "
        "ceiling server ...")
    started = time.monotonic()
    subprocess.run(
        ["cargo", "build", "--profile", "dist", "--locked", "--bin", "station-api",
         "--example", "ceiling", "--example", "pg_ceiling", "--example", "fanout"],
        cwd=ROOT, check=True,
    )
    log(f"the dist build took {time.monotonic() - started:.0f} s")


def start_ceiling(workers: int) -> Server:
    port = free_port()
    process = subprocess.Popen(
        [str(ROOT / "target/dist/examples/ceiling"), "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_until_listening(port, process)
    return Server("ceiling", process, port, {"BENCH_AUTH": "", "BENCH_ROWS": "10000"})


def start_pg_ceiling(database_url: str, workers: int, exclusive: bool = False) -> Server:
    """examples/pg_ceiling.rs on `database_url`: a prepared statement per request, 8 connections,
    no auth, no count; with `exclusive`, each connection serves one request at a time."""
    port = free_port()
    process = subprocess.Popen(
        [str(ROOT / "target/dist/examples/pg_ceiling"), "--bind", f"127.0.0.1:{port}",
         "--workers", str(workers), "--database-url", database_url,
         *(["--exclusive"] if exclusive else [])],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_until_listening(port, process)
    server = Server("pg ceiling", process, port, {"BENCH_AUTH": "", "BENCH_ROWS": "10000"})
    # The pool connects as each worker starts: a first request shows it is up.
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as probe:
                probe.sendall(b"GET /station/1/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if probe.recv(12).startswith(b"HTTP/1.1 200"):
                    return server
        except OSError:
            pass
        time.sleep(0.1)
    server.stop()
    raise SystemExit("the PostgreSQL ceiling did not answer")


# The scenarios the PostgreSQL ceiling serves as the service does (it ignores the filter).
PG_CEILING_SCENARIOS = ("retrieve", "list", "create", "mixed")

BINARY = str(ROOT / "target/dist/station-api")


def seed_sql(rows: int) -> str:
    """Readings 0..rows-1: ten station names, 5 s apart from FIRST_TIMESTAMP, as one INSERT."""
    values = ", ".join(
        f"('station-{n % 10}', {FIRST_TIMESTAMP + n * 5}, {round(-20 + (n % 600) / 10, 1)}, "
        f"{59.91 + (n % 100) / 1000}, {10.75 + (n % 100) / 1000})"
        for n in range(rows)
    )
    return f"INSERT INTO station (name, timestamp, temperature, lat, lon) VALUES {values}"


def create_superuser(database_url: str) -> tuple[str, str]:
    """Migrates the database at `database_url`, adds the superuser `bench` and a device token
    with both scopes; returns the password and the token's key."""
    env = {**os.environ, "DATABASE_URL": database_url}
    subprocess.run([BINARY, "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    password = secrets.token_urlsafe(18)
    subprocess.run(
        [BINARY, "createsuperuser", "--username", "bench"], env=env, input=password + "\n",
        text=True, check=True, stdout=subprocess.DEVNULL,
    )
    token = subprocess.run(
        [BINARY, "createtoken", "--label", "bench", "--scope", "read", "--scope", "write"],
        env=env, text=True, check=True, capture_output=True,
    ).stdout.strip()
    return password, token


class SqliteStore:
    """A migrated, seeded SQLite file, copied afresh for every cell."""

    title = "SQLite"

    def __init__(self, workdir: Path, rows: int) -> None:
        self.pristine = workdir / "pristine.db"
        self.cell = workdir / "bench.db"
        self.password, self.token = create_superuser(f"sqlite://{self.pristine}")
        with sqlite3.connect(self.pristine) as conn:
            conn.execute(seed_sql(rows))
            conn.commit()
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def fresh_url(self) -> str:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.cell}{suffix}").unlink(missing_ok=True)
        shutil.copyfile(self.pristine, self.cell)
        return f"sqlite://{self.cell}"

    def close(self) -> None:
        pass


def psql(url: str, sql: str) -> None:
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", url], input=sql, text=True,
                   check=True, stdout=subprocess.DEVNULL)


def with_database(server_url: str, name: str) -> str:
    parts = urlsplit(server_url)
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{parts.netloc}/{name}{query}"


def same_transport_as_the_ceiling(server_url: str) -> str:
    """`server_url` with `sslmode=disable` unless it names an sslmode: the PostgreSQL ceiling's
    tokio-postgres speaks plaintext, while libpq's default (`prefer`) encrypts wherever the
    server offers TLS, so the service would pay for TLS on both sides of every round trip and
    the ratio would measure the transport, not the service. Loopback only, so TLS protects
    nothing here; an explicit sslmode is kept (the ceiling then still speaks plaintext)."""
    parts = urlsplit(server_url)
    if "sslmode=" in parts.query:
        return server_url
    query = f"{parts.query}&sslmode=disable" if parts.query else "sslmode=disable"
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{query}"


class PostgresStore:
    """A migrated, seeded template database on the server at `server_url`, cloned for every cell
    (CREATE DATABASE … TEMPLATE) and dropped at the end."""

    title = "PostgreSQL"

    def __init__(self, server_url: str, rows: int) -> None:
        self.server_url = server_url
        tag = secrets.token_hex(4)
        self.template = f"station_bench_{tag}"
        self.cell = f"station_bench_{tag}_cell"
        psql(server_url, f"CREATE DATABASE {self.template}")
        template_url = with_database(server_url, self.template)
        self.password, self.token = create_superuser(template_url)
        psql(template_url, seed_sql(rows) + ";\nVACUUM ANALYZE station;")

    def fresh_url(self) -> str:
        psql(self.server_url, f"DROP DATABASE IF EXISTS {self.cell} WITH (FORCE)")
        psql(self.server_url, f"CREATE DATABASE {self.cell} TEMPLATE {self.template}")
        return with_database(self.server_url, self.cell)

    def close(self) -> None:
        psql(self.server_url, f"DROP DATABASE IF EXISTS {self.cell} WITH (FORCE)")
        psql(self.server_url, f"DROP DATABASE IF EXISTS {self.template} WITH (FORCE)")


def start_service(store, rows: int, workers: int, log_file: Path,
                  options: tuple[str, ...] = (), device_token: bool = False) -> Server:
    """A server on a fresh copy of the store's seeded database, so every cell starts at `rows`;
    requests authenticate as the staff user `bench`, or with its device token."""
    env = {**os.environ, "DATABASE_URL": store.fresh_url()}
    port = free_port()
    process = subprocess.Popen(
        [BINARY, "serve", "--bind", f"127.0.0.1:{port}", "--workers", str(workers), *options],
        env=env, stdout=subprocess.DEVNULL, stderr=log_file.open("a"),
    )
    wait_until_listening(port, process)
    if device_token:
        auth = f"Token {store.token}"
    else:
        auth = "Basic " + base64.b64encode(f"bench:{store.password}".encode()).decode()
    return Server("station-api", process, port, {"BENCH_AUTH": auth, "BENCH_ROWS": str(rows)})


def measure_fresh(store, rows: int, workers: int, log_file: Path, scenario: str,
                  connections: int, seconds: int, options: tuple[str, ...] = (),
                  device_token: bool = False, env: dict[str, str] | None = None,
                  on_postgres: bool = False) -> Measurement:
    """One cell on a server started for it (`start_service`), given half a second to settle and
    stopped afterwards; `env` is added to the load generator's environment."""
    service = start_service(store, rows, workers, log_file, options, device_token)
    try:
        service.env.update(env or {})
        time.sleep(0.5)
        return measure(service, scenario, connections, seconds, on_postgres)
    finally:
        service.stop()


def proc_cpu_seconds(pid: int) -> float:
    """User plus system CPU time the process (all its threads) has used so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float | None:
    """User plus system CPU time every `postgres` process on this machine has used so far (the
    server, its background processes, and the backends of every connection); None when there is
    none, as when the server runs elsewhere."""
    total, found = 0.0, False
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                text = stat.read()
        except OSError:
            continue  # gone since the listing
        if not text[text.index("(") + 1:text.rindex(")")].startswith("postgres"):
            continue
        fields = text.rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        found = True
    return total if found else None


def measure(server: Server, scenario: str, connections: int, seconds: int,
            on_postgres: bool = False) -> Measurement:
    pid = server.process.pid
    reset_peak_rss(pid)
    cpu_before = proc_cpu_seconds(pid)
    database_before = postgres_cpu_seconds() if on_postgres else None
    result = run_wrk(server.port, scenario, connections, seconds, server.env)
    cpu_used = proc_cpu_seconds(pid) - cpu_before
    database_after = postgres_cpu_seconds() if database_before is not None else None
    if database_before is not None and database_after is not None and result.requests:
        result.database_cpu_us_per_request = (
            (database_after - database_before) * 1e6 / result.requests)
    result.peak_rss_mib = proc_status_kib(pid, "VmHWM") / 1024
    # The server's own CPU time per request: steadier than req/s on a machine whose other core
    # is shared with wrk, and the cost that sets how many requests one core can serve.
    result.cpu_us_per_request = cpu_used * 1e6 / result.requests if result.requests else 0.0
    log(f"  {server.name:12} {scenario:8} c={connections:<4} {result.rps:9.0f} req/s  "
        f"p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:7.2f} ms  errors {result.errors}  "
        f"peak {result.peak_rss_mib:5.1f} MiB  CPU {result.cpu_us_per_request:5.1f} us/req"
        + (f"  statuses {result.statuses}" if result.errors else ""))
    return result


def scraped_retrieves(address: str) -> str:
    """What the metrics listener at `address` counted of the retrieves answered 200."""
    from urllib.request import urlopen

    series = 'station_http_requests_total{route="/station/{id}/",method="GET",status="200"}'
    with urlopen(f"http://{address}/metrics", timeout=10) as response:
        text = response.read().decode()
    counted = next((line.rsplit(" ", 1)[1] for line in text.splitlines()
                    if line.startswith(series + " ")), None)
    if counted is None:
        raise SystemExit(f"the metrics at {address} have no {series}:\n{text}")
    return f"metrics listener counted {counted} retrieves answered 200"


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = proc_meminfo_gib()
    return f"{os.cpu_count()} cores ({model}), {memory:.0f} GiB, Linux {platform.release()}"


def proc_meminfo_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return 0.0


def git_commit() -> str:
    result = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True, check=False)
    return result.stdout.strip() or "unknown"


def command_line(program: str = "bench/run") -> str:
    """How this run of `program` was started, with any database URL (it may hold a password) elided."""
    shown, hide_next = [], False
    for arg in sys.argv[1:]:
        if hide_next:
            shown.append("…")
        elif arg.startswith("--postgres-url="):
            shown.append("--postgres-url=…")
        else:
            shown.append(arg)
        hide_next = arg == "--postgres-url"
    return " ".join([program, *shown])


def write_result(prefix: str, report: str) -> None:
    """Writes `report` to bench/results/<prefix><UTC time>.md."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{prefix}{dt.datetime.now(dt.timezone.utc):%Y-%m-%dT%H%M}.md"
    path.write_text(report)
    log(f"written to {path.relative_to(ROOT)}")


@dataclass
class DeviceCell:
    """One line of the devices table: a measurement, and what it is compared with."""
    title: str
    connections: int
    result: Measurement
    rows_per_request: int = 1
    baseline: str = ""
    ratio: float | None = None

    @property
    def rows_per_second(self) -> float:
        return self.result.rps * self.rows_per_request


def upload_body(path: Path, items: int, media_type: str) -> Path:
    """A bulk body of `items` readings of one station, 10 s apart, as JSON or CSV: posted again
    and again by scenario.lua's upload mode (its backlog mode makes a new body each request)."""
    readings = [("pi-bench", FIRST_TIMESTAMP + n * 10, round(15 + (n % 100) / 10, 1), 59.91, 10.75)
                for n in range(items)]
    if media_type == "text/csv":
        text = "name,timestamp,temperature,lat,lon\n" + "".join(
            f"{name},{ts},{t},{lat},{lon}\n" for name, ts, t, lat, lon in readings)
    else:
        text = json.dumps([{"name": name, "timestamp": ts, "temperature": t, "lat": lat, "lon": lon}
                           for name, ts, t, lat, lon in readings], separators=(",", ":"))
    path.write_text(text)
    return path


def upload_env(workdir: Path, mode: str, items: int, media_type: str) -> dict[str, str]:
    """What scenario.lua needs for an upload cell: in `backlog` mode each request a device's new
    backlog of `items` readings; in `upload` mode the same body (written under `workdir`) every
    request."""
    if mode == "upload":
        suffix = "csv" if media_type == "text/csv" else "json"
        body = upload_body(workdir / f"upload-{items}.{suffix}", items, media_type)
        return {"BENCH_BODY_FILE": str(body), "BENCH_CONTENT_TYPE": media_type}
    return {"BENCH_UPLOAD_ITEMS": str(items), "BENCH_CONTENT_TYPE": media_type}


def device_cells(store, rows: int, workers: int, seconds: int, quick: bool,
                 workdir: Path) -> list[DeviceCell]:
    """Device tokens against basic auth, and bulk uploads against single creates, each pair
    measured one right after the other on fresh servers."""
    log_file = workdir / "server.log"
    auth_connections = 16 if quick else 64
    upload_connections = 16
    cells: list[DeviceCell] = []

    def cell(scenario: str, connections: int, device_token: bool = False,
             extra_args: tuple[str, ...] = (), env: dict[str, str] | None = None) -> Measurement:
        return measure_fresh(store, rows, workers, log_file, scenario, connections, seconds,
                             extra_args, device_token, env)

    for scenario in ("retrieve", "create"):
        basic = cell(scenario, auth_connections)
        token = cell(scenario, auth_connections, device_token=True)
        cells.append(DeviceCell(f"{scenario}, basic auth", auth_connections, basic))
        cells.append(DeviceCell(f"{scenario}, device token", auth_connections, token,
                                baseline=f"{scenario}, basic auth",
                                ratio=token.rps / basic.rps if basic.rps else 0.0))
    single = cell("create", upload_connections)
    cells.append(DeviceCell("single creates, 1 reading a request", upload_connections, single))
    # Each upload is a device's backlog: readings newer than its previous upload (scenario.lua's
    # backlog mode, 16 devices), as field devices send them.
    json_items = 1000

    def backlog(items: int, media_type: str) -> Measurement:
        return cell("backlog", upload_connections,
                    env=upload_env(workdir, "backlog", items, media_type))

    uploads = {"JSON": backlog(json_items, "application/json"), "CSV": backlog(json_items, "text/csv")}
    json_cell = DeviceCell(f"bulk JSON, {json_items:,} readings a request", upload_connections,
                           uploads["JSON"], json_items, "single creates",
                           uploads["JSON"].rps * json_items / single.rps if single.rps else 0.0)
    csv_cell = DeviceCell(f"bulk CSV, {json_items:,} readings a request", upload_connections,
                          uploads["CSV"], json_items, "bulk JSON",
                          uploads["CSV"].rps / uploads["JSON"].rps if uploads["JSON"].rps else 0.0)
    cells += [json_cell, csv_cell]
    # The same 1,000 readings posted again and again: every row lands in the middle of the
    # timestamp indexes instead of at their ends, the costliest case for the writer.
    repeated = cell("upload", upload_connections,
                    env=upload_env(workdir, "upload", json_items, "application/json"))
    cells.append(DeviceCell(f"bulk JSON, the same {json_items:,} readings every request",
                            upload_connections, repeated, json_items, "bulk JSON",
                            repeated.rps / uploads["JSON"].rps if uploads["JSON"].rps else 0.0))
    big_items = 10_000
    cells.append(DeviceCell(f"bulk JSON, {big_items:,} readings a request", upload_connections,
                            backlog(big_items, "application/json"), big_items))
    return cells


def device_table(cells: list[DeviceCell]) -> list[str]:
    lines = [
        "| measurement | conns | req/s | readings/s | p99 ms | errors | peak RSS MiB | CPU us/req | compared with | ratio |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for c in cells:
        ratio = f"{c.ratio:.2f}" if c.ratio is not None else ""
        lines.append(
            f"| {c.title} | {c.connections} | {c.result.rps:,.0f} | {c.rows_per_second:,.0f} | "
            f"{c.result.p99_ms:.2f} | {c.result.errors} | {c.result.peak_rss_mib:.1f} | "
            f"{c.result.cpu_us_per_request:.1f} | {c.baseline} | {ratio} |")
    return lines


def load_run(args: argparse.Namespace) -> int:
    connection_counts = [16] if args.quick else args.connections
    seconds = 2 if args.quick else args.seconds
    rows = 1000 if args.quick else args.rows
    workers = args.workers
    scenarios = args.scenarios or SCENARIOS
    # The durability opt-out's create, beside the default's: at 64 connections (in a quick run
    # at its one count), when create is measured there.
    fast_create_at = connection_counts[0] if args.quick else FAST_CREATE_CONNECTIONS
    with_fast_create = "create" in scenarios and fast_create_at in connection_counts
    metrics_at = connection_counts[0] if args.quick else METRICS_CONNECTIONS
    with_metrics = "retrieve" in scenarios and metrics_at in connection_counts
    # (engine, scenario, connections) -> (service, ceiling)
    results: dict[tuple[str, str, int], tuple[Measurement, Measurement]] = {}
    idle_rss: dict[str, float] = {}
    devices: dict[str, list[DeviceCell]] = {}
    # (scenario, connections) -> the PostgreSQL ceiling, measured right before the service's cell
    pg_ceilings: dict[tuple[str, int], Measurement] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        engines = [lambda: SqliteStore(workdir, rows)]
        if args.postgres_url:
            engines.append(lambda: PostgresStore(same_transport_as_the_ceiling(args.postgres_url), rows))
        # The ceiling is measured right before each cell of the service, so that the ratio
        # compares two measurements seconds apart: this machine's speed drifts over minutes.
        ceiling = start_ceiling(workers)
        try:
            for open_store in engines:
                store = open_store()
                log(f"{store.title}, {rows:,} rows, basic auth; the ceiling, then a fresh server "
                    "and database, per cell:")
                try:
                    if args.scenarios is None:
                        log(f"{store.title}: device tokens and bulk uploads ...")
                        devices[store.title] = device_cells(store, rows, workers, seconds,
                                                            args.quick, workdir)
                    for connections in connection_counts:
                        cells = [(scenario, scenario, ()) for scenario in scenarios]
                        if (with_fast_create and connections == fast_create_at
                                and isinstance(store, SqliteStore)):
                            cells.insert(cells.index(("create", "create", ())) + 1,
                                         (FAST_CREATE, "create", ("--sqlite-synchronous", "normal")))
                        if (with_metrics and connections == metrics_at
                                and isinstance(store, SqliteStore)):
                            metrics_address = f"127.0.0.1:{free_port()}"
                            cells.insert(cells.index(("retrieve", "retrieve", ())) + 1,
                                         (METRICS_RETRIEVE, "retrieve",
                                          ("--metrics-bind", metrics_address)))
                        for key, scenario, options in cells:
                            if key == METRICS_RETRIEVE:
                                # The plain retrieve's, measured seconds ago: the two cells are
                                # compared with each other, and a quick run stays quick.
                                ceiling_result = results[(store.title, "retrieve", connections)][1]
                            else:
                                ceiling_result = measure(ceiling, scenario, connections, seconds)
                            if (isinstance(store, PostgresStore) and key == scenario
                                    and scenario in PG_CEILING_SCENARIOS):
                                pg_ceiling = start_pg_ceiling(store.fresh_url(), workers)
                                try:
                                    pg_ceilings[(scenario, connections)] = measure(
                                        pg_ceiling, scenario, connections, seconds,
                                        on_postgres=True)
                                finally:
                                    pg_ceiling.stop()
                            service = start_service(store, rows, workers, workdir / "server.log",
                                                    options)
                            try:
                                time.sleep(0.5)
                                rss = proc_status_kib(service.process.pid, "VmRSS") / 1024
                                idle_rss[store.title] = max(idle_rss.get(store.title, 0.0), rss)
                                results[(store.title, key, connections)] = (
                                    measure(service, scenario, connections, seconds,
                                            on_postgres=isinstance(store, PostgresStore)),
                                    ceiling_result,
                                )
                                if key == METRICS_RETRIEVE:
                                    log("  " + scraped_retrieves(options[1]))
                            finally:
                                service.stop()
                finally:
                    store.close()
        finally:
            ceiling.stop()

    total_errors = sum(r.errors for r, _ in results.values()) + sum(
        c.result.errors for cells in devices.values() for c in cells) + sum(
        pg.errors for pg in pg_ceilings.values())
    lines = [
        f"# station-api benchmark, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        f"- command: `{command_line()}` at commit `{git_commit()}`",
        f"- machine: {machine()}; wrk and both servers on the same machine, over loopback",
        f"- service: dist build (release, fat LTO), {rows:,} seeded readings, HTTP basic auth (Argon2id defaults), "
        f"{workers} workers, default settings and logging (info, to a file); {seconds} s per cell",
        f"- ceiling: `examples/ceiling.rs`, actix-web with constant bodies of the same sizes, "
        f"no auth, no database, {workers} workers; measured right before each cell of the service",
        f"- filtered page: `/station/?{FILTERED_QUERY}` (720 of the readings match)",
        "- each service cell starts a fresh server on a fresh copy of the seeded database, so creates "
        "in one cell do not grow the table for the next",
        "- CPU us/req: the server process's user and system CPU time during the cell (every thread, "
        "from /proc/PID/stat), divided by the requests wrk completed",
        "- SQLite syncs its log at every commit (`synchronous=full`, the default: a 201 survives a "
        "power cut); the `--sqlite-synchronous normal` create row is the same cell with the opt-out",
        "- metrics are off except in the `metrics on` retrieve row: the retrieve cell again, right "
        "after it, with `--metrics-bind` (compared with the same ceiling figures)",
    ]
    for title, rss in idle_rss.items():
        cells = sum(1 for engine, _, _ in results if engine == title)
        lines.append(f"- idle RSS of the service on {title} after start-up (largest of the {cells} "
                     f"starts): {rss:.1f} MiB")
    for title in idle_rss:
        lines += [
            "",
            f"## {title}",
            "",
            "| scenario | conns | req/s | p50 ms | p99 ms | errors | peak RSS MiB | CPU us/req | ceiling req/s | ceiling p99 ms | ceiling CPU us/req | ratio |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        followers = {"create": [FAST_CREATE], "retrieve": [METRICS_RETRIEVE]}
        rows_of_table = [key for scenario in scenarios
                         for key in [scenario, *followers.get(scenario, [])]]
        for key in rows_of_table:
            for connections in connection_counts:
                if (title, key, connections) not in results:
                    continue
                service_result, ceiling_result = results[(title, key, connections)]
                ratio = service_result.rps / ceiling_result.rps if ceiling_result.rps else 0.0
                name = {FAST_CREATE: FAST_CREATE_TITLE,
                        METRICS_RETRIEVE: METRICS_RETRIEVE_TITLE}.get(key) or SCENARIO_TITLES[key]
                lines.append(
                    f"| {name} | {connections} | {service_result.rps:,.0f} | "
                    f"{service_result.p50_ms:.2f} | {service_result.p99_ms:.2f} | {service_result.errors} | "
                    f"{service_result.peak_rss_mib:.1f} | {service_result.cpu_us_per_request:.1f} | "
                    f"{ceiling_result.rps:,.0f} | {ceiling_result.p99_ms:.2f} | "
                    f"{ceiling_result.cpu_us_per_request:.1f} | {ratio:.2f} |"
                )
    if pg_ceilings:
        lines += [
            "",
            "## PostgreSQL against a PostgreSQL ceiling",
            "",
            "`examples/pg_ceiling.rs`: actix-web and one prepared `tokio-postgres` statement per "
            "request on 8 connections, no auth, no count, on a fresh copy of the same seeded "
            "database, measured right before the service's cell; both without TLS "
            "(`sslmode=disable` unless the URL names an sslmode). PostgreSQL CPU us/req: the CPU "
            "time of every `postgres` process on this machine during the cell (the backends "
            "serving either program and the server's own processes), divided by the requests wrk "
            "completed; `-` when the server runs elsewhere.",
            "",
            "| scenario | conns | service req/s | PG ceiling req/s | PG ceiling p99 ms | service CPU us/req | PG ceiling CPU us/req | PostgreSQL CPU us/req, service | PostgreSQL CPU us/req, PG ceiling | ratio |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]

        def database_cpu(measured: Measurement) -> str:
            cpu = measured.database_cpu_us_per_request
            return "-" if cpu is None else f"{cpu:.1f}"

        for scenario in scenarios:
            for connections in connection_counts:
                pg = pg_ceilings.get((scenario, connections))
                served = results.get((PostgresStore.title, scenario, connections))
                if pg is None or served is None:
                    continue
                ratio = served[0].rps / pg.rps if pg.rps else 0.0
                lines.append(f"| {SCENARIO_TITLES[scenario]} | {connections} | "
                             f"{served[0].rps:,.0f} | {pg.rps:,.0f} | {pg.p99_ms:.2f} | "
                             f"{served[0].cpu_us_per_request:.1f} | {pg.cpu_us_per_request:.1f} | "
                             f"{database_cpu(served[0])} | {database_cpu(pg)} | {ratio:.2f} |")
    for title, cells in devices.items():
        lines += [
            "",
            f"## Devices on {title}",
            "",
            "Device tokens against basic auth, and bulk uploads (`POST /station/` with an array "
            "or CSV) against single creates, each measured on a fresh server right after what it "
            "is compared with. readings/s = req/s x readings a request; peak RSS is the server's "
            "during the cell. Each upload is a device's backlog (16 devices, each upload newer "
            "than that device's last) unless it says it posts the same readings every request.",
            "",
            *device_table(cells),
        ]
    for title in idle_rss:
        durable = results.get((title, "create", fast_create_at))
        fast = results.get((title, FAST_CREATE, fast_create_at))
        if durable and fast and fast[0].rps:
            lines += ["", f"Creates at {fast_create_at} connections on {title}: "
                      f"`synchronous=full` {durable[0].rps:,.0f} req/s (p99 {durable[0].p99_ms:.2f} ms), "
                      f"`normal` {fast[0].rps:,.0f} req/s (p99 {fast[0].p99_ms:.2f} ms): "
                      f"durability keeps {durable[0].rps / fast[0].rps:.2f} of the opt-out's rate."]
    for title in idle_rss:
        plain = results.get((title, "retrieve", metrics_at))
        metered = results.get((title, METRICS_RETRIEVE, metrics_at))
        if plain and metered and plain[0].rps and metered[0].cpu_us_per_request:
            lines += ["", f"Retrieves at {metrics_at} connections on {title}: metrics off "
                      f"{plain[0].rps:,.0f} req/s ({plain[0].cpu_us_per_request:.1f} CPU us/req), "
                      f"metrics on {metered[0].rps:,.0f} req/s "
                      f"({metered[0].cpu_us_per_request:.1f} CPU us/req): metrics on keeps "
                      f"{metered[0].rps / plain[0].rps:.3f} of the rate and costs "
                      f"{metered[0].cpu_us_per_request / plain[0].cpu_us_per_request:.3f} "
                      "times the CPU per request."]
    report = "\n".join(lines) + "\n"
    print(report)
    if not args.quick and not args.no_results_file:
        write_result("", report)
    if total_errors:
        log(f"FAILED: {total_errors} errors")
        return 1
    return 0


def soak_run(args: argparse.Namespace) -> int:
    minutes = args.soak_minutes
    connections, pace_ms = 16, 20  # 16 connections, each one request per 20 ms: ~800 req/s
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        store = SqliteStore(workdir, args.rows)
        service = start_service(store, args.rows, args.workers, workdir / "server.log")
        samples: list[tuple[float, float]] = []
        stop = threading.Event()
        started = time.monotonic()

        def sample() -> None:
            while not stop.is_set():
                rss = proc_status_kib(service.process.pid, "VmRSS") / 1024
                samples.append((time.monotonic() - started, rss))
                log(f"  t={samples[-1][0]:6.0f} s  RSS {rss:6.1f} MiB")
                stop.wait(10)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            env = {**service.env, "BENCH_PACE_MS": str(pace_ms)}
            result = run_wrk(service.port, "mixed", connections, int(minutes * 60), env)
        finally:
            stop.set()
            sampler.join()
            service.stop()

    warm = [s for s in samples if s[0] >= 60] or samples
    n = len(warm)
    mean_t = sum(t for t, _ in warm) / n
    mean_r = sum(r for _, r in warm) / n
    variance = sum((t - mean_t) ** 2 for t, _ in warm) or 1.0
    slope_per_min = sum((t - mean_t) * (r - mean_r) for t, r in warm) / variance * 60
    growth = slope_per_min * (warm[-1][0] - warm[0][0]) / 60
    flat = abs(growth) <= max(2.0, 0.05 * mean_r)
    non_2xx = {code: count for code, count in result.statuses.items() if not code.startswith("2")}
    report = "\n".join([
        f"# station-api soak, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        f"- command: `{command_line()}` at commit `{git_commit()}`; machine: {machine()}",
        f"- load: mixed 80/20, {connections} connections paced at one request per {pace_ms} ms each, "
        f"{minutes:g} minutes; SQLite starting at {args.rows:,} rows",
        f"- requests: {result.requests:,} ({result.rps:,.0f} req/s), p50 {result.p50_ms:.2f} ms, "
        f"p99 {result.p99_ms:.2f} ms",
        f"- non-2xx responses: {sum(non_2xx.values())} {non_2xx or ''}; socket errors and timeouts: "
        f"{result.errors - sum(non_2xx.values())}",
        f"- RSS samples (every 10 s): min {min(r for _, r in samples):.1f} MiB, "
        f"max {max(r for _, r in samples):.1f} MiB; trend after the first minute "
        f"{slope_per_min:+.3f} MiB/min ({growth:+.2f} MiB over the run)",
        f"- verdict: {'PASS' if flat and result.errors == 0 else 'FAIL'} "
        f"(RSS {'flat' if flat else 'growing'}, {result.errors} errors)",
        "",
        "RSS samples (s, MiB): " + ", ".join(f"{t:.0f}:{r:.1f}" for t, r in samples),
    ]) + "\n"
    print(report)
    write_result("soak-", report)
    return 0 if flat and result.errors == 0 else 1


INSTRUCTION_SCENARIOS = ["retrieve", "list", "filtered", "create"]


def scenario_request(scenario: str, n: int, rows: int) -> tuple[str, str, bytes | None]:
    """The n-th request of a scenario, as bench/scenario.lua sends it but in a fixed sequence."""
    if scenario == "retrieve":
        return "GET", f"/station/{n % rows + 1}/", None
    if scenario == "list":
        return "GET", "/station/", None
    if scenario == "filtered":
        return "GET", f"/station/?{FILTERED_QUERY}", None
    body = b'{"name":"bench","timestamp":1700000000,"temperature":21.5,"lat":59.91,"lon":10.75}'
    return "POST", "/station/", body


def count_instructions(command: list[str], env: dict[str, str], auth: str, scenario: str,
                       rows: int, requests: int, warmup: int, workdir: Path) -> float:
    """Instructions the whole server process (every thread) executes per request: the server
    runs under callgrind with instrumentation off, gets `warmup` requests, then `requests` more
    with instrumentation on, one at a time over one kept-alive connection."""
    import http.client

    out = workdir / "callgrind.out"
    out.unlink(missing_ok=True)
    port = free_port()
    process = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
         *command, "--bind", f"127.0.0.1:{port}"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_listening(port, process, seconds=120)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": auth} if auth else {}

        def send(n: int) -> None:
            method, path, body = scenario_request(scenario, n, rows)
            extra = {"Content-Type": "application/json"} if body else {}
            connection.request(method, path, body=body, headers={**headers, **extra})
            response = connection.getresponse()
            response.read()
            if response.status >= 300:
                raise SystemExit(f"{scenario}: {method} {path} answered {response.status}")

        for n in range(warmup):
            send(n)
        subprocess.run(["callgrind_control", "--instr=on", str(process.pid)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for n in range(warmup, warmup + requests):
            send(n)
        subprocess.run(["callgrind_control", "--instr=off", str(process.pid)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        connection.close()
    finally:
        process.terminate()
        process.wait(timeout=120)
    totals = next(line for line in out.read_text().splitlines() if line.startswith("totals:"))
    return int(totals.split()[1]) / requests


def instructions_run(args: argparse.Namespace) -> int:
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is needed for --instructions (Debian: apt-get install valgrind)")
    requests, warmup = args.requests, 100
    rows: list[str] = []
    metrics_cost = ""
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        store = SqliteStore(workdir, args.rows)
        token = base64.b64encode(f"bench:{store.password}".encode()).decode()
        ceiling = [str(ROOT / "target/dist/examples/ceiling"), "--workers", str(args.workers)]
        service = [BINARY, "serve", "--workers", str(args.workers)]
        for scenario in INSTRUCTION_SCENARIOS:
            if args.scenarios is not None and scenario not in args.scenarios:
                continue
            log(f"{scenario}: {requests:,} requests under callgrind, ceiling then service ...")
            ceiling_ir = count_instructions(ceiling, dict(os.environ), "", scenario, args.rows,
                                            requests, warmup, workdir)
            env = {**os.environ, "DATABASE_URL": store.fresh_url(), "RUST_LOG": "info"}
            service_ir = count_instructions(service, env, f"Basic {token}", scenario, args.rows,
                                            requests, warmup, workdir)
            log(f"  ceiling {ceiling_ir:,.0f}  service {service_ir:,.0f} instructions per request")
            rows.append(f"| {SCENARIO_TITLES[scenario]} | {service_ir:,.0f} | {ceiling_ir:,.0f} | "
                        f"{service_ir / ceiling_ir:.2f} |")
            if scenario == "retrieve":
                env = {**env, "DATABASE_URL": store.fresh_url()}
                metered = [*service, "--metrics-bind", f"127.0.0.1:{free_port()}"]
                metered_ir = count_instructions(metered, env, f"Basic {token}", scenario,
                                                args.rows, requests, warmup, workdir)
                log(f"  metrics on: service {metered_ir:,.0f} instructions per request")
                rows.append(f"| {METRICS_RETRIEVE_TITLE} | {metered_ir:,.0f} | {ceiling_ir:,.0f} | "
                            f"{metered_ir / ceiling_ir:.2f} |")
                metrics_cost = (f"Metrics on cost {metered_ir - service_ir:,.0f} instructions per "
                                f"retrieve ({metered_ir / service_ir - 1:+.1%}).")
    report = "\n".join([
        f"# station-api instructions per request, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        f"- command: `{command_line()}` at commit `{git_commit()}`; machine: {machine()}",
        f"- each figure: every instruction the server process executed (all threads, callgrind) "
        f"over {requests:,} sequential requests on one kept-alive connection, after {warmup} "
        f"warm-up requests, divided by {requests:,}; SQLite with {args.rows:,} rows, basic auth, "
        "logging at info; the same counts come out on a busy machine",
        "",
        "| scenario | service | ceiling | service / ceiling |",
        "|---|---:|---:|---:|",
        *rows,
        *(["", metrics_cost] if metrics_cost else []),
    ]) + "\n"
    print(report)
    if not args.no_results_file:
        write_result("instructions-", report)
    return 0


FANOUT = str(ROOT / "target/dist/examples/fanout")
FANOUT_SCENARIOS = ["retrieve", "create"]
FANOUT_CONNECTIONS = 64
STREAM_KEEP_ALIVE_SECONDS = 15


def attach_idle_subscribers(service: Server, clients: int) -> subprocess.Popen:
    """`clients` streams held open on the service by examples/fanout.rs, filtered to a station
    nobody posts to: subscribers that are attached and idle. Returns once all are open."""
    process = subprocess.Popen(
        [FANOUT, "idle", "--url", f"http://127.0.0.1:{service.port}",
         "--auth", service.env["BENCH_AUTH"], "--clients", str(clients)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    line = process.stdout.readline() if process.stdout else ""
    if not line.startswith("connected"):
        process.kill()
        raise SystemExit(f"the idle subscribers did not connect: {line!r}")
    return process


def detach(process: subprocess.Popen) -> None:
    if process.stdin:
        process.stdin.close()
    if process.wait(timeout=60) != 0:
        raise SystemExit("the idle subscribers failed (see above)")


def fanout_run(args: argparse.Namespace) -> int:
    """The event stream's benchmark: delivery to many clients, and the API beside idle ones."""
    clients, rate, seconds = args.stream_clients, args.stream_rate, args.seconds
    lines = [
        f"# station-api event stream, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        f"- command: `{command_line()}` at commit `{git_commit()}`; machine: {machine()}",
        f"- SQLite, default settings (`synchronous=full`), {args.workers} workers; the clients are "
        "examples/fanout.rs (Rust, reqwest) on the same 2 cores as the server",
        "",
    ]
    ok = True
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        store = SqliteStore(workdir, args.rows)

        log(f"== fan-out: {clients} streams, {rate} readings/s for {seconds} s")
        service = start_service(store, args.rows, args.workers, workdir / "server.log",
                                ("--max-stream-clients", str(clients)))
        try:
            output = subprocess.run(
                [FANOUT, "deliver", "--url", f"http://127.0.0.1:{service.port}",
                 "--auth", service.env["BENCH_AUTH"], "--clients", str(clients),
                 "--rate", str(rate), "--seconds", str(seconds),
                 "--server-pid", str(service.process.pid)],
                capture_output=True, text=True, check=False, timeout=600,
            )
        finally:
            service.stop()
        if output.returncode != 0:
            raise SystemExit(f"the fan-out client failed:\n{output.stdout}\n{output.stderr}")
        fan = json.loads(output.stdout.strip().splitlines()[-1])
        log("  " + json.dumps(fan))
        every = (fan["clients_with_every_reading_once_in_order"] == fan["clients"] == clients
                 and fan["readings_acknowledged"] == fan["readings_posted"])
        ok &= every
        lines += [
            f"## Fan-out: {clients:,} stream clients, readings posted at {rate}/s for {seconds} s",
            "",
            "| figure | value | goal |",
            "|---|---:|---|",
            f"| readings acknowledged (201) of posted | {fan['readings_acknowledged']:,} of "
            f"{fan['readings_posted']:,} (in {fan['posting_seconds']:.1f} s) | all |",
            f"| clients that got every reading once, in order | {fan['clients_with_every_reading_once_in_order']:,}"
            f" of {fan['clients']:,} | all |",
            f"| deliveries | {fan['deliveries']:,} of {fan['deliveries_expected']:,} | all |",
            f"| 201 to delivery, p50 | {fan['latency_ms_p50']:.1f} ms | |",
            f"| 201 to delivery, p99 | {fan['latency_ms_p99']:.1f} ms | < 50 ms |",
            f"| 201 to delivery, max | {fan['latency_ms_max']:.1f} ms | |",
            f"| delivered before the poster had its 201 (counted as 0 ms) | "
            f"{fan['deliveries_before_their_201']:,} | |",
            f"| server RSS before / with {clients:,} idle streams / after posting | "
            f"{fan['server_rss_kib_before'] / 1024:.1f} / {fan['server_rss_kib_idle_clients'] / 1024:.1f}"
            f" / {fan['server_rss_kib_after_posting'] / 1024:.1f} MiB | |",
            f"| RSS growth per idle stream client | {fan['rss_kib_per_idle_client']:.1f} KiB | < 16 KiB |",
            "",
        ]

        log(f"== the API at {FANOUT_CONNECTIONS} connections without and with {clients} idle "
            "subscribers")
        lines += [
            f"## The API at {FANOUT_CONNECTIONS} connections, with {clients:,} idle subscribers "
            "attached",
            "",
            "Each scenario on one fresh server: without subscribers, with them (streams filtered "
            "to a station nobody posts to: the feed still looks up, for every change, whom it "
            "concerns), and without again; the ratio is *with* over the mean of the two "
            "*without* cells. Goal: at least 0.90.",
            "",
            "| scenario | without (req/s) | with (req/s) | without again (req/s) | ratio | "
            "p99 without / with (ms) | CPU us/req without / with |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for scenario in FANOUT_SCENARIOS:
            service = start_service(store, args.rows, args.workers, workdir / "server.log",
                                    ("--max-stream-clients", str(clients)))
            try:
                before = measure(service, scenario, FANOUT_CONNECTIONS, seconds)
                idle = attach_idle_subscribers(service, clients)
                try:
                    attached = measure(service, scenario, FANOUT_CONNECTIONS, seconds)
                finally:
                    detach(idle)
                # A stream whose client has gone is noticed at its next write: for these idle
                # ones, the next keep-alive (every 15 s by default).
                time.sleep(STREAM_KEEP_ALIVE_SECONDS + 1)
                after = measure(service, scenario, FANOUT_CONNECTIONS, seconds)
            finally:
                service.stop()
            ratio = attached.rps / ((before.rps + after.rps) / 2)
            ok &= attached.errors == 0
            lines.append(
                f"| {SCENARIO_TITLES[scenario]} | {before.rps:,.0f} | {attached.rps:,.0f} | "
                f"{after.rps:,.0f} | {ratio:.2f} | {before.p99_ms:.2f} / {attached.p99_ms:.2f} | "
                f"{before.cpu_us_per_request:.0f} / {attached.cpu_us_per_request:.0f} |")
    report = "\n".join(lines) + "\n"
    print(report)
    if not args.no_results_file:
        write_result("stream-", report)
    return 0 if ok else 1


def metrics_ab_run(args: argparse.Namespace) -> int:
    """Retrieve on SQLite with metrics off and on, in `--pairs` pairs of cells ordered off, on,
    on, off, off, on, ... so that a drift of the machine's speed over the run falls on both sides
    alike; each pair's on/off ratio of requests/s and of CPU per request, and their medians."""
    import statistics

    connections = METRICS_CONNECTIONS
    ratios: list[tuple[float, float]] = []
    rows_out: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        store = SqliteStore(workdir, args.rows)
        try:
            log(f"{store.title}, {args.rows:,} rows, retrieve at {connections} connections, "
                f"{args.pairs} pairs of {args.seconds} s cells:")

            def cell(metered: bool) -> Measurement:
                options = ("--metrics-bind", f"127.0.0.1:{free_port()}") if metered else ()
                service = start_service(store, args.rows, args.workers, workdir / "server.log",
                                        options)
                if metered:
                    service.name = "metrics on"
                try:
                    time.sleep(0.5)
                    return measure(service, "retrieve", connections, args.seconds)
                finally:
                    service.stop()

            for pair in range(args.pairs):
                order = (False, True) if pair % 2 == 0 else (True, False)
                measured = {metered: cell(metered) for metered in order}
                off, on = measured[False], measured[True]
                rate = on.rps / off.rps if off.rps else 0.0
                cpu = (on.cpu_us_per_request / off.cpu_us_per_request
                       if off.cpu_us_per_request else 0.0)
                ratios.append((rate, cpu))
                rows_out.append(f"| {pair + 1} | {'off, on' if pair % 2 == 0 else 'on, off'} | "
                                f"{off.rps:,.0f} / {on.rps:,.0f} | {rate:.3f} | "
                                f"{off.cpu_us_per_request:.1f} / {on.cpu_us_per_request:.1f} | "
                                f"{cpu:.3f} |")
        finally:
            store.close()
    median_rate = statistics.median(rate for rate, _ in ratios)
    median_cpu = statistics.median(cpu for _, cpu in ratios)
    lines = [
        f"# station-api metrics on / off, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC",
        "",
        f"- command: `{command_line()}`",
        f"- commit: `{git_commit()}`",
        f"- machine: {machine()}",
        f"- SQLite, {args.rows:,} rows, basic auth, retrieve at {connections} connections, "
        f"{args.seconds} s cells, each on a fresh server; metrics on is `--metrics-bind`",
        "",
        "| pair | order | req/s off / on | rate on / off | CPU us/req off / on | CPU on / off |",
        "|---:|---|---:|---:|---:|---:|",
        *rows_out,
        "",
        f"Median of {len(ratios)} pairs: rate on / off {median_rate:.3f}, CPU per request on / off "
        f"{median_cpu:.3f}.",
    ]
    report = "\n".join(lines) + "\n"
    print(report)
    if not args.no_results_file:
        write_result("metrics-", report)
    return 0


def main() -> int:
    global BINARY
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short smoke run (what CI runs)")
    parser.add_argument("--soak", action="store_true", help="the soak test instead of the load table")
    parser.add_argument("--soak-minutes", type=float, default=10)
    parser.add_argument("--instructions", action="store_true",
                        help="instructions per request under callgrind instead of the load table")
    parser.add_argument("--requests", type=int, default=1000,
                        help="requests counted per scenario with --instructions")
    parser.add_argument("--seconds", type=int, default=10, help="seconds per cell")
    parser.add_argument("--rows", type=int, default=10_000, help="rows seeded into SQLite")
    parser.add_argument("--connections", type=int, nargs="+", default=[1, 16, 64, 256])
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS,
                        help="only these scenarios of the load table or of --instructions "
                             "(default: all)")
    parser.add_argument("--no-results-file", action="store_true",
                        help="print the table without writing it to bench/results/")
    parser.add_argument("--no-build", action="store_true", help="use the binaries already built")
    parser.add_argument("--binary", default=BINARY,
                        help="the service binary to measure (with --no-build; default: the dist build)")
    parser.add_argument("--postgres-url", default=os.environ.get("BENCH_POSTGRES_URL"),
                        help="also run on the PostgreSQL server here (a database to connect to)")
    parser.add_argument("--fanout", action="store_true",
                        help="the event stream's benchmark instead of the load table")
    parser.add_argument("--stream-clients", type=int, default=1000,
                        help="stream clients with --fanout")
    parser.add_argument("--stream-rate", type=int, default=200,
                        help="readings posted a second with --fanout")
    parser.add_argument("--metrics-ab", action="store_true",
                        help="retrieve with metrics off and on in alternating cells, and the "
                             "median ratio")
    parser.add_argument("--pairs", type=int, default=6, help="pairs of cells with --metrics-ab")
    args = parser.parse_args()
    BINARY = args.binary
    if not args.no_build:
        build()
    if args.instructions:
        return instructions_run(args)
    if args.fanout:
        return fanout_run(args)
    if args.metrics_ab:
        return metrics_ab_run(args)
    return soak_run(args) if args.soak else load_run(args)


if __name__ == "__main__":
    sys.exit(main())
