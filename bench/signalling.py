"""Signalling fan-out through the real server, against a bare `websockets` broadcast server.

    .venv/bin/python -m bench.signalling [--sizes 2000,5000] [--duration 8] [--rate 0.5] [--saturate 4]

N rooms × 10 participants connect over loopback. Every participant toggles its "speaking"
state; the server broadcasts the participant's new state to everybody in the room (the
sender included), which is the room's commonest fan-out. Two phases: a lively meeting
(``--rate``, default 0.5 toggles a second each) for latency, then more than the machine can
carry (``--saturate``, default 4) for throughput. The same clients do the same through a bare
`websockets` server that only broadcasts. For each size the bench reports delivered messages
per second, latency from send to each receipt (p50/p99) and the server's resident memory per
connection, for: the bare server, the real server in one process, and the real server in two
processes over Redis (participants of each room split between the processes; skipped
without Redis).

The clients run in separate processes (the server must not share its core with them more than
the machine forces), and the database is a fresh SQLite file. Sessions and join tokens are
signed directly with the server's secret: logging 5,000 accounts in through Argon2 would
measure password hashing, not signalling. The last line is machine-readable:

    connections=2000 msgs_per_s=… bare_msgs_per_s=… ratio=… p50_ms=… p99_ms=… kb_per_conn=…

(throughput and its ratio from the saturating phase, latency from the lively one).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOM_SIZE = 10
SECRET = "bench-secret-key-0123456789-abcdef"
ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def settle(pids: list[int], idle_share: float = 0.1, limit: float = 60.0) -> float:
    """Wait until the servers are done with the joins (presence writes, roster broadcasts):
    the phases measure a meeting in progress, not the rush at its start. Returns the wait."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        before = sum(cpu_seconds(pid) for pid in pids)
        time.sleep(1.0)
        if sum(cpu_seconds(pid) for pid in pids) - before < idle_share:
            break
    return time.monotonic() - t0


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


# --------------------------------------------------------------------------- data


@dataclass
class Seat:
    meeting_id: int
    account_id: int
    member_id: int
    pid: str
    #: The seat's login session (server-side) and its cookie key.
    session_id: int = 0
    cookie: str = ""


def build_database(path: Path | str, rooms: int) -> list[Seat]:
    """Rooms of ten away members each, in cells approved for the online pilot; meetings open.
    ``path``: an SQLite file, or a database URL."""
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import insert

    from app.db import Database, make_engine
    from app.migrate import migrate
    from meetings.foundation.actors import Actor
    from meetings.foundation.base import LOCAL_TZ, utcnow
    from meetings.organisation import accounts, organisations, sessions
    from meetings.organisation.accounts import Account
    from meetings.organisation.members import (
        Member,
        MemberPeriod,
        Membership,
        MemberStatus,
        PeriodKind,
    )
    from meetings.organisation.organisations import OrgKind
    from meetings.planning.meetings import Meeting, MeetingKind, MeetingStatus, PilotApproval

    db = Database(make_engine(path if isinstance(path, str) else f"sqlite:///{path}"))
    migrate(db.engine)
    actor = Actor.system("bench")
    today = dt.date.today()
    seats: list[Seat] = []
    password = accounts.hash_password("bench-password-not-used")
    with db.session() as s:
        province = organisations.create_organisation(s, actor, kind=OrgKind.PROVINCE, name="Tỉnh ủy Thử", code="B",
                                                     parent=None, created_on=dt.date(2020, 1, 1))
        commune = organisations.create_organisation(s, actor, kind=OrgKind.COMMUNE, name="Đảng ủy xã Thử",
                                                    code="B-X", parent=province, created_on=dt.date(2020, 1, 1))
        now = utcnow()
        for r in range(rooms):
            cell = organisations.create_organisation(s, actor, kind=OrgKind.CELL, name=f"Chi bộ {r}", code=f"B-{r}",
                                                     parent=commune, created_on=dt.date(2020, 1, 1))
            s.add(PilotApproval(cell_id=cell.id, decision_number=f"{r}-QĐ", decided_on=dt.date(2025, 1, 1),
                                approving_body="Đảng ủy xã Thử", valid_from=dt.date(2025, 1, 1)))
            meeting = Meeting(cell_id=cell.id, supervisor_id=commune.id, kind=MeetingKind.REGULAR,
                              title=f"Họp {r}", starts_at=now, expected_minutes=120, status=MeetingStatus.OPEN,
                              opened_at=now, remote_open=True)
            s.add(meeting)
            s.flush()
            for i in range(ROOM_SIZE):
                member = Member(full_name=f"Đảng Viên {r}-{i}", birth_date=dt.date(1980, 1, 1),
                                card_number=f"{r:05d}{i:03d}", admitted_on=dt.date(2010, 1, 1),
                                status=MemberStatus.OFFICIAL, official_on=dt.date(2011, 1, 1), home_cell_id=cell.id)
                s.add(member)
                s.flush()
                s.add(Membership(member_id=member.id, cell_id=cell.id, start_on=dt.date(2010, 1, 1)))
                s.add(MemberPeriod(member_id=member.id, kind=PeriodKind.AWAY, start_on=dt.date(2025, 1, 1),
                                   place="TP. Hồ Chí Minh"))
                account_id = s.execute(insert(Account).values(
                    username=f"b{r}-{i}", display_name=member.full_name, password_hash=password,
                    member_id=member.id, must_change_password=False, is_active=True, session_epoch=0,
                    created_at=now)).inserted_primary_key[0]
                login, key = sessions.start(s, int(account_id), now=now, address="127.0.0.1", user_agent="bench")
                seats.append(Seat(meeting.id, int(account_id), member.id, f"m{member.id}", login.id, key))
    db.dispose()
    _ = (today, LOCAL_TZ)
    return seats


def join_token(seat: Seat) -> str:
    sys.path.insert(0, str(ROOT))
    from realtime.tokens import JoinGrant, issue_join_token

    return issue_join_token(SECRET, JoinGrant(seat.meeting_id, seat.account_id, seat.member_id, "member",
                                              session_id=seat.session_id))


# --------------------------------------------------------------------------- servers


class AppServer:
    def __init__(self, db_path: Path | str, data_dir: Path, redis_url: str | None = None, prefix: str = "") -> None:
        self.port = free_port()
        env = {**os.environ, "DATABASE_URL": db_path if isinstance(db_path, str) else f"sqlite:///{db_path}", "DATA_DIR": str(data_dir),
               "SECRET_KEY": SECRET, "LOG_REQUESTS": "false", "LOG_LEVEL": "WARNING", "NOTICE_INTERVAL": "0",
               "PUBLIC_URL": f"http://127.0.0.1:{self.port}", "REDIS_URL": redis_url or "",
               "REDIS_PREFIX": prefix or "bench"}
        # Set BENCH_SERVER_LOG to keep the servers' logs (they go nowhere by default).
        self.log = open(os.environ.get("BENCH_SERVER_LOG", os.devnull), "ab")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen([sys.executable, "-m", "app", "serve", "--port", str(self.port)], env=env,
                                     cwd=ROOT, stdout=subprocess.DEVNULL, stderr=self.log)
        wait_port(self.port, self.proc)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/meetings/{{meeting}}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


BARE_SERVER = r'''
import asyncio, json, sys
from websockets.asyncio.server import serve, broadcast

rooms = {}

async def handler(ws):
    room = rooms.setdefault(ws.request.path, set())
    room.add(ws)
    try:
        await ws.send(json.dumps({"type": "welcome"}))
        async for frame in ws:
            message = json.loads(frame)
            # The same work shape as the real room: parse, change state, encode once, broadcast.
            out = json.dumps({"type": "participant", "participant": {"id": message.get("id"), "speaking": message.get("speaking"),
                              "name": "Đảng Viên", "role": "member", "audio": True, "video": True, "audio_only": False,
                              "hand": False, "status": "connected", "quality": None, "voter": True, "session": "abcd1234"}},
                             ensure_ascii=False, separators=(",", ":"))
            broadcast(room, out)
    finally:
        room.discard(ws)

async def main():
    async with serve(handler, "127.0.0.1", int(sys.argv[1]), max_size=2**20, compression=None):
        print("ready", flush=True)
        await asyncio.Future()

asyncio.run(main())
'''


class BareServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-c", BARE_SERVER, str(self.port)], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL)
        assert self.proc.stdout is not None
        self.proc.stdout.readline()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/room/{{meeting}}"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=15)


def wait_port(port: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("server did not start")


# --------------------------------------------------------------------------- clients


def client_worker(urls: list[str], seats: list[tuple[int, int, int, str, int, str]], bare: bool,
                  rates: list[float], warmup: float, duration: float, go: Any, start: Any,
                  out: mp.Queue) -> None:  # type: ignore[type-arg]
    try:
        asyncio.run(_clients(urls, seats, bare, rates, warmup, duration, go, start, out))
    except BaseException as exc:  # always report, so the bench never waits for a dead worker
        out.put(("failed", repr(exc)))


async def _clients(urls: list[str], seats: list[tuple[int, int, int, str, int, str]], bare: bool,
                   rates: list[float], warmup: float, duration: float, go: Any, start: Any,
                   out: mp.Queue) -> None:  # type: ignore[type-arg]
    from websockets.asyncio.client import connect

    # Each sender remembers when it sent each toggle; the broadcast names the sender and the
    # new state, so a receipt's latency is its arrival minus that stamp.
    sent_at: dict[tuple[str, bool], float] = {}
    connections = []

    async def open_one(index: int, seat: tuple[int, int, int, str, int, str]) -> None:
        meeting, account, member, pid, session_id, cookie = seat
        url = urls[index % len(urls)].format(meeting=meeting)
        origin = url.replace("ws://", "http://").split("/ws/")[0].split("/room/")[0]
        ws = await connect(url, origin=origin, additional_headers={"Cookie": f"chibo_session={cookie}"},  # type: ignore[arg-type]
                           max_size=2**22, compression=None, open_timeout=60)
        if not bare:
            # Signalling only: no camera, so the room stays a mesh and no media relay starts.
            token = join_token(Seat(meeting, account, member, pid, session_id, cookie))
            await ws.send(json.dumps({"type": "hello", "version": 1, "token": token, "device": "member",
                                      "audio": True, "video": False}))
        while json.loads(await ws.recv())["type"] != "welcome":
            pass
        connections.append((ws, pid))

    # Connect in batches so the servers are not asked to accept thousands at once.
    try:
        for i in range(0, len(seats), 100):
            await asyncio.gather(*(open_one(i + j, seat) for j, seat in enumerate(seats[i:i + 100])))
    except Exception as exc:
        out.put(("failed", repr(exc)))
        return
    out.put(("connected", len(connections)))
    # Everybody starts together once every client process is connected; the phases (one per
    # rate) follow one another.
    await asyncio.to_thread(go.wait)
    phase_length = warmup + duration + 1.5
    windows = [(start.value + k * phase_length + warmup, start.value + k * phase_length + warmup + duration)
               for k in range(len(rates))]
    delivered = [0 for _ in rates]
    latencies: list[list[float]] = [[] for _ in rates]

    async def read(ws) -> None:  # type: ignore[no-untyped-def]
        async for frame in ws:
            now = time.time()
            message = json.loads(frame)
            if message.get("type") != "participant":
                continue
            info = message["participant"]
            stamp = sent_at.get((info["id"], info["speaking"]))
            for k, (a, b) in enumerate(windows):
                if a <= now <= b:
                    delivered[k] += 1
                    if stamp is not None:
                        latencies[k].append(now - stamp)

    async def reader(ws) -> None:  # type: ignore[no-untyped-def]
        with contextlib.suppress(Exception):
            await read(ws)

    async def sender(ws, pid: str) -> None:  # type: ignore[no-untyped-def]
        speaking = False
        for k, rate in enumerate(rates):
            phase_start = windows[k][0] - warmup
            await asyncio.sleep(max(0.0, phase_start - time.time()) + (hash(pid) % 1000) / 1000 / rate)
            while time.time() < windows[k][1]:
                speaking = not speaking
                sent_at[(pid, speaking)] = time.time()
                frame = {"type": "speaking", "speaking": speaking}
                if bare:
                    frame["id"] = pid
                try:
                    await asyncio.wait_for(ws.send(json.dumps(frame)), timeout=10)
                except Exception:
                    return  # closed or stuck: the delivered count shows it
                await asyncio.sleep(1 / rate)

    readers = [asyncio.create_task(reader(ws)) for ws, _ in connections]
    senders = asyncio.gather(*(sender(ws, pid) for ws, pid in connections))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(senders, timeout=windows[-1][1] - time.time() + 30)
    await asyncio.sleep(1.5)
    out.put(("result", delivered, latencies))
    for task in readers:
        task.cancel()
    await asyncio.gather(*(asyncio.wait_for(ws.close(), timeout=5) for ws, _ in connections),
                         return_exceptions=True)


@dataclass
class Result:
    label: str
    connections: int
    rate: float
    msgs_per_s: float
    p50_ms: float
    p99_ms: float
    kb_per_conn: float


def run_load(label: str, urls: list[str], seats: list[Seat], bare: bool, server_pids: list[int],
             rates: list[float], duration: float, workers: int) -> list[Result]:
    # Join tokens live two minutes, as on the meeting page: the workers sign each one just
    # before connecting, since connecting thousands takes longer than that.
    prepared = [(s.meeting_id, s.account_id, s.member_id, s.pid, s.session_id, s.cookie) for s in seats]
    baseline = sum(rss_kb(pid) for pid in server_pids)
    queue: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    warmup = 2.0
    go = mp.Event()
    start = mp.Value("d", 0.0)
    chunks = [prepared[i::workers] for i in range(workers)]
    procs = [mp.Process(target=client_worker, args=(urls, chunk, bare, rates, warmup, duration, go, start, queue))
             for chunk in chunks]
    for proc in procs:
        proc.start()
    connected = 0
    for _ in procs:
        kind, *rest = queue.get(timeout=900)
        if kind != "connected":
            raise RuntimeError(f"{label}: a client process failed before connecting: {rest}")
        connected += rest[0]
    if connected != len(seats):
        raise RuntimeError(f"{label}: only {connected} of {len(seats)} connected")
    settle(server_pids)
    loaded = sum(rss_kb(pid) for pid in server_pids)
    start.value = time.time() + 1.0
    if os.environ.get("XGC"):
        print(f"phases start {start.value:.1f}", file=sys.stderr, flush=True)
    go.set()
    delivered = [0 for _ in rates]
    latencies: list[list[float]] = [[] for _ in rates]
    for _ in procs:
        kind, *rest = queue.get(timeout=900)
        if kind != "result":
            raise RuntimeError(f"{label}: a client process failed: {rest}")
        counts, lat = rest
        for k in range(len(rates)):
            delivered[k] += counts[k]
            latencies[k].extend(lat[k])
    for proc in procs:
        proc.join(timeout=30)
    results = []
    for k, rate in enumerate(rates):
        lat = sorted(latencies[k])

        def pct(q: float, values: list[float] = lat) -> float:
            return 1000 * values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")

        results.append(Result(label, len(seats), rate, delivered[k] / duration, pct(0.50), pct(0.99),
                              max(loaded - baseline, 0) / len(seats)))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,5000", help="connection counts (multiples of 10)")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds measured per phase")
    parser.add_argument("--rate", type=float, default=0.5,
                        help="toggles per participant per second in the latency phase (a lively meeting)")
    parser.add_argument("--saturate", type=float, default=4.0,
                        help="toggles per participant per second in the throughput phase (more than fits)")
    parser.add_argument("--workers", type=int, default=2, help="client processes")
    parser.add_argument("--systems", default="bare,one,two",
                        help="which to run: bare (websockets), one (1 process), two (2 processes + Redis)")
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    args = parser.parse_args()
    rates = [args.rate, args.saturate]
    systems = set(args.systems.split(","))
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; phases: {args.rate}/s and "
          f"{args.saturate}/s per participant, {args.duration:.0f} s measured each", flush=True)
    summary = []
    for size in [int(x) for x in args.sizes.split(",")]:
        rooms = size // ROOM_SIZE
        with tempfile.TemporaryDirectory() as tmp:
            db_path = Path(tmp) / "bench.db"
            t0 = time.monotonic()
            seats = build_database(db_path, rooms)
            print(f"\n{size} connections ({rooms} rooms × {ROOM_SIZE}); database ready in "
                  f"{time.monotonic() - t0:.1f} s", flush=True)
            results: dict[str, list[Result]] = {}
            if "bare" in systems:
                bare = BareServer()
                try:
                    results["bare"] = run_load("bare websockets", [bare.url], seats, True, [bare.proc.pid], rates,
                                               args.duration, args.workers)
                finally:
                    bare.stop()
            if "one" in systems:
                server = AppServer(db_path, Path(tmp) / "var")
                try:
                    results["one"] = run_load("server, 1 process", [server.url], seats, False, [server.proc.pid],
                                              rates, args.duration, args.workers)
                finally:
                    server.stop()
            if "two" not in systems:
                pass
            elif _redis_ok(args.redis):
                prefix = f"bench-{os.getpid()}-{size}"
                a = AppServer(db_path, Path(tmp) / "var", args.redis, prefix)
                b = AppServer(db_path, Path(tmp) / "var", args.redis, prefix)
                try:
                    results["two"] = run_load("server, 2 processes + Redis", [a.url, b.url], seats, False,
                                              [a.proc.pid, b.proc.pid], rates, args.duration, args.workers)
                finally:
                    a.stop()
                    b.stop()
            else:
                print("  (Redis not reachable: two-process run skipped)")
            for phase in results.values():
                for r in phase:
                    print(f"  {r.label:<30} {r.rate:>4}/s  {r.msgs_per_s:>9.0f} msg/s  p50 {r.p50_ms:7.1f} ms  "
                          f"p99 {r.p99_ms:7.1f} ms  {r.kb_per_conn:5.1f} KB/conn", flush=True)
            summary.append(results)
    print()
    for results in summary:
        if not {"bare", "one"} <= set(results):
            continue  # the summary line compares the two
        # Throughput from the saturating phase, latency from the lively one.
        bare_sat, one_sat = results["bare"][1], results["one"][1]
        one_live = results["one"][0]
        line = (f"connections={one_sat.connections} msgs_per_s={one_sat.msgs_per_s:.0f} "
                f"bare_msgs_per_s={bare_sat.msgs_per_s:.0f} ratio={one_sat.msgs_per_s / bare_sat.msgs_per_s:.2f} "
                f"p50_ms={one_live.p50_ms:.1f} p99_ms={one_live.p99_ms:.1f} kb_per_conn={one_live.kb_per_conn:.1f}")
        if "two" in results:
            two_sat, two_live = results["two"][1], results["two"][0]
            line += (f" two_process_msgs_per_s={two_sat.msgs_per_s:.0f} "
                     f"two_process_ratio={two_sat.msgs_per_s / bare_sat.msgs_per_s:.2f} "
                     f"two_process_p99_ms={two_live.p99_ms:.1f}")
        print(line)


def _redis_ok(url: str) -> bool:
    try:
        import redis

        redis.from_url(url).ping()
        return True
    except Exception:
        return False


if __name__ == "__main__":
    main()
