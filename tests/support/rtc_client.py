"""A meeting-room participant in Python: real aiortc media over the real signalling.

Logs in over HTTP like a browser (session cookie, then a join token from the room page's
token endpoint), opens the WebSocket with the site's Origin, and speaks docs/protocol.md.

Negotiation follows the same rules as static/room/peers.js, adapted to aiortc (no rollback,
no restartIce, no negotiationneeded, no trickling of its own candidates):
  * a new session of either side means a new RTCPeerConnection;
  * the polite side never offers, it answers; the impolite side offers once per connection
    and ignores a colliding offer;
  * all incoming frames are handled by one task, strictly in order;
  * browser candidates arrive trickled and are parsed with aiortc.sdp.candidate_from_sdp;
  * ICE servers and the transport policy come from ``welcome`` (fresh TURN credentials from
    ``ice_servers``), as in a browser; aiortc uses only the first TURN URL it is given.

In the relay topology it holds one connection, to "relay": it never offers there, puts its
media on the upload m-lines ``relay_tracks`` names, and counts what it receives per publisher
(``relay_frames``). On a switch it keeps its mesh links until the relay link is connected.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx2 as httpx
import websockets
from aiortc import (
    MediaStreamTrack,
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaPlayer, MediaRelay
from aiortc.mediastreams import MediaStreamError
from aiortc.sdp import candidate_from_sdp

from tests.support.relay_peers import answer_upload

RELAY = "relay"

LAVFI = "testsrc=size=320x240:rate=15,format=yuv420p[out0];sine=frequency=440:sample_rate=48000[out1]"


def test_player() -> MediaPlayer:
    """One lavfi graph per participant, giving both .video and .audio."""
    return MediaPlayer(LAVFI, format="lavfi")


def parse_candidate(data: dict[str, Any] | None):  # type: ignore[no-untyped-def]
    line = (data or {}).get("candidate") or ""
    if not line:
        return None
    candidate = candidate_from_sdp(line.removeprefix("candidate:"))
    candidate.sdpMid = data.get("sdpMid")  # type: ignore[union-attr]
    candidate.sdpMLineIndex = data.get("sdpMLineIndex")  # type: ignore[union-attr]
    return candidate


@dataclass
class Link:
    remote: str
    session: str
    polite: bool
    pc: RTCPeerConnection
    connected: asyncio.Event = field(default_factory=asyncio.Event)
    frames: dict[str, int] = field(default_factory=lambda: {"video": 0, "audio": 0})
    video_size: tuple[int, int] | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    outgoing: list[MediaStreamTrack] = field(default_factory=list)
    #: Every connectionState the peer connection went through, in order.
    states: list[str] = field(default_factory=list)
    #: Relay link only: the latest relay_tracks.
    upload: dict[str, str] = field(default_factory=dict)
    mapping: dict[str, tuple[str, str]] = field(default_factory=dict)
    video_paused: list[str] = field(default_factory=list)


class RoomClient:
    def __init__(self, base_url: str, username: str, password: str, meeting_id: int, *,
                 media: bool = True, device: str = "member") -> None:
        self.base_url = base_url
        self.username = username
        self.password = password
        self.meeting_id = meeting_id
        self.device = device
        self.http = httpx.AsyncClient(base_url=base_url)
        self.player = test_player() if media else None
        self.relay = MediaRelay()
        self.links: dict[str, Link] = {}
        self.participants: dict[str, dict[str, Any]] = {}
        self.messages: list[dict[str, Any]] = []
        self.me: str | None = None
        self.session: str | None = None
        self.welcomes = 0
        self.ws: Any = None
        self.queue: asyncio.Queue[tuple[Any, dict[str, Any]]] = asyncio.Queue()
        self._reader: asyncio.Task[None] | None = None
        self._worker: asyncio.Task[None] | None = None
        self.closed_code: int | None = None
        #: From welcome (and ice_servers): what a browser would pass to RTCPeerConnection.
        self.ice_servers: list[dict[str, Any]] = []
        self.ice_transport_policy = "all"
        self.topology = "mesh"
        #: Frames received through the relay, per publisher and kind.
        self.relay_frames: dict[str, dict[str, int]] = {}
        self.data_saver = False
        self.links_closing: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ HTTP

    async def login(self) -> None:
        page = await self.http.get("/login")
        token = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        r = await self.http.post("/login", data={"username": self.username, "password": self.password,
                                                 "csrf_token": token})
        assert r.status_code == 303, r.text

    async def join_token(self) -> str:
        r = await self.http.get(f"/meetings/{self.meeting_id}/room/token", params={"device": self.device})
        assert r.status_code == 200, r.text
        return str(r.json()["token"])

    # ------------------------------------------------------------------ WebSocket

    def ws_url(self) -> str:
        return self.base_url.replace("http://", "ws://") + f"/ws/meetings/{self.meeting_id}"

    async def connect(self, token: str | None = None, *, origin: str | None = None,
                      session: str | None = None, warm: bool = False) -> None:
        """Open the socket and say hello (naming ``session`` to keep it, as the room page does
        on a reconnection); the first reply arrives through the queue."""
        token = token or await self.join_token()
        cookie = "; ".join(f"{k}={v}" for k, v in self.http.cookies.items())
        self.ws = await websockets.connect(
            self.ws_url(), origin=origin or self.base_url, additional_headers={"Cookie": cookie},  # type: ignore[arg-type]
            max_size=2**22,
        )
        if self._worker is None:
            self._worker = asyncio.create_task(self._work())
        self._reader = asyncio.create_task(self._read(self.ws))
        hello = {"type": "hello", "version": 1, "token": token, "device": self.device}
        if session is not None:
            hello["session"] = session
        if warm:  # the join screen's hello: authenticated, not in the room until "join"
            hello["warm"] = True
        await self.send(hello)

    async def join(self) -> None:
        await self.login()
        await self.connect()
        await self.wait_for("welcome")

    async def send(self, message: dict[str, Any]) -> None:
        if self.ws is not None:
            with contextlib.suppress(websockets.ConnectionClosed):
                await self.ws.send(json.dumps(message))

    async def send_raw(self, frame: str | bytes) -> None:
        await self.ws.send(frame)

    async def drop(self) -> None:
        """Lose the WebSocket as a network failure would: no close frame."""
        if self.ws is not None:
            self.ws.transport.abort()
            if self._reader:
                await asyncio.gather(self._reader, return_exceptions=True)
            self.ws = None

    async def _read(self, ws: Any) -> None:
        try:
            async for raw in ws:
                await self.queue.put((ws, json.loads(raw)))
        except websockets.ConnectionClosed:
            pass
        finally:
            if ws.close_code is not None and ws is self.ws:
                self.closed_code = ws.close_code

    async def _work(self) -> None:
        while True:
            ws, message = await self.queue.get()
            if ws is not self.ws:
                continue
            self.messages.append(message)
            with contextlib.suppress(Exception):
                await self._handle(message)

    async def wait_for(self, kind: str, timeout: float = 10.0, **match: Any) -> dict[str, Any]:
        """The first message of ``kind`` (seen before or arriving) whose fields match."""
        async def find() -> dict[str, Any]:
            while True:
                for message in self.messages:
                    if message["type"] == kind and all(message.get(k) == v for k, v in match.items()):
                        return message
                await asyncio.sleep(0.02)

        return await asyncio.wait_for(find(), timeout)

    async def wait_until(self, predicate, timeout: float = 10.0) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        """The first message for which ``predicate(message)`` holds."""
        async def find() -> dict[str, Any]:
            while True:
                for message in self.messages:
                    if predicate(message):
                        return message
                await asyncio.sleep(0.02)

        return await asyncio.wait_for(find(), timeout)

    async def wait_closed(self, timeout: float = 10.0) -> int:
        async def closed() -> int:
            while self.ws is not None and self.ws.close_code is None:
                await asyncio.sleep(0.02)
            return int(self.ws.close_code) if self.ws is not None else int(self.closed_code or 0)

        return await asyncio.wait_for(closed(), timeout)

    # ------------------------------------------------------------------ media

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "welcome":
            self.welcomes += 1
            kept = message["resumed"] and message["session"] == self.session and message["topology"] == self.topology
            self.me, self.session = message["you"], message["session"]
            self.ice_servers = message["ice_servers"]
            self.ice_transport_policy = message.get("ice_transport_policy", "all")
            self.participants = {p["id"]: p for p in message["participants"]}
            self.topology = message["topology"]
            if kept:  # the same session on a new socket: the peer connections stand
                return
            for remote in list(self.links):
                await self._close_link(remote)
            for remote in message["peers"]:
                if remote == RELAY:
                    await self._new_link(RELAY, message["relay_session"], True)
                    continue
                info = self.participants[remote]
                await self._new_link(remote, info["session"], message["polite"][remote])
        elif kind == "topology":
            self.topology = message["topology"]
            keep = set(message["peers"])
            if RELAY in keep:
                await self._new_link(RELAY, message["relay_session"], True)
            old = [r for r in self.links if r not in keep]
            self.links_closing = asyncio.create_task(self._close_after_switch(old))
        elif kind == "relay_tracks":
            link = self.links.get(RELAY)
            if link is not None:
                link.upload = message["upload"]
                link.mapping = {t["mid"]: (t["participant"], t["kind"]) for t in message["tracks"]}
                link.video_paused = message["video_paused"]
        elif kind == "joined":
            info = message["participant"]
            self.participants[info["id"]] = info
            if self.topology == "mesh":
                await self._new_link(info["id"], info["session"], message["polite"])
        elif kind == "left":
            self.participants.pop(message["participant"], None)
            await self._close_link(message["participant"])
        elif kind == "ice_servers":
            self.ice_servers = message["ice_servers"]
        elif kind == "participant":
            self.participants[message["participant"]["id"]] = message["participant"]
        elif kind == "renegotiate":
            link = self.links.get(message["sender"])
            if link is None or link.session != message["sender_session"]:
                return
            if not link.polite:  # we lead: warn the polite side, then offer afresh
                await self.send({"type": "renegotiate", "to": link.remote, "to_session": link.session})
            await self._new_link(link.remote, link.session, link.polite)
        elif kind in ("offer", "answer", "candidate"):
            link = self.links.get(message["sender"])
            if link is None or link.session != message["sender_session"]:
                return
            await self._signal(link, message)

    async def _signal(self, link: Link, message: dict[str, Any]) -> None:
        pc = link.pc
        if message["type"] == "offer":
            if pc.signalingState != "stable" and not link.polite:
                return  # impolite: ignore a colliding offer
            await pc.setRemoteDescription(RTCSessionDescription(sdp=message["sdp"], type="offer"))
            if link.remote == RELAY:
                answer_upload(pc, link.upload, self._relay_uploads(link))
            await pc.setLocalDescription(await pc.createAnswer())
            await self.send({"type": "answer", "to": link.remote, "to_session": link.session,
                             "sdp": pc.localDescription.sdp})
        elif message["type"] == "answer":
            if pc.signalingState == "have-local-offer":
                await pc.setRemoteDescription(RTCSessionDescription(sdp=message["sdp"], type="answer"))
        elif message["type"] == "candidate" and pc.remoteDescription is not None:
            candidate = parse_candidate(message.get("candidate"))
            if candidate is not None:
                await pc.addIceCandidate(candidate)

    async def _new_link(self, remote: str, session: str, polite: bool) -> None:
        if remote == self.me:
            return
        await self._close_link(remote)
        pc = RTCPeerConnection(self.rtc_configuration())
        link = Link(remote=remote, session=session, polite=polite, pc=pc)
        self.links[remote] = link
        if remote == RELAY:  # tracks go on the upload m-lines the relay's offer creates
            pc.on("connectionstatechange", lambda: pc.connectionState == "connected" and link.connected.set())
            pc.on("track", lambda track: link.tasks.append(asyncio.create_task(self._consume_relayed(link, track))))
            return
        if self.player is not None:
            for source in (self.player.audio, self.player.video):
                if source is not None:
                    track = self.relay.subscribe(source, buffered=False)
                    link.outgoing.append(track)
                    pc.addTrack(track)

        @pc.on("connectionstatechange")
        def on_state() -> None:
            link.states.append(pc.connectionState)
            if pc.connectionState == "connected":
                link.connected.set()

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            link.tasks.append(asyncio.create_task(self._consume(link, track)))

        if not polite:
            await pc.setLocalDescription(await pc.createOffer())
            await self.send({"type": "offer", "to": remote, "to_session": session, "sdp": pc.localDescription.sdp})

    def rtc_configuration(self) -> RTCConfiguration:
        # Always an explicit list, even an empty one: without iceServers aiortc would ask a
        # public STUN server.
        servers = [RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
                   for s in self.ice_servers]
        policy = RTCIceTransportPolicy.RELAY if self.ice_transport_policy == "relay" else RTCIceTransportPolicy.ALL
        # max-bundle (as browsers): m-lines the relay adds later ride the one transport.
        return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)


    def _relay_uploads(self, link: Link) -> dict[str, MediaStreamTrack | None]:
        tracks: dict[str, MediaStreamTrack | None] = {"audio": None, "video": None}
        if self.player is None or link.outgoing:
            return tracks
        for kind, source in (("audio", self.player.audio), ("video", self.player.video)):
            if source is not None:
                track = self.relay.subscribe(source, buffered=False)
                link.outgoing.append(track)
                tracks[kind] = track
        return tracks

    async def _consume_relayed(self, link: Link, track: MediaStreamTrack) -> None:
        transceiver = next(t for t in link.pc.getTransceivers() if t.receiver.track is track)
        publisher, kind = link.mapping.get(transceiver.mid or "", ("?", track.kind))
        counts = self.relay_frames.setdefault(publisher, {"video": 0, "audio": 0})
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                counts[kind] += 1

    async def _close_after_switch(self, remotes: list[str]) -> None:
        """Make before break: close the old links once the relay link is up (or after 10 s)."""
        relay = self.links.get(RELAY)
        if relay is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(relay.connected.wait(), 10)
        for remote in remotes:
            await self._close_link(remote)

    async def set_data_saver(self, on: bool) -> None:
        self.data_saver = on
        await self.send({"type": "data_saver", "on": on})

    async def wait_relayed(self, publishers: list[str], frames: int = 10, timeout: float = 20.0,
                           kinds: tuple[str, ...] = ("video", "audio")) -> None:
        """Until at least ``frames`` more frames of each kind arrived through the relay from each."""
        base = {p: dict(self.relay_frames.get(p, {"video": 0, "audio": 0})) for p in publishers}

        async def one(publisher: str) -> None:
            while not all(self.relay_frames.get(publisher, {}).get(k, 0) >= base[publisher][k] + frames
                          for k in kinds):
                await asyncio.sleep(0.05)

        await asyncio.wait_for(asyncio.gather(*(one(p) for p in publishers)), timeout)

    async def _consume(self, link: Link, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                frame = await track.recv()
                link.frames[track.kind] += 1
                if track.kind == "video":
                    link.video_size = (frame.width, frame.height)

    async def _close_link(self, remote: str) -> None:
        link = self.links.pop(remote, None)
        if link is None:
            return
        for track in link.outgoing:
            track.stop()
        await link.pc.close()
        for task in link.tasks:
            task.cancel()
        await asyncio.gather(*link.tasks, return_exceptions=True)

    async def wait_media(self, remotes: list[str], frames: int = 10, timeout: float = 20.0) -> None:
        async def one(remote: str) -> None:
            while not (remote in self.links and self.links[remote].frames["video"] >= frames
                       and self.links[remote].frames["audio"] >= frames):
                await asyncio.sleep(0.05)

        await asyncio.wait_for(asyncio.gather(*(one(r) for r in remotes)), timeout)

    async def close(self) -> None:
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await self.ws.close()
        for task in (self._reader, self._worker):
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in (self._reader, self._worker) if t), return_exceptions=True)
        for remote in list(self.links):
            await self._close_link(remote)
        if self.player is not None:
            for track in (self.player.audio, self.player.video):
                if track is not None:
                    track.stop()
        await self.http.aclose()
