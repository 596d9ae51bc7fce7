"""A real TURN server for tests: Debian's coturn (``turnserver``) bound to loopback.

It runs with ``use-auth-secret`` and a secret generated per test session, the way production
runs it (README, "TURN"), so the app's TURN REST credentials are checked by the real thing.
Loopback needs ``--allow-loopback-peers`` (otherwise every permission gets 403). Ports are its
own: a free listening port, and a relay range above the kernel's ephemeral ports (where the
other tests' servers and sockets live) checked free before use.

coturn is installed by .ci/run (``apt-get install coturn``), never downloaded; without it the
fixture skips, which CI turns into a failure.
"""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from app.config import Settings
from realtime import tokens

HOST = "127.0.0.1"
RELAY_PORTS = 100
STUN_MAGIC = 0x2112A442


@dataclass(frozen=True)
class Coturn:
    host: str
    port: int
    secret: str
    realm: str
    min_port: int
    max_port: int
    log: Path

    @property
    def url(self) -> str:
        return f"turn:{self.host}:{self.port}?transport=udp"

    def credentials(self, user: str, ttl_seconds: int) -> tuple[str, str]:
        return tokens.turn_credentials(self.secret, user, ttl_seconds)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _free(port: int, *kinds: int, host: str = HOST) -> bool:
    for kind in kinds:
        with socket.socket(socket.AF_INET, kind) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


def listening_port(host: str = HOST) -> int:
    """A port free for both UDP and TCP (coturn listens on both)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if _free(port, socket.SOCK_STREAM, host=host):
            return port
    raise RuntimeError("no free port for coturn")


def relay_port_range(size: int = RELAY_PORTS, host: str = HOST) -> tuple[int, int]:
    """``size`` consecutive UDP ports above the ephemeral range, all free right now."""
    ephemeral_top = 60999
    with contextlib.suppress(OSError, ValueError):
        ephemeral_top = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[1])
    low_bound = max(ephemeral_top + 1, 1024)
    if low_bound + size > 65535:
        low_bound = 20000  # an odd kernel setting: fall back to a range below it, still checked
    for _ in range(50):
        start = random.randrange(low_bound, 65535 - size)
        start += start % 2  # an even start, as RTP likes
        if all(_free(port, socket.SOCK_DGRAM, host=host) for port in range(start, start + size)):
            return start, start + size - 1
    raise RuntimeError("no free relay port range for coturn")


def stun_binding(host: str, port: int, timeout: float = 0.2) -> bool:
    """True if a STUN Binding request to host:port (UDP) gets a success response."""
    transaction = secrets.token_bytes(12)
    request = struct.pack("!HHI", 0x0001, 0, STUN_MAGIC) + transaction
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(request, (host, port))
            data = sock.recv(2048)
        except OSError:  # timeout, or "connection refused" from an ICMP port unreachable
            return False
    return len(data) >= 20 and struct.unpack("!H", data[:2])[0] == 0x0101 and data[8:20] == transaction


@contextlib.contextmanager
def running_coturn(workdir: Path, *, realm: str = "chibo.test", host: str = HOST) -> Iterator[Coturn]:
    """coturn on ``host`` (loopback; the network lab passes its own address)."""
    binary = shutil.which("turnserver") or "/usr/bin/turnserver"
    if not os.access(binary, os.X_OK):
        pytest.skip("coturn is not installed (apt-get install coturn; .ci/run does)")
    workdir.mkdir(parents=True, exist_ok=True)
    port = listening_port(host)
    low, high = relay_port_range(host=host)
    server = Coturn(host=host, port=port, secret=secrets.token_urlsafe(24), realm=realm,
                    min_port=low, max_port=high, log=workdir / "turnserver.log")
    command = [
        binary, "-n",  # no configuration file: /etc/turnserver.conf plays no part
        f"--listening-ip={host}", f"--relay-ip={host}", f"--listening-port={port}",
        f"--min-port={low}", f"--max-port={high}",
        "--use-auth-secret", f"--static-auth-secret={server.secret}", f"--realm={realm}",
        "--allow-loopback-peers", "--no-tls", "--no-dtls", "--no-cli", "--no-rfc5780",
        "--relay-threads=1", f"--pidfile={workdir / 'turnserver.pid'}", f"--db={workdir / 'turndb'}",
        "--log-file=stdout", "--simple-log",
    ]
    with server.log.open("wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not stun_binding(host, port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"coturn did not start (exit {proc.poll()}):\n{server.log_text()[-3000:]}")
            time.sleep(0.02)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def relay_settings(base: Settings, server: Coturn, **overrides: Any) -> Settings:
    """``base`` with the TURN server configured and media forced through it."""
    values = {**base.values, "ICE_SERVERS": [server.url], "TURN_SECRET": server.secret,
              "ICE_TRANSPORT_POLICY": "relay", **overrides}
    return Settings.from_env({}, **values)


@pytest.fixture(scope="session")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    """One coturn for the test session (started on first use, stopped at the end)."""
    with running_coturn(tmp_path_factory.mktemp("coturn")) as server:
        yield server
