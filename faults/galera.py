"""A three-node MariaDB Galera cluster, one node per lab host, for the fault tests.

Each node is Debian's `mariadbd` with Debian's Galera 4 provider, in the namespace of its host,
with a datadir, socket, pid file, tmpdir and config file of its own under `workdir/node<i>/`.
The server reads only that config file (`--defaults-file`), never /etc/mysql; the SST scripts
the server starts are handed the same file, so they see the same settings. The server's output
goes to `log_dir/galera-node<i>.log`. Each node listens on its host's address: 3306 for clients,
4567 for group communication, 4568 for IST and 4444 for SST.

`start` makes a new cluster: node 0 bootstraps it (`--wsrep-new-cluster`) and creates the
database `station` and a `root` that logs in from anywhere without a password (a test lab only);
nodes 1 and 2 then join it by state snapshot transfer (SST). `kill` is a power cut of one node;
`restart` starts it again the way a service manager would after a crash: it first recovers the
node's last committed position from InnoDB (`--wsrep-recover`, as Debian's `galera_recovery`
does), then starts it with that position, so it catches up from a donor's write-set cache (IST)
instead of copying everything (SST). It never bootstraps: it joins whichever nodes are still up,
so it does not matter which node was killed, the bootstrap one included. When every node was
killed, `restart(i, wait=False)` on each then `wait_synced` on each brings the cluster back on its
own (Galera's `pc.recovery` remembers the last primary component in gvwstate.dat).

What clients see, measured here: after a SIGKILL the surviving nodes hold every commit for about
6 s, until Galera declares the node gone (`evs.suspect_timeout`, 5 s by default); a restarted
node accepts connections before it is Synced, and until then answers statements with error 1047
(`WSREP has not yet prepared node for application use`); concurrent writes through different
nodes to the same rows abort all but one with error 1213 (`Deadlock found when trying to get
lock; try restarting transaction`), at COMMIT or at the next statement.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lab import Host, sh

MARIADBD = "/usr/sbin/mariadbd"
INSTALL_DB = "/usr/bin/mariadb-install-db"
CLIENT = "/usr/bin/mariadb"
PROVIDER = "/usr/lib/galera/libgalera_smm.so"
PORT = 3306
CLUSTER_NAME = "station-lab"
DATABASE = "station"

#: The config of node `{index}`; everything the server and the SST scripts read. The comments
#: on each setting are in deploy/galera/galera.cnf, the hand-run version of the same file.
CONFIG = """\
[mysqld]
user = mysql
datadir = {datadir}
socket = {socket}
pid_file = {pid_file}
tmpdir = {node_dir}/tmp
port = {port}
bind_address = {ip},127.0.0.1
skip_name_resolve = ON
performance_schema = OFF

default_storage_engine = InnoDB
binlog_format = ROW
innodb_autoinc_lock_mode = 2
innodb_buffer_pool_size = 64M
innodb_log_file_size = 32M
innodb_flush_log_at_trx_commit = {flush_log_at_trx_commit}

wsrep_on = ON
wsrep_provider = {provider}
wsrep_cluster_name = {cluster_name}
wsrep_cluster_address = gcomm://{peers}
wsrep_node_name = node{index}
wsrep_node_address = {ip}
wsrep_sst_method = {sst_method}
wsrep_provider_options = "gcache.size={gcache_size}; gcache.recover=yes{provider_options}"
{extra_mysqld}

[sst]
sst_log_archive_dir = {node_dir}/sst-log-archive

[client]
socket = {socket}
"""


class Galera:
    """A Galera cluster of one MariaDB node on each of `hosts` (three of them).

    `workdir` holds each node's datadir and config (`workdir/node<i>/`); `log_dir` the servers'
    logs. `sst_method` is `rsync` (the donor is read-locked for the whole copy: about 1.5 s
    here) or `mariabackup` (the donor keeps taking writes; needs Debian's `mariadb-backup`, and
    its donor script sleeps 10 s before sending anything, so each SST takes 10 s longer).
    `flush_log_at_trx_commit` is InnoDB's: 1 syncs the log on every commit; 2 writes it to the
    OS on commit and syncs once a second, which survives a SIGKILL of the server (not a kernel
    crash) and is what Galera deployments often use, the other nodes holding the commit.
    `provider_options` are appended to Galera's `wsrep_provider_options` (e.g.
    `"evs.suspect_timeout=PT2S"`). `extra_mysqld` is appended to the `[mysqld]` section as it
    is (e.g. `"plugin_load_add = sql_errlog"` to log every statement that fails, with its error,
    in the datadir's sql_errors.log).
    """

    def __init__(self, hosts: list[Host], workdir: Path, log_dir: Path, *,
                 sst_method: str = "rsync", gcache_size: str = "64M",
                 flush_log_at_trx_commit: int = 1, provider_options: str = "",
                 extra_mysqld: str = "") -> None:
        if len(hosts) != 3:
            raise ValueError(f"a Galera lab cluster has 3 nodes, not {len(hosts)}")
        self.hosts = hosts
        self.workdir = Path(workdir).resolve()
        self.log_dir = Path(log_dir).resolve()
        self.sst_method = sst_method
        self.gcache_size = gcache_size
        self.flush_log_at_trx_commit = flush_log_at_trx_commit
        self.provider_options = provider_options
        self.extra_mysqld = extra_mysqld
        self.processes: list[subprocess.Popen | None] = [None] * len(hosts)
        #: Seconds each phase took: install, bootstrap, join (`start`), rejoin<i> (`restart`).
        self.timings: dict[str, float] = {}
        if sst_method == "mariabackup" and shutil.which("mariadb-backup") is None:
            raise RuntimeError("wsrep_sst_method=mariabackup needs mariadb-backup "
                               "(apt-get install mariadb-backup), or use sst_method='rsync'")
        for i in range(len(hosts)):
            if len(str(self.socket(i)).encode()) > 100:
                raise ValueError(f"{self.socket(i)} is too long for a Unix socket; "
                                 "use a shorter workdir")

    # Paths of node i.

    def node_dir(self, i: int) -> Path:
        """Node `i`'s directory: its config, socket, pid file and datadir."""
        return self.workdir / f"node{i}"

    def datadir(self, i: int) -> Path:
        """Node `i`'s datadir."""
        return self.node_dir(i) / "data"

    def config(self, i: int) -> Path:
        """Node `i`'s config file, the only one its server reads."""
        return self.node_dir(i) / "my.cnf"

    def socket(self, i: int) -> Path:
        """Node `i`'s Unix socket, where root@localhost logs in (unix_socket authentication)."""
        return self.node_dir(i) / "mysqld.sock"

    def log(self, i: int) -> Path:
        """Node `i`'s server log: every start of it, appended."""
        return self.log_dir / f"galera-node{i}.log"

    def url(self, i: int) -> str:
        """The service's database URL for node `i`."""
        return f"mysql://root@{self.hosts[i].ip}:{PORT}/{DATABASE}"

    # The cluster.

    def start(self) -> None:
        """Makes a new cluster: wipes any earlier one, bootstraps node 0, joins nodes 1 and 2.

        Returns when all three are Synced in a cluster of 3, with the database `station` and a
        passwordless `root@'%'`. The phases' durations go to `self.timings`.
        """
        began = time.monotonic()
        for host in self.hosts:
            host.kill_all()
        with ThreadPoolExecutor(len(self.hosts)) as pool:
            list(pool.map(self.install, range(len(self.hosts))))
        self.timings["install"] = time.monotonic() - began

        began = time.monotonic()
        self.launch(0, ["--wsrep-new-cluster"])
        self.wait_state(0, cluster_size=1, seconds=60, via_socket=True)
        # The first node is its own primary component; everything done on it from here on is
        # replicated (users and databases by total order isolation), and joiners get it by SST.
        self.socket_query(0, f"CREATE USER IF NOT EXISTS 'root'@'%' IDENTIFIED BY '';"
                             f"GRANT ALL PRIVILEGES ON *.* TO 'root'@'%' WITH GRANT OPTION;"
                             f"CREATE DATABASE IF NOT EXISTS `{DATABASE}`")
        self.timings["bootstrap"] = time.monotonic() - began

        began = time.monotonic()
        for i in range(1, len(self.hosts)):
            self.launch(i)
            self.wait_state(i, cluster_size=i + 1, seconds=180)
        for i in range(len(self.hosts)):
            self.wait_synced(i, 60)
        self.timings["join"] = time.monotonic() - began

    def install(self, i: int) -> None:
        """Writes node `i`'s config and an empty datadir (`mariadb-install-db`)."""
        node_dir = self.node_dir(i)
        if node_dir.exists():
            shutil.rmtree(node_dir)
        self.datadir(i).mkdir(parents=True)
        (node_dir / "tmp").mkdir()
        self.config(i).write_text(self.config_text(i))
        sh(["chown", "-R", "mysql:mysql", str(node_dir)])
        # --skip-test-db: no `test` database, anonymous users or their grants.
        done = sh([INSTALL_DB, f"--defaults-file={self.config(i)}", "--skip-test-db",
                   "--auth-root-authentication-method=socket"], check=False)
        if done.returncode != 0:
            raise RuntimeError(f"mariadb-install-db for node{i} exited with {done.returncode}:\n"
                               f"{done.stdout}{done.stderr}")

    def config_text(self, i: int) -> str:
        """The config file of node `i`."""
        return CONFIG.format(
            index=i, node_dir=self.node_dir(i), ip=self.hosts[i].ip, port=PORT,
            datadir=self.datadir(i), socket=self.socket(i),
            pid_file=self.node_dir(i) / "mysqld.pid",
            provider=PROVIDER, cluster_name=CLUSTER_NAME,
            peers=",".join(host.ip for host in self.hosts), sst_method=self.sst_method,
            gcache_size=self.gcache_size, flush_log_at_trx_commit=self.flush_log_at_trx_commit,
            provider_options=f"; {self.provider_options}" if self.provider_options else "",
            extra_mysqld=self.extra_mysqld)

    def launch(self, i: int, extra: list[str] | None = None) -> subprocess.Popen:
        """Starts node `i`'s server in its namespace, without waiting for it."""
        host = self.hosts[i]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log(i), "a") as log:
            log.write(f"\n==== {time.strftime('%H:%M:%S')} galera.py starts node{i}: "
                      f"{' '.join(extra or [])}\n")
        argv = [MARIADBD, f"--defaults-file={self.config(i)}", *(extra or [])]
        self.processes[i] = host.spawn(self.resolving_lab_names(i, argv), self.log(i))
        return self.processes[i]

    def resolving_lab_names(self, i: int, argv: list[str]) -> list[str]:
        """`argv` run with an /etc/hosts naming the lab's nodes and a resolv.conf with no server.

        The namespaces reach no DNS server, so each lookup would wait 10 s for its timeouts;
        rsync's daemon (the joiner's end of an rsync SST) looks up the name of every client
        that connects, and an SST makes seven connections. The files are bind-mounted in a
        mount namespace of the server's own, so nothing else sees them.
        """
        hosts = self.node_dir(i) / "hosts"
        hosts.write_text("127.0.0.1 localhost\n" + "".join(
            f"{host.ip} node{n} {host.name}\n" for n, host in enumerate(self.hosts)))
        resolv = self.node_dir(i) / "resolv.conf"
        resolv.write_text("# no DNS in the lab: lookups not in /etc/hosts fail at once\n"
                          "nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        script = ('mount --bind "$1" /etc/hosts && mount --bind "$2" /etc/resolv.conf '
                  '&& shift 2 && exec "$@"')
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                str(hosts), str(resolv), *argv]

    def kill(self, i: int) -> None:
        """SIGKILLs node `i` and everything else in its namespace (an SST's helpers too)."""
        self.hosts[i].kill_all()
        self.processes[i] = None

    def wait_evicted(self, i: int, seconds: float = 60) -> None:
        """Waits until the nodes still running have dropped killed node `i` from their cluster.

        They notice a SIGKILLed node after about 6 s (`evs.suspect_timeout`). A node restarted
        before that comes back with the same identity, and they admit it only once they have
        dropped its old self and waited some more: 15 to 20 s from the restart to Synced
        instead of about 4 s. Call this between `kill` and `restart` to not measure that.
        """
        others = [j for j, process in enumerate(self.processes)
                  if j != i and process is not None and process.poll() is None]
        deadline = time.monotonic() + seconds
        for j in others:
            while True:
                try:
                    size = int(self.status(j).get("wsrep_cluster_size", "0"))
                except (RuntimeError, subprocess.TimeoutExpired, ValueError):
                    size = len(self.hosts)
                if size <= len(others):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"node{j} still counts node{i} after {seconds} s")
                time.sleep(0.2)

    def restart(self, i: int, wait: bool = True) -> None:
        """Starts node `i` again after `kill`; it rejoins the nodes that are up (IST or SST).

        With `wait`, returns when it is Synced in a cluster of 3 (see `wait_evicted` for why
        that takes longer if the node was killed only seconds before). Without, returns once it
        is started, e.g. to start several nodes before waiting for any (a cluster whose every
        node was killed forms again only when they are all back: each waits for the others).
        """
        began = time.monotonic()
        self.kill(i)  # leftovers, such as an SST helper of the killed server
        extra = []
        position = self.recover_position(i)
        if position is not None:
            extra.append(f"--wsrep-start-position={position}")
        self.launch(i, extra)
        if wait:
            self.wait_synced(i, 180)
            self.timings[f"rejoin{i}"] = time.monotonic() - began

    def recover_position(self, i: int) -> str | None:
        """Node `i`'s last committed `uuid:seqno`, read from InnoDB, or None if it has none.

        After a crash grastate.dat says seqno -1; without the position from InnoDB, the node
        would need a full SST. This is what Debian's galera_recovery does for systemd.
        """
        if not (self.datadir(i) / "ibdata1").exists():
            return None
        recovery_log = self.node_dir(i) / "wsrep-recover.log"
        recovery_log.unlink(missing_ok=True)
        began = time.monotonic()
        done = self.hosts[i].run([MARIADBD, f"--defaults-file={self.config(i)}",
                                  "--wsrep-recover", f"--log-error={recovery_log}"],
                                 check=False, timeout=120)
        text = recovery_log.read_text(errors="replace") if recovery_log.exists() else ""
        with open(self.log(i), "a") as log:
            log.write(f"==== wsrep-recover exited {done.returncode} after "
                      f"{time.monotonic() - began:.1f} s:\n{text}{done.stdout}{done.stderr}")
        found = re.findall(r"WSREP: Recovered position: (\S+:-?\d+)", text)
        if done.returncode != 0 or not found or found[-1].endswith(":-1"):
            return None
        return found[-1]

    def stop(self) -> None:
        """SIGKILLs every node. Their datadirs stay."""
        for i in range(len(self.hosts)):
            self.kill(i)

    # Asking the nodes.

    def query(self, i: int, sql: str, database: str | None = DATABASE,
              timeout: float = 30) -> list[list[str]]:
        """Runs `sql` on node `i` over TCP from the root namespace; its rows, NULL as "NULL".

        As root, in `database` (`station` unless told otherwise; None for none).
        """
        argv = [CLIENT, "--no-defaults", "-h", self.hosts[i].ip, "-P", str(PORT), "-u", "root",
                "--batch", "--skip-column-names", "--connect-timeout=5", "-e", sql]
        if database:
            argv.append(database)
        return parse_rows(run_client(argv, timeout))

    def socket_query(self, i: int, sql: str, timeout: float = 30) -> list[list[str]]:
        """Runs `sql` on node `i` through its Unix socket as root@localhost (unix_socket)."""
        argv = [CLIENT, "--no-defaults", f"--socket={self.socket(i)}", "-u", "root",
                "--batch", "--skip-column-names", "-e", sql]
        return parse_rows(run_client(argv, timeout))

    def session(self, i: int) -> "SqlSession":
        """A client session on node `i` that stays open between statements (for a transaction
        held open, or a lock)."""
        return SqlSession([CLIENT, "--no-defaults", "-h", self.hosts[i].ip, "-P", str(PORT),
                           "-u", "root", "--batch", "--skip-column-names", "--unbuffered",
                           DATABASE])

    def status(self, i: int, via_socket: bool = False) -> dict[str, str]:
        """Node `i`'s wsrep status variables (`SHOW GLOBAL STATUS LIKE 'wsrep%'`)."""
        sql = "SHOW GLOBAL STATUS LIKE 'wsrep%'"
        rows = (self.socket_query(i, sql, 10) if via_socket
                else self.query(i, sql, database=None, timeout=10))
        return {row[0]: row[1] if len(row) > 1 else "" for row in rows}

    def wait_synced(self, i: int, seconds: float = 120) -> None:
        """Waits until node `i` is Synced in a primary component of all 3 nodes."""
        self.wait_state(i, cluster_size=len(self.hosts), seconds=seconds)

    def wait_state(self, i: int, cluster_size: int, seconds: float,
                   via_socket: bool = False) -> None:
        """Waits until node `i` is Synced, ready, in a primary component of `cluster_size`."""
        deadline = time.monotonic() + seconds
        last = "no answer yet"
        while time.monotonic() < deadline:
            process = self.processes[i]
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"node{i} exited with {process.returncode} before it was "
                                   f"Synced; the end of {self.log(i)}:\n{self.log_tail(i)}")
            try:
                status = self.status(i, via_socket)
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                last = str(error).strip()
                time.sleep(0.2)
                continue
            seen = (status.get("wsrep_local_state_comment"), status.get("wsrep_cluster_size"),
                    status.get("wsrep_cluster_status"), status.get("wsrep_ready"))
            last = ("wsrep_local_state_comment={} wsrep_cluster_size={} "
                    "wsrep_cluster_status={} wsrep_ready={}").format(*seen)
            if seen == ("Synced", str(cluster_size), "Primary", "ON"):
                return
            time.sleep(0.2)
        raise RuntimeError(f"node{i} is not Synced in a cluster of {cluster_size} after "
                           f"{seconds} s ({last}); the end of {self.log(i)}:\n{self.log_tail(i)}")

    def log_tail(self, i: int, lines: int = 40) -> str:
        """The last `lines` lines of node `i`'s log."""
        try:
            return "\n".join(self.log(i).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class SqlSession:
    """One `mariadb` client kept running: statements sent one at a time on one connection."""

    def __init__(self, argv: list[str]) -> None:
        self.process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self.statements = 0

    def run(self, sql: str) -> list[list[str]]:
        """Runs `sql` (no trailing `;`) and returns its rows; RuntimeError on an error."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.statements += 1
        marker = f"statement {self.statements} done"
        self.process.stdin.write(f"{sql};\nSELECT '{marker}';\n")
        self.process.stdin.flush()
        lines = []
        while True:
            line = self.process.stdout.readline()
            if not line:
                raise RuntimeError(f"the client ended during {sql!r}: {''.join(lines)}")
            if line.rstrip("\n") == marker:
                break
            lines.append(line)
        if lines and lines[0].startswith("ERROR"):
            raise RuntimeError(f"{sql!r}: {''.join(lines).strip()}")
        return parse_rows("".join(lines))

    def close(self) -> None:
        """Ends the session (an open transaction rolls back, a lock is released)."""
        self.process.kill()
        self.process.wait()


def run_client(argv: list[str], timeout: float) -> str:
    """Runs the `mariadb` client; its output, or RuntimeError with its error message."""
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip() or f"mariadb exited with {done.returncode}")
    return done.stdout


def parse_rows(output: str) -> list[list[str]]:
    """The rows of `mariadb --batch` output, with its escapes (\\t \\n \\0 \\\\) undone."""
    escapes = {"t": "\t", "n": "\n", "0": "\0", "\\": "\\"}
    unescape = re.compile(r"\\(.)")
    return [[unescape.sub(lambda m: escapes.get(m.group(1), m.group(0)), field)
             for field in line.split("\t")]
            for line in output.splitlines()]
