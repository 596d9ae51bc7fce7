"""The relay's lean RTP loop (realtime/relay/lean_sender.py) against aiortc's own loop: same
input frames, same random starting points, same clock → the same bytes handed to the DTLS
transport, the same sender-report counters, the same retransmissions (plain and RTX)."""

from __future__ import annotations

import asyncio
import fractions
import random
import types

import aiortc.rtcrtpsender
import av
import pytest
from aioice.ice import StunProtocol
from aiortc import RTCRtpSender
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcdtlstransport import State
from aiortc.rtcrtpparameters import (
    RTCRtcpParameters,
    RTCRtpCodecParameters,
    RTCRtpHeaderExtensionParameters,
    RTCRtpSendParameters,
)
from aiortc.rtp import RtpPacket

from realtime.relay import lean_sender
from realtime.relay.forwarding import ForwardedTrack, RelayFrame
from tests.support.relay_peers import wait_for

pytestmark = pytest.mark.anyio

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=97)
RTX = RTCRtpCodecParameters(mimeType="video/rtx", clockRate=90000, payloadType=98, parameters={"apt": 97})
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)
MID = RTCRtpHeaderExtensionParameters(id=4, uri="urn:ietf:params:rtp-hdrext:sdes:mid")
AST = RTCRtpHeaderExtensionParameters(id=2, uri="http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time")
LEVEL = RTCRtpHeaderExtensionParameters(id=1, uri="urn:ietf:params:rtp-hdrext:ssrc-audio-level")
NOW = 1_790_000_000.123456  # a fixed wall clock for both loops


class FakeUdp:
    def __init__(self, sent: list[bytes]) -> None:
        self.sendto = lambda data, addr: sent.append(data)


class FakeDtls:
    """What RTCRtpSender needs from its RTCDtlsTransport; records what would be protected.

    ``connected``: looks like a connected transport over a plain UDP pair, so the lean loop
    takes its direct path (``DirectRtpSend``) and the bytes arrive via the UDP ``sendto``;
    otherwise everything goes through ``_send_rtp``."""

    state = "connected"
    _stats_id = "transport"

    def __init__(self, connected: bool = False) -> None:
        self.sent: list[bytes] = []
        self._state = State.CONNECTED if connected else State.NEW
        self._tx_srtp = types.SimpleNamespace(protect=lambda data: data)  # identity "SRTP"
        protocol = StunProtocol(None)
        protocol.transport = FakeUdp(self.sent)
        pair = types.SimpleNamespace(protocol=protocol, remote_addr=("10.0.0.2", 5000))
        connection = types.SimpleNamespace(_nominated={1: pair})
        connection.send = self._never
        self.transport = types.SimpleNamespace(_connection=connection, _send=connection.send)
        self._RTCDtlsTransport__tx_bytes = 0
        self._RTCDtlsTransport__tx_packets = 0

    async def _never(self, data: bytes) -> None:
        raise AssertionError("the direct path does not await the ICE connection")

    def _register_rtp_sender(self, sender, parameters) -> None:  # type: ignore[no-untyped-def]
        pass

    def _unregister_rtp_sender(self, sender) -> None:  # type: ignore[no-untyped-def]
        pass

    async def _send_rtp(self, data: bytes) -> None:
        self.sent.append(data)

    def _get_stats(self) -> dict:  # type: ignore[type-arg]
        return {}


def relay_frame(kind: str, size: int, pts: int, clock_rate: int | None = None) -> RelayFrame:
    """A published frame as ForwardedSource shares it; its bytes follow from ``pts``."""
    clock_rate = clock_rate or (90000 if kind == "video" else 48000)
    data = bytes((pts + i) % 251 for i in range(size))
    packet = av.Packet(data)
    packet.pts = pts
    packet.time_base = fractions.Fraction(1, clock_rate)
    return RelayFrame(packet, data, pts, clock_rate)


class Frames(MediaStreamTrack):
    """Pre-encoded frames, as ForwardedTrack hands them to the sender (``recv``: the
    ``av.Packet`` aiortc packs; ``recv_relay``: the shared RelayFrame the lean loop packs
    itself), then the end."""

    def __init__(self, kind: str, sizes: list[int], clock_rate: int | None = None) -> None:
        super().__init__()
        self.kind = kind
        self._sizes = list(sizes)
        self._pts = 0
        self._clock_rate = clock_rate or (90000 if kind == "video" else 48000)

    async def recv_relay(self) -> RelayFrame:
        await asyncio.sleep(0)
        if not self._sizes:
            raise MediaStreamError
        frame = relay_frame(self.kind, self._sizes.pop(0), self._pts, self._clock_rate)
        self._pts += 3001
        return frame

    async def recv(self) -> av.Packet:  # type: ignore[override]
        return (await self.recv_relay()).packet


class PacketsOnly(Frames):
    """A track without ``recv_relay``: the lean loop takes aiortc's encoder.pack() path."""

    recv_relay_ = Frames.recv_relay
    recv_relay = None  # type: ignore[assignment]

    async def recv(self) -> av.Packet:  # type: ignore[override]
        return (await self.recv_relay_()).packet


def same_randomness_and_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same "random" starting points and the same clock for every loop compared."""
    for module in (aiortc.rtcrtpsender, lean_sender):
        monkeypatch.setattr(module, "random_sequence_number", lambda: 65530)  # wraps around
        monkeypatch.setattr(module, "random32", lambda: 0xFFFFF000)
    monkeypatch.setattr(aiortc.rtcrtpsender.clock, "current_ntp_time", lambda: lean_sender.ntp_time(NOW))
    monkeypatch.setattr(lean_sender.time, "time", lambda: NOW)
    monkeypatch.setattr(random, "randint", lambda a, b: 32760)  # VP8 picture id (wraps around)


async def start_sender(track: MediaStreamTrack, dtls: FakeDtls, codecs: list, extensions: list,
                       lean: bool) -> RTCRtpSender:
    sender = RTCRtpSender(track, dtls)  # type: ignore[arg-type]
    sender._ssrc = 0x12345678
    sender._rtx_ssrc = 0x9ABCDEF0
    if lean:
        assert lean_sender.install_lean_rtp(sender)
    await sender.send(RTCRtpSendParameters(codecs=codecs, headerExtensions=extensions, muxId="1",
                                           rtcp=RTCRtcpParameters(cname="c")))
    return sender


async def run(kind: str, sizes: list[int], codecs: list, extensions: list, lean: bool,
              monkeypatch: pytest.MonkeyPatch, direct: bool = False,
              track: type[Frames] = Frames, clock_rate: int | None = None) -> tuple[RTCRtpSender, FakeDtls]:
    same_randomness_and_clock(monkeypatch)
    dtls = FakeDtls(connected=direct)
    sender = await start_sender(track(kind, sizes, clock_rate), dtls, codecs, extensions, lean)
    for _ in range(200):
        if sender._RTCRtpSender__rtp_exited.is_set():  # type: ignore[attr-defined]
            break
        await asyncio.sleep(0.001)
    return sender, dtls


def counters(sender: RTCRtpSender) -> tuple[int, int, int, int]:
    s = sender
    return (s._RTCRtpSender__ntp_timestamp, s._RTCRtpSender__rtp_timestamp,  # type: ignore[attr-defined]
            s._RTCRtpSender__octet_count, s._RTCRtpSender__packet_count)  # type: ignore[attr-defined]


@pytest.mark.parametrize("track", [Frames, PacketsOnly], ids=["relay_frames", "av_packets"])
@pytest.mark.parametrize("direct", [True, False], ids=["direct", "via_send_rtp"])
@pytest.mark.parametrize("kind,sizes,codecs,extensions,clock_rate", [
    ("video", [3000, 700, 1, 2500, 1296, 1297, 2592, 0, 5, 9000] + [10] * 12, [VP8, RTX], [MID, AST], None),
    ("video", [1300, 200], [VP8], [AST], None),
    ("video", [1300, 200], [VP8], [], 30000),  # another clock rate: timestamps converted
    ("audio", [120, 80, 3, 0], [OPUS], [MID, AST, LEVEL], None),
])
async def test_same_bytes_counters_and_retransmissions_as_aiortc(kind, sizes, codecs, extensions, clock_rate,
                                                                 direct, track, monkeypatch):
    reference, ref_dtls = await run(kind, sizes, codecs, extensions, False, monkeypatch, clock_rate=clock_rate)
    lean, lean_dtls = await run(kind, sizes, codecs, extensions, True, monkeypatch, direct=direct,
                                track=track, clock_rate=clock_rate)
    rtp = [d for d in ref_dtls.sent if not 192 <= d[1] <= 223]
    assert len(rtp) >= len(sizes)
    assert [d for d in lean_dtls.sent if not 192 <= d[1] <= 223] == rtp
    if direct:  # the transport's own counters, which _send_rtp would have kept
        assert lean_dtls._RTCDtlsTransport__tx_packets == len(rtp)
        assert lean_dtls._RTCDtlsTransport__tx_bytes == sum(map(len, rtp))
    assert counters(lean) == counters(reference)
    stats = [next(s for s in (await x.getStats()).values() if s.type == "outbound-rtp") for x in (reference, lean)]
    assert [(s.packetsSent, s.bytesSent) for s in stats] == [(stats[0].packetsSent, stats[0].bytesSent)] * 2

    # A NACK for every packet sent: the same retransmissions (RTX-wrapped when negotiated).
    ref_dtls.sent.clear()
    lean_dtls.sent.clear()
    for data in rtp:
        seq = RtpPacket.parse(data).sequence_number
        await reference._retransmit(seq)
        await lean._retransmit(seq)
    assert lean_dtls.sent == ref_dtls.sent
    assert len(lean_dtls.sent) == len(rtp)
    await reference.stop()
    await lean.stop()


async def test_not_installed_after_start_nor_when_aiortc_debug_logging(monkeypatch, caplog):
    sender, _ = await run("audio", [10], [OPUS], [MID], True, monkeypatch)
    with pytest.raises(RuntimeError):
        lean_sender.install_lean_rtp(sender)
    await sender.stop()
    caplog.set_level("DEBUG", logger="aiortc.rtcrtpsender")
    fresh = RTCRtpSender("audio", FakeDtls())  # type: ignore[arg-type]
    assert not lean_sender.install_lean_rtp(fresh)


class FakeSource:
    """What a ForwardedTrack needs from its ForwardedSource."""

    ended = False

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.sinks: set[ForwardedTrack] = set()
        self.keyframe_requests: list[str] = []

    def add_sink(self, sink: ForwardedTrack) -> None:
        self.sinks.add(sink)

    def remove_sink(self, sink: ForwardedTrack) -> None:
        self.sinks.discard(sink)

    def request_keyframe(self, reason: str = "") -> bool:
        self.keyframe_requests.append(reason)
        return True


async def relay_sender(kind: str, dtls: FakeDtls, codecs: list, extensions: list) -> tuple[RTCRtpSender, ForwardedTrack]:
    """A lean relay sender on a ForwardedTrack, started and waiting for its first frame."""
    track = ForwardedTrack(FakeSource(kind))  # type: ignore[arg-type]
    sender = await start_sender(track, dtls, codecs, extensions, lean=True)
    await wait_for(lambda: track.direct_sink is not None and track._waiter is not None, timeout=1,
                   what="the lean loop attached to the relay track, waiting for a frame")
    return sender, track


def rtp_only(sent: list[bytes]) -> list[bytes]:
    return [d for d in sent if not 192 <= d[1] <= 223]


@pytest.mark.parametrize("kind,sizes,codecs,extensions", [
    ("video", [3000, 700, 1, 2592, 0, 5], [VP8, RTX], [MID, AST]),
    ("audio", [120, 80, 3], [OPUS], [MID, AST]),
])
async def test_a_connected_senders_frames_leave_during_the_fan_out_as_aiortc_would_send_them(
        kind, sizes, codecs, extensions, monkeypatch):
    reference, ref_dtls = await run(kind, sizes, codecs, extensions, False, monkeypatch)
    dtls = FakeDtls(connected=True)
    sender, track = await relay_sender(kind, dtls, codecs, extensions)
    expected = rtp_only(ref_dtls.sent)
    for n, size in enumerate(sizes):
        before = len(dtls.sent)
        track.push(relay_frame(kind, size, 3001 * n), n == 0, 0.0)
        # On the wire before push() returned (no task had to wake up), in aiortc's order.
        assert (len(dtls.sent) > before) == (size > 0), (size, len(dtls.sent) - before)
        assert dtls.sent == expected[:len(dtls.sent)]
    assert dtls.sent == expected
    assert counters(sender) == counters(reference)
    assert track.stats.frames_sent_at_once == track.stats.frames_forwarded == len(sizes)
    assert not track._queue
    await reference.stop()
    await sender.stop()


def wrap_send_rtp(dtls: FakeDtls) -> list[bytes]:
    """Wrap the transport's ``_send_rtp`` as tests that emulate loss do: the direct path then
    no longer applies and the sender's loop sends through the wrapper. Returns what it saw."""
    seen: list[bytes] = []
    original = dtls._send_rtp

    async def wrapped(data: bytes) -> None:
        seen.append(data)
        await original(data)

    dtls._send_rtp = wrapped  # type: ignore[method-assign]
    return seen


async def test_frames_queue_for_the_loop_while_the_direct_path_does_not_apply(monkeypatch):
    sizes = [120, 80, 3]
    reference, ref_dtls = await run("audio", sizes, [OPUS], [MID, AST], False, monkeypatch)
    dtls = FakeDtls(connected=True)
    seen = wrap_send_rtp(dtls)
    sender, track = await relay_sender("audio", dtls, [OPUS], [MID, AST])
    for n, size in enumerate(sizes):
        track.push(relay_frame("audio", size, 3001 * n), False, 0.0)
    assert dtls.sent == [] and len(track._queue) == 3  # nothing sent inside push()
    await wait_for(lambda: len(rtp_only(dtls.sent)) == 3, timeout=1, what="the loop sends the queued frames")
    assert rtp_only(dtls.sent) == rtp_only(ref_dtls.sent) == rtp_only(seen)
    assert track.stats.frames_forwarded == 3 and track.stats.frames_sent_at_once == 0
    await reference.stop()
    await sender.stop()


async def test_a_frame_never_overtakes_frames_still_queued_or_in_the_loops_hands(monkeypatch):
    sizes = [120, 80, 3, 60, 70]
    reference, ref_dtls = await run("audio", sizes, [OPUS], [MID, AST], False, monkeypatch)
    expected = rtp_only(ref_dtls.sent)
    dtls = FakeDtls(connected=True)
    sender, track = await relay_sender("audio", dtls, [OPUS], [MID, AST])
    frames = [relay_frame("audio", size, 3001 * n) for n, size in enumerate(sizes)]

    # 1. Frames queued while the path did not apply, not yet taken by the loop: a frame pushed
    #    once the path applies again queues behind them.
    seen = wrap_send_rtp(dtls)
    track.push(frames[0], False, 0.0)
    track.push(frames[1], False, 0.0)
    del dtls._send_rtp  # the plain path is back before the loop task ran
    track.push(frames[2], False, 0.0)
    assert dtls.sent == [] and len(track._queue) == 3
    await wait_for(lambda: len(dtls.sent) == 3, timeout=1, what="the loop drains its queue")
    assert dtls.sent == expected[:3] and seen == []

    # 2. The loop is mid-frame, awaiting a _send_rtp that suspends: a frame pushed meanwhile
    #    waits for it even if the direct path applies again.
    gate = asyncio.Event()
    original = FakeDtls._send_rtp

    async def slow(data: bytes) -> None:
        await gate.wait()
        await original(dtls, data)

    dtls._send_rtp = slow  # type: ignore[method-assign]
    track.push(frames[3], False, 0.0)
    await wait_for(lambda: not track._queue, timeout=1, what="the loop takes frame 3")
    del dtls._send_rtp
    track.push(frames[4], False, 0.0)
    assert len(dtls.sent) == 3  # frame 4 did not overtake frame 3
    gate.set()
    await wait_for(lambda: len(dtls.sent) == 5, timeout=1, what="both frames sent")
    assert dtls.sent == expected
    assert track.stats.frames_sent_at_once == 0
    await reference.stop()
    await sender.stop()


async def test_a_failure_on_the_direct_path_never_reaches_the_publishers_receive_path(monkeypatch, caplog):
    same_randomness_and_clock(monkeypatch)
    dtls = FakeDtls(connected=True)
    sender, track = await relay_sender("audio", dtls, [OPUS], [MID, AST])

    def broken(data: bytes) -> bytes:
        raise RuntimeError("SRTP session gone")

    dtls._tx_srtp.protect = broken
    track.direct_sink.__self__.direct = None  # type: ignore[union-attr]  # re-resolved: takes the broken protect
    track.push(relay_frame("audio", 50, 0), False, 0.0)  # must not raise
    assert "failed on the direct path" in caplog.text
    assert track.direct_sink is None  # detached: later frames queue for the loop
    track.push(relay_frame("audio", 50, 3001), False, 0.0)
    await asyncio.wait_for(sender._RTCRtpSender__rtp_exited.wait(), 1)  # type: ignore[attr-defined]
    assert "relay RTP sender failed" in caplog.text  # the loop met it too, and ended as aiortc's would
    await sender.stop()


async def test_a_transport_that_cannot_even_be_resolved_does_not_break_the_fan_out(monkeypatch, caplog):
    same_randomness_and_clock(monkeypatch)
    dtls = FakeDtls(connected=True)
    sender, track = await relay_sender("audio", dtls, [OPUS], [MID, AST])
    del dtls._tx_srtp  # e.g. torn down under a still-connected state
    track.push(relay_frame("audio", 50, 0), False, 0.0)  # must not raise
    assert "failed on the direct path" in caplog.text
    assert len(track._queue) == 1 or track.stats.frames_forwarded == 1  # handed to the loop
    await asyncio.wait_for(sender._RTCRtpSender__rtp_exited.wait(), 1)  # type: ignore[attr-defined]
    await sender.stop()


async def test_direct_udp_send_goes_to_the_socket_and_keeps_order_behind_asyncios_buffer():
    assert lean_sender.ASYNCIO_UDP_FAST_PATH, "asyncio's UDP transport changed: see asyncio_udp_fast_path()"
    loop = asyncio.get_running_loop()
    received: list[bytes] = []

    class Sink(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: object) -> None:
            received.append(data)

    class Link(asyncio.DatagramProtocol):  # what aioice's StunProtocol offers DirectRtpSend
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport

    sink, _ = await loop.create_datagram_endpoint(Sink, local_addr=("127.0.0.1", 0))
    protocol = Link()
    transport, _ = await loop.create_datagram_endpoint(lambda: protocol, local_addr=("127.0.0.1", 0))
    dtls = FakeDtls(connected=True)
    pair = types.SimpleNamespace(protocol=protocol, remote_addr=sink.get_extra_info("sockname"))
    calls: list[bytes] = []
    real_sendto = transport.sendto
    transport.sendto = lambda data, addr=None: (calls.append(data), real_sendto(data, addr))  # type: ignore[method-assign]
    direct = lean_sender.DirectRtpSend(dtls, {1: pair}, pair)
    assert direct.send(b"one") == 3
    assert calls == []  # straight to the socket, not through asyncio's sendto
    transport._buffer.append((b"zero", pair.remote_addr))  # asyncio still holds an earlier datagram
    direct.send(b"two")
    assert calls == [b"two"]  # queued behind it, through asyncio
    transport._sendto_ready()  # the socket is writable again: asyncio flushes its buffer
    direct.send(b"three")
    assert calls == [b"two"]
    transport._conn_lost += 1  # the transport is being lost: asyncio's own sendto decides what to do
    direct.send(b"four")
    assert calls == [b"two", b"four"]
    transport._conn_lost -= 1
    await wait_for(lambda: len(received) == 5, timeout=1, what="five datagrams")
    assert received == [b"one", b"zero", b"two", b"three", b"four"]
    transport.close()
    sink.close()
