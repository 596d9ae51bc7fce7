"""Holds every packet of one NFQUEUE queue for a fixed time, then lets it go: the lab's delay
(the kernel here has no netem; shared/TESTING-REALTIME.md, "Weak networks and TURN").

    python -m tests.support.nfq_delay --queue 7 --delay-ms 150 --stats /tmp/q7.json

Run inside the namespace whose iptables rule sends packets to the queue (``-j NFQUEUE
--queue-num 7 --queue-bypass``). Only verdicts are exchanged (``COPY_META``: no payload is
copied). A reader thread takes packets in; a releaser thread accepts each one ``delay`` after
it arrived (a FIFO: the delay is the same for all, so the order is kept).

It must never stop silently: one that does leaves its direction black-holed for good while
the other still works, which looks exactly like a product bug. So:

* the kernel queue **fails open** (a full queue lets packets through undelayed instead of
  dropping them), and the iptables rule has ``--queue-bypass`` (no program: no delay);
* the netlink socket gets a large receive buffer;
* on a buffer overflow (``ENOBUFS``: the kernel could not hand some packets over, and
  they would wait in its queue for verdicts that never come) the queue is unbound — the
  kernel drops what waits there, a short loss burst — and bound again, and the loop goes on;
* packets in, out and overflows are counted and written to ``--stats`` every second, so a
  test can check that both directions flow.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

import fnfqueue

RCVBUF = 8 * 1024 * 1024
MAXLEN = 20_000


class Delayer:
    def __init__(self, queue: int, delay: float) -> None:
        self.queue_num = queue
        self.delay = delay
        self.counts = {"in": 0, "out": 0, "overflows": 0, "rebinds": 0, "errors": 0, "held": 0}
        self._held: collections.deque[tuple[float, Any]] = collections.deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self.conn = fnfqueue.Connection()
        self._grow_buffer()
        self._bind()

    def _grow_buffer(self) -> None:
        fd = self.conn._conn.fd  # fnfqueue has no setter for the socket's receive buffer
        with contextlib.suppress(OSError), socket.fromfd(fd, socket.AF_NETLINK, socket.SOCK_RAW) as dup:
            dup.setsockopt(socket.SOL_SOCKET, 33, RCVBUF)  # SO_RCVBUFFORCE (root): past rmem_max

    def _bind(self) -> None:
        queue = self.conn.bind(self.queue_num)
        queue.set_mode(0, fnfqueue.COPY_META)
        queue.set_maxlen(MAXLEN)
        queue.fail_open = True
        self.queue = queue

    def _rebind(self) -> None:
        """After an overflow: packets whose messages were lost wait in the kernel's queue for
        verdicts that will never come. Unbinding drops them; binding again starts afresh."""
        self.conn.reset()
        with contextlib.suppress(Exception):
            self.queue.unbind()
        self.conn.reset()
        self._bind()
        self.counts["rebinds"] += 1

    def read(self) -> None:
        while not self._stop.is_set():
            try:
                for packet in self.conn:
                    due = time.monotonic() + self.delay
                    with self._cond:
                        self._held.append((due, packet))
                        self.counts["in"] += 1
                        self._cond.notify()
                return  # the connection was closed
            except fnfqueue.BufferOverflowException:
                self.counts["overflows"] += 1
                try:
                    self._rebind()
                except Exception:
                    self.counts["errors"] += 1
                    time.sleep(0.05)
            except Exception:
                self.counts["errors"] += 1
                time.sleep(0.01)

    def release(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                while not self._held and not self._stop.is_set():
                    self._cond.wait(0.5)
                if self._stop.is_set():
                    return
                due, packet = self._held[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._cond.wait(wait)
                    continue
                self._held.popleft()
            try:
                packet.accept()
                self.counts["out"] += 1
            except Exception:  # invalidated by a rebind, or the socket closing: it is gone anyway
                self.counts["errors"] += 1

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        with contextlib.suppress(Exception):
            self.conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queue", type=int, required=True)
    parser.add_argument("--delay-ms", type=float, required=True)
    parser.add_argument("--stats", type=Path)
    args = parser.parse_args()
    delayer = Delayer(args.queue, args.delay_ms / 1000)
    signal.signal(signal.SIGTERM, lambda *_: delayer.stop())
    threads = [threading.Thread(target=delayer.read, daemon=True), threading.Thread(target=delayer.release, daemon=True)]
    for thread in threads:
        thread.start()
    while not delayer._stop.is_set():
        if args.stats is not None:
            delayer.counts["held"] = len(delayer._held)
            tmp = args.stats.with_suffix(".tmp")
            tmp.write_text(json.dumps(delayer.counts))
            os.replace(tmp, args.stats)
        delayer._stop.wait(1.0)


if __name__ == "__main__":
    main()
