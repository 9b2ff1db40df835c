#!/usr/bin/env python3
"""A field device for station-api: reads a sensor every few seconds and posts the reading.

Python 3 standard library only, so it runs as is on a Raspberry Pi. It posts with a write token
(`Authorization: Token <key>`), keeps every reading in a local buffer (files, so a restart of the
device loses nothing) until the service has acknowledged it, uploads what piled up while the
service was unreachable in one bulk request (a JSON array on POST /station/) with an
`Idempotency-Key` derived from the batch, so a retry after a lost answer never duplicates, and then
goes back to single posts.

    STATION_TOKEN=... examples/device/station_device.py --url http://pi-server:8000 --station Kitchen

Replace `read_sensor` with your sensor (see README.md next to this file). Every option can also be
set from the environment (see --help). Readings produced are printed on standard output, one JSON
object a line; what the program does is logged on standard error.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import os
import random
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path
from typing import Callable, Optional

# Answers after which the same request is sent again later: the service was busy or failing.
RETRYABLE = {408, 409, 425, 429, 500, 502, 503, 504}
# The longest pause between upload attempts while the service is away, in seconds.
MAX_BACKOFF = 60.0


def read_sensor(now: float) -> float:
    """The temperature in degrees Celsius. Simulated: a daily curve (coldest at 06:00, warmest at
    18:00) with a little noise. Replace this function with a read of your sensor."""
    hours = (now % 86400) / 3600
    daily = 12.0 + 8.0 * math.sin(2 * math.pi * (hours - 12.0) / 24.0)
    return round(daily + random.gauss(0.0, 0.3), 1)


def log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# The buffer: readings not yet acknowledged, on disk.


def canonical(value) -> bytes:
    """The one JSON spelling of `value`, so the same batch always has the same body and key."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def reading_id(reading: dict) -> tuple:
    return (reading["name"], reading["timestamp"])


def write_atomically(path: Path, data: bytes) -> None:
    """Replaces `path` with `data` so a crash leaves the old file or the new, never half of one."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


class Buffer:
    """Readings waiting to be uploaded, kept in a directory:

    - `queue.jsonl`: readings not yet in a batch, one JSON object a line, appended and synced;
    - `batch.json`: the batch being uploaded, frozen with its Idempotency-Key until the service
      has answered it, so every retry (even after a restart) sends the very same request;
    - `rejected.jsonl`: batches the service refused (a 4xx that retrying cannot fix), set aside
      with its answer for a person to look at.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.queue_path = directory / "queue.jsonl"
        self.batch_path = directory / "batch.json"
        self.rejected_path = directory / "rejected.jsonl"
        self.batch: Optional[dict] = None
        if self.batch_path.exists():
            self.batch = json.loads(self.batch_path.read_text(encoding="utf-8"))
        self.queue = self._load_queue()

    def _load_queue(self) -> list[dict]:
        if not self.queue_path.exists():
            return []
        readings = []
        for line in self.queue_path.read_text(encoding="utf-8").splitlines():
            try:
                readings.append(json.loads(line))
            except ValueError:
                continue  # a line cut short by a power cut: that reading never made it to disk
        # A crash between freezing a batch and rewriting the queue leaves its readings in both.
        in_batch = {reading_id(r) for r in (self.batch or {}).get("readings", [])}
        return [r for r in readings if reading_id(r) not in in_batch]

    def _rewrite_queue(self) -> None:
        write_atomically(self.queue_path, b"".join(canonical(r) + b"\n" for r in self.queue))

    def add(self, reading: dict) -> None:
        """Keeps `reading` on disk before anything is sent, so no crash can lose it."""
        with open(self.queue_path, "ab") as out:
            out.write(canonical(reading) + b"\n")
            out.flush()
            os.fsync(out.fileno())
        self.queue.append(reading)

    def pending(self) -> int:
        return len(self.queue) + len((self.batch or {}).get("readings", []))

    def next_batch(self, most: int) -> Optional[dict]:
        """The batch to send: the frozen one, else the oldest `most` queued readings, frozen now."""
        if self.batch is None and self.queue:
            readings = self.queue[:most]
            self.batch = {"key": idempotency_key(readings), "readings": readings}
            write_atomically(self.batch_path, canonical(self.batch))
            self.queue = self.queue[most:]
            self._rewrite_queue()
        return self.batch

    def done(self) -> None:
        """The service acknowledged the batch."""
        self.batch = None
        self.batch_path.unlink(missing_ok=True)

    def set_aside(self, status: int, answer: str) -> None:
        """The service refused the batch for good: keep it, with why, and move on."""
        assert self.batch is not None
        entry = {"status": status, "answer": answer[:2000], **self.batch}
        with open(self.rejected_path, "ab") as out:
            out.write(canonical(entry) + b"\n")
            out.flush()
            os.fsync(out.fileno())
        self.done()


def idempotency_key(readings: list[dict]) -> str:
    """A key derived from the batch itself: the same readings always give the same key (1 to 255
    visible ASCII characters, as the service asks)."""
    return "device-" + hashlib.sha256(canonical(readings)).hexdigest()


# ---------------------------------------------------------------------------------------------
# Talking to the service.


@dataclass
class Answer:
    """What came back: an HTTP status, or None when no answer arrived at all."""

    status: Optional[int]
    body: str = ""
    retry_after: Optional[float] = None


def http_send(url: str, body: bytes, headers: dict[str, str], timeout: float) -> Answer:
    """POSTs `body` to `url`; any failure to get an answer is an Answer with no status."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Answer(response.status, response.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as error:
        retry_after = error.headers.get("Retry-After") if error.headers else None
        try:
            seconds = float(retry_after) if retry_after is not None else None
        except ValueError:
            seconds = None
        return Answer(error.code, error.read().decode("utf-8", "replace"), seconds)
    except (urllib.error.URLError, HTTPException, OSError) as error:
        return Answer(None, str(error))


@dataclass
class Settings:
    url: str
    authorization: str
    station: str
    lat: float
    lon: float
    interval: float = 10.0
    count: int = 0
    batch_size: int = 500
    timeout: float = 10.0
    drain_seconds: float = 60.0
    simulate_from: Optional[int] = None


@dataclass
class Device:
    """The device's loop, with the clock, the sensor and the network passed in so tests can
    replace them."""

    settings: Settings
    buffer: Buffer
    send: Callable[[str, bytes, dict, float], Answer] = http_send
    sensor: Callable[[float], float] = read_sensor
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    produced: int = 0
    uploaded: int = 0
    set_aside: int = 0
    backoff: float = 0.0
    next_attempt: float = 0.0
    out: Callable[[str], None] = field(default=lambda line: print(line, flush=True))

    def take_reading(self) -> dict:
        now = self.clock()
        if self.settings.simulate_from is not None:
            # Readings as if taken every 10 s from that time, however fast the loop runs.
            timestamp = self.settings.simulate_from + 10 * self.produced
        else:
            timestamp = int(now)
        reading = {"name": self.settings.station, "timestamp": timestamp,
                   "temperature": self.sensor(now), "lat": self.settings.lat,
                   "lon": self.settings.lon}
        self.buffer.add(reading)
        self.produced += 1
        self.out(json.dumps(reading))
        return reading

    def upload(self) -> None:
        """Sends batches until the buffer is empty, the service fails, or it is not yet time to
        try again after a failure."""
        while self.buffer.pending() and self.clock() >= self.next_attempt:
            batch = self.buffer.next_batch(self.settings.batch_size)
            assert batch is not None
            readings = batch["readings"]
            # One reading goes as a single object (what the textbook's device sends); a
            # backlog as an array, created all or none.
            body = canonical(readings[0] if len(readings) == 1 else readings)
            headers = {
                "Content-Type": "application/json",
                "Accept": "application/json",
                "Authorization": self.settings.authorization,
                "Idempotency-Key": batch["key"],
            }
            answer = self.send(self.settings.url.rstrip("/") + "/station/", body, headers,
                               self.settings.timeout)
            if answer.status is not None and 200 <= answer.status < 300:
                self.buffer.done()
                self.uploaded += len(readings)
                self.backoff = 0.0
                if len(readings) > 1:
                    log(f"uploaded a backlog of {len(readings)} readings")
                continue
            if answer.status is None or answer.status in RETRYABLE:
                self.backoff = min(MAX_BACKOFF, max(self.settings.interval, self.backoff * 2))
                wait = answer.retry_after if answer.retry_after is not None else self.backoff
                self.next_attempt = self.clock() + wait
                what = answer.status if answer.status is not None else answer.body
                log(f"service unavailable ({what}); {self.buffer.pending()} readings buffered, "
                    f"next try in {wait:.1f} s")
                return
            log(f"the service refused {len(readings)} readings with {answer.status}: "
                f"{answer.body[:500]}; set aside in {self.buffer.rejected_path}")
            self.set_aside += len(readings)
            self.buffer.set_aside(answer.status, answer.body)

    def run(self) -> int:
        """Takes a reading every interval and uploads; with a count, stops after that many once
        the buffer is empty (or after drain_seconds). Returns the exit status."""
        started = self.clock()
        while self.settings.count == 0 or self.produced < self.settings.count:
            due = started + self.produced * self.settings.interval
            self.sleep(max(0.0, due - self.clock()))
            self.take_reading()
            self.upload()
        deadline = self.clock() + self.settings.drain_seconds
        while self.buffer.pending() and self.clock() < deadline:
            self.sleep(max(0.0, min(self.next_attempt, deadline) - self.clock()))
            self.upload()
        log(f"done: {self.produced} readings taken, {self.uploaded} uploaded, "
            f"{self.buffer.pending()} still buffered, {self.set_aside} set aside")
        if self.set_aside:
            return 2
        return 1 if self.buffer.pending() else 0


def authorization(token: Optional[str], basic: Optional[str]) -> str:
    if token:
        return f"Token {token}"
    if basic:
        return "Basic " + base64.b64encode(basic.encode()).decode()
    raise SystemExit("give a write token: --token or STATION_TOKEN")


def parse_args(argv: list[str]) -> argparse.Namespace:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=env("STATION_URL", "http://127.0.0.1:8000"),
                        help="the service (env STATION_URL)")
    parser.add_argument("--token", default=env("STATION_TOKEN"),
                        help="a write token, sent as `Authorization: Token <key>` (env STATION_TOKEN)")
    parser.add_argument("--basic", default=env("STATION_BASIC"),
                        help="USER:PASSWORD for HTTP basic auth instead of a token, for a service "
                             "without device tokens; never give a device a staff password in the "
                             "field (env STATION_BASIC)")
    parser.add_argument("--station", default=env("STATION_NAME", "Pi"),
                        help="the station's name (env STATION_NAME)")
    parser.add_argument("--lat", type=float, default=float(env("STATION_LAT", "30.733315")))
    parser.add_argument("--lon", type=float, default=float(env("STATION_LON", "76.779418")))
    parser.add_argument("--interval", type=float, default=float(env("STATION_INTERVAL", "10")),
                        help="seconds between readings (env STATION_INTERVAL; default 10)")
    parser.add_argument("--count", type=int, default=int(env("STATION_COUNT", "0")),
                        help="stop after this many readings, once they are uploaded (0: never)")
    parser.add_argument("--buffer", default=env("STATION_BUFFER", "station-buffer"),
                        help="directory of the local buffer (env STATION_BUFFER)")
    parser.add_argument("--batch-size", type=int, default=int(env("STATION_BATCH_SIZE", "500")),
                        help="most readings in one bulk upload (the service takes up to 10,000)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for an answer")
    parser.add_argument("--drain-seconds", type=float, default=60.0,
                        help="with --count: how long to keep trying to upload the rest at the end")
    parser.add_argument("--simulate-from", type=int, default=None,
                        help="timestamp readings from this Unix time, 10 s apart, whatever "
                             "--interval is (for tests and demos)")
    args = parser.parse_args(argv)
    if args.batch_size < 1:
        parser.error("--batch-size must be at least 1")
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    settings = Settings(
        url=args.url, authorization=authorization(args.token, args.basic), station=args.station,
        lat=args.lat, lon=args.lon, interval=args.interval, count=args.count,
        batch_size=args.batch_size, timeout=args.timeout, drain_seconds=args.drain_seconds,
        simulate_from=args.simulate_from,
    )
    buffer = Buffer(Path(args.buffer))
    if buffer.pending():
        log(f"{buffer.pending()} readings from before the restart are still to upload")
    try:
        return Device(settings, buffer).run()
    except KeyboardInterrupt:
        log(f"stopped; {buffer.pending()} readings stay buffered for the next start")
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
