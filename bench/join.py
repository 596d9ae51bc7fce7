"""Joining under a rush: members of pilot cells fetch a join token and open the room's socket.

    .venv/bin/python -m bench.join [--members 2000] [--ramp 10] [--concurrency 500]

N away members of pilot cells (rooms of ten, meetings open; real accounts with login sessions
started the way login starts them) each do what the room page does at 19:30: fetch a join token
over HTTP (``GET /meetings/{id}/room/token`` with the session cookie), open the WebSocket, say
``hello`` and wait for ``welcome`` with the room's state. Arrivals ramp up linearly over
``--ramp`` seconds (the rush builds to its peak at the end), at most ``--concurrency`` joins in
flight; every member stays connected. Each join is timed from its token request to its
``welcome``. The same arrivals then go to a bare Starlette WebSocket route under uvicorn that
only accepts and answers ``hello`` (no token, no database), in the same run.

The clients run in a separate process; the database is a fresh SQLite file, or a fresh schema
of the PostgreSQL database given with ``--database-url`` (default: ``DATABASE_URL`` when it is
a PostgreSQL URL). The last line is machine-readable:

    joins=2000 joins_per_s=… p50_ms=… p99_ms=… bare_joins_per_s=…

(``joins_per_s``: joins completed over the time from the first request to the last welcome.)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.signalling import ROOM_SIZE, AppServer, Seat, build_database, free_port, wait_port  # noqa: E402

BARE_SERVER = r'''
import sys
import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute

async def room(websocket):
    await websocket.accept()
    hello = await websocket.receive_json()
    await websocket.send_json({"type": "welcome", "version": hello.get("version"), "participants": []})
    try:
        while True:
            await websocket.receive_text()
    except Exception:
        pass

app = Starlette(routes=[WebSocketRoute("/ws/meetings/{meeting_id:int}", room)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
'''


class BareServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=15)


def arrivals(count: int, ramp: float) -> list[float]:
    """Start offsets rising linearly in rate from zero to the peak at ``ramp`` seconds: the
    k-th of n starts at ramp * sqrt(k / n)."""
    return [ramp * ((k + 1) / count) ** 0.5 for k in range(count)]


def client_worker(base: str, seats: list[tuple[int, str]], bare: bool, ramp: float, concurrency: int,
                  out: mp.Queue) -> None:  # type: ignore[type-arg]
    try:
        out.put(("done", asyncio.run(_rush(base, seats, bare, ramp, concurrency))))
    except BaseException as exc:  # always report, so the bench never waits for a dead worker
        out.put(("failed", repr(exc)))


async def _rush(base: str, seats: list[tuple[int, str]], bare: bool, ramp: float,
                concurrency: int) -> dict[str, Any]:
    import httpx2
    from websockets.asyncio.client import connect

    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []
    failures: list[str] = []
    sockets = []
    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx2.AsyncClient(base_url=base, limits=limits, timeout=60) as http:

        async def join(meeting_id: int, cookie: str) -> None:
            async with gate:
                t0 = time.perf_counter()
                try:
                    token = None
                    if not bare:
                        r = await http.get(f"/meetings/{meeting_id}/room/token",
                                           headers={"Cookie": f"chibo_session={cookie}"})
                        r.raise_for_status()
                        token = r.json()["token"]
                    ws = await connect(f"{base.replace('http', 'ws')}/ws/meetings/{meeting_id}", origin=base,  # type: ignore[arg-type]
                                       additional_headers={"Cookie": f"chibo_session={cookie}"},
                                       compression=None, open_timeout=60, max_size=2**22)
                    await ws.send(json.dumps({"type": "hello", "version": 1, "token": token, "device": "member",
                                              "audio": True, "video": False}))
                    while True:
                        message = json.loads(await ws.recv())
                        if message["type"] == "welcome":
                            break
                        if message["type"] == "error":
                            raise RuntimeError(f"{message['code']}: {message.get('message')}")
                    latencies.append(time.perf_counter() - t0)
                    sockets.append(ws)
                except Exception as exc:
                    failures.append(repr(exc))

        async def arrive(offset: float, seat: tuple[int, str]) -> None:
            await asyncio.sleep(max(0.0, start + offset - time.perf_counter()))
            await join(*seat)

        start = time.perf_counter()
        await asyncio.gather(*(arrive(o, s) for o, s in zip(arrivals(len(seats), ramp), seats, strict=True)))
        wall = time.perf_counter() - start
        for ws in sockets:
            await ws.close()
    return {"latencies": latencies, "failures": failures[:5], "failed": len(failures), "wall": wall}


def run(label: str, base: str, seats: list[Seat], bare: bool, ramp: float, concurrency: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    out: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    worker = ctx.Process(target=client_worker, args=(base, [(s.meeting_id, s.cookie) for s in seats], bare, ramp,
                                                     concurrency, out))
    worker.start()
    kind, result = out.get(timeout=600)
    worker.join(timeout=30)
    if kind == "failed" or result["failed"]:
        raise SystemExit(f"{label}: joins failed: {result if kind == 'done' else result}")
    lat = sorted(result["latencies"])

    def pct(q: float) -> float:
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000

    stats = {"joins": len(lat), "per_s": len(lat) / result["wall"], "p50": pct(0.5), "p99": pct(0.99)}
    print(f"  {label:<28} {stats['joins']:>6} joins in {result['wall']:6.2f} s  {stats['per_s']:7.1f} joins/s  "
          f"p50 {stats['p50']:7.1f} ms  p99 {stats['p99']:7.1f} ms", flush=True)
    return stats


@contextmanager
def database(tmp: Path, url: str) -> Iterator[Path | str]:
    """A fresh SQLite file, or a fresh schema in the PostgreSQL database at ``url`` (dropped after)."""
    if not url.startswith(("postgresql", "postgres")):
        yield tmp / "bench.db"
        return
    from sqlalchemy import text

    from app.db import make_engine

    schema = f"bench_join_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = make_engine(url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{url}{'&' if '?' in url else '?'}options={quote(f'-csearch_path={schema}')}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=2000, help="members joining (a multiple of 10)")
    parser.add_argument("--ramp", type=float, default=10.0, help="seconds over which arrivals ramp up")
    parser.add_argument("--concurrency", type=int, default=500, help="joins in flight at most")
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""),
                        help="a PostgreSQL URL to run on (default: SQLite)")
    args = parser.parse_args()
    rooms = max(1, args.members // ROOM_SIZE)
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; {rooms * ROOM_SIZE} members in "
          f"{rooms} rooms arriving over {args.ramp:g} s, at most {args.concurrency} joins in flight", flush=True)
    with tempfile.TemporaryDirectory(prefix="chibo-join-") as tmp, database(Path(tmp), args.database_url) as db:
        t0 = time.monotonic()
        seats = build_database(db, rooms)
        print(f"  {'PostgreSQL' if isinstance(db, str) else 'SQLite'} database ready in {time.monotonic() - t0:.1f} s",
              flush=True)
        server = AppServer(db, Path(tmp) / "var")
        try:
            real = run("server (token + socket)", f"http://127.0.0.1:{server.port}", seats, False, args.ramp,
                       args.concurrency)
        finally:
            server.stop()
        bare_server = BareServer()
        try:
            bare = run("bare Starlette socket", f"http://127.0.0.1:{bare_server.port}", seats, True, args.ramp,
                       args.concurrency)
        finally:
            bare_server.stop()
    print(f"joins={real['joins']} joins_per_s={real['per_s']:.1f} p50_ms={real['p50']:.0f} "
          f"p99_ms={real['p99']:.0f} bare_joins_per_s={bare['per_s']:.1f}")


if __name__ == "__main__":
    main()
