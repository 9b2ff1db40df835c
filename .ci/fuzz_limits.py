#!/usr/bin/env python3
"""Focused limits fuzz: what one request may ask of the service, on a live server.

Sends a deterministic (seeded) but broad set of edge cases as an admin (basic auth): very long and
very many query values on every list parameter, bad encodings and huge numbers, bodies at and
past the limits, long and many header values, and the heaviest of them eight at once. Fails on
any 5xx, any request without an answer (reset, closed, or no answer within --hang-seconds), any
error body that is not JSON, and a server that dies or stops answering /healthz (checked after
every case and every concurrent batch, and at the end).

A head the HTTP/1 codec refuses before the application sees it (past its size limits, or not
HTTP) is answered by actix-http itself with an empty 400 or 431, which no application code can
make JSON; an empty 400/414/431 is accepted only for such requests: heads longer than the probed
limit, and the cases built to be malformed.

With --binary, a server that died is started again (same database, port and environment) so that
one run finds every case that kills it; the run still fails. Standard library only.

Usage: fuzz_limits.py --url http://127.0.0.1:PORT --auth USER:PASSWORD --pid PID
                      [--binary PATH --log PATH] [--seed N]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import os
import random
import socket
import subprocess
import sys
import threading
import zlib
import time
import urllib.parse
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

LIST = "/station/"
PARAMS = [
    "name", "name__icontains", "search", "ordering", "page", "page_size", "cursor",
    "timestamp__gte", "timestamp__gt", "timestamp__lte", "timestamp__lt",
    "temperature__gte", "temperature__lte", "lat__gte", "lat__lte", "lon__gte", "lon__lte",
    "format",
]
NUMERIC = {p for p in PARAMS if "__g" in p or "__l" in p} | {"page", "page_size"}
BODY_LIMIT = 256 * 1024  # the server's default --max-body-bytes
# Letters of the station names seeded below, so search terms match and queries do real work.
LETTERS = "aeinorstuklm"
UNICODE = "aeéüßøçñЖжМосваΑθήνα東京都北😀🌡\u00a0\u200b\u0301"
TEXT = LETTERS + "XYZ0123456789 ,.-_~!*'()" + UNICODE
CITIES = ["CityName", "Zürich", "São Paulo", "Köln", "東京", "Москва", "Αθήνα", "Reykjavík",
          "Kraków", "Chandigarh", "Oslo", "Nuuk", "Tromsø", "Ushuaia", "La Paz", "Montréal"]
HUGE_NUMBERS = [
    "1e309", "-1e309", "1e-400", "NaN", "-inf", "Infinity", "9" * 400, "-" + "9" * 400,
    "9223372036854775807", "9223372036854775808", "-9223372036854775809",
    "18446744073709551616", "99999999999999999999", "0x7fffffff", "1_0", "+1", " 1 ",
    "1" + "0" * 400 + ".5", "0." + "0" * 400 + "1", ".", "-", "1e", "1e99999999999",
]
BAD_ENCODINGS = [
    "%00", "a%00b", "%00" * 300, "%", "%%", "%zz", "%e", "a%G1b", "%%" * 1000,
    "%ff", "%c3%28", "%ed%a0%80", "%f8%88%80%80%80", "%c0%af", "%fe%ff" * 1000,
    "%E2%80%AE", "%EF%BB%BF", "%0d%0a", "%0d%0aX-Injected:%201",
]


def quote(text: str) -> str:
    return urllib.parse.quote_plus(text, safe="")


def clip(data: bytes | str, limit: int = 160) -> str:
    text = data.decode("utf-8", "backslashreplace") if isinstance(data, bytes) else data
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


@dataclass
class Case:
    group: str
    label: str
    method: str = "GET"
    target: bytes = LIST.encode()
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes | None = None
    content_type: str | None = None
    chunked: bool = False
    auth: bool = True
    malformed: bool = False  # built so that the HTTP/1 codec refuses it
    heavy: bool = False  # one of the heaviest: also sent concurrently

    def describe(self) -> str:
        text = f"{self.method} {clip(self.target, 200)}"
        for name, value in self.headers:
            text += f" | {clip(name, 40)}: {clip(value, 80)}"
        if self.body is not None:
            kind = "chunked " if self.chunked else ""
            text += f" | {kind}body {len(self.body):,} bytes ({self.content_type}): {clip(self.body, 80)}"
        return text


def decode_content(coding: str, body: bytes) -> bytes:
    """`body` without its Content-Encoding (gzip or deflate; ValueError for any other)."""
    if coding in ("gzip", "x-gzip"):
        return zlib.decompress(body, 16 + zlib.MAX_WBITS)
    if coding == "deflate":
        return zlib.decompress(body)
    raise ValueError(f"the harness cannot decode {coding!r}")


@dataclass
class Answer:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None
    seconds: float = 0.0


def render(case: Case, host: bytes, authorization: bytes) -> bytes:
    lines = [case.method.encode() + b" " + case.target + b" HTTP/1.1"]
    names = {name.lower() for name, _ in case.headers}
    if b"host" not in names:
        lines.append(b"Host: " + host)
    if case.auth:
        lines.append(b"Authorization: " + authorization)
    lines += [name + b": " + value for name, value in case.headers]
    body = b""
    if case.body is not None:
        if case.content_type is not None:
            lines.append(b"Content-Type: " + case.content_type.encode())
        if case.chunked:
            lines.append(b"Transfer-Encoding: chunked")
            step = 16 * 1024
            for at in range(0, len(case.body), step):
                piece = case.body[at:at + step]
                body += b"%x\r\n%s\r\n" % (len(piece), piece)
            body += b"0\r\n\r\n"
        else:
            lines.append(b"Content-Length: %d" % len(case.body))
            body = case.body
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def head_length(raw: bytes) -> int:
    end = raw.find(b"\r\n\r\n")
    return len(raw) if end < 0 else end + 4


def parse_head(buf: bytes) -> tuple[int, dict[str, str], int] | None:
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = buf[:end].decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, end + 4


def dechunk(data: bytes) -> bytes | None:
    """The body of a complete chunked encoding, or None while it is incomplete."""
    out, at = bytearray(), 0
    while True:
        line_end = data.find(b"\r\n", at)
        if line_end < 0:
            return None
        size = int(data[at:line_end].split(b";")[0], 16)
        if size == 0:
            return bytes(out) if data.find(b"\r\n\r\n", line_end) >= 0 else None  # trailers end
        start = line_end + 2
        if len(data) < start + size + 2:
            return None
        out += data[start:start + size]
        at = start + size + 2


def body_of(buf: bytes, head_only: bool, at_eof: bool) -> tuple[int, dict[str, str], bytes] | None:
    """The parsed response once it is complete, else None."""
    parsed = parse_head(buf)
    if parsed is None:
        return None
    status, headers, start = parsed
    rest = buf[start:]
    if head_only or status in (204, 304) or 100 <= status < 200:
        return status, headers, b""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = dechunk(rest)
        return None if body is None else (status, headers, body)
    if "content-length" in headers:
        length = int(headers["content-length"])
        return (status, headers, rest[:length]) if len(rest) >= length else None
    return (status, headers, rest) if at_eof else None


def exchange(host: str, port: int, raw: bytes, head_only: bool, timeout: float) -> Answer:
    """Sends `raw` on a new connection and reads the answer, sending and reading at once so that
    an answer given before the whole request was read (413, 431) is still seen."""
    started = time.monotonic()
    answer = Answer()
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as error:
        answer.error = f"cannot connect: {error}"
        return answer

    def send() -> None:
        try:
            sock.sendall(raw)
        except OSError:
            pass  # the server may answer and close before reading everything; the answer decides

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    buf = bytearray()
    done = None
    try:
        while done is None:
            remaining = started + timeout - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            sock.settimeout(remaining)
            chunk = sock.recv(1 << 18)
            buf += chunk
            try:
                done = body_of(bytes(buf), head_only, at_eof=not chunk)
            except (ValueError, IndexError):
                answer.error = f"an answer that is not HTTP: {clip(bytes(buf), 120)!r}"
                break
            if not chunk and done is None:
                answer.error = ("connection closed without an answer" if not buf
                                else f"connection closed mid-answer after {len(buf)} bytes")
                break
    except TimeoutError:
        answer.error = f"no answer within {timeout:.0f} s"
    except OSError as error:
        try:
            done = body_of(bytes(buf), head_only, at_eof=True)
        except (ValueError, IndexError):
            done = None
        if done is None:
            answer.error = f"connection error: {error.__class__.__name__}: {error}"
    finally:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
        sender.join(5)
    if done is not None:
        answer.status, answer.headers, answer.body = done
        answer.error = None
    answer.seconds = time.monotonic() - started
    return answer


class Server:
    """The server under test: is it alive, and start it again when it died (with --binary)."""

    def __init__(self, url: str, pid: int, binary: str | None, log: str | None):
        parsed = urllib.parse.urlsplit(url)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.pid, self.binary, self.log = pid, binary, log
        self.own: subprocess.Popen | None = None
        self.log_offset = os.path.getsize(log) if log and os.path.exists(log) else 0

    def process_gone(self) -> bool:
        try:
            with open(f"/proc/{self.pid}/stat") as stat:
                state = stat.read().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return True
        return state in ("Z", "X")  # a zombie until the script that started it reaps it

    def get(self, path: str, timeout: float) -> Answer:
        raw = f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nConnection: close\r\n\r\n"
        return exchange(self.host, self.port, raw.encode(), False, timeout)

    def problem(self) -> str | None:
        """Why the server is not alive and well, or None. A process that stops answering is
        given a few seconds to finish dying (an abort can take a moment)."""
        if self.process_gone():
            return f"the server process ({self.pid}) is gone"
        health = self.get("/healthz", 10)
        if health.status == 200:
            return None
        failed = f"/healthz: {health.error or health.status}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process_gone():
                return f"the server process ({self.pid}) is gone ({failed})"
            time.sleep(0.2)
        if self.get("/healthz", 10).status == 200:
            return f"{failed}, then it answered again"
        return f"{failed}, and the process ({self.pid}) still runs"

    def new_log_lines(self) -> list[str]:
        """What the server logged since the last call that tells why it died: the fatal lines
        first, then the last errors."""
        if not self.log or not os.path.exists(self.log):
            return []
        with open(self.log, "rb") as log:
            log.seek(self.log_offset)
            data = log.read()
        self.log_offset += len(data)
        lines = data.decode("utf-8", "replace").splitlines()
        fatal = [line for line in lines if any(
            word in line for word in ("overflow", "fatal", "panicked", "abort", "SIG"))]
        errors = [line for line in lines if "ERROR" in line and line not in fatal]
        return fatal[-3:] + errors[-2:]

    def restart(self) -> bool:
        if not self.binary or not self.process_gone():
            return False
        if self.own is not None:
            self.own.wait()  # the one this script started before, now dead: reap it
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
        command = [self.binary, "serve", "--bind", f"{self.host}:{self.port}"]
        if self.log:
            with open(self.log, "ab") as out:
                self.own = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        else:
            self.own = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, env=env)
        self.pid = self.own.pid
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.own.poll() is not None:
                return False
            if self.get("/readyz", 2).status == 200:
                return True
            time.sleep(0.1)
        return False

    def stop_own(self) -> None:
        if self.own is not None and self.own.poll() is None:
            self.own.terminate()
            try:
                self.own.wait(30)
            except subprocess.TimeoutExpired:
                self.own.kill()
                self.own.wait()


class Fuzz:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.rng = random.Random(args.seed)
        self.user = args.auth.partition(":")[0]
        self.authorization = b"Basic " + base64.b64encode(args.auth.encode())
        self.server = Server(args.url, args.pid, args.binary, args.log)
        self.host_header = f"{self.server.host}:{self.server.port}".encode()
        self.statuses: dict[str, Counter] = {}
        self.times: dict[str, float] = {}
        self.failures: list[tuple[str, str, str]] = []  # (case, request, problem)
        self.slowest: list[tuple[float, str]] = []
        self.deaths: list[str] = []
        self.max_ok_head = 0  # the longest head the codec was seen to accept
        self.stopped: str | None = None
        self.sent = 0
        self.bookkeeping = threading.Lock()  # send() runs on several threads at once
        self.detail_id: int | None = None
        self.cursor: str | None = None

    # ---- sending and judging ----

    def send(self, case: Case) -> Answer:
        raw = render(case, self.host_header, self.authorization)
        answer = exchange(self.server.host, self.server.port, raw, case.method == "HEAD",
                          self.args.hang_seconds)
        status = str(answer.status) if answer.status is not None else "no answer"
        problem = self.judge(case, raw, answer)
        with self.bookkeeping:
            self.sent += 1
            self.statuses.setdefault(case.group, Counter())[status] += 1
            self.slowest.append((answer.seconds, f"{case.group}: {case.label}"))
            if problem:
                self.fail(case, problem)
        if self.args.verbose:
            print(f"   {status:>9} {answer.seconds:6.2f} s  {case.group}: {case.label}"
                  f"{'  <- ' + clip(problem, 100) if problem else ''}", flush=True)
        return answer

    def judge(self, case: Case, raw: bytes, answer: Answer) -> str | None:
        if answer.error:
            return answer.error
        assert answer.status is not None
        body = answer.body
        if answer.status >= 500:
            return f"{answer.status}: {clip(body, 200)}"
        if case.method == "HEAD" or (answer.status < 400 and not body):
            return None
        codec_may_refuse = case.malformed or head_length(raw) > self.max_ok_head
        if not body and answer.status in (400, 414, 431) and codec_may_refuse:
            return None  # refused by actix-http before the application ran
        json_expected = answer.status >= 400 or answer.headers.get(
            "content-type", "").startswith("application/json")
        coding = answer.headers.get("content-encoding", "identity").lower()
        if json_expected and coding != "identity":
            # The server compresses what a case's Accept-Encoding asks for; the standard library
            # reads gzip and deflate, so cases ask for those.
            try:
                body = decode_content(coding, body)
            except (ValueError, zlib.error) as error:
                return f"{answer.status} with a {coding} body that does not decode: {error}"
        if json_expected:
            try:
                json.loads(body)
            except ValueError:
                return (f"{answer.status} with a body that is not JSON "
                        f"({answer.headers.get('content-type')}): {clip(body, 120)!r}")
        return None

    def fail(self, case: Case, problem: str) -> None:
        self.failures.append((f"{case.group}: {case.label}", case.describe(), problem))

    def check_alive(self, after: list[Case]) -> bool:
        """After a case or a batch: fails the run if the server died or stopped answering, and
        starts it again when it can. False when the run cannot go on."""
        problem = self.server.problem()
        if problem is None:
            return True
        log = self.server.new_log_lines()
        detail = problem + (" — server log: " + " / ".join(log) if log else "")
        cases = ", ".join(f"{c.group}: {c.label}" for c in after[:8])
        self.deaths.append(f"after [{cases}]: {detail}")
        if len(after) == 1 and self.failures and self.failures[-1][0] == cases:
            case, request, own = self.failures.pop()
            self.failures.append((case, request, f"{own}; then {detail}"))
        else:
            what = "this batch, sent at once" if len(after) > 1 else "this case"
            request = " || ".join(c.describe() for c in after[:8])
            self.failures.append((cases, request, f"after {what}: {detail}"))
        if not self.server.process_gone():
            if self.server.get("/healthz", 10).status == 200:
                return True  # it stumbled (counted above) but lives on
            self.stopped = f"stopped: {problem}"
            return False
        if len(self.deaths) > self.args.max_restarts:
            self.stopped = f"stopped after {len(self.deaths)} server deaths"
            return False
        if self.server.restart():
            print(f"   ! after [{clip(cases, 120)}]: {detail}\n"
                  f"   ! started the server again (pid {self.server.pid})", flush=True)
            return True
        self.stopped = f"stopped: {problem}, and the server could not be started again"
        return False

    def run_group(self, group: str, cases: list[Case]) -> None:
        if self.stopped:
            return
        started = time.monotonic()
        self.statuses.setdefault(group, Counter())
        for case in cases:
            self.send(case)
            if not self.check_alive([case]):
                break
        self.times[group] = time.monotonic() - started
        print(f"== {group}: {len(cases)} cases, {self.times[group]:.1f} s", flush=True)

    def run_concurrently(self, group: str, cases: list[Case], width: int) -> None:
        if self.stopped:
            return
        started = time.monotonic()
        self.statuses.setdefault(group, Counter())
        with ThreadPoolExecutor(width) as pool:
            for at in range(0, len(cases), width):
                batch = cases[at:at + width]
                list(pool.map(self.send, batch))
                if not self.check_alive(batch):
                    break
        self.times[group] = time.monotonic() - started
        print(f"== {group}: {len(cases)} cases, {width} at once, {self.times[group]:.1f} s",
              flush=True)

    # ---- setting up ----

    def client(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.server.host, self.server.port, timeout=30)

    def seed_readings(self, count: int) -> None:
        started = time.monotonic()
        connection = self.client()
        headers = {"Authorization": self.authorization.decode(),
                   "Content-Type": "application/json"}
        for n in range(count):
            reading = {
                "name": f"{self.rng.choice(CITIES)} {self.rng.choice(LETTERS)}{n % 37}",
                "timestamp": 1_393_926_310 + n * 600 + self.rng.randrange(600),
                "temperature": round(self.rng.uniform(-40, 50), 2),
                "lat": round(self.rng.uniform(-90, 90), 6),
                "lon": round(self.rng.uniform(-180, 180), 6),
            }
            connection.request("POST", LIST, json.dumps(reading).encode(), headers)
            response = connection.getresponse()
            body = response.read()
            if response.status != 201:
                raise SystemExit(f"seeding: POST {LIST} answered {response.status}: {clip(body)}")
            if self.detail_id is None:
                self.detail_id = json.loads(body)["id"]
        connection.request("GET", f"{LIST}?cursor=&page_size=5", headers=headers)
        response = connection.getresponse()
        page = json.loads(response.read())
        next_query = urllib.parse.urlsplit(page["next"]).query
        self.cursor = urllib.parse.parse_qs(next_query)["cursor"][0]
        connection.close()
        print(f"== seeded {count} readings in {time.monotonic() - started:.1f} s", flush=True)

    def probe_head_limit(self) -> None:
        """Finds the longest request head the HTTP/1 codec accepts, with GET /healthz?x=…."""

        def accepted(size: int) -> bool:
            case = Case("head limit probe", f"GET /healthz?x= {size:,} bytes",
                        target=b"/healthz?x=" + b"a" * size, auth=False)
            answer = self.send(case)  # judged like any case: a refusal must be a 4xx
            if not self.check_alive([case]):
                raise SystemExit("the server died while probing the head limit")
            if answer.status == 200:
                raw = render(case, self.host_header, self.authorization)
                self.max_ok_head = max(self.max_ok_head, head_length(raw))
            return answer.status == 200

        started = time.monotonic()
        low, high = 0, 1024
        while high <= 4 << 20 and accepted(high):
            low, high = high, high * 2
        if high > 4 << 20:
            print("== no head limit found up to 4 MiB", flush=True)
            self.max_ok_head = 1 << 62
            return
        while high - low > 64:
            middle = (low + high) // 2
            if accepted(middle):
                low = middle
            else:
                high = middle
        self.times["head limit probe"] = time.monotonic() - started
        print(f"== the codec accepts request heads up to about {self.max_ok_head:,} bytes "
              f"(a {len(b'/healthz?x=') + low:,}-byte target)", flush=True)

    def under_limit(self, size: int) -> int:
        """`size`, or less so that a list request with that much query stays under the limit."""
        return min(size, self.max_ok_head - 1024)

    # ---- the cases ----

    def text(self, size: int, alphabet: str = TEXT) -> str:
        """Percent-encoded text of about `size` bytes, drawn from `alphabet`."""
        parts, length = [], 0
        while length < size:
            part = quote(self.rng.choice(alphabet))
            parts.append(part)
            length += len(part)
        return "".join(parts)

    def list_case(self, group: str, label: str, query: str, method: str = "GET",
                  heavy: bool = False) -> Case:
        return Case(group, label, method, f"{LIST}?{query}".encode(), heavy=heavy)

    def long_values(self) -> list[Case]:
        cases = []
        for size in (1024, 8 * 1024, 30 * 1024):
            size = self.under_limit(size)
            for param in PARAMS:
                heavy = size > 20_000 and param in ("search", "name__icontains", "name")
                cases.append(self.list_case("long values", f"{param}= {size:,} bytes of text",
                                            f"{param}={self.text(size)}", heavy=heavy))
                digits = "".join(self.rng.choice("0123456789") for _ in range(size))
                cases.append(self.list_case("long values", f"{param}= {size:,} digits",
                                            f"{param}={digits}"))
        past = self.max_ok_head + 4096
        cases.append(self.list_case("long values", f"search= {past:,} bytes (past the limit)",
                                    f"search={'a+' * (past // 2)}"))
        everything = "&".join(f"{p}={self.text(self.under_limit(30 * 1024) // len(PARAMS))}"
                              for p in PARAMS if p not in ("cursor", "format"))
        cases.append(self.list_case("long values", "every filter at once, long values", everything,
                                    heavy=True))
        return cases

    def search_terms(self) -> list[Case]:
        cases = []
        separators = [",", "+", "%2C+", "+%2C", "%09", ",,,", "%0A", "+++", "%E3%80%80"]
        for count in (10, 100, 1000, 5000, 13000, 20000):
            heavy = count >= 5000
            variants = {
                "'a a a …' (item 1)": "+".join(["a"] * count),
                "single letters": "+".join(self.rng.choice(LETTERS) for _ in range(count)),
                "mixed Unicode": "+".join(quote(self.rng.choice(UNICODE.strip())) for _ in range(count)),
                "commas and spaces": "".join(self.rng.choice(LETTERS) + self.rng.choice(separators)
                                             for _ in range(count)),
            }
            for variant, value in variants.items():
                cases.append(self.list_case("search terms", f"{count:,} terms, {variant}",
                                            f"search={value}", heavy=heavy))
        many = "+".join(["a"] * 13000)
        cases.append(self.list_case("search terms", "13,000 terms, HEAD", f"search={many}", "HEAD",
                                    heavy=True))
        cases.append(self.list_case("search terms", "5,000 terms, page=last",
                                    "page=last&search=" + "+".join(["e"] * 5000), heavy=True))
        cases.append(self.list_case("search terms", "5,000 terms, cursor=, ordering=-name",
                                    "cursor=&ordering=-name&search=" + "+".join(["o"] * 5000),
                                    heavy=True))
        cases.append(self.list_case("search terms", "1,000 terms + name__icontains + bounds",
                                    "search=" + "+".join(["a"] * 1000) + "&name__icontains=a"
                                    "&temperature__gte=-100&lat__lte=90&timestamp__gt=0"))
        return cases

    def repeated_params(self) -> list[Case]:
        cases = []
        for param in PARAMS:
            values = [str(self.rng.randrange(100)) if param in NUMERIC
                      else self.rng.choice(LETTERS) for _ in range(5000)]
            query = "&".join(f"{param}={v}" for v in values)
            cases.append(self.list_case("repeated parameters", f"{param}= ×5,000", query,
                                        heavy=param == "search"))
        query = "&".join(f"k{n}={n}" for n in range(5000))
        cases.append(self.list_case("repeated parameters", "5,000 distinct unknown keys", query))
        query = "&".join(f"{self.rng.choice(PARAMS)}={self.rng.choice(LETTERS)}"
                         for _ in range(5000))
        cases.append(self.list_case("repeated parameters", "5,000 of every parameter, mixed", query))
        cases.append(self.list_case("repeated parameters", "search= ×5,000 then 5,000 terms",
                                    "search=a&" * 5000 + "search=" + "+".join(["a"] * 5000),
                                    heavy=True))
        cases.append(self.list_case("repeated parameters", "5,000 bare ampersands and equals",
                                    "&" * 5000 + "=" * 5000 + "&search=a"))
        return cases

    def bad_values(self) -> list[Case]:
        cases = []
        for param in PARAMS:
            for value in BAD_ENCODINGS + [quote(v) for v in HUGE_NUMBERS]:
                cases.append(self.list_case("bad values", f"{param}={clip(value, 40)}",
                                            f"{param}={value}"))
        cases.append(self.list_case("bad values", "page=99999999999999999999 with page_size=1",
                                    "page=99999999999999999999&page_size=1"))
        cases.append(self.list_case("bad values", "cursor and page", f"cursor={quote(self.cursor)}&page=2"))
        cursor = quote(self.cursor)
        for label, value in [
            ("a real cursor", cursor),
            ("a real cursor, another ordering", cursor + "&ordering=-temperature"),
            ("a real cursor, truncated", cursor[: len(cursor) // 2]),
            ("a real cursor ×100", cursor * 100),
            ("a real cursor + 20 KB", cursor + "A" * 20_000),
            ("a real cursor, bytes flipped", cursor[::-1]),
        ]:
            cases.append(self.list_case("bad values", f"cursor: {label}", f"cursor={value}"))
        # Not HTTP: the codec answers these, or the router does.
        for label, target in [
            ("raw NUL in the target", b"/station/?name=a\x00b"),
            ("raw space in the target", b"/station/?name=a b"),
            ("raw bytes 0x80-0xff in the target", b"/station/?name=" + bytes(range(0x80, 0x100))),
            ("raw control bytes in the target", b"/station/?name=" + bytes(range(1, 32))),
            ("a fragment", b"/station/?name=a#" + b"f" * 5000),
            ("an absolute-form target", b"http://127.0.0.1/station/?search=a+a"),
            ("an asterisk target", b"*"),
            ("a path of 30 KB", b"/station/" + b"1" * self.under_limit(30_000) + b"/"),
            ("a path of 5,000 slashes", b"/" * 5000 + b"station/"),
            ("a path with %00 and %ff", b"/station/%00%ff/"),
        ]:
            cases.append(Case("bad values", label, target=target, malformed=True))
        return cases

    def bodies(self) -> list[Case]:
        valid = {"name": "CityName", "timestamp": 1393926310, "temperature": 28,
                 "lat": 30.733315, "lon": 76.779418}

        def reading(**changes: object) -> bytes:
            return json.dumps({**valid, **changes}, ensure_ascii=False).encode()

        def padded(size: int) -> bytes:
            head = reading()[:-1] + b',"pad":"'
            return head + b"x" * (size - len(head) - 2) + b'"}'

        def form(size: int | None = None, **changes: str) -> bytes:
            fields = {k: str(v) for k, v in {**valid, **changes}.items()}
            encoded = urllib.parse.urlencode(fields).encode()
            if size is not None:
                encoded += b"&pad=" + b"x" * (size - len(encoded) - 5)
            return encoded

        many_keys = b"{" + b",".join(b'"k%05d":0' % n for n in range(20_000)) + b"," + reading()[1:]
        same_key = b"{" + b'"name":"a",' * 20_000 + reading()[1:]
        json_bodies: list[tuple[str, bytes, bool]] = [
            ("name of 64 characters", reading(name="n" * 64), False),
            ("name of 64 characters, 東", reading(name="東" * 64), False),
            ("name of 64 characters, 😀", reading(name="😀" * 64), False),
            ("name of 65 characters", reading(name="n" * 65), False),
            ("name of 65 characters, 😀", reading(name="😀" * 65), False),
            ("name of 100 KB", reading(name="n" * 100_000), False),
            ("name of 100 KB, 東", reading(name="東" * 33_000), False),
            ("name with NUL", reading(name="a\u0000b"), False),
            ("name with a lone surrogate escape", reading()[:-1] + b',"name":"\\ud800"}', False),
            ("name as a 100,000-deep array", b'{"name":' + b"[" * 100_000 + b"]" * 100_000 + b"}", True),
            ("100,000 [", b"[" * 100_000, True),
            ("100,000 {\"a\":", b'{"a":' * 100_000, True),
            ("50,000 [ then 50,000 ]", b"[" * 50_000 + b"]" * 50_000, True),
            ("just under the body limit", padded(BODY_LIMIT - 1), True),
            ("at the body limit", padded(BODY_LIMIT), True),
            ("just over the body limit", padded(BODY_LIMIT + 1), True),
            ("1 MiB", padded(1 << 20), False),
            ("20,000 keys", many_keys, True),
            ("name given 20,000 times", same_key, True),
            ("an array of 2,000 readings", b"[" + b",".join([reading()] * 2000) + b"]", True),
            ("an array of 100,000 zeros", b"[" + b"0," * 99_999 + b"0]", True),
            ("temperature 1e309", reading()[:-1] + b',"temperature":1e309}', False),
            ("temperature -1e309", reading()[:-1] + b',"temperature":-1e309}', False),
            ("temperature of 400 digits", reading()[:-1] + b',"temperature":' + b"9" * 400 + b"}", False),
            ("temperature of 100,000 digits", reading()[:-1] + b',"temperature":' + b"1" * 100_000 + b"}", False),
            ("timestamp of 400 digits", reading()[:-1] + b',"timestamp":' + b"9" * 400 + b"}", False),
            ("timestamp 1e400 as a string", reading(timestamp="1e400"), False),
            ("lat 1e-400", reading()[:-1] + b',"lat":1e-400}', False),
            ("every number huge, as strings", reading(timestamp="9" * 400, temperature="9" * 400,
                                                       lat="-" + "9" * 400, lon="1e309"), False),
            ("NaN and Infinity", reading()[:-1] + b',"temperature":NaN,"lat":Infinity}', False),
            ("invalid UTF-8", reading()[:-1] + b',"name":"\xff\xfe\xc3\x28"}', False),
            ("a UTF-8 byte order mark", b"\xef\xbb\xbf" + reading(), False),
            ("100,000 spaces then a reading", b" " * 100_000 + reading(), False),
            ("a string of 200 KB of escapes", b'"' + b"\\u0000" * 33_000 + b'"', False),
        ]
        form_bodies: list[tuple[str, bytes, bool]] = [
            ("name of 64 characters", form(name="n" * 64), False),
            ("name of 65 characters", form(name="😀" * 65), False),
            ("name of 100 KB", form(name="n" * 100_000), False),
            ("name given 20,000 times", b"name=a&" * 20_000 + form(), True),
            ("20,000 keys", b"&".join(b"k%05d=0" % n for n in range(20_000)) + b"&" + form(), True),
            ("name with %00", form() + b"&name=a%00b", False),
            ("name with %ff and %zz", form() + b"&name=%ff%zz%", False),
            ("huge numbers", form(timestamp="9" * 400, temperature="1e309", lat="-1e309",
                                  lon="9" * 400), False),
            ("just under the body limit", form(BODY_LIMIT - 1), True),
            ("just over the body limit", form(BODY_LIMIT + 1), True),
            ("100,000 ampersands", b"&" * 100_000 + form(), False),
        ]
        cases = []
        targets = [("POST", LIST), ("PUT", f"{LIST}{self.detail_id}/"),
                   ("PATCH", f"{LIST}{self.detail_id}/")]
        for method, target in targets:
            for kind, content_type, bodies in [
                ("JSON", "application/json", json_bodies),
                ("form", "application/x-www-form-urlencoded", form_bodies),
            ]:
                for label, body, heavy in bodies:
                    cases.append(Case("bodies", f"{method} {kind}: {label}", method, target.encode(),
                                      body=body, content_type=content_type, heavy=heavy))
            for label, body, content_type, chunked in [
                ("chunked, 200 KB", padded(200_000), "application/json", True),
                ("chunked, 300 KB (over the limit)", padded(300_000), "application/json", True),
                ("Content-Type of 8 KB", reading(), "application/json; x=" + "y" * 8192, False),
                ("charset of 8 KB", reading(), "application/json; charset=" + "u" * 8192, False),
                ("5,000 Content-Type parameters", reading(),
                 "application/x-www-form-urlencoded" + "; a=b" * 5000, False),
                ("UTF-16 JSON", reading().decode().encode("utf-16"), "application/json; charset=utf-16", False),
            ]:
                cases.append(Case("bodies", f"{method}: {label}", method, target.encode(), body=body,
                                  content_type=content_type, chunked=chunked))
        return cases

    def headers(self) -> list[Case]:
        def auth_case(label: str, value: bytes) -> Case:
            return Case("headers", f"Authorization: {label}", auth=False,
                        headers=[(b"Authorization", value)])

        def header_case(label: str, headers: list[tuple[bytes, bytes]], method: str = "GET",
                        target: str = LIST, heavy: bool = False, malformed: bool = False) -> Case:
            return Case("headers", label, method, target.encode(), headers=headers, heavy=heavy,
                        malformed=malformed)

        ranges = [f"text/x-{n};q=0.{n % 10}" for n in range(5000)]
        random_bytes = bytes(self.rng.randrange(256) for _ in range(6 * 1024))
        detail = f"{LIST}{self.detail_id}/"
        cases = [
            header_case("Accept: 5,000 media ranges, none JSON", [(b"Accept", ", ".join(ranges).encode())],
                        heavy=True),
            header_case("Accept: 5,000 media ranges, then JSON",
                        [(b"Accept", (", ".join(ranges) + ", application/json; indent=4").encode())]),
            header_case("Accept: */*;q=0.1 ×5,000", [(b"Accept", b", ".join([b"*/*;q=0.1"] * 5000))]),
            header_case("Accept: JSON with 5,000 parameters",
                        [(b"Accept", b"application/json" + b"; indent=99999999999999999999" * 2000)]),
            header_case("Accept: indent=1000000", [(b"Accept", b"application/json; indent=1000000")]),
            header_case("Accept: q=1e309, 8 KB", [(b"Accept", b"application/json; q=" + b"9" * 8192)]),
            auth_case("Basic + 8 KB of random base64", b"Basic " + base64.b64encode(random_bytes)),
            auth_case("Basic + 8 KB, not base64", b"Basic " + b"!" * 8192),
            auth_case("Basic, 8 KB username", b"Basic " + base64.b64encode(b"u" * 6000 + b":x")),
            auth_case("Basic, admin with an 8 KB password",
                      b"Basic " + base64.b64encode(self.user.encode() + b":" + b"p" * 6000)),
            auth_case("Basic, 8 KB of spaces before the credentials",
                      b"Basic" + b" " * 8192 + self.authorization[6:]),
            auth_case("Bearer + 8 KB", b"Bearer " + b"t" * 8192),
            auth_case("Token + 8 KB", b"Token " + b"t" * 8192),
            auth_case("8 KB scheme", b"S" * 8192 + b" x"),
            auth_case("60 KB", b"Basic " + b"A" * 60_000),
            header_case("two Authorization headers", [(b"Authorization", self.authorization)]),
            header_case("X-Request-Id of 8 KB", [(b"X-Request-Id", b"r" * 8192)]),
            header_case("If-None-Match with 5,000 tags",
                        [(b"If-None-Match", b", ".join(b'"%d"' % n for n in range(5000)))]),
            Case("headers", "If-Match with 5,000 tags on PATCH", "PATCH", detail.encode(),
                 [(b"If-Match", b", ".join(b'W/"%d"' % n for n in range(5000)))],
                 body=b"{}", content_type="application/json"),
            header_case("X-Forwarded-For with 5,000 addresses",
                        [(b"X-Forwarded-For", b", ".join(b"10.0.%d.%d" % (n // 250, n % 250)
                                                        for n in range(5000)))]),
            header_case("X-Forwarded-Proto and -Host of 8 KB",
                        [(b"X-Forwarded-Proto", b"h" * 8192), (b"X-Forwarded-Host", b"x" * 8192)]),
            header_case("Host of 8 KB", [(b"Host", b"h" * 8192)]),
            header_case("Host with a 400-digit port", [(b"Host", b"localhost:" + b"9" * 400)]),
            header_case("Cookie of 30 KB", [(b"Cookie", b"c=" + b"x" * 30_000)]),
            header_case("Range with 5,000 ranges", [(b"Range", b"bytes=" + b",".join(
                b"%d-%d" % (n, n) for n in range(5000)))]),
            header_case("Accept-Encoding with 5,000 codings",
                        [(b"Accept-Encoding", b", ".join([b"gzip", b"br;q=0.5", b"x"] * 1666))]),
            header_case("bytes 0x80-0xff in a header value",
                        [(b"X-Fuzz", bytes(range(0x80, 0x100))), (b"Accept", b"application/json\xff")]),
            header_case("90 extra headers", [(b"X-Fuzz-%d" % n, b"v") for n in range(90)]),
            header_case("200 extra headers (past the codec's count)",
                        [(b"X-Fuzz-%d" % n, b"v") for n in range(200)], malformed=True),
            header_case("Content-Length of 400 digits on GET",
                        [(b"Content-Length", b"9" * 400)], malformed=True),
            header_case("a NUL in a header value", [(b"X-Fuzz", b"a\x00b")], malformed=True),
        ]
        return cases

    def edges(self) -> list[Case]:
        """The most a list request may ask: finds where the answers turn from 200 to 400 (the
        bounds on search terms and on filter value lengths, if there are any), then asks for
        exactly that much, in the costliest ways, and one more."""
        group = "at the bounds"
        self.statuses.setdefault(group, Counter())

        def accepted(label: str, query: str) -> bool:
            case = self.list_case(group, f"probe: {label}", query)
            answer = self.send(case)
            if not self.check_alive([case]):
                raise RuntimeError("the server died while probing")
            return answer.status == 200

        def largest(label: str, query_for: object, high: int) -> int:
            """The largest n ≤ high accepted, assuming one bound; high when there is none."""
            if accepted(f"{label} {high:,}", query_for(high)):
                return high
            low = 0
            while high - low > 1:
                middle = (low + high) // 2
                if accepted(f"{label} {middle:,}", query_for(middle)):
                    low = middle
                else:
                    high = middle
            return low

        room = self.under_limit(30 * 1024)
        try:
            terms = largest("search terms:", lambda n: "search=" + "+".join(["a"] * n),
                            min(20_000, room // 2))
            lengths = {param: largest(f"{param} characters:", lambda n, p=param: f"{p}={'a' * n}", room)
                       for param in ("search", "name", "name__icontains")}
        except RuntimeError:
            return []
        print(f"   bounds seen: {terms:,} search terms; characters: "
              + ", ".join(f"{p} {n:,}" for p, n in lengths.items()), flush=True)
        length = lengths["search"]
        term_length = max(1, (length - terms + 1) // max(terms, 1))
        cases = []

        def add(label: str, query: str) -> None:
            cases.append(self.list_case(group, label, query, heavy=True))

        add(f"{terms:,} terms, 'a'", "search=" + "+".join(["a"] * terms))
        add(f"{terms + 1:,} terms, 'a'", "search=" + "+".join(["a"] * (terms + 1)))
        long_terms = ["".join(self.rng.choice(LETTERS) for _ in range(term_length))
                      for _ in range(terms)]
        add(f"{terms:,} terms of {term_length:,} letters", "search=" + "+".join(long_terms))
        emoji = quote("😀" * term_length)
        add(f"{terms:,} terms of {term_length:,} 😀", "search=" + "+".join([emoji] * terms))
        for param, n in lengths.items():
            for size, what in [(n, "at"), (n + 1, "past")]:
                add(f"{param}= {size:,} 😀 ({what} the bound)", f"{param}={quote('😀' * size)}")
                add(f"{param}= {size:,} '%' ({what} the bound)", f"{param}={quote('%' * size)}")
        everything = "&".join([
            "search=" + "+".join(["a"] * terms),
            f"name__icontains={quote('a' * lengths['name__icontains'])}",
            f"name={quote('😀' * lengths['name'])}",
            "ordering=-name,-temperature,-timestamp,id", "page=last",
            "temperature__gte=-273.15&temperature__lte=1000&lat__gte=-90&lat__lte=90",
            "lon__gte=-180&lon__lte=180&timestamp__gte=0&timestamp__lt=253402300799",
        ])
        add("every filter at its bound, page=last", everything)
        add("every filter at its bound, cursor=", everything.replace("page=last", "cursor="))
        return cases

    # ---- the run ----

    def run(self) -> int:
        started = time.monotonic()
        engine = os.environ.get("DATABASE_URL", "?").split(":", 1)[0]
        print(f"== limits fuzz on {engine} at {self.args.url}, seed {self.args.seed}", flush=True)
        problem = self.server.problem()
        if problem:
            print(f"the server is not up: {problem}", file=sys.stderr)
            return 1
        self.seed_readings(self.args.readings)
        self.probe_head_limit()
        groups = [
            ("long values", self.long_values()),
            ("bad values", self.bad_values()),
            ("repeated parameters", self.repeated_params()),
            ("search terms", self.search_terms()),
            ("bodies", self.bodies()),
            ("headers", self.headers()),
        ]
        for group, cases in groups:
            self.run_group(group, cases)
        if not self.stopped:
            probing = time.monotonic()
            groups.append(("at the bounds", self.edges()))
            probing = time.monotonic() - probing
            self.run_group(*groups[-1])
            self.times["at the bounds"] = self.times.get("at the bounds", 0.0) + probing
        heavy = [case for _, cases in groups for case in cases if case.heavy]
        width = self.args.concurrency
        rounds = [self.rng.sample(heavy, min(width, len(heavy))) for _ in range(self.args.rounds)]
        concurrent = [Case("concurrent", c.label, c.method, c.target, c.headers, c.body,
                           c.content_type, c.chunked, c.auth, c.malformed)
                      for batch in rounds for c in batch]
        self.run_concurrently("concurrent", concurrent, width)
        if not self.stopped:
            final = self.server.problem()
            if final:
                self.deaths.append(f"at the end: {final}")
                self.failures.append(("end", "-", f"at the end: {final}"))
        elapsed = time.monotonic() - started
        not_run = [group for group, _ in groups + [("concurrent", [])] if group not in self.times]
        self.report(engine, elapsed, not_run)
        return 1 if self.failures or self.stopped else 0

    def report(self, engine: str, elapsed: float, not_run: list[str]) -> None:
        print(f"\n== summary: limits fuzz on {engine}, seed {self.args.seed}")
        rows = [(group, sum(counter.values()), self.times.get(group, 0.0),
                 " ".join(f"{s}×{n}" for s, n in sorted(counter.items())),
                 sum(1 for case, _, _ in self.failures if case.startswith(group + ":")))
                for group, counter in self.statuses.items()]
        width = max(len(row[0]) for row in rows + [("total",)])
        print(f"{'group':<{width}}  {'cases':>5}  {'seconds':>7}  {'failures':>8}  statuses")
        for group, count, seconds, statuses, failures in rows:
            print(f"{group:<{width}}  {count:>5}  {seconds:>7.1f}  {failures:>8}  {statuses}")
        total = Counter()
        for counter in self.statuses.values():
            total.update(counter)
        print(f"{'total':<{width}}  {self.sent:>5}  {elapsed:>7.1f}  {len(self.failures):>8}  "
              + " ".join(f"{s}×{n}" for s, n in sorted(total.items())))
        if self.stopped:
            print(f"\n!! {self.stopped}; groups not run or cut short: "
                  f"{', '.join(not_run) or 'the last one'}")
        if self.deaths:
            print(f"\nserver deaths and stalls ({len(self.deaths)}):")
            for death in self.deaths:
                print(f"  - {clip(death, 600)}")
        if self.failures:
            print(f"\nfailures ({len(self.failures)}):")
            for case, request, problem in self.failures:
                print(f"  - [{case}] {clip(problem, 300)}\n      request: {clip(request, 300)}")
        print("\nslowest cases:")
        for seconds, label in sorted(self.slowest, reverse=True)[:5]:
            print(f"  {seconds:6.2f} s  {label}")
        verdict = "FAILED" if self.failures or self.stopped else "passed"
        print(f"\nlimits fuzz on {engine}: {verdict}, {self.sent} cases in {elapsed:.1f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the server, http://HOST:PORT")
    parser.add_argument("--auth", required=True, help="an admin's USER:PASSWORD")
    parser.add_argument("--pid", type=int, required=True, help="the server's process id")
    parser.add_argument("--binary", help="start the server again with this binary when it dies")
    parser.add_argument("--log", help="the server's log (read when it dies, appended to)")
    parser.add_argument("--seed", type=int, default=int(os.environ.get("FUZZ_LIMITS_SEED", 20261202)))
    parser.add_argument("--readings", type=int, default=300, help="readings to seed first")
    parser.add_argument("--hang-seconds", type=float, default=60.0,
                        help="a request without an answer after this long fails")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=6, help="concurrent batches of the heaviest")
    parser.add_argument("--max-restarts", type=int, default=60)
    parser.add_argument("--verbose", action="store_true", help="print every case's answer")
    fuzz = Fuzz(parser.parse_args())
    try:
        return fuzz.run()
    finally:
        fuzz.server.stop_own()  # a server this script started again


if __name__ == "__main__":
    sys.exit(main())
