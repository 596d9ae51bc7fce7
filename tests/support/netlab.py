"""A weak mobile link for one member, built from what this kernel has (no netem):

    this namespace (server, the other member) ──veth── namespace "away" (the away member)

* **rate**: ``tbf`` on each end of the veth pair (egress of the away end = the member's
  uplink, egress of this end = its downlink);
* **loss**: nftables ``numgen random`` drops on the *input* hook of each namespace, for
  packets that came over the veth (dropping on output makes ``sendto()`` fail instead);
* **delay**: iptables ``NFQUEUE`` in the away namespace (mangle OUTPUT for the uplink,
  mangle PREROUTING for the downlink, ``--queue-bypass``) and ``tests.support.nfq_delay``
  holding each packet for half the round-trip time; it counts packets in and out;
* **cut**: nftables drops everything both ways (and lets it through again).

Needs root (network namespaces, tc, nft, iptables: ``.ci/run`` installs ``nftables`` and
``iptables``). Used by ``tests/browser/test_weaknet.py`` and ``bench/weaknet.py``; the away
member's Chromium runs inside the namespace through ``chromium_wrapper()``.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


class LabUnavailable(RuntimeError):
    """This machine cannot build the lab (not root, or a tool missing)."""


@dataclass(frozen=True)
class Condition:
    """The away member's leg. ``None`` rate: not limited."""

    name: str
    up_kbit: int | None = None
    down_kbit: int | None = None
    rtt_ms: int = 0
    loss_pct: float = 0.0  # each way

    @property
    def clean(self) -> bool:
        return not (self.up_kbit or self.down_kbit or self.rtt_ms or self.loss_pct)


CLEAN = Condition("clean")
UP_256 = Condition("256up", up_kbit=256, rtt_ms=300, loss_pct=5)
UP_256_DOWN_512 = Condition("256up+512down", up_kbit=256, down_kbit=512, rtt_ms=300, loss_pct=5)
UP_64 = Condition("64up", up_kbit=64, rtt_ms=300, loss_pct=5)
CONDITIONS = {c.name: c for c in (CLEAN, UP_256, UP_256_DOWN_512, UP_64)}


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=check, capture_output=True, text=True)


def need_tools() -> None:
    if os.geteuid() != 0:
        raise LabUnavailable("the network lab needs root (network namespaces, tc, nft, iptables)")
    for tool in ("ip", "tc", "nft", "iptables"):
        if shutil.which(tool) is None:
            raise LabUnavailable(f"{tool} is not installed (apt-get install iproute2 nftables iptables)")
    try:
        import fnfqueue  # noqa: F401
    except ImportError as exc:
        raise LabUnavailable("the fnfqueue wheel is not installed (pip install -e '.[test]')") from exc


class NetLab:
    UP_QUEUE, DOWN_QUEUE = 11, 12

    def __init__(self) -> None:
        need_tools()
        tag = f"{os.getpid() % 10000}{secrets.token_hex(2)}"
        self.ns = f"chibo-away-{tag}"
        self.near, self.far = f"wn{tag}", f"wa{tag}"
        octet = int(secrets.token_hex(1), 16) % 200 + 20
        self.server_addr, self.away_addr = f"10.{octet}.88.1", f"10.{octet}.88.2"
        self.workdir = Path(tempfile.mkdtemp(prefix="chibo-lab-"))
        self.delayers: dict[str, subprocess.Popen[bytes]] = {}
        self.condition = CLEAN
        self._cut = False
        self._up = False

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> NetLab:
        ns = self.ns
        run("ip", "netns", "add", ns)
        self._up = True
        run("ip", "link", "add", self.near, "type", "veth", "peer", "name", self.far)
        run("ip", "link", "set", self.far, "netns", ns)
        run("ip", "addr", "add", f"{self.server_addr}/30", "dev", self.near)
        run("ip", "link", "set", self.near, "up")
        self.ns_run("ip", "link", "set", "lo", "up")
        self.ns_run("ip", "addr", "add", f"{self.away_addr}/30", "dev", self.far)
        self.ns_run("ip", "link", "set", self.far, "up")
        # Loss and cuts: one table per namespace, input hook, packets that came over the veth.
        for inside in (False, True):
            rules = ("add table inet chibolab\n"
                     "add chain inet chibolab input { type filter hook input priority -200 ; }\n")
            self._nft(inside, rules)
        return self

    def close(self) -> None:
        for proc in self.delayers.values():
            proc.terminate()
        for proc in self.delayers.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
            if proc.poll() is None:
                proc.kill()
        self.delayers.clear()
        if self._up:
            with contextlib.suppress(Exception):
                self._nft(False, "delete table inet chibolab\n")
            run("ip", "link", "del", self.near, check=False)
            run("ip", "netns", "del", self.ns, check=False)
            self._up = False
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> NetLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ helpers

    def ns_run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run("ip", "netns", "exec", self.ns, *args, check=check)

    def _nft(self, inside: bool, script: str) -> None:
        command = ["nft", "-f", "-"]
        if inside:
            command = ["ip", "netns", "exec", self.ns, *command]
        subprocess.run(command, input=script, check=True, capture_output=True, text=True)

    def _loss_rules(self, inside: bool) -> str:
        dev = self.far if inside else self.near
        lines = ["flush chain inet chibolab input"]
        if self._cut:
            lines.append(f'add rule inet chibolab input iifname "{dev}" drop')
        elif self.condition.loss_pct:
            per_mille = int(round(self.condition.loss_pct * 10))
            lines.append(f'add rule inet chibolab input iifname "{dev}" numgen random mod 1000 < {per_mille} drop')
        return "\n".join(lines) + "\n"

    def _apply_loss(self) -> None:
        self._nft(False, self._loss_rules(False))
        self._nft(True, self._loss_rules(True))

    @staticmethod
    def _tbf(rate_kbit: int | None) -> list[str]:
        if rate_kbit is None:
            return []
        # A queue of about half a second at this rate, as a mobile operator's buffer is.
        burst = max(3000, rate_kbit * 1000 // 8 // 50)
        return ["tbf", "rate", f"{rate_kbit}kbit", "burst", str(burst), "latency", "500ms"]

    def _apply_rates(self) -> None:
        c = self.condition
        for inside, dev, rate in ((True, self.far, c.up_kbit), (False, self.near, c.down_kbit)):
            prefix = ["ip", "netns", "exec", self.ns] if inside else []
            if rate is None:
                subprocess.run([*prefix, "tc", "qdisc", "del", "dev", dev, "root"], capture_output=True)
            else:
                subprocess.run([*prefix, "tc", "qdisc", "replace", "dev", dev, "root", *self._tbf(rate)],
                               check=True, capture_output=True, text=True)

    def _apply_delay(self) -> None:
        one_way = self.condition.rtt_ms / 2
        for name in ("up", "down"):
            proc = self.delayers.pop(name, None)
            if proc is not None:
                proc.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(5)
        for chain in ("OUTPUT", "PREROUTING"):
            self.ns_run("iptables", "-t", "mangle", "-F", chain, check=False)
        if not one_way:
            return
        for name, queue, chain, flag, dev in (("up", self.UP_QUEUE, "OUTPUT", "-o", self.far),
                                              ("down", self.DOWN_QUEUE, "PREROUTING", "-i", self.far)):
            stats = self.workdir / f"{name}.json"
            with (self.workdir / f"{name}.log").open("wb") as log:  # the child keeps its own copy
                self.delayers[name] = subprocess.Popen(
                    ["ip", "netns", "exec", self.ns, sys.executable, "-m", "tests.support.nfq_delay",
                     "--queue", str(queue), "--delay-ms", str(one_way), "--stats", str(stats)],
                    cwd=str(ROOT), stdout=subprocess.DEVNULL, stderr=log)
            deadline = time.monotonic() + 10
            while not stats.exists():
                if self.delayers[name].poll() is not None or time.monotonic() > deadline:
                    log = (self.workdir / f"{name}.log").read_text(errors="replace")
                    raise LabUnavailable(f"the delaying program did not start: {log[-2000:]}")
                time.sleep(0.05)
            self.ns_run("iptables", "-t", "mangle", "-A", chain, flag, dev, "-j", "NFQUEUE",
                        "--queue-num", str(queue), "--queue-bypass")

    # ------------------------------------------------------------------ what tests use

    def apply(self, condition: Condition) -> None:
        self.condition = condition
        self._apply_rates()
        self._apply_loss()
        self._apply_delay()

    def cut(self, on: bool) -> None:
        """Nothing gets through either way while on (the member walks into a dead zone)."""
        self._cut = on
        self._apply_loss()

    def delay_counts(self) -> dict[str, dict[str, int]]:
        """Packets in/out of each delaying program (and overflows); raises if one died."""
        out = {}
        for name, proc in self.delayers.items():
            if proc.poll() is not None:
                raise RuntimeError(f"the {name} delaying program exited ({proc.returncode})")
            path = self.workdir / f"{name}.json"
            out[name] = json.loads(path.read_text()) if path.exists() else {}
        return out

    def chromium_wrapper(self, chromium: str = "/usr/bin/chromium") -> str:
        """An executable that runs Chromium inside the away namespace (Playwright's pipe to
        it is inherited through ``ip netns exec``)."""
        path = self.workdir / "chromium-away"
        path.write_text(f'#!/bin/sh\nexec ip netns exec {self.ns} {chromium} "$@"\n')
        path.chmod(0o755)
        return str(path)
