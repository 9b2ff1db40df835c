#!/usr/bin/env python3
"""A million readings out and in, on SQLite, with the optimized binary (the debug build would
take minutes): `import` a generated CSV file, `export` it as CSV and NDJSON, import each export
into an empty database and export again, byte for byte the same; then download the same million
through `GET /station/export/` from a running server, byte for byte the export, while the
server's resident memory is sampled: it must stay flat (grow far less than the body's size).

Usage: .ci/transfer_million.py target/dist/station-api [--rows N]
Prints what it checked and how long each part took (information, not judged).
"""

import argparse
import base64
import csv
import filecmp
import http.client
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

# A download that held its body would grow by about its size (tens of MB); a streamed one by
# little more than a chunk and the database's page cache.
MAX_RSS_GROWTH_KIB = 24 * 1024


def log(message: str) -> None:
    print(f"transfer: {message}", flush=True)


def run(binary: str, database: Path, *args: str, stdout=None, stdin: str | None = None) -> str:
    started = time.monotonic()
    result = subprocess.run(
        [binary, *args, "--database-url", f"sqlite://{database}"],
        stdout=stdout if stdout is not None else subprocess.PIPE,
        stderr=subprocess.PIPE, input=stdin.encode() if stdin else None, check=False,
        env={**os.environ, "RUST_LOG": "warn"},
    )
    if result.returncode != 0:
        sys.exit(f"{' '.join(args)} failed: {result.stderr.decode()}")
    took = time.monotonic() - started
    log(f"{args[0]} {' '.join(a for a in args[1:] if not a.startswith('/'))}: {took:.1f} s")
    return result.stdout.decode() if stdout is None else ""


def export_to(binary: str, database: Path, path: Path, fmt: str) -> None:
    with path.open("wb") as out:
        run(binary, database, "export", "--format", fmt, stdout=out)


def generate(path: Path, rows: int) -> None:
    rng = random.Random(7)
    with path.open("w") as out:
        out.write("name,timestamp,temperature,lat,lon\n")
        for n in range(rows):
            name = f"Station {n % 1000}" if n % 97 else f"\"Quoted, {n % 13}\""
            out.write(f"{name},{1393926310 + n * 10},{rng.uniform(-40, 50):.2f},"
                      f"{rng.uniform(-90, 90)},{rng.uniform(-180, 180):.6f}\n")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def download_while_sampling(binary: str, database: Path, expected: Path) -> None:
    run(binary, database, "createsuperuser", "--username", "ops", stdin="ops-password\n")
    port = free_port()
    server = subprocess.Popen(
        [binary, "serve", "--bind", f"127.0.0.1:{port}", "--database-url", f"sqlite://{database}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "RUST_LOG": "warn"})
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    sys.exit("the server did not start")
                time.sleep(0.1)
        auth = base64.b64encode(b"ops:ops-password").decode()
        # Warm up the connection pool and the query threads first, so that what is measured is
        # the download and not the service's first request.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.request("GET", "/station/export/?name=nobody", headers={"Authorization": f"Basic {auth}"})
        connection.getresponse().read()
        before = rss_kib(server.pid)
        peak = before
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.is_set():
                peak = max(peak, rss_kib(server.pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample)
        sampler.start()
        started = time.monotonic()
        connection.request("GET", "/station/export/", headers={"Authorization": f"Basic {auth}"})
        response = connection.getresponse()
        if response.status != 200:
            sys.exit(f"GET /station/export/ answered {response.status}")
        downloaded = Path(str(expected) + ".downloaded")
        size = 0
        with downloaded.open("wb") as out:
            while piece := response.read(1 << 16):
                size += len(piece)
                out.write(piece)
        took = time.monotonic() - started
        stop.set()
        sampler.join()
        growth = peak - before
        log(f"GET /station/export/: {size / 1e6:.1f} MB in {took:.1f} s; server RSS {before / 1024:.1f} MiB "
            f"before, {peak / 1024:.1f} MiB at most during it (+{growth / 1024:.1f} MiB)")
        if not filecmp.cmp(downloaded, expected, shallow=False):
            sys.exit("the download differs from the command line's export")
        if growth > MAX_RSS_GROWTH_KIB:
            sys.exit(f"the server's memory grew by {growth} KiB during the download, "
                     f"over {MAX_RSS_GROWTH_KIB} KiB: the export is not streamed")
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    binary = str(Path(args.binary).resolve())
    with tempfile.TemporaryDirectory() as temp:
        work = Path(temp)
        source = work / "generated.csv"
        generate(source, args.rows)
        one, two, three = work / "one.db", work / "two.db", work / "three.db"
        summary = run(binary, one, "import", str(source))
        if f"Imported {args.rows:,} readings" not in summary:
            sys.exit(f"import said: {summary}")
        exported = {fmt: work / f"one.{fmt}" for fmt in ("csv", "ndjson")}
        for fmt, path in exported.items():
            export_to(binary, one, path, fmt)
        with source.open(newline="") as given, exported["csv"].open(newline="") as written:
            rows = zip(csv.DictReader(given), csv.DictReader(written), strict=True)
            for n, (expected, got) in enumerate(rows, start=1):
                same = (int(got["id"]) == n and got["name"] == expected["name"]
                        and got["timestamp"] == expected["timestamp"]
                        and all(float(got[k]) == float(expected[k]) for k in ("temperature", "lat", "lon")))
                if not same:
                    sys.exit(f"reading {n} was imported as {got}, not {expected}")
        log(f"the CSV export holds the generated file's {args.rows:,} readings, ids 1 to {args.rows:,}")
        for fmt, database in (("csv", two), ("ndjson", three)):
            run(binary, database, "import", str(exported[fmt]))
            again = work / f"again.{fmt}"
            export_to(binary, database, again, fmt)
            if not filecmp.cmp(again, exported[fmt], shallow=False):
                sys.exit(f"{fmt}: export, import, export is not byte for byte the same")
            log(f"{fmt}: {args.rows:,} readings exported, imported and exported again, byte for byte the same")
        across = work / "across.csv"
        export_to(binary, three, across, "csv")
        if not filecmp.cmp(across, exported["csv"], shallow=False):
            sys.exit("NDJSON imported, then exported as CSV, differs from the CSV export")
        download_while_sampling(binary, one, exported["csv"])
    log("passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
