"""Hosts for the fault tests: network namespaces on one bridge, and the processes started in them.

Each host is a network namespace with one veth pair whose other end is on a bridge in the root
namespace, so the hosts reach each other and the root namespace (where the load generator runs)
at their own addresses, and nothing else. `Lab.close` kills every process of every host and
removes the namespaces, the veths and the bridge, also after a failed run (`atexit`).
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import subprocess
import time
from pathlib import Path


def sh(argv: list[str], check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    """Runs `argv`, its output captured as text."""
    return subprocess.run(argv, check=check, capture_output=True, text=True, **kwargs)


class Host:
    """One network namespace, named `name`, at `ip` on the lab's bridge."""

    def __init__(self, lab: "Lab", name: str, ip: str) -> None:
        self.lab = lab
        self.name = name
        self.ip = ip
        self.processes: list[subprocess.Popen] = []

    def argv(self, argv: list[str], user: str | None = None) -> list[str]:
        """`argv` run inside this namespace, as `user` if given."""
        prefix = ["ip", "netns", "exec", self.name]
        if user:
            prefix += ["runuser", "-u", user, "--"]
        return prefix + argv

    def run(self, argv: list[str], user: str | None = None, check: bool = True,
            **kwargs) -> subprocess.CompletedProcess:
        """Runs `argv` in this namespace to its end."""
        return sh(self.argv(argv, user), check=check, **kwargs)

    def spawn(self, argv: list[str], log: Path, user: str | None = None,
              env: dict[str, str] | None = None) -> subprocess.Popen:
        """Starts `argv` in this namespace in a session of its own, its output appended to `log`."""
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            process = subprocess.Popen(self.argv(argv, user), stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True,
                                       env=env)
        self.processes.append(process)
        return process

    def pids(self) -> list[int]:
        """Every process running in this namespace."""
        listed = sh(["ip", "netns", "pids", self.name], check=False).stdout.split()
        return [int(pid) for pid in listed if pid.isdigit()]

    def kill_all(self) -> None:
        """SIGKILLs every process in this namespace, as a power cut would, and reaps them."""
        for _ in range(50):
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        for process in self.processes:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.processes.clear()

    def wait_listening(self, port: int, seconds: float = 60,
                       process: subprocess.Popen | None = None) -> None:
        """Waits until something accepts TCP connections at this host's `port`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{self.name}: the process exited with {process.returncode} "
                                   f"before listening on {port}")
            try:
                with socket.create_connection((self.ip, port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.name}: nothing listens on {self.ip}:{port} after {seconds} s")


class Lab:
    """A bridge named `bridge` with address `prefix`.1/24 in the root namespace, and hosts on it."""

    def __init__(self, tag: str = "st", prefix: str = "10.88.0") -> None:
        self.tag = tag
        self.prefix = prefix
        self.bridge = f"{tag}br0"
        self.hosts: list[Host] = []
        self.close()  # what an earlier, interrupted run left behind
        sh(["ip", "link", "add", self.bridge, "type", "bridge"])
        sh(["ip", "addr", "add", f"{prefix}.1/24", "dev", self.bridge])
        sh(["ip", "link", "set", self.bridge, "up"])
        atexit.register(self.close)

    def host(self, name: str, last_octet: int) -> Host:
        """The namespace `<tag>-<name>` at `prefix`.`last_octet`, plugged into the bridge; added
        on first use."""
        netns = f"{self.tag}-{name}"
        for host in self.hosts:
            if host.name == netns:
                return host
        outside = f"{self.tag}v{last_octet}"
        ip = f"{self.prefix}.{last_octet}"
        sh(["ip", "netns", "add", netns])
        sh(["ip", "link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", netns])
        sh(["ip", "link", "set", outside, "master", self.bridge, "up"])
        inside = ["ip", "netns", "exec", netns, "ip"]
        sh(inside + ["addr", "add", f"{ip}/24", "dev", "eth0"])
        sh(inside + ["link", "set", "eth0", "up"])
        sh(inside + ["link", "set", "lo", "up"])
        sh(inside + ["route", "add", "default", "via", f"{self.prefix}.1"])
        host = Host(self, netns, ip)
        self.hosts.append(host)
        return host

    def close(self) -> None:
        """Kills every process in the lab's namespaces and removes them and the bridge."""
        listed = sh(["ip", "netns", "list"], check=False).stdout.split("\n")
        names = [line.split()[0] for line in listed if line.startswith(f"{self.tag}-")]
        for name in names:
            Host(self, name, "").kill_all()
            sh(["ip", "netns", "del", name], check=False)
        sh(["ip", "link", "del", self.bridge], check=False)
        self.hosts.clear()
