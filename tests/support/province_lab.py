"""Two app machines behind a 1:1 NAT, and the members outside it, in network namespaces:

    app1 (10.N.1.2) ──┐                        ┌── members (10.N.3.2): Chromium
    app2 (10.N.2.2) ──┤  this namespace: router ┘
                      │  nftables 1:1 NAT  203.0.113.1 ⇄ 10.N.1.2, 203.0.113.2 ⇄ 10.N.2.2
                      │  PostgreSQL and Redis on 10.N.1.1 / 10.N.2.1 (the provider's network)

* Each app machine is a namespace with one veth to this one (its default route) and runs
  ``python -m app serve`` on its private address, with ``RELAY_PUBLIC_IP`` set to its public one.
* The members' namespace reaches the machines only at their public addresses: DNAT in
  prerouting, SNAT of what the machines send them in postrouting, and a forward rule that
  drops everything from the members that was not DNATed (and an input rule: they cannot reach
  the database or Redis). Forward rules count the packets each machine exchanges with them.
* PostgreSQL and Redis are started here by the lab, listening on this namespace's veth
  addresses. The host's own servers listen on the host's loopback, which a namespace created
  with ``unshare -n`` (as scripts/test runs netns tests) cannot reach; servers of our own are
  the simplest honest way to share one database and one Redis between "machines" without
  touching the host's network.

Needs root, ``ip``, ``nft``, ``redis-server`` and PostgreSQL's binaries (``.ci/run`` installs
them all). Used by tests/browser/test_two_machines.py.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.netlab import ROOT, LabUnavailable, run

PUBLIC = ("203.0.113.1", "203.0.113.2")  # TEST-NET-3: documentation addresses, never routed
HTTP_PORT = 8000


@dataclass
class Machine:
    name: str
    ns: str
    near: str  # veth end in this namespace
    far: str  # veth end in the machine's namespace
    gateway: str  # this namespace's address on the link
    private: str
    public: str
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    @property
    def url(self) -> str:
        return f"http://{self.public}:{HTTP_PORT}"


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    if not found:
        raise LabUnavailable("PostgreSQL is not installed (apt-get install postgresql)")
    return Path(found[-1]).parent


def need_tools() -> None:
    if os.geteuid() != 0:
        raise LabUnavailable("the province lab needs root (network namespaces, nftables)")
    for tool in ("ip", "nft", "redis-server", "runuser"):
        if shutil.which(tool) is None:
            raise LabUnavailable(f"{tool} is not installed")
    _postgres_bin()


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class ProvinceLab:
    def __init__(self) -> None:
        need_tools()
        tag = f"{os.getpid() % 1000}{secrets.token_hex(2)}"
        octet = int(secrets.token_hex(1), 16) % 200 + 20
        self.tag = tag
        self.machines = [
            Machine(f"app{i}", f"chibo-app{i}-{tag}", f"pn{i}{tag}", f"pf{i}{tag}",
                    f"10.{octet}.{i}.1", f"10.{octet}.{i}.2", PUBLIC[i - 1])
            for i in (1, 2)
        ]
        self.members_ns = f"chibo-members-{tag}"
        self.members_near, self.members_far = f"pn3{tag}", f"pf3{tag}"
        self.members_gateway, self.members_addr = f"10.{octet}.3.1", f"10.{octet}.3.2"
        self.workdir = Path(tempfile.mkdtemp(prefix="chibo-province-"))
        self.workdir.chmod(0o755)  # PostgreSQL runs as its own user below it
        self.pg_port = 0
        self.redis_port = 0
        self._services: list[subprocess.Popen[bytes]] = []
        self._namespaces: list[str] = []
        self._links: list[str] = []
        self.table = f"chiboprov{tag}"
        self._table = False
        self._forwarding: str | None = None

    # ------------------------------------------------------------------ network

    def _link(self, ns: str, near: str, far: str, gateway: str, address: str) -> None:
        run("ip", "netns", "add", ns)
        self._namespaces.append(ns)
        run("ip", "link", "add", near, "type", "veth", "peer", "name", far)
        self._links.append(near)
        run("ip", "link", "set", far, "netns", ns)
        run("ip", "addr", "add", f"{gateway}/30", "dev", near)
        run("ip", "link", "set", near, "up")
        run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{address}/30", "dev", far)
        run("ip", "netns", "exec", ns, "ip", "link", "set", far, "up")
        run("ip", "netns", "exec", ns, "ip", "route", "add", "default", "via", gateway)

    def _nat(self) -> None:
        members = self.members_near
        lines = [f"add table ip {self.table}",
                 f"add chain ip {self.table} dnat_in {{ type nat hook prerouting priority dstnat ; }}",
                 f"add chain ip {self.table} snat_out {{ type nat hook postrouting priority srcnat ; }}",
                 f"add chain ip {self.table} forwarded {{ type filter hook forward priority 0 ; policy accept ; }}",
                 f"add chain ip {self.table} to_router {{ type filter hook input priority 0 ; policy accept ; }}"]
        for m in self.machines:
            lines += [
                f"add rule ip {self.table} dnat_in ip daddr {m.public} dnat to {m.private}",
                f'add rule ip {self.table} snat_out oifname "{members}" ip saddr {m.private} snat to {m.public}',
                # Counted per machine and protocol (after DNAT, before SNAT: private addresses).
                f'add rule ip {self.table} forwarded iifname "{members}" ip daddr {m.private} ct status dnat '
                f'meta l4proto udp counter accept comment "members->{m.name} udp"',
                f'add rule ip {self.table} forwarded iifname "{members}" ip daddr {m.private} ct status dnat '
                f'meta l4proto tcp counter accept comment "members->{m.name} tcp"',
                f'add rule ip {self.table} forwarded oifname "{members}" ip saddr {m.private} meta l4proto udp '
                f'counter accept comment "{m.name}->members udp"',
            ]
        lines += [f'add rule ip {self.table} forwarded iifname "{members}" counter drop comment "members dropped"',
                  f'add rule ip {self.table} to_router iifname "{members}" drop']
        subprocess.run(["nft", "-f", "-"], input="\n".join(lines) + "\n", check=True, capture_output=True, text=True)
        self._table = True

    def counters(self) -> dict[str, int]:
        """Packets forwarded, by rule: ``{"members->app1 udp": n, …, "members dropped": n}``."""
        listing = json.loads(run("nft", "-j", "list", "table", "ip", self.table).stdout)
        out: dict[str, int] = {}
        for item in listing["nftables"]:
            rule = item.get("rule")
            if rule and rule.get("comment"):
                out[rule["comment"]] = next(e["counter"]["packets"] for e in rule["expr"] if "counter" in e)
        return out

    # ------------------------------------------------------------------ services

    def _postgres(self) -> None:
        binaries = _postgres_bin()
        data = self.workdir / "pg"
        data.mkdir()
        shutil.chown(data, "postgres", "postgres")
        subprocess.run(["runuser", "-u", "postgres", "--", str(binaries / "initdb"), "-D", str(data), "-A", "trust",
                        "-U", "postgres", "-E", "UTF8", "--no-locale", "--no-sync"],
                       check=True, capture_output=True, cwd="/")
        with (data / "pg_hba.conf").open("a") as hba:
            for m in self.machines:
                hba.write(f"host all all {m.gateway.rsplit('.', 1)[0]}.0/30 trust\n")
        self.pg_port = _free_port(self.machines[0].gateway)
        listen = ",".join(m.gateway for m in self.machines)
        with (self.workdir / "postgres.log").open("wb") as log:  # the child keeps its own copy
            self._services.append(subprocess.Popen(
                ["runuser", "-u", "postgres", "--", str(binaries / "postgres"), "-D", str(data),
                 "-p", str(self.pg_port), "-c", f"listen_addresses={listen}", "-c", f"unix_socket_directories={data}",
                 "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
                stdout=log, stderr=log, cwd="/"))
        self._wait_tcp(self.machines[0].gateway, self.pg_port, "PostgreSQL", self.workdir / "postgres.log")

    def _redis(self) -> None:
        self.redis_port = _free_port(self.machines[0].gateway)
        with (self.workdir / "redis.log").open("wb") as log:
            self._services.append(subprocess.Popen(
                ["redis-server", "--bind", *(m.gateway for m in self.machines), "--port", str(self.redis_port),
                 "--save", "", "--appendonly", "no", "--protected-mode", "no", "--dir", str(self.workdir)],
                stdout=log, stderr=log))
        self._wait_tcp(self.machines[0].gateway, self.redis_port, "Redis", self.workdir / "redis.log")

    def _wait_tcp(self, host: str, port: int, what: str, log: Path) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
                return
            if any(p.poll() is not None for p in self._services):
                break
            time.sleep(0.1)
        raise LabUnavailable(f"{what} did not start: {log.read_text(errors='replace')[-2000:]}")

    def database_url(self, machine: Machine | None = None) -> str:
        """The shared database, as this namespace or ``machine`` reaches it."""
        host = (machine or self.machines[0]).gateway
        return f"postgresql://postgres@{host}:{self.pg_port}/postgres"

    def redis_url(self, machine: Machine) -> str:
        return f"redis://{machine.gateway}:{self.redis_port}/0"

    # ------------------------------------------------------------------ the app machines

    def serve(self, env: dict[str, str]) -> None:
        """``python -m app serve`` on each machine, sharing the database and Redis."""
        for m in self.machines:
            m.log = self.workdir / f"{m.name}.log"
            machine_env = {
                **env, "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "DATABASE_URL": self.database_url(m), "REDIS_URL": self.redis_url(m),
                "DATA_DIR": str(self.workdir / m.name), "PUBLIC_URL": m.url, "RELAY_PUBLIC_IP": m.public,
            }
            with m.log.open("wb") as log:  # the child keeps its own copy
                m.proc = subprocess.Popen(
                    ["ip", "netns", "exec", m.ns, sys.executable, "-m", "app", "serve", "--host", m.private,
                     "--port", str(HTTP_PORT)], cwd=str(ROOT), env=machine_env, stdout=log, stderr=log)
        for m in self.machines:
            deadline = time.monotonic() + 60
            while True:
                probe = run("ip", "netns", "exec", self.members_ns, sys.executable, "-c",
                            f"import urllib.request as u; u.urlopen('{m.url}/healthz', timeout=1)", check=False)
                if probe.returncode == 0:
                    break
                if m.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{m.name} did not start: {m.log.read_text(errors='replace')[-3000:]}")
                time.sleep(0.3)

    def chromium_wrapper(self, chromium: str = "/usr/bin/chromium") -> str:
        """An executable that runs Chromium in the members' namespace (Playwright's pipe to it
        is inherited through ``ip netns exec``)."""
        path = self.workdir / "chromium-members"
        path.write_text(f'#!/bin/sh\nexec ip netns exec {self.members_ns} {chromium} "$@"\n')
        path.chmod(0o755)
        return str(path)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> ProvinceLab:
        try:
            for m in self.machines:
                self._link(m.ns, m.near, m.far, m.gateway, m.private)
            self._link(self.members_ns, self.members_near, self.members_far, self.members_gateway, self.members_addr)
            forwarding = Path("/proc/sys/net/ipv4/ip_forward")  # this namespace's own
            self._forwarding = forwarding.read_text()
            forwarding.write_text("1\n")
            self._nat()
            self._postgres()
            self._redis()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        procs = [m.proc for m in self.machines if m.proc is not None] + self._services
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self._table:
            run("nft", "delete", "table", "ip", self.table, check=False)
        if self._forwarding is not None:
            Path("/proc/sys/net/ipv4/ip_forward").write_text(self._forwarding)
        for link in self._links:
            run("ip", "link", "del", link, check=False)
        for ns in self._namespaces:
            run("ip", "netns", "del", ns, check=False)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> ProvinceLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def logs(self) -> str:
        return "\n".join(f"--- {m.name}\n{m.log.read_text(errors='replace')[-3000:]}"
                         for m in self.machines if m.log is not None and m.log.exists())
