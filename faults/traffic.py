"""The traffic of the fault tests: devices that post readings and retry them with an
`Idempotency-Key` until they are acknowledged, subscribers on the live stream that resume with
`Last-Event-ID`, and a wrk load of mixed reads and writes."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

# A request that takes longer than this hangs: the service answers within its pool checkout
# timeout (5 s) and HAProxy within its connect and queue timeouts.
HANG_SECONDS = 15.0
# A device's reading n is stamped FIRST_TIMESTAMP + n.
FIRST_TIMESTAMP = 1_750_000_000


@dataclass
class Outcome:
    """One attempt of a device's POST: when it ended (monotonic seconds), and its status, or
    `conn` when the connection failed or no answer came."""

    at: float
    status: int | str
    seconds: float


@dataclass
class Device:
    """A device posting readings named `name` one after another; reading n is stamped n seconds
    after a fixed moment."""

    name: str
    acknowledged: dict[int, int] = field(default_factory=dict)  # reading n -> its id
    # reading id -> when its 201 arrived (monotonic seconds)
    acknowledged_at: dict[int, float] = field(default_factory=dict)
    replayed: int = 0
    # reading n -> seconds from its first attempt to its acknowledgement
    waited: dict[int, float] = field(default_factory=dict)
    outcomes: list[Outcome] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # answers no retry can fix


class Devices:
    """`count` devices, each a thread with its own keep-alive connection to `base`."""

    def __init__(self, base: str, token: str, prefix: str, count: int = 4) -> None:
        self.base = urlsplit(base)
        self.token = token
        self.devices = [Device(f"{prefix}-{i + 1}") for i in range(count)]
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(device,), daemon=True)
                        for device in self.devices]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self, seconds: float = 120) -> None:
        """Stops taking new readings and waits for the last ones to be acknowledged."""
        self.stopping.set()
        for thread in self.threads:
            thread.join(seconds)

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.base.hostname, self.base.port,
                                          timeout=HANG_SECONDS)

    def run(self, device: Device) -> None:
        connection = self.connect()
        n = 0
        while not self.stopping.is_set():
            n += 1
            reading = {"name": device.name, "timestamp": FIRST_TIMESTAMP + n,
                       "temperature": (n % 400) / 10, "lat": 52.37, "lon": 4.89}
            body = json.dumps(reading).encode()
            key = f"{device.name}-{n}"
            first_attempt = time.monotonic()
            deadline = first_attempt + 300
            while time.monotonic() < deadline:
                started = time.monotonic()
                try:
                    connection.request("POST", "/station/", body, {
                        "Authorization": f"Token {self.token}",
                        "Content-Type": "application/json",
                        "Idempotency-Key": key,
                    })
                    answer = connection.getresponse()
                    text = answer.read()
                    status: int | str = answer.status
                    retry_after = answer.getheader("Retry-After")
                    if answer.getheader("Connection", "").lower() == "close":
                        connection.close()
                        connection = self.connect()
                except (OSError, http.client.HTTPException):
                    status, text, retry_after = "conn", b"", None
                    connection.close()
                    connection = self.connect()
                ended = time.monotonic()
                device.outcomes.append(Outcome(ended, status, ended - started))
                if status == 201:
                    device.acknowledged[n] = json.loads(text)["id"]
                    device.acknowledged_at[device.acknowledged[n]] = ended
                    device.waited[n] = ended - first_attempt
                    device.replayed += answer.getheader("Idempotent-Replayed") == "true"
                    break
                if status in ("conn", 409, 502, 503, 504):
                    # Honour Retry-After, up to a second: what a device on a flaky link does.
                    time.sleep(min(float(retry_after or 0.2), 1.0))
                    continue
                device.refused.append(f"reading {n}: {status} {text[:200]!r}")
                break
            else:
                device.refused.append(f"reading {n}: not acknowledged within 300 s")


class Subscriber:
    """A client of `/station/stream/` through `base` that resumes with `Last-Event-ID` whenever
    its connection ends, recording every `created` event."""

    def __init__(self, base: str, token: str) -> None:
        self.base = urlsplit(base)
        self.token = token
        self.created: dict[int, int] = {}  # reading id -> change id
        self.arrived: dict[int, float] = {}  # reading id -> when its event came (monotonic)
        self.last_event_id: str | None = None
        self.out_of_order: list[str] = []
        self.duplicates = 0
        self.reconnects = 0
        self.refusals: dict[int, int] = {}
        self.connected = threading.Event()
        self.stopping = threading.Event()
        self.connection: http.client.HTTPConnection | None = None
        self.thread = threading.Thread(target=self.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        if not self.connected.wait(30):
            raise RuntimeError("the stream did not open within 30 s")

    def stop(self) -> None:
        self.stopping.set()
        if self.connection is not None and self.connection.sock is not None:
            try:
                self.connection.sock.shutdown(2)
            except OSError:
                pass
        self.thread.join(10)

    def run(self) -> None:
        while not self.stopping.is_set():
            headers = {"Authorization": f"Token {self.token}", "Accept": "text/event-stream"}
            if self.last_event_id is not None:
                headers["Last-Event-ID"] = self.last_event_id
            # Longer than the 15 s between keep-alive comments: a silent stream is a lost one.
            self.connection = http.client.HTTPConnection(self.base.hostname, self.base.port,
                                                         timeout=40)
            try:
                self.connection.request("GET", "/station/stream/", headers=headers)
                answer = self.connection.getresponse()
                if answer.status != 200:
                    self.refusals[answer.status] = self.refusals.get(answer.status, 0) + 1
                    answer.read()
                    time.sleep(min(float(answer.getheader("Retry-After") or 0.5), 1.0))
                    continue
                self.connected.set()
                self.read_events(answer)
            except (OSError, http.client.HTTPException):
                pass
            finally:
                self.connection.close()
            if not self.stopping.is_set():
                self.reconnects += 1
                time.sleep(0.1)

    def read_events(self, answer: http.client.HTTPResponse) -> None:
        event_id, event, data = None, None, []
        while True:
            line = answer.readline()
            if not line:
                return
            line = line.decode().rstrip("\n")
            if line.startswith("id:"):
                event_id = line[3:].strip()
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line == "":
                if event_id is not None:
                    self.record(event_id, event, "\n".join(data))
                event_id, event, data = None, None, []

    def record(self, event_id: str, event: str | None, data: str) -> None:
        if self.last_event_id is not None and int(event_id) <= int(self.last_event_id):
            self.out_of_order.append(f"{event_id} after {self.last_event_id}")
        self.last_event_id = event_id
        if event == "created":
            reading = json.loads(data)["id"]
            if reading in self.created:
                self.duplicates += 1
            self.created[reading] = int(event_id)
            self.arrived.setdefault(reading, time.monotonic())


@dataclass
class Load:
    """What wrk measured: requests, rate, latency and answers by status."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int]
    socket_errors: dict[str, int]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def start_wrk(base: str, auth: str, ids: list[int], seconds: int,
              connections: int = 8) -> subprocess.Popen:
    """wrk with faults/mixed.lua against `base` for `seconds`, bounded to `connections`."""
    script = Path(__file__).resolve().parent / "mixed.lua"
    env = {**os.environ, "AUTH": auth, "IDS": ",".join(str(i) for i in ids)}
    return subprocess.Popen(
        ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds}s", "--timeout",
         f"{int(HANG_SECONDS)}s", "-s", str(script), base],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def finish_wrk(process: subprocess.Popen) -> Load:
    out, _ = process.communicate(timeout=600)
    for line in out.splitlines():
        if line.startswith("WRK_RESULT "):
            return Load(**json.loads(line[len("WRK_RESULT "):]))
    raise RuntimeError(f"wrk printed no result:\n{out}")
