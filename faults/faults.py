"""The fault tests: the service as a large deployment runs it, broken under load.

Three service instances behind HAProxy, in network namespaces this script creates, first on a
PostgreSQL primary with a synchronous standby, then on a three-node MariaDB Galera cluster. Each
scenario runs a bounded wrk load of mixed reads and writes through the balancer, devices that
retry their readings with an Idempotency-Key, and live-stream subscribers that resume with
Last-Event-ID, and breaks one thing in the middle:

- instance: SIGKILL one instance, start it again;
- postgres: SIGKILL the primary's host, promote the standby;
- galera: SIGKILL one Galera node, start it again (it rejoins); then, without load, a change
  that node 3 applies late (its replication paused) must still reach a subscriber on node 3.

Then it checks what the issue asks: no 500 and no hang anywhere, every acknowledged reading in the
database exactly once (on every node), the kept count exact, every subscriber given every reading;
and reports the load's rate, p99, answers by status and how long writes were refused. Exits 1 if a
check fails. Run as root (namespaces); see faults/run.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cluster import (ROOT, Balancer, Instances, PostgresPair, prepare_database,  # noqa: E402
                     request_json)
from lab import Lab  # noqa: E402
from traffic import (FIRST_TIMESTAMP, HANG_SECONDS, Devices, Load, Subscriber, finish_wrk,  # noqa: E402
                     start_wrk)

SCENARIOS = ("instance", "postgres", "galera")


def log(message: str) -> None:
    print(f"[faults {time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Check:
    what: str
    passed: bool
    detail: str = ""


@dataclass
class Result:
    """One scenario's figures and checks."""

    name: str
    fault: str
    load: Load
    devices: Devices
    subscribers: list[Subscriber]
    fault_started: float
    events: list[tuple[str, float]]
    load_ended: float
    checks: list[Check] = field(default_factory=list)

    def refused_writes(self) -> dict[str, int]:
        """The devices' answers other than 201 from the fault on, by status."""
        by_status: dict[str, int] = {}
        for device in self.devices.devices:
            for outcome in device.outcomes:
                if outcome.status != 201 and outcome.at >= self.fault_started:
                    by_status[str(outcome.status)] = by_status.get(str(outcome.status), 0) + 1
        return by_status

    def stream_delays(self, before_fault: bool) -> list[float]:
        """Seconds from each device reading's 201 to its event at each subscriber, sorted (a
        reading streamed before its 201 arrived counts as 0), for the readings acknowledged
        before the fault began, or from then on."""
        acknowledged_at = {reading: at for device in self.devices.devices
                           for reading, at in device.acknowledged_at.items()
                           if (at < self.fault_started) == before_fault}
        return sorted(max(0.0, arrived - acknowledged_at[reading])
                      for subscriber in self.subscribers
                      for reading, arrived in subscriber.arrived.items()
                      if reading in acknowledged_at)

    def write_gap(self) -> tuple[float, float]:
        """The longest time from the fault to the end of the load in which no device had a
        reading acknowledged (what the devices saw of the outage: refused or waiting), and when
        it began, in seconds after the fault began."""
        acknowledged = sorted([self.fault_started, self.load_ended] + [
            outcome.at for device in self.devices.devices for outcome in device.outcomes
            if outcome.status == 201 and self.fault_started <= outcome.at <= self.load_ended])
        gaps = [(later - earlier, earlier - self.fault_started)
                for earlier, later in zip(acknowledged, acknowledged[1:])]
        return max(gaps, default=(0.0, 0.0))


def check_answers(result: Result) -> None:
    """No 500 and no hang, from wrk or from the devices; nothing a retry could not fix."""
    served_errors = {status: n for status, n in result.load.statuses.items()
                     if int(status) >= 500 and int(status) not in (502, 503, 504)}
    device_500 = [outcome for device in result.devices.devices for outcome in device.outcomes
                  if isinstance(outcome.status, int) and outcome.status >= 500
                  and outcome.status not in (502, 503, 504)]
    result.checks.append(Check("no 500 (or other 5xx but 502/503/504) in the load or to devices",
                               not served_errors and not device_500,
                               f"wrk {served_errors}, devices {len(device_500)}"))
    slowest = max((outcome.seconds for device in result.devices.devices
                   for outcome in device.outcomes), default=0.0)
    result.checks.append(Check(f"no request hung (wrk timeouts at {HANG_SECONDS:.0f} s, devices' slowest)",
                               result.load.socket_errors["timeout"] == 0 and slowest < HANG_SECONDS,
                               f"wrk timeouts {result.load.socket_errors['timeout']}, "
                               f"slowest device request {slowest:.2f} s"))
    unexpected = [text for device in result.devices.devices for text in device.refused]
    result.checks.append(Check("every device reading acknowledged (201) in the end",
                               not unexpected, "; ".join(unexpected[:3])))
    acknowledged = sum(len(device.acknowledged) for device in result.devices.devices)
    result.checks.append(Check("devices kept writing across the fault",
                               acknowledged > 0 and all(
                                   any(outcome.at > result.events[-1][1] and outcome.status == 201
                                       for outcome in device.outcomes)
                                   for device in result.devices.devices),
                               f"{acknowledged} readings acknowledged"))


def check_stored(result: Result, where: str, query: Callable[[str], list[list[str]]]) -> None:
    """Every acknowledged reading is stored exactly once with the id it was acknowledged with,
    and the kept count equals the rows, on the database `query` runs on."""
    names = ",".join(f"'{device.name}'" for device in result.devices.devices)
    rows = query(f"SELECT name, timestamp, id FROM station WHERE name IN ({names})")
    stored: dict[tuple[str, int], list[int]] = {}
    for name, timestamp, reading_id in rows:
        stored.setdefault((name, int(timestamp) - FIRST_TIMESTAMP), []).append(int(reading_id))
    missing, wrong = [], []
    for device in result.devices.devices:
        for n, reading_id in device.acknowledged.items():
            ids = stored.pop((device.name, n), [])
            if not ids:
                missing.append(f"{device.name}#{n}")
            elif ids != [reading_id]:
                wrong.append(f"{device.name}#{n}: stored as {ids}, acknowledged as {reading_id}")
    # Devices retry each reading until it is acknowledged, so a stored reading never
    # acknowledged is one written twice or out of nowhere.
    extra = [f"{name}#{n} x{len(ids)}" for (name, n), ids in stored.items()]
    result.checks.append(Check(
        f"{where}: every acknowledged reading stored exactly once, with its id",
        not missing and not wrong and not extra,
        f"{len(rows)} rows; missing {missing[:3]}, wrong {wrong[:3]}, extra {extra[:3]}"))
    counted = query("SELECT (SELECT SUM(readings) FROM station_count), (SELECT COUNT(*) FROM station)")
    result.checks.append(Check(f"{where}: the kept count equals the rows",
                               counted[0][0] == counted[0][1],
                               f"kept {counted[0][0]}, rows {counted[0][1]}"))


def check_subscribers(result: Result, must_reconnect: bool) -> None:
    """Every subscriber was given every acknowledged reading once, in change order."""
    acknowledged = {reading_id for device in result.devices.devices
                    for reading_id in device.acknowledged.values()}
    for i, subscriber in enumerate(result.subscribers, 1):
        lost = acknowledged - subscriber.created.keys()
        result.checks.append(Check(
            f"subscriber {i}: every acknowledged reading streamed once, in order",
            not lost and not subscriber.duplicates and not subscriber.out_of_order,
            f"lost {len(lost)}, duplicates {subscriber.duplicates}, out of order "
            f"{subscriber.out_of_order[:2]}, reconnects {subscriber.reconnects}, "
            f"refused {subscriber.refusals}"))
    if must_reconnect:
        reconnects = sum(subscriber.reconnects for subscriber in result.subscribers)
        result.checks.append(Check("a subscriber's connection was cut and resumed",
                                   reconnects > 0, f"{reconnects} reconnects"))


def operator_basic_auth(password: str) -> str:
    """The Authorization header of the staff user `operator` that prepare_database created."""
    return "Basic " + base64.b64encode(f"operator:{password}".encode()).decode()


def run_scenario(name: str, fault: str, balancer: Balancer, tokens: tuple[str, str, str],
                 ids: list[int], breaks: Callable[[list[tuple[str, float]]], None],
                 seconds: int, fault_at: float) -> Result:
    password, write_token, read_token = tokens
    basic = operator_basic_auth(password)
    subscribers = [Subscriber(balancer.url, read_token) for _ in range(3)]
    for subscriber in subscribers:
        subscriber.start()
    devices = Devices(balancer.url, write_token, prefix=f"{name}-device")
    started = time.monotonic()
    wrk = start_wrk(balancer.url, basic, ids, seconds)
    devices.start()
    time.sleep(fault_at)
    fault_started = time.monotonic()
    events: list[tuple[str, float]] = []
    log(f"{name}: {fault}")
    breaks(events)
    for what, at in events:
        log(f"{name}: {what} at +{at - fault_started:.2f} s")
    load = finish_wrk(wrk)
    load_ended = time.monotonic()
    log(f"{name}: load ended after {time.monotonic() - started:.1f} s; stopping the devices")
    devices.stop()
    acknowledged = {reading_id for device in devices.devices
                    for reading_id in device.acknowledged.values()}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not all(
            acknowledged <= subscriber.created.keys() for subscriber in subscribers):
        time.sleep(0.2)
    for subscriber in subscribers:
        subscriber.stop()
    return Result(name, fault, load, devices, subscribers, fault_started, events, load_ended)


def seed(balancer: Balancer, password: str, count: int = 30) -> list[int]:
    """Creates `count` readings (one bulk request) for the load's retrieves; their ids."""
    basic = operator_basic_auth(password)
    readings = [{"name": "seed", "timestamp": 1_700_000_000 + i, "temperature": 20.0 + i / 10,
                 "lat": 52.0, "lon": 4.0} for i in range(count)]
    created = request_json("POST", balancer.url + "/station/", basic, readings)
    return [reading["id"] for reading in created]


def postgres_scenarios(lab: Lab, binary: Path, workdir: Path, log_dir: Path, chosen: set[str],
                       seconds: int, results: list[Result]) -> None:
    pair = PostgresPair(lab.host("pg1", 11), lab.host("pg2", 12), workdir / "postgres", log_dir)
    log("PostgreSQL: a primary and a synchronous standby")
    pair.start()
    tokens = prepare_database(binary, pair.url())
    app_hosts = [lab.host(f"app{i}", 20 + i) for i in (1, 2, 3)]
    instances = Instances(binary, app_hosts, [pair.url()] * 3, log_dir)
    instances.start_all()
    balancer = Balancer(lab.host("lb", 10), instances.addresses(), log_dir)
    balancer.start()
    balancer.wait_ready()
    ids = seed(balancer, tokens[0])
    log(f"three instances on PostgreSQL behind HAProxy at {balancer.url}")

    if "instance" in chosen:
        def kill_instance(events: list[tuple[str, float]]) -> None:
            instances.kill(1)
            events.append(("instance 2 killed (SIGKILL)", time.monotonic()))
            time.sleep(4)
            instances.start(1)
            events.append(("instance 2 listening again", time.monotonic()))

        result = run_scenario("instance", "SIGKILL instance 2 of 3, start it again 4 s later",
                              balancer, tokens, ids, kill_instance, seconds, seconds / 4)
        check_answers(result)
        check_stored(result, "PostgreSQL", pair.query)
        check_subscribers(result, must_reconnect=True)
        results.append(result)

    if "postgres" in chosen:
        def fail_over(events: list[tuple[str, float]]) -> None:
            pair.kill_primary()
            events.append(("primary's host killed (SIGKILL of every process)", time.monotonic()))
            # A failover manager's detection time.
            time.sleep(2)
            pair.promote_standby()
            events.append(("standby promoted", time.monotonic()))

        result = run_scenario("postgres", "SIGKILL the PostgreSQL primary, promote the synchronous standby 2 s later",
                              balancer, tokens, ids, fail_over, seconds, seconds / 4)
        check_answers(result)
        result.checks.append(Check("the standby is the primary now", not pair.is_in_recovery(1)))
        check_stored(result, "the new primary", pair.query)
        check_subscribers(result, must_reconnect=False)
        results.append(result)

    for i in range(3):
        instances.kill(i)
    balancer.host.kill_all()
    for host in pair.hosts:
        host.kill_all()


def check_applied_late(result: Result, cluster, instance_url: str, read_token: str) -> None:
    """A change id another node commits out of order, which this node applies late, is still
    streamed, in change order.

    On node 1, transaction A inserts a reading (taking the smaller change id) and stays open
    while B inserts one and commits. Once node 3 has B, node 3 stops applying what the others
    commit (FLUSH TABLES WITH READ LOCK pauses its replication) and A commits. Node 3 then shows
    B's change with A's id missing below it, and no transaction of its own that could still
    commit A's id: a stream on node 3 that took A's id for a rolled-back one would never send A.
    After UNLOCK TABLES node 3 applies A, and the subscriber on instance 3 must get A, then B.
    """
    subscriber = Subscriber(instance_url, read_token)
    subscriber.start()
    first, second, lock = cluster.session(0), cluster.session(0), cluster.session(2)
    insert = ("INSERT INTO station (name, timestamp, temperature, lat, lon) "
              "VALUES ('{}', 1700000000, 20.5, 52.0, 4.0)")
    held_while_locked = False
    a_open_after_b = float("nan")
    try:
        first.run("BEGIN")
        first.run(insert.format("applied-late-a"))
        a = int(first.run("SELECT LAST_INSERT_ID()")[0][0])
        second.run("BEGIN")
        second.run(insert.format("applied-late-b"))
        b = int(second.run("SELECT LAST_INSERT_ID()")[0][0])
        second.run("COMMIT")
        b_committed = time.monotonic()
        # Quickly: the feed waits a second for other nodes' writers, and A must still be open
        # on node 1 when it asks node 3 for what the cluster committed.
        while not lock.run(f"SELECT id FROM station WHERE id = {b}"):
            if time.monotonic() > b_committed + 30:
                raise RuntimeError("node 3 did not apply B within 30 s")
            time.sleep(0.01)
        lock.run("FLUSH TABLES WITH READ LOCK")
        first.run("COMMIT")
        a_open_after_b = time.monotonic() - b_committed
        # Past the feed's wait for writers on Galera, and well within the causal read's 30 s.
        time.sleep(4)
        held_while_locked = a not in subscriber.created and b not in subscriber.created
        lock.run("UNLOCK TABLES")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not {a, b} <= subscriber.created.keys():
            time.sleep(0.2)
    finally:
        for session in (first, second, lock):
            session.close()
        subscriber.stop()
    got = {reading: subscriber.created.get(reading) for reading in (a, b)}
    in_order = None not in got.values() and got[a] < got[b]
    result.checks.append(Check(
        "a change committed on node 1 that node 3 applied late was streamed by instance 3, "
        "in change order",
        in_order and not subscriber.duplicates and not subscriber.out_of_order,
        f"change ids streamed: A {got[a]}, B {got[b]}; A committed {a_open_after_b:.2f} s after B; "
        f"B held back while node 3 was locked: {held_while_locked}; duplicates {subscriber.duplicates}, out of order "
        f"{subscriber.out_of_order[:2]}"))


def galera_scenario(lab: Lab, binary: Path, workdir: Path, log_dir: Path, seconds: int,
                    results: list[Result]) -> None:
    from galera import Galera

    cluster = Galera([lab.host(f"db{i}", 30 + i) for i in (1, 2, 3)], workdir / "galera", log_dir)
    log("MariaDB Galera: three nodes")
    cluster.start()
    tokens = prepare_database(binary, cluster.url(0))
    app_hosts = [lab.host(f"app{i}", 20 + i)
                 for i in (1, 2, 3)]
    instances = Instances(binary, app_hosts, [cluster.url(i) for i in range(3)], log_dir)
    instances.start_all()
    lb_host = lab.host("lb", 10)
    balancer = Balancer(lb_host, instances.addresses(), log_dir)
    balancer.start()
    balancer.wait_ready()
    ids = seed(balancer, tokens[0])
    log(f"three instances, each on its own Galera node, behind HAProxy at {balancer.url}")

    def kill_node(events: list[tuple[str, float]]) -> None:
        cluster.kill(2)
        events.append(("Galera node 3 killed (SIGKILL)", time.monotonic()))
        # Restarted before the others have dropped it, it would wait for that anyway.
        cluster.wait_evicted(2)
        events.append(("nodes 1 and 2 dropped node 3 from the cluster", time.monotonic()))
        cluster.restart(2)
        events.append(("node 3 restarted, rejoined (IST) and synced", time.monotonic()))

    # Longer: Galera takes about 6 s to drop a dead node and 5 s to take it back.
    result = run_scenario("galera", "SIGKILL Galera node 3 of 3; start it again once the others "
                          "have dropped it", balancer, tokens, ids, kill_node, seconds + 15,
                          seconds / 4)
    check_answers(result)
    for i in range(3):
        check_stored(result, f"Galera node {i + 1}", lambda sql, i=i: cluster.query(i, sql))
    check_subscribers(result, must_reconnect=False)
    log("galera: a change node 3 applies late (its replication paused by FLUSH TABLES WITH READ "
        "LOCK)")
    check_applied_late(result, cluster, f"http://{instances.addresses()[2]}", tokens[2])
    results.append(result)
    for i in range(3):
        instances.kill(i)
    balancer.host.kill_all()
    cluster.stop()


def git_commit() -> str:
    """The checked-out commit, `+` when the tree has changes."""
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return commit + ("+" if dirty else "")


def report(results: list[Result], elapsed: float) -> str:
    lines = ["# Fault tests", "",
             f"`{' '.join(['faults/run'] + sys.argv[1:])}`, commit {git_commit()}, "
             f"{datetime.datetime.now():%Y-%m-%d %H:%M}, "
             f"{elapsed:.0f} s in all. Three instances behind HAProxy; the load is wrk with "
             "faults/mixed.lua (8 connections: 2/5 retrieves, 1/5 list pages, 2/5 creates, basic "
             "auth), beside 4 devices posting with a token and an Idempotency-Key and 3 stream "
             "subscribers.", "",
             "| scenario | fault | load req/s | p50 | p99 | answers by status | device answers other than 201 after the fault | longest time without an acknowledged write | slowest reading to be acknowledged |",
             "|---|---|---:|---:|---:|---|---|---:|---:|"]
    for result in results:
        by_status = result.refused_writes()
        gap, gap_from = result.write_gap()
        statuses = ", ".join(f"{status}: {n}" for status, n in sorted(result.load.statuses.items()))
        socket = {k: v for k, v in result.load.socket_errors.items() if v}
        if socket:
            statuses += f"; socket errors {socket}"
        refused = ", ".join(f"{status}: {n}" for status, n in sorted(by_status.items())) or "none"
        window = f"{gap:.2f} s (from +{gap_from:.2f} s)"
        slowest = max((wait for device in result.devices.devices
                       for wait in device.waited.values()), default=0.0)
        lines.append(f"| {result.name} | {result.fault} | {result.load.rate:,.0f} | "
                     f"{result.load.p50_ms:.1f} ms | {result.load.p99_ms:.1f} ms | {statuses} | "
                     f"{refused} | {window} | {slowest:.2f} s |")
    lines.append("")
    for result in results:
        lines.append(f"## {result.name}")
        lines.append("")
        for what, at in result.events:
            lines.append(f"- +{at - result.fault_started:.2f} s: {what}")
        acknowledged = sum(len(device.acknowledged) for device in result.devices.devices)
        replayed = sum(device.replayed for device in result.devices.devices)
        lines.append(f"- devices: {acknowledged} readings acknowledged, {replayed} of them "
                     "on a retry that was answered from the stored response")
        for when, before_fault in (("before the fault", True), ("from the fault on", False)):
            delays = result.stream_delays(before_fault)
            if delays:
                lines.append(f"- stream, readings acknowledged {when}: each reached each "
                             f"subscriber a median {delays[len(delays) // 2] * 1000:.0f} ms after "
                             f"its 201, 99th percentile "
                             f"{delays[len(delays) * 99 // 100] * 1000:.0f} ms ({len(delays)} "
                             "deliveries)")
        for check in result.checks:
            mark = "PASS" if check.passed else "FAIL"
            lines.append(f"- {mark}: {check.what}" + (f" ({check.detail})" if check.detail else ""))
        lines.append("")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", type=Path, default=ROOT / "target" / "dist" / "station-api")
    parser.add_argument("--only", default=",".join(SCENARIOS),
                        help=f"comma-separated scenarios of {', '.join(SCENARIOS)}")
    parser.add_argument("--seconds", type=int, default=20,
                        help="how long each scenario's load runs (the fault comes a quarter in)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory and logs")
    parser.add_argument("--no-results-file", action="store_true",
                        help="print the report only, without writing bench/results/faults-*.md")
    args = parser.parse_args()
    chosen = set(args.only.split(","))
    if not chosen <= set(SCENARIOS):
        parser.error(f"unknown scenario in {args.only}")
    if not args.binary.exists():
        parser.error(f"{args.binary} does not exist (cargo build --profile dist)")
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="station-faults-"))
    workdir.chmod(0o755)
    log_dir = workdir / "logs"
    log(f"work directory and logs: {workdir}")
    # A SIGTERM (a CI timeout) unwinds like an exception, so the lab is taken down.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    lab = Lab()
    results: list[Result] = []
    try:
        if chosen & {"instance", "postgres"}:
            postgres_scenarios(lab, args.binary.resolve(), workdir, log_dir, chosen, args.seconds,
                               results)
        if "galera" in chosen:
            galera_scenario(lab, args.binary.resolve(), workdir, log_dir, args.seconds, results)
    finally:
        lab.close()
    text = report(results, time.monotonic() - started)
    print(text)
    if not args.no_results_file:
        out = ROOT / "bench" / "results" / f"faults-{datetime.datetime.now():%Y-%m-%dT%H%M}.md"
        out.write_text(text + "\n")
        log(f"written to {out.relative_to(ROOT)}")
    failed = [check for result in results for check in result.checks if not check.passed]
    if failed:
        log(f"{len(failed)} checks failed; logs in {log_dir}")
        return 1
    if not args.keep:
        subprocess.run(["rm", "-rf", str(workdir)], check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
