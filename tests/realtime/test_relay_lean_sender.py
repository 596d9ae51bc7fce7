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
from realtime.relay.forwarding import RelayFrame

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
        size = self._sizes.pop(0)
        data = bytes((self._pts + i) % 251 for i in range(size))
        packet = av.Packet(data)
        packet.pts = self._pts
        packet.time_base = fractions.Fraction(1, self._clock_rate)
        self._pts += 3001
        return RelayFrame(packet, data, packet.pts, self._clock_rate)

    async def recv(self) -> av.Packet:  # type: ignore[override]
        return (await self.recv_relay()).packet


class PacketsOnly(Frames):
    """A track without ``recv_relay``: the lean loop takes aiortc's encoder.pack() path."""

    recv_relay_ = Frames.recv_relay
    recv_relay = None  # type: ignore[assignment]

    async def recv(self) -> av.Packet:  # type: ignore[override]
        return (await self.recv_relay_()).packet


async def run(kind: str, sizes: list[int], codecs: list, extensions: list, lean: bool,
              monkeypatch: pytest.MonkeyPatch, direct: bool = False,
              track: type[Frames] = Frames, clock_rate: int | None = None) -> tuple[RTCRtpSender, FakeDtls]:
    # The same "random" starting points and the same clock for both loops.
    for module in (aiortc.rtcrtpsender, lean_sender):
        monkeypatch.setattr(module, "random_sequence_number", lambda: 65530)  # wraps around
        monkeypatch.setattr(module, "random32", lambda: 0xFFFFF000)
    monkeypatch.setattr(aiortc.rtcrtpsender.clock, "current_ntp_time", lambda: lean_sender.ntp_time(NOW))
    monkeypatch.setattr(lean_sender.time, "time", lambda: NOW)
    monkeypatch.setattr(random, "randint", lambda a, b: 32760)  # VP8 picture id (wraps around)
    dtls = FakeDtls(connected=direct)
    sender = RTCRtpSender(track(kind, sizes, clock_rate), dtls)  # type: ignore[arg-type]
    sender._ssrc = 0x12345678
    sender._rtx_ssrc = 0x9ABCDEF0
    if lean:
        assert lean_sender.install_lean_rtp(sender)
    await sender.send(RTCRtpSendParameters(codecs=codecs, headerExtensions=extensions, muxId="1",
                                           rtcp=RTCRtcpParameters(cname="c")))
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
