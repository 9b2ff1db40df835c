"""The deployments the fault tests run: a PostgreSQL primary with a synchronous standby, service
instances, and HAProxy in front of them, each on hosts of a `Lab`."""

from __future__ import annotations

import glob
import json
import os
import secrets
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from lab import Host, sh

ROOT = Path(__file__).resolve().parent.parent
SERVICE_PORT = 8000
BALANCER_PORT = 8080


def postgres_bin() -> Path:
    """The newest PostgreSQL server installed from Debian's packages."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"),
                   key=lambda path: int(path.split("/")[4]))
    if not found:
        raise RuntimeError("no PostgreSQL server under /usr/lib/postgresql (apt-get install postgresql)")
    return Path(found[-1]).parent


def psql(ip: str, sql: str, database: str = "station") -> list[list[str]]:
    """Runs `sql` on the PostgreSQL server at `ip`; the rows, as strings."""
    out = sh(["psql", "-h", ip, "-U", "postgres", "-d", database, "-X", "-A", "-t", "-F", "\t",
              "-v", "ON_ERROR_STOP=1", "-c", sql], timeout=60).stdout
    return [line.split("\t") for line in out.splitlines() if line]


class PostgresPair:
    """A PostgreSQL primary on `primary` and a streaming standby on `standby` that every commit
    waits for (`synchronous_standby_names`), as deploy/postgres-standby/README.md sets them up."""

    def __init__(self, primary: Host, standby: Host, workdir: Path, log_dir: Path) -> None:
        self.hosts = [primary, standby]
        self.workdir = workdir
        self.log_dir = log_dir
        self.bin = postgres_bin()
        self.primary = 0

    def data_dir(self, i: int) -> Path:
        return self.workdir / f"pg{i}"

    def as_postgres(self, i: int, argv: list[str]) -> None:
        self.hosts[i].run(argv, user="postgres")

    def start(self) -> None:
        """Creates the primary, a database `station` on it, and the standby from a base backup;
        returns once the standby is streaming synchronously."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        shutil.chown(self.workdir, "postgres", "postgres")
        primary = self.data_dir(0)
        self.as_postgres(0, [str(self.bin / "initdb"), "-D", str(primary), "-U", "postgres",
                             "--auth=trust", "--no-sync", "-E", "UTF8"])
        conf = ROOT / "deploy" / "postgres-standby" / "primary.conf"
        with open(primary / "postgresql.conf", "a") as out:
            out.write(conf.read_text())
            out.write("port = 5432\n")
        with open(primary / "pg_hba.conf", "a") as out:
            subnet = self.hosts[0].lab.prefix + ".0/24"
            out.write(f"host all all {subnet} trust\nhost replication all {subnet} trust\n")
        self.launch(0)
        # Nothing is synchronous yet: the standby is made from this state.
        sh(["psql", "-h", self.hosts[0].ip, "-U", "postgres", "-d", "postgres", "-X",
            "-v", "ON_ERROR_STOP=1", "-c", "SET synchronous_commit = local",
            "-c", "CREATE DATABASE station"], timeout=60)
        standby = self.data_dir(1)
        self.as_postgres(1, [str(self.bin / "pg_basebackup"), "-h", self.hosts[0].ip,
                             "-U", "postgres", "-D", str(standby), "-R", "-X", "stream",
                             "--no-sync", "-c", "fast"])
        with open(standby / "postgresql.conf", "a") as out:
            out.write((ROOT / "deploy" / "postgres-standby" / "standby.conf").read_text())
        # The standby's primary_conninfo (written by -R) names it `standby1`, the name the
        # primary's synchronous_standby_names waits for.
        with open(standby / "postgresql.auto.conf", "a") as out:
            out.write(f"primary_conninfo = 'host={self.hosts[0].ip} port=5432 user=postgres "
                      f"application_name=standby1'\n")
        self.launch(1)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            rows = psql(self.hosts[0].ip, "SELECT sync_state FROM pg_stat_replication")
            if ["sync"] in rows:
                return
            time.sleep(0.2)
        raise RuntimeError("the standby did not become synchronous within 60 s")

    def launch(self, i: int) -> None:
        host = self.hosts[i]
        sockets = self.workdir / f"sockets{i}"
        sockets.mkdir(exist_ok=True)
        shutil.chown(sockets, "postgres", "postgres")
        process = host.spawn([str(self.bin / "postgres"), "-D", str(self.data_dir(i)),
                              "-k", str(sockets)],
                             self.log_dir / f"postgres-{i}.log", user="postgres")
        host.wait_listening(5432, process=process)

    def url(self) -> str:
        """The multi-host URL the instances get: libpq tries both and keeps the one that takes
        writes."""
        hosts = ",".join(f"{host.ip}:5432" for host in self.hosts)
        return (f"postgres://postgres@{hosts}/station"
                "?target_session_attrs=read-write&connect_timeout=2")

    def kill_primary(self) -> None:
        """SIGKILLs every process of the primary's host, as a crash of its machine would."""
        self.hosts[self.primary].kill_all()

    def promote_standby(self) -> None:
        """Promotes the standby, as a failover manager (Patroni, pg_auto_failover) would, and
        waits until it takes writes."""
        standby = 1 - self.primary
        self.as_postgres(standby, [str(self.bin / "pg_ctl"), "promote", "-w", "-D",
                                   str(self.data_dir(standby))])
        self.primary = standby

    def query(self, sql: str) -> list[list[str]]:
        """Runs `sql` on the current primary."""
        return psql(self.hosts[self.primary].ip, sql)

    def is_in_recovery(self, i: int) -> bool:
        return psql(self.hosts[i].ip, "SELECT pg_is_in_recovery()") == [["t"]]


class Instances:
    """Service instances, one per host, each on its own database URL (`urls[i]`)."""

    def __init__(self, binary: Path, hosts: list[Host], urls: list[str], log_dir: Path) -> None:
        self.binary = binary
        self.hosts = hosts
        self.urls = urls
        self.log_dir = log_dir

    def start(self, i: int) -> None:
        host = self.hosts[i]
        # The change feed's debug lines name the ids it gave up on: where a lost event is traced.
        env = {**os.environ, "DATABASE_URL": self.urls[i],
               "RUST_LOG": "warn,station_api::changes=debug"}
        process = host.spawn([str(self.binary), "serve", "--bind", f"{host.ip}:{SERVICE_PORT}",
                              "--trust-proxy"],
                             self.log_dir / f"instance-{i + 1}.log", env=env)
        host.wait_listening(SERVICE_PORT, process=process)

    def start_all(self) -> None:
        for i in range(len(self.hosts)):
            self.start(i)

    def kill(self, i: int) -> None:
        """SIGKILLs instance `i`."""
        self.hosts[i].kill_all()

    def addresses(self) -> list[str]:
        return [f"{host.ip}:{SERVICE_PORT}" for host in self.hosts]


def prepare_database(binary: Path, url: str) -> tuple[str, str, str]:
    """Migrates the database at `url` (once, before any instance starts, as the README says),
    adds the superuser `operator`; returns its password, a write token and a read token."""
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run([str(binary), "migrate"], env=env, check=True, stdout=subprocess.DEVNULL)
    password = secrets.token_urlsafe(18)
    subprocess.run([str(binary), "createsuperuser", "--username", "operator"], env=env,
                   input=password + "\n", text=True, check=True, stdout=subprocess.DEVNULL)

    def token(label: str, scope: str) -> str:
        return subprocess.run([str(binary), "createtoken", "--label", label, "--scope", scope],
                              env=env, text=True, check=True, capture_output=True).stdout.strip()

    return password, token("devices", "write"), token("subscribers", "read")


class Balancer:
    """HAProxy on `host`, with deploy/haproxy/haproxy.cfg, in front of `backends`."""

    def __init__(self, host: Host, backends: list[str], log_dir: Path) -> None:
        self.host = host
        self.backends = backends
        self.log_dir = log_dir
        self.url = f"http://{host.ip}:{BALANCER_PORT}"

    def start(self) -> None:
        env = {**os.environ, "STATION_LB_BIND": f"{self.host.ip}:{BALANCER_PORT}"}
        for i, backend in enumerate(self.backends):
            env[f"STATION_APP{i + 1}"] = backend
        config = ROOT / "deploy" / "haproxy" / "haproxy.cfg"
        process = self.host.spawn(["haproxy", "-db", "-f", str(config)],
                                  self.log_dir / "haproxy.log", env=env)
        self.host.wait_listening(BALANCER_PORT, process=process)

    def wait_ready(self, seconds: float = 60) -> None:
        """Waits until every instance is ready and the balancer has seen it so (its health
        check's `rise 2` at `inter 1s`), so long-lived streams opened next spread over all of
        them; then until the balancer answers `/readyz` itself."""
        deadline = time.monotonic() + seconds
        for address in [*self.backends, None]:
            url = f"http://{address}/readyz" if address else self.url + "/readyz"
            while True:
                try:
                    with urllib.request.urlopen(url, timeout=5) as answer:
                        if answer.status == 200:
                            break
                except (urllib.error.URLError, OSError):
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{url} did not answer 200 within {seconds} s")
                time.sleep(0.2)
            if address is not None and address == self.backends[-1]:
                time.sleep(2.5)


def request_json(method: str, url: str, auth: str, body: object | None = None) -> object:
    """One request with a JSON body; the decoded answer (raises on a status of 400 or more)."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Authorization": auth,
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read() or b"null")
