"""Our passthrough relay side by side with Janus VideoRoom: the same publisher, the same K
subscribers, one system after the other, in one run.

    sudo .venv/bin/python bench/relay.py                 # K=20, 320×240 and 640×480
    sudo .venv/bin/python bench/relay.py -k 30 --seconds 15 --sizes 320x240
    sudo RELAY_PID_FILE=/tmp/relay.pid .venv/bin/python bench/relay.py --systems relay   # to profile

Needs root: it installs Debian's ``janus`` if missing, then re-runs itself inside a new
network namespace (``unshare -n``) with only loopback and an ``ifb`` dummy interface
``janus0`` at 10.77.0.1 (Janus ignores loopback for ICE). Every peer — publisher,
subscribers, our relay, Janus — uses that address, so no packet can leave the machine.
Janus runs with a configuration of its own (a temporary folder: the VideoRoom plugin and
the HTTP transport only, bound to 127.0.0.1) and is stopped at the end.

Per system and size it reports: server CPU (all threads, from /proc) per subscriber, streams
per core (subscribers receiving ≥ 15 fps video and ≥ 40 fps audio, divided by the server's
CPU in cores), RSS, and correctness: a decoding subscriber's frames checked byte for byte
against the frames the publisher encoded, decode errors with real decoding, and a late
joiner's time to its first decoded video frame. The last line is machine-readable:

    relay_streams_per_core=… janus_streams_per_core=… ratio=…

(the 320×240 figures; each size also gets a ``size=… relay_…`` line before it).
Publisher: aiortc, lavfi testsrc with ``pict_type`` cleared (lavfi marks every frame a
keyframe otherwise), VP8 at a fixed 500 kbps (REMB ignored, as in the relay tests) + Opus.
Subscribers: aiortc peers in worker processes that count encoded frames without decoding
(so the load generator is not the bottleneck), plus one that decodes; they publish nothing
(their upload m-lines are answered ``inactive``), as Janus subscribers. Our relay runs alone
in a process with the garbage-collector settings of ``python -m app serve`` (``tune_gc``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import json
import logging
import multiprocessing as mp
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ADDRESS = "10.77.0.1"
JANUS_HTTP = "http://127.0.0.1:8088/janus"
JANUS_ROOM = 1234
JANUS_LIB = Path("/usr/lib/x86_64-linux-gnu/janus")
RELAY_PORT = 8077
MIN_VIDEO_FPS = 15
MIN_AUDIO_FPS = 40


# --------------------------------------------------------------------------- environment


def ensure_janus() -> None:
    if shutil.which("janus") and (JANUS_LIB / "plugins" / "libjanus_videoroom.so").exists():
        return
    print("installing Debian's janus …", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "janus"], check=True, env=env, stdout=subprocess.DEVNULL)


def setup_namespace() -> None:
    for cmd in (["ip", "link", "set", "lo", "up"], ["ip", "link", "add", "janus0", "type", "ifb"],
                ["ip", "addr", "add", f"{ADDRESS}/32", "dev", "janus0"], ["ip", "link", "set", "janus0", "up"]):
        subprocess.run(cmd, check=True)


def patch_ice() -> None:
    import aioice.ice

    aioice.ice.get_host_addresses = lambda use_ipv4=True, use_ipv6=False: [ADDRESS]


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# --------------------------------------------------------------------------- our relay, as a process


def serve_relay(port: int, ready: Any) -> None:
    """The relay alone in its process, signalling over JSON lines on TCP (the bench's stand-in
    for the room's WebSocket: join → relay_tracks + offer, answer → ok)."""
    patch_ice()
    logging.basicConfig(level=logging.WARNING)
    if os.environ.get("RELAY_PID_FILE"):  # for a profiler: py-spy record -p "$(cat file)"
        Path(os.environ["RELAY_PID_FILE"]).write_text(str(os.getpid()))

    async def main() -> None:
        from app.tuning import tune_gc
        from realtime import protocol as p
        from realtime.relay.server import RelayServer

        inbox: dict[str, asyncio.Queue[p.Message]] = {}

        def send(pid: str, message: p.Message) -> None:
            inbox.setdefault(pid, asyncio.Queue()).put_nowait(message)

        server = RelayServer(send)
        tune_gc()  # as `python -m app serve` does: the relay runs in that process
        sessions: dict[str, str] = {}
        lag: list[float] = []

        async def watch_lag() -> None:
            # 20 wake-ups a second: enough to see a blocked loop, too few to cost CPU.
            loop = asyncio.get_running_loop()
            while True:
                t = loop.time()
                await asyncio.sleep(0.05)
                lag.append(loop.time() - t - 0.05)

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while line := await reader.readline():
                request = json.loads(line)
                pid = request.get("pid", "")
                if request["op"] == "join":
                    sessions[pid] = secrets.token_hex(4)
                    queue = inbox.setdefault(pid, asyncio.Queue())
                    await server.add(pid, sessions[pid])
                    tracks: Any = None
                    while True:
                        message = await queue.get()
                        if isinstance(message, p.RelayTracks):
                            tracks = message
                        elif isinstance(message, p.RelayedOffer):
                            break
                    reply = {"upload": tracks.upload, "sdp": message.sdp}
                elif request["op"] == "answer":
                    server.signal(pid, p.RelayedAnswer(sender=pid, sender_session=sessions[pid], sdp=request["sdp"]))
                    reply = {"ok": True}
                elif request["op"] == "lag":
                    xs = sorted(lag[-600:]) or [0.0]
                    reply = {"p99_ms": 1000 * xs[int(0.99 * (len(xs) - 1))], "max_ms": 1000 * xs[-1],
                             "gc": [g["collections"] for g in gc.get_stats()]}
                else:
                    reply = {"error": "unknown op"}
                writer.write((json.dumps(reply) + "\n").encode())
                await writer.drain()

        asyncio.create_task(watch_lag())
        listener = await asyncio.start_server(handle, "127.0.0.1", port, limit=1 << 22)
        ready.set()
        async with listener:
            await listener.serve_forever()

    asyncio.run(main())


class RelaySignalling:
    def __init__(self, port: int) -> None:
        self.port = port

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port, limit=1 << 22)
        writer.write((json.dumps(message) + "\n").encode())
        await writer.drain()
        reply = json.loads(await reader.readline())
        writer.close()
        return reply  # type: ignore[no-any-return]


# --------------------------------------------------------------------------- Janus


JANUS_CONFIG = """general: {{
  configs_folder = "{dir}"
  plugins_folder = "{dir}/plugins"
  transports_folder = "{dir}/transports"
  events_folder = "{dir}/events"
  loggers_folder = "{dir}/loggers"
  debug_level = 3
  session_timeout = 120
}}
media: {{
  rtp_port_range = "40000-42000"
}}
nat: {{
  ice_enforce_list = "janus0"
  full_trickle = false
  ignore_mdns = true
}}
"""
JANUS_HTTP_CONFIG = """general: {
  json = "compact"
  base_path = "/janus"
  http = true
  port = 8088
  ip = "127.0.0.1"
  https = false
}
admin: {
  admin_http = false
}
"""
JANUS_VIDEOROOM_CONFIG = """general: {
}
room-1234: {
  description = "bench"
  publishers = 4
  bitrate = 0
  fir_freq = 0
  audiocodec = "opus"
  videocodec = "vp8"
  record = false
}
"""


def start_janus(folder: Path) -> subprocess.Popen[bytes]:
    for sub in ("plugins", "transports", "events", "loggers"):
        (folder / sub).mkdir()
    (folder / "plugins" / "libjanus_videoroom.so").symlink_to(JANUS_LIB / "plugins" / "libjanus_videoroom.so")
    (folder / "transports" / "libjanus_http.so").symlink_to(JANUS_LIB / "transports" / "libjanus_http.so")
    (folder / "janus.jcfg").write_text(JANUS_CONFIG.format(dir=folder))
    (folder / "janus.transport.http.jcfg").write_text(JANUS_HTTP_CONFIG)
    (folder / "janus.plugin.videoroom.jcfg").write_text(JANUS_VIDEOROOM_CONFIG)
    log = open(folder / "janus.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(["janus", "-C", str(folder / "janus.jcfg"), "-F", str(folder)], stdout=log, stderr=log)


class JanusSession:
    """Janus's HTTP API: a session, one VideoRoom handle, events by long poll."""

    def __init__(self) -> None:
        import httpx2 as httpx

        self.http = httpx.AsyncClient(timeout=40)
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.session = self.handle = 0
        self._poller: asyncio.Task[None] | None = None

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {"transaction": secrets.token_hex(6), **body}
        reply = (await self.http.post(JANUS_HTTP + path, json=body)).json()
        if reply.get("janus") == "error":
            raise RuntimeError(reply)
        return reply  # type: ignore[no-any-return]

    async def open(self) -> None:
        self.session = (await self.post("", {"janus": "create"}))["data"]["id"]
        self.handle = (await self.post(f"/{self.session}", {"janus": "attach", "plugin": "janus.plugin.videoroom"}))["data"]["id"]
        self._poller = asyncio.create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                reply = (await self.http.get(f"{JANUS_HTTP}/{self.session}", params={"maxev": 5})).json()
                for event in reply if isinstance(reply, list) else [reply]:
                    if event.get("janus") == "event":
                        self.events.put_nowait(event)

    async def message(self, body: dict[str, Any], jsep: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a request, then wait for its plugin event (with the jsep, when there is one)."""
        payload: dict[str, Any] = {"janus": "message", "body": body}
        if jsep is not None:
            payload["jsep"] = jsep
        await self.post(f"/{self.session}/{self.handle}", payload)
        while True:
            event = await asyncio.wait_for(self.events.get(), 20)
            data = event.get("plugindata", {}).get("data", {})
            if "error" in data:
                raise RuntimeError(data)
            if jsep is None and "jsep" not in event and body.get("request") in ("join",) and body.get("ptype") == "subscriber":
                continue
            return event

    async def close(self) -> None:
        if self._poller:
            self._poller.cancel()
        with contextlib.suppress(Exception):
            await self.post(f"/{self.session}", {"janus": "destroy"})
        await self.http.aclose()


# --------------------------------------------------------------------------- peers (worker processes)


def make_pc() -> Any:
    from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection

    return RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))


class Counter:
    """A subscriber: counts encoded frames (``decode=False``) or decodes them too."""

    def __init__(self, decode: bool) -> None:
        self.pc = make_pc()
        self.decode = decode
        self.frames = {"audio": 0, "video": 0}
        self.decoded = {"audio": 0, "video": 0}
        self.hashes: list[str] = []
        self.started = time.monotonic()
        self.first_video_decoded: float | None = None
        self.tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", self._on_track)

    def _on_track(self, track: Any) -> None:
        from realtime.relay.internals import RECEIVER_DECODER_QUEUE
        from tests.support.relay_peers import _SpyQueue

        transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
        receiver = transceiver.receiver
        kind = track.kind

        def seen(codec: Any, frame: Any) -> None:
            self.frames[kind] += 1
            if kind == "video" and self.decode and len(self.hashes) < 5000:
                self.hashes.append(hashlib.sha1(frame.data).hexdigest())

        setattr(receiver, RECEIVER_DECODER_QUEUE, _SpyQueue(getattr(receiver, RECEIVER_DECODER_QUEUE), seen, self.decode))
        if self.decode:
            self.tasks.append(asyncio.create_task(self._consume(track)))

    async def _consume(self, track: Any) -> None:
        from aiortc.mediastreams import MediaStreamError

        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                self.decoded[track.kind] += 1
                if track.kind == "video" and self.first_video_decoded is None:
                    self.first_video_decoded = time.monotonic()

    async def join_relay(self, signalling: RelaySignalling, pid: str) -> None:
        from aiortc import RTCSessionDescription

        offer = await signalling.request({"op": "join", "pid": pid})
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
        # A subscriber only, as on Janus: its upload m-lines carry nothing ("inactive"), so
        # the relay adds no m-lines for it on the other links.
        uploads = set(offer["upload"].values())
        for transceiver in self.pc.getTransceivers():
            transceiver.direction = "inactive" if transceiver.mid in uploads else "recvonly"
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await signalling.request({"op": "answer", "pid": pid, "sdp": self.pc.localDescription.sdp})

    async def join_janus(self, feed: int) -> None:
        from aiortc import RTCSessionDescription

        self.janus = JanusSession()
        await self.janus.open()
        event = await self.janus.message({"request": "join", "ptype": "subscriber", "room": JANUS_ROOM, "feed": feed})
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=event["jsep"]["sdp"], type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self.janus.message({"request": "start", "room": JANUS_ROOM},
                                 {"type": "answer", "sdp": self.pc.localDescription.sdp})

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        if getattr(self, "janus", None):
            await self.janus.close()
        await self.pc.close()


def publisher_process(system: str, size: str, conn: Any) -> None:
    """The publisher: reports its feed id (Janus) or readiness, then the hashes it encoded."""
    patch_ice()

    async def main() -> None:
        from aiortc import RTCSessionDescription
        from aiortc.codecs.vpx import vp8_depayload
        from aiortc.contrib.media import MediaPlayer

        from tests.support.relay_peers import (
            FixedBitrateVp8Encoder,
            NoForcedKeyframes,
            answer_upload,
        )

        hashes: set[str] = set()

        class HashingEncoder(FixedBitrateVp8Encoder):
            def encode(self, frame: Any, force_keyframe: bool = False) -> Any:
                payloads, timestamp = super().encode(frame, force_keyframe)
                if len(hashes) < 20000:
                    hashes.add(hashlib.sha1(b"".join(vp8_depayload(p) for p in payloads)).hexdigest())
                return payloads, timestamp

        video = MediaPlayer(f"testsrc=size={size}:rate=30", format="lavfi")
        audio = MediaPlayer("sine=frequency=440:sample_rate=48000", format="lavfi")
        tracks = {"audio": audio.audio, "video": NoForcedKeyframes(video.video)}
        pc = make_pc()
        encoder = HashingEncoder(500_000)

        def seed_encoder() -> None:
            for t in pc.getTransceivers():
                if t.sender.track is tracks["video"]:
                    t.sender._RTCRtpSender__encoder = encoder

        feed = None
        if system == "relay":
            signalling = RelaySignalling(RELAY_PORT)
            offer = await signalling.request({"op": "join", "pid": "pub"})
            await pc.setRemoteDescription(RTCSessionDescription(sdp=offer["sdp"], type="offer"))
            answer_upload(pc, offer["upload"], tracks)
            seed_encoder()
            await pc.setLocalDescription(await pc.createAnswer())
            await signalling.request({"op": "answer", "pid": "pub", "sdp": pc.localDescription.sdp})
        else:
            janus = JanusSession()
            await janus.open()
            for kind in ("audio", "video"):
                pc.addTransceiver(tracks[kind], direction="sendonly")
            for t in pc.getTransceivers():
                from realtime.relay.codecs import pin_codec

                pin_codec(t)
            seed_encoder()
            await pc.setLocalDescription(await pc.createOffer())
            event = await janus.message({"request": "joinandconfigure", "ptype": "publisher", "room": JANUS_ROOM,
                                         "display": "pub", "audio": True, "video": True},
                                        {"type": "offer", "sdp": pc.localDescription.sdp})
            await pc.setRemoteDescription(RTCSessionDescription(sdp=event["jsep"]["sdp"], type="answer"))
            feed = event["plugindata"]["data"]["id"]
        for _ in range(200):
            if pc.connectionState == "connected":
                break
            await asyncio.sleep(0.05)
        conn.send({"ready": pc.connectionState == "connected", "feed": feed})
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # until told to stop
        conn.send({"hashes": sorted(hashes)})
        await pc.close()

    run_worker(main)


def subscriber_process(system: str, names: list[str], decode: bool, feed: Any, conn: Any) -> None:
    """Subscribers in one process; answers "snapshot", "late" and "stop" over ``conn``."""
    patch_ice()
    logging.basicConfig(level=logging.WARNING)

    async def main() -> None:
        from tests.support.relay_peers import DecodeErrors

        errors = DecodeErrors().__enter__()
        peers: dict[str, Counter] = {}

        async def join(name: str, decoding: bool) -> Counter:
            peer = Counter(decoding)
            peers[name] = peer
            if system == "relay":
                await peer.join_relay(RelaySignalling(RELAY_PORT), name)
            else:
                await peer.join_janus(feed)
            return peer

        results = await asyncio.gather(*(join(n, decode) for n in names), return_exceptions=True)
        failed = [str(r) for r in results if isinstance(r, BaseException)]
        loop = asyncio.get_running_loop()
        conn.send({"joined": len(names) - len(failed), "errors": failed[:3]})
        while True:
            command = await loop.run_in_executor(None, conn.recv)
            if command == "snapshot":
                conn.send({n: dict(p.frames) for n, p in peers.items()})
            elif command == "late":
                started = time.monotonic()
                peer = await join("late", True)
                while peer.first_video_decoded is None and time.monotonic() - started < 15:
                    await asyncio.sleep(0.01)
                first = peer.first_video_decoded
                conn.send({"late_first_frame_s": None if first is None else first - started})
            elif command == "stop":
                checkers = [p for p in peers.values() if p.decode]
                conn.send({"decode_errors": len(errors.messages),
                           "hashes": [h for p in checkers for h in p.hashes],
                           "decoded_video": sum(p.decoded["video"] for p in checkers)})
                break
        await asyncio.gather(*(p.close() for p in peers.values()), return_exceptions=True)

    run_worker(main)


# --------------------------------------------------------------------------- one phase


def reply(conn: Any, what: str, timeout: float = 60.0) -> Any:
    """A worker's answer, or a clear error instead of waiting forever for one that died."""
    if not conn.poll(timeout):
        raise RuntimeError(f"no answer from {what} within {timeout:.0f} s (see its traceback above)")
    return conn.recv()


def run_worker(main: Any) -> None:
    """Run a worker's coroutine; on failure print why and leave at once (aiortc's decoder
    threads are not daemons: a plain exception would leave the process hanging)."""
    try:
        asyncio.run(main())
    except BaseException:
        import traceback

        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)


def run_phase(system: str, size: str, k: int, seconds: float, per_worker: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    procs: list[Any] = []
    janus: subprocess.Popen[bytes] | None = None
    folder = Path(tempfile.mkdtemp(prefix="chibo-janus-"))
    try:
        if system == "relay":
            ready = ctx.Event()
            server = ctx.Process(target=serve_relay, args=(RELAY_PORT, ready), daemon=True)
            server.start()
            procs.append(server)
            ready.wait(20)
            server_pid = server.pid
        else:
            janus = start_janus(folder)
            server_pid = janus.pid
            import urllib.request

            for _ in range(100):
                with contextlib.suppress(Exception):
                    urllib.request.urlopen("http://127.0.0.1:8088/janus/info", timeout=1)
                    break
                time.sleep(0.1)
        pub_conn, pub_child = ctx.Pipe()
        publisher = ctx.Process(target=publisher_process, args=(system, size, pub_child), daemon=True)
        publisher.start()
        procs.append(publisher)
        pub = reply(pub_conn, f"the {system} publisher", 30)
        if not pub["ready"]:
            raise RuntimeError(f"{system}: the publisher did not connect")
        time.sleep(1.0)
        names = [f"s{i}" for i in range(k)]
        groups = [names[i:i + per_worker] for i in range(0, k, per_worker)]
        workers = []
        for group in [*groups, ["checker"]]:
            a, b = ctx.Pipe()
            proc = ctx.Process(target=subscriber_process, args=(system, group, group == ["checker"], pub["feed"], b),
                               daemon=True)
            proc.start()
            procs.append(proc)
            workers.append(a)
        joined = 0
        for w in workers:
            report = reply(w, f"a {system} subscriber worker (joining)")
            joined += report["joined"]
            if report["errors"]:
                print(f"  {system}: join errors: {report['errors']}", flush=True)
        time.sleep(3.0)  # warm up: keyframes, jitter buffers
        for w in workers:
            w.send("snapshot")
        before = {}
        for w in workers:
            before.update(reply(w, "a subscriber worker (snapshot)"))
        cpu0, t0 = cpu_seconds(server_pid), time.monotonic()
        time.sleep(seconds)
        cpu1, t1 = cpu_seconds(server_pid), time.monotonic()
        for w in workers:
            w.send("snapshot")
        after = {}
        for w in workers:
            after.update(reply(w, "a subscriber worker (snapshot)"))
        rss = rss_mb(server_pid)
        lag = None
        if system == "relay":
            lag = asyncio.run(RelaySignalling(RELAY_PORT).request({"op": "lag"}))
        elapsed = t1 - t0
        used = sum(cpu1) - sum(cpu0)
        cores = used / elapsed
        kernel_share = (cpu1[1] - cpu0[1]) / used if used > 0 else 0.0
        fps = {n: {kind: (after[n][kind] - before.get(n, after[n])[kind]) / elapsed for kind in ("video", "audio")}
               for n in after if n != "checker"}
        served = sum(1 for f in fps.values() if f["video"] >= MIN_VIDEO_FPS and f["audio"] >= MIN_AUDIO_FPS)
        checker_fps = (after["checker"]["video"] - before["checker"]["video"]) / elapsed
        served += int(checker_fps >= MIN_VIDEO_FPS)  # the decoding checker is a subscriber too
        workers[-1].send("late")
        late = reply(workers[-1], "the checker (late joiner)")["late_first_frame_s"]
        pub_conn.send("stop")
        published = set(reply(pub_conn, "the publisher (stop)")["hashes"])
        workers[-1].send("stop")
        checker = reply(workers[-1], "the checker (stop)")
        for w in workers[:-1]:
            w.send("stop")
            reply(w, "a subscriber worker (stop)")
        received = checker["hashes"]
        identical = sum(1 for h in received if h in published) / max(1, len(received))
        video_fps = sorted(f["video"] for f in fps.values())
        return {
            "system": system, "size": size, "subscribers": k, "joined": joined, "served": served,
            "server_cores": cores, "kernel_share": kernel_share, "cpu_pct_per_subscriber": 100 * cores / (k + 1),
            "streams_per_core": served / cores if cores > 0 else 0.0, "rss_mb": rss,
            "video_fps_min": video_fps[0] if video_fps else 0, "video_fps_median": video_fps[len(video_fps) // 2] if video_fps else 0,
            "byte_identical": identical, "frames_checked": len(received), "decode_errors": checker["decode_errors"],
            "decoded_video": checker["decoded_video"], "late_first_frame_s": late, "loop_lag": lag,
        }
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
                proc.join(5)
        if janus is not None:
            janus.terminate()
            try:
                janus.wait(10)
            except subprocess.TimeoutExpired:
                janus.kill()
        shutil.rmtree(folder, ignore_errors=True)


def describe(r: dict[str, Any]) -> str:
    late = "n/a" if r["late_first_frame_s"] is None else f"{1000 * r['late_first_frame_s']:.0f} ms"
    lag = (f", loop lag p99 {r['loop_lag']['p99_ms']:.1f} ms, GC runs since start (per generation) {r['loop_lag']['gc']}"
           if r.get("loop_lag") else "")
    return (f"  {r['system']:5} {r['size']}: {r['served']}/{r['subscribers'] + 1} subscribers at ≥{MIN_VIDEO_FPS} fps "
            f"(video fps min {r['video_fps_min']:.1f}, median {r['video_fps_median']:.1f}); server "
            f"{100 * r['server_cores']:.1f} % of a core ({100 * r['kernel_share']:.0f} % in the kernel) = {r['cpu_pct_per_subscriber']:.2f} % per subscriber → "
            f"{r['streams_per_core']:.0f} streams/core; RSS {r['rss_mb']:.0f} MB; byte-identical "
            f"{100 * r['byte_identical']:.1f} % of {r['frames_checked']} frames; decode errors {r['decode_errors']}; "
            f"late joiner first frame {late}{lag}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-k", "--subscribers", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0, help="measuring window per phase")
    parser.add_argument("--sizes", default="320x240,640x480")
    parser.add_argument("--per-worker", type=int, default=7, help="subscribers per worker process")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--systems", default="relay,janus", help="relay, janus or both (the ratio needs both)")
    args = parser.parse_args()
    if os.environ.get("CHIBO_BENCH_NS") != "1":
        if os.geteuid() != 0:
            print("bench/relay.py needs root (network namespace, apt-get for janus)", file=sys.stderr)
            return 2
        if "janus" in args.systems:
            ensure_janus()
        env = dict(os.environ, CHIBO_BENCH_NS="1")
        return subprocess.run(["unshare", "-n", sys.executable, *sys.argv], env=env).returncode
    setup_namespace()
    print(f"machine: {os.cpu_count()} cores; {args.subscribers} subscribers (+1 decoding checker) per system; "
          f"{args.seconds:.0f} s windows", flush=True)
    results = []
    lines = []
    for size in args.sizes.split(","):
        pair = {}
        for system in [x for x in ("relay", "janus") if x in args.systems.split(",")]:
            print(f"{system} {size} …", flush=True)
            result = run_phase(system, size, args.subscribers, args.seconds, args.per_worker)
            print(describe(result), flush=True)
            results.append(result)
            pair[system] = result
        if len(pair) < 2:
            continue
        ratio = pair["relay"]["streams_per_core"] / pair["janus"]["streams_per_core"] if pair["janus"]["streams_per_core"] else 0.0
        lines.append(f"size={size} relay_streams_per_core={pair['relay']['streams_per_core']:.0f} "
                     f"janus_streams_per_core={pair['janus']['streams_per_core']:.0f} ratio={ratio:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    for line in lines:
        print(line)
    if lines:
        print(lines[0].split(" ", 1)[1])
    return 0


if __name__ == "__main__":
    sys.exit(main())
