"""Real aiortc participants of a relay, for the relay tests and bench/relay.py.

``RelayParticipant`` speaks the relay's side of docs/protocol.md (``relay_tracks``, then an
``offer`` it answers, putting its microphone and camera on the upload m-lines) directly to a
``RelayServer``, without the WebSocket: the relay tests are about media. The room tests go
through the real signalling with ``tests/support/rtc_client.py``, which uses
``answer_relay_offer`` from here.

Publishers send lavfi test media with ``pict_type`` cleared (lavfi marks every frame a
keyframe otherwise) through an encoder that ignores REMB (aiortc rebuilds its VP8 encoder,
and so emits a keyframe, on every >10 % REMB change), so keyframes come only on request and
can be counted. Subscribers decode for real, and a spy on the decoder queue sees the encoded
frames as they arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import queue
import secrets
import time
from collections.abc import Callable
from typing import Any

from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.codecs.vpx import Vp8Encoder
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtpPacket, is_rtcp

from realtime import protocol as p
from realtime.relay.codecs import is_keyframe
from realtime.relay.internals import RECEIVER_DECODER_QUEUE
from realtime.relay.server import RelayServer


async def wait_for(cond: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class NoForcedKeyframes(MediaStreamTrack):
    """lavfi marks every frame as a keyframe: clear pict_type so the encoder decides."""

    kind = "video"

    def __init__(self, track: MediaStreamTrack) -> None:
        super().__init__()
        self._track = track

    async def recv(self) -> Any:
        frame = await self._track.recv()
        frame.pict_type = 0  # av.video.frame.PictureType.NONE
        return frame

    def stop(self) -> None:
        super().stop()
        self._track.stop()


class FixedBitrateVp8Encoder(Vp8Encoder):
    """Ignores REMB, so that keyframes happen only on request (and can be counted)."""

    def __init__(self, bitrate: int = 500_000) -> None:
        super().__init__()
        self._fixed = bitrate

    @property  # type: ignore[override]
    def target_bitrate(self) -> int:
        return self._fixed

    @target_bitrate.setter
    def target_bitrate(self, bitrate: int) -> None:
        pass


class _SpyQueue(queue.Queue):  # type: ignore[type-arg]
    """Sees each encoded frame before the decoder thread decodes it (or instead of it)."""

    def __init__(self, original: queue.Queue, on_frame: Callable[[Any, Any], None], decode: bool) -> None:  # type: ignore[type-arg]
        super().__init__()
        self._original = original
        self._on_frame = on_frame
        self._decode = decode

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            self._original.put(None)
            super().put(None)
            return
        self._on_frame(*item)
        if self._decode:
            super().put(item)


class DecodeErrors(logging.Handler):
    """Counts aiortc's "failed to decode" warnings (a real decoder rejected a frame)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "failed to decode" in message.lower():
            self.messages.append(message)

    def __enter__(self) -> DecodeErrors:
        logging.getLogger("aiortc.rtcrtpreceiver").addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("aiortc.rtcrtpreceiver").removeHandler(self)


def answer_upload(pc: RTCPeerConnection, upload: dict[str, str], tracks: dict[str, MediaStreamTrack | None]) -> None:
    """After ``setRemoteDescription(relay offer)``: send on the upload m-lines, receive on the rest."""
    for transceiver in pc.getTransceivers():
        kind = next((k for k, mid in upload.items() if mid == transceiver.mid), None)
        if kind is not None:
            transceiver.direction = "sendonly"
            track = tracks.get(kind)
            if track is not None and transceiver.sender.track is None:
                transceiver.sender.replaceTrack(track)
        elif transceiver.direction != "inactive":
            transceiver.direction = "recvonly"


class RelayParticipant:
    """One participant session on a ``RelayServer``: publishes and/or decodes."""

    def __init__(self, pid: str, *, publish: bool = False, decode: bool = True, size: str = "320x240",
                 rate: int = 30, bitrate: int = 500_000) -> None:
        self.pid = pid
        self.session = secrets.token_hex(4)
        self.decode = decode
        # max-bundle as browsers do: every m-line the relay adds later rides the one transport
        # (an aiortc answerer with the default policy gives a later video m-line its own).
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.server: RelayServer | None = None
        self.mapping: dict[str, tuple[str, str]] = {}  # mid -> (publisher, kind)
        self.upload: dict[str, str] = {}
        self.video_paused: list[str] = []
        self.decoded: dict[tuple[str, str], int] = {}
        self.encoded: dict[tuple[str, str], int] = {}
        self.encoded_keyframes: dict[str, int] = {}
        self.first_keyframe: dict[str, bool] = {}
        self.first_frame_at: dict[tuple[str, str], float] = {}
        self.frame_hashes: dict[str, list[bytes]] = {}
        self.receivers: dict[tuple[str, str], Any] = {}
        self.plis_received = 0
        self._inbox: asyncio.Queue[p.Message] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._worker: asyncio.Task[None] | None = None
        self.players: list[MediaPlayer] = []
        self.local: dict[str, MediaStreamTrack | None] = {"audio": None, "video": None}
        self.encoder: FixedBitrateVp8Encoder | None = None
        if publish:
            video = MediaPlayer(f"testsrc=size={size}:rate={rate}", format="lavfi")
            audio = MediaPlayer("sine=frequency=440:sample_rate=48000", format="lavfi")
            self.players = [video, audio]
            self.local = {"audio": audio.audio, "video": NoForcedKeyframes(video.video)}
            self.encoder = FixedBitrateVp8Encoder(bitrate)
        self.pc.on("track", self._on_track)

    # -- signalling with the relay --

    async def join(self, server: RelayServer) -> None:
        self.server = server
        self._worker = asyncio.create_task(self._work())
        await server.add(self.pid, self.session)

    def deliver(self, message: p.Message) -> None:
        self._inbox.put_nowait(message)

    async def _work(self) -> None:
        while True:
            message = await self._inbox.get()
            try:
                await self._handle(message)
            except Exception:  # noqa: BLE001 - a test peer logs and carries on
                logging.getLogger("tests.relay").exception("participant %s", self.pid)

    async def _handle(self, message: p.Message) -> None:
        assert self.server is not None
        if isinstance(message, p.RelayTracks):
            self.upload = dict(message.upload)
            self.mapping = {t.mid: (t.participant, t.kind) for t in message.tracks}
            self.video_paused = list(message.video_paused)
        elif isinstance(message, p.RelayedOffer):
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=message.sdp, type="offer"))
            answer_upload(self.pc, self.upload, self.local)
            self._prepare_publisher()
            await self.pc.setLocalDescription(await self.pc.createAnswer())
            self.server.signal(self.pid, p.RelayedAnswer(sender=self.pid, sender_session=self.session,
                                                         sdp=self.pc.localDescription.sdp))

    def _prepare_publisher(self) -> None:
        if self.encoder is None:
            return
        for transceiver in self.pc.getTransceivers():
            sender = transceiver.sender
            if transceiver.mid == self.upload.get("video") and not hasattr(sender, "_chibo_counted"):
                # RTCRtpSender creates its encoder lazily: pre-seed it.
                sender._RTCRtpSender__encoder = self.encoder  # type: ignore[attr-defined]
                original = sender._send_keyframe

                def counting(original: Callable[[], None] = original) -> None:
                    self.plis_received += 1
                    original()

                sender._send_keyframe = counting  # type: ignore[method-assign]
                sender._chibo_counted = True  # type: ignore[attr-defined]

    # -- receiving --

    def _on_track(self, track: MediaStreamTrack) -> None:
        transceiver = next(t for t in self.pc.getTransceivers() if t.receiver.track is track)
        publisher, kind = self.mapping.get(transceiver.mid or "", ("?", track.kind))
        key = (publisher, kind)
        self.receivers[key] = transceiver.receiver
        original = getattr(transceiver.receiver, RECEIVER_DECODER_QUEUE)
        setattr(transceiver.receiver, RECEIVER_DECODER_QUEUE,
                _SpyQueue(original, lambda codec, frame, k=key: self._on_encoded(k, codec, frame), self.decode))
        if self.decode:
            self._tasks.append(asyncio.create_task(self._consume(key, track)))

    def _on_encoded(self, key: tuple[str, str], codec: Any, frame: Any) -> None:
        self.encoded[key] = self.encoded.get(key, 0) + 1
        self.first_frame_at.setdefault(key, time.monotonic())
        if key[1] == "video":
            keyframe = is_keyframe(codec.mimeType, frame.data)
            self.first_keyframe.setdefault(key[0], keyframe)
            self.encoded_keyframes[key[0]] = self.encoded_keyframes.get(key[0], 0) + int(keyframe)
            hashes = self.frame_hashes.setdefault(key[0], [])
            if len(hashes) < 2000:
                hashes.append(hashlib.sha1(frame.data).digest())

    async def _consume(self, key: tuple[str, str], track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                self.decoded[key] = self.decoded.get(key, 0) + 1

    def frames(self, publisher: str, kind: str) -> int:
        return self.decoded.get((publisher, kind), 0) if self.decode else self.encoded.get((publisher, kind), 0)

    async def send_pli(self, publisher: str) -> None:
        receiver = self.receivers[(publisher, "video")]
        ssrc = receiver.getSynchronizationSources()[0].source
        await receiver._send_rtcp_pli(ssrc)

    async def close(self) -> None:
        for task in [*self._tasks, *([self._worker] if self._worker else [])]:
            task.cancel()
        await asyncio.gather(*self._tasks, *([self._worker] if self._worker else []), return_exceptions=True)
        await self.pc.close()
        for track in self.local.values():
            if track is not None:
                track.stop()


class Switchboard:
    """Routes a RelayServer's outgoing signalling to the test participants."""

    def __init__(self) -> None:
        self.participants: dict[str, RelayParticipant] = {}

    def send(self, pid: str, message: p.Message) -> None:
        participant = self.participants.get(pid)
        if participant is not None:
            participant.deliver(message)

    async def join(self, server: RelayServer, participant: RelayParticipant) -> RelayParticipant:
        self.participants[participant.pid] = participant
        await participant.join(server)
        return participant


class LossyLink:
    """Drops outgoing RTP on one relay link's transport (before SRTP): emulated downlink loss."""

    def __init__(self, transport: Any, predicate: Callable[[RtpPacket], bool]) -> None:
        self.predicate = predicate
        self.dropped = 0
        self.sent = 0
        original = transport._send_rtp

        async def send_rtp(data: bytes) -> None:
            if not is_rtcp(data):
                if self.predicate(RtpPacket.parse(data)):
                    self.dropped += 1
                    return
                self.sent += 1
            await original(data)

        transport._send_rtp = send_rtp
