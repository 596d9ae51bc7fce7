"""A cheaper RTP send loop for the relay's senders (replaces ``RTCRtpSender._run_rtp``).

Why: with N subscribers every forwarded packet goes through aiortc's per-packet Python path
N times, and that path dominated the relay's CPU: per packet it builds an ``RtpPacket`` and a
``HeaderExtensions``, reads the clock twice through ``datetime`` (abs-send-time, SR
timestamp), packs the header extensions in Python, then awaits three coroutine layers down to
``sendto``. About 11 µs of Python per packet before SRTP and the syscall.

What this loop does instead, with the same bytes on the wire:

* once per sender: the header-extension block (mid, abs-send-time slot, audio level) is
  built by aiortc's own ``HeaderExtensionsMap.set`` and cut into a prefix and a suffix
  around the 3 abs-send-time bytes;
* once per frame: a relay track's frame (``ForwardedTrack.recv_relay``) is packetised here,
  byte for byte as ``encoder.pack()`` would (Opus: one payload; VP8: aiortc's 4-byte payload
  descriptor with this sender's picture id + a chunk of the frame cut once for all
  subscribers), without copying the frame or converting its timestamp through Fractions per
  subscriber; other tracks and codecs still go through ``_next_encoded_frame``;
* once per frame: one ``time.time()`` gives abs-send-time and the SR's NTP timestamp (the
  packets of a frame leave within microseconds of each other: nothing in between yields);
* per packet: one ``struct`` pack for the 12-byte fixed header, two concatenations, SRTP
  protect and the socket's ``sendto``, without awaiting ``RTCDtlsTransport._send_rtp``,
  aioice's two layers under it and asyncio's checks in its transport's ``sendto`` when the
  link is the plain UDP one (``DirectRtpSend``); through ``_send_rtp`` otherwise (not
  connected, or a wrapped transport);
* per frame and subscriber, no task wake-up while the sender keeps up: ``ForwardedTrack.push``
  hands the frame to ``LeanRtpLoop.send_now``, which sends it during the publisher's fan-out;
  the loop task only sends what had to be queued (see ``LeanRtpLoop``).

Kept as aiortc does it: the RTP history that ``_retransmit`` reads for NACK/RTX (it holds
``SentPacket``: the exact bytes sent, parsed back into an ``RtpPacket`` only when a NACK
asks for it), the counters the RTCP sender reports and ``getStats()`` read, the sender's
``_enabled`` flag, aiortc's own packing for anything but a relay track's VP8/Opus frames,
and the exit path ``stop()`` waits for (track stopped, encoder released, ``rtp_exited``).
Not kept: aiortc's per-packet debug log lines (the loop is not installed when the
``aiortc.rtcrtpsender`` logger is at DEBUG, so that debugging still shows them).
The aiortc internals used are listed in internals.py and checked by
``check_aiortc_internals()``.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import random
import struct
import time
import traceback
import types
from asyncio import selector_events
from collections.abc import Callable
from typing import Any

from aioice.ice import StunProtocol
from aiortc import RTCRtpSender
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcdtlstransport import State
from aiortc.rtcrtpsender import logger as aiortc_sender_logger
from aiortc.rtcrtpsender import random_sequence_number
from aiortc.rtp import RTP_HISTORY_SIZE, HeaderExtensions, HeaderExtensionsMap, RtpPacket
from aiortc.utils import random32

from . import internals
from .codecs import OPUS_PT, build_red

log = logging.getLogger("chibo.relay")

#: Seconds from the NTP epoch (1900) to the Unix epoch (1970).
NTP_UNIX_OFFSET = 2208988800
_pack_fixed_header = struct.Struct("!BBHLL").pack
_pack_extension_header = struct.Struct("!HH").pack
_pack_picture_id = struct.Struct("!H").pack


def ntp_time(unix_time: float) -> int:
    """64-bit NTP timestamp, as ``aiortc.clock.current_ntp_time()`` but without datetime."""
    return int((unix_time + NTP_UNIX_OFFSET) * 4294967296.0)


class SentPacket:
    """One entry of the sender's RTP history: the unprotected bytes exactly as sent.

    ``RTCRtpSender._retransmit`` checks ``sequence_number`` and then either calls
    ``serialize()`` (no RTX: the same bytes again) or hands the entry to ``wrap_rtx``, which
    reads ``marker``, ``timestamp``, ``payload``, ``csrc`` and ``extensions``; those come from
    parsing the bytes back, once, only for the packets a subscriber NACKs.
    """

    __slots__ = ("sequence_number", "data", "_extensions_map", "_parsed")

    def __init__(self, sequence_number: int, data: bytes, extensions_map: HeaderExtensionsMap) -> None:
        self.sequence_number = sequence_number
        self.data = data
        self._extensions_map = extensions_map
        self._parsed: RtpPacket | None = None

    def serialize(self, extensions_map: HeaderExtensionsMap | None = None) -> bytes:
        return self.data

    def __getattr__(self, name: str) -> Any:
        # Only reached for names that are not slots: marker, timestamp, payload, ...
        if name.startswith("__"):
            raise AttributeError(name)
        parsed = self._parsed
        if parsed is None:
            parsed = self._parsed = RtpPacket.parse(self.data, self._extensions_map)
        return getattr(parsed, name)


def extension_template(extensions_map: HeaderExtensionsMap, mid: str | None,
                       audio_level: int | None = None) -> tuple[bytes, bytes | None]:
    """``(prefix, suffix)``: ``prefix + abs_send_time(3 bytes) + suffix`` is the extension part
    of the RTP header (profile, length, elements, padding) that ``RtpPacket.serialize`` writes
    for this sender. ``suffix`` is None when abs-send-time was not negotiated: then ``prefix``
    is the whole (constant) block, empty if no extension at all."""

    def block(abs_send_time: int) -> bytes:
        values = HeaderExtensions(abs_send_time=abs_send_time, mid=mid)
        if audio_level is not None:
            values.audio_level = (False, -audio_level)
        profile, value = extensions_map.set(values)
        return _pack_extension_header(profile, len(value) >> 2) + value if value else b""

    low, high = block(0), block(0xFFFFFF)
    if low == high:
        return low, None
    if len(low) != len(high):
        raise internals.IncompatibleAiortc("unexpected abs-send-time encoding in HeaderExtensionsMap.set")
    at = next(i for i, (a, b) in enumerate(zip(low, high, strict=True)) if a != b)
    if (low[at:at + 3], high[at:at + 3]) != (b"\0\0\0", b"\xff\xff\xff") or low[at + 3:] != high[at + 3:]:
        raise internals.IncompatibleAiortc("unexpected abs-send-time encoding in HeaderExtensionsMap.set")
    return low[:at], low[at + 3:]


def relay_packetizer(mime_type: str) -> Callable[[Any], list[bytes]] | None:
    """Per sender: RTP payloads for a ``RelayFrame``, as aiortc's ``encoder.pack()`` makes them
    (Opus: the frame; VP8: ``Vp8Encoder._packetize`` with this sender's own picture id, which
    starts at random and counts frames). None for any other codec (aiortc's path is used)."""
    mime = mime_type.lower()
    if mime == "audio/opus":
        return lambda frame: [frame.data]
    if mime == "audio/red":
        return red_packetizer()
    if mime != "video/vp8":
        return None
    picture_id = random.randint(0, (1 << 15) - 1)

    def vp8(frame: Any) -> list[bytes]:
        nonlocal picture_id
        pid = _pack_picture_id(0x8000 | picture_id)
        picture_id = (picture_id + 1) % (1 << 15)
        chunks = frame.vp8_chunks()
        if not chunks:
            return []
        first = b"\x90\x80" + pid  # X, S, partition 0; I; M + 15-bit picture id
        rest = b"\x80\x80" + pid
        return [first + chunks[0]] + [rest + chunk for chunk in chunks[1:]]

    return vp8


def red_packetizer() -> Callable[[Any], list[bytes]]:
    """Per sender, for a subscriber that takes RED (codecs.py): the publisher's RED payload as
    it came; for a publisher that sends plain Opus, a RED payload the relay builds with the
    previous frame as redundancy (the subscriber's own leg is then protected too). Frames
    the relay recovered from redundancy are not sent again: they are in the next payload."""
    previous: list[Any] = [None]

    def red(frame: Any) -> list[bytes]:
        if frame.recovered:
            return []
        payload = frame.red
        if payload is None:
            last = previous[0]
            redundant = [(frame.timestamp - last.timestamp, last.data)] if last is not None else []
            payload = build_red(OPUS_PT, frame.data, redundant)
        previous[0] = frame
        return [payload]

    return red


class LeanRtpLoop:
    """One relay sender's RTP state and send loop (what ``RTCRtpSender._run_rtp`` does).

    Frames reach the wire on one of two paths, with the same bytes and bookkeeping:

    * **now** (``send_now``): ``ForwardedTrack.push`` calls it synchronously while the
      publisher's frame is being fanned out, when this sender is connected over the plain
      UDP path and has nothing queued. No task wakes up per frame and subscriber, which was
      the larger part of the relay's per-subscriber cost once packetising was lean;
    * **queued** (``run``): everything else (not connected yet, a wrapped transport, frames
      that queued while the sender could not send, tracks other than the relay's): the loop
      awaits the track's next frame and sends it, through ``_send_rtp`` if need be.

    The loop task exists in both cases: ``stop()`` cancels it and waits for ``rtp_exited``.
    """

    def __init__(self, sender: RTCRtpSender, codec: Any) -> None:
        s: Any = sender  # name-mangled attributes: see internals.SENDER_PRIVATE_ATTRS
        self.sender = s
        self.codec = codec
        self.history = s._RTCRtpSender__rtp_history
        self.extensions_map = s._RTCRtpSender__rtp_header_extensions_map
        self.mid = s._RTCRtpSender__mid
        self.payload_type = codec.payloadType
        self.marked_type = 0x80 | codec.payloadType
        self.ssrc = s._ssrc
        self.prefix, self.suffix = extension_template(self.extensions_map, self.mid)
        self.sequence_number = random_sequence_number()
        self.timestamp_origin = random32()
        self.clock_rate = codec.clockRate
        self.packetizer = relay_packetizer(codec.mimeType)
        self.direct: DirectRtpSend | None = None
        #: True while the loop awaits ``_send_rtp`` mid-frame: ``send_now`` must not overtake it.
        self.loop_sending = False
        #: The relay track whose ``direct_sink`` is ``send_now`` (None: no track attached).
        self.track: Any = None

    # -- building packets (both paths) --

    def relay_payloads(self, frame: Any) -> tuple[list[bytes], int]:
        """A relay frame's RTP payloads and its timestamp in this codec's clock."""
        assert self.packetizer is not None
        payloads = self.packetizer(frame)
        frame_timestamp = frame.timestamp
        if frame.clock_rate != self.clock_rate:  # convert_timebase(), exactly
            frame_timestamp = frame_timestamp * self.clock_rate // frame.clock_rate
        return payloads, frame_timestamp

    def packets(self, payloads: list[bytes], frame_timestamp: int, audio_level: int | None) -> list[bytes]:
        """One frame's RTP packets (unprotected), recorded in the history for NACKs and in the
        counters RTCP sender reports and ``getStats()`` read."""
        s = self.sender
        timestamp = (self.timestamp_origin + frame_timestamp) & 0xFFFFFFFF
        ntp = ntp_time(time.time())  # one clock read per frame: abs-send-time and the SR's NTP
        pre, suf = self.prefix, self.suffix
        if audio_level is not None:  # only for raw audio frames, never relayed ones
            pre, suf = extension_template(self.extensions_map, self.mid, audio_level)
        extension = pre if suf is None else pre + ((ntp >> 14) & 0xFFFFFF).to_bytes(3, "big") + suf
        b0 = 0x90 if extension else 0x80
        history, extensions_map, ssrc = self.history, self.extensions_map, self.ssrc
        payload_type, last = self.payload_type, len(payloads) - 1
        sequence_number = self.sequence_number
        packets = []
        octets = 0
        for i, payload in enumerate(payloads):
            data = _pack_fixed_header(b0, self.marked_type if i == last else payload_type,
                                      sequence_number, timestamp, ssrc) + extension + payload
            history[sequence_number % RTP_HISTORY_SIZE] = SentPacket(sequence_number, data, extensions_map)
            packets.append(data)
            octets += len(payload)
            sequence_number = (sequence_number + 1) & 0xFFFF
        self.sequence_number = sequence_number
        s._RTCRtpSender__ntp_timestamp = ntp
        s._RTCRtpSender__rtp_timestamp = timestamp
        s._RTCRtpSender__octet_count += octets
        s._RTCRtpSender__packet_count += last + 1
        return packets

    def direct_for(self, dtls: Any) -> DirectRtpSend | None:
        direct = self.direct
        if direct is not None and direct.still_valid(dtls):
            return direct
        direct = self.direct = DirectRtpSend.resolve(dtls)
        return direct

    # -- the synchronous path --

    def attach(self, track: Any) -> None:
        if track is self.track:
            return
        self.detach()
        if hasattr(track, "direct_sink"):
            track.direct_sink = self.send_now
            self.track = track

    def detach(self) -> None:
        track, self.track = self.track, None
        if track is not None and track.direct_sink == self.send_now:
            track.direct_sink = None

    def send_now(self, frame: Any) -> bool:
        """Send a relay frame at once if the direct path is open; False if the caller must
        queue it for the loop instead. Never raises: the publisher's receive path calls it."""
        s = self.sender
        if s._RTCRtpSender__track is not self.track:  # replaced: the loop re-attaches
            self.detach()
            return False
        if self.loop_sending:
            return False
        packets = None
        try:
            direct = self.direct_for(s._RTCRtpSender__transport)
            if direct is None:
                return False
            if not s._enabled:
                return True  # dropped, as the loop drops frames while the sender is disabled
            payloads, frame_timestamp = self.relay_payloads(frame)
            if payloads:
                packets = self.packets(payloads, frame_timestamp, None)
                direct.send_packets(packets)
            return True
        except Exception:
            # Leave it to the loop, which meets the same failure and ends as aiortc's would;
            # a frame already packetised (and maybe partly sent) is not sent a second time.
            log.warning("relay RTP sender failed on the direct path:\n%s", traceback.format_exc())
            self.detach()
            return packets is not None

    # -- the loop --

    async def run(self) -> None:
        s = self.sender
        s._RTCRtpSender__rtp_started.set()
        try:
            while True:
                track = s._RTCRtpSender__track
                if not track:
                    self.detach()
                    await asyncio.sleep(0.02)
                    continue
                recv_relay = getattr(track, "recv_relay", None) if self.packetizer is not None else None
                if recv_relay is not None:
                    # A relay track: its shared frame, packetised here (what encoder.pack() does).
                    self.attach(track)
                    relay_frame = await recv_relay()
                    if not s._enabled:
                        continue
                    payloads, frame_timestamp = self.relay_payloads(relay_frame)
                    audio_level = None
                else:
                    self.detach()
                    enc_frame = await s._next_encoded_frame(self.codec)
                    if enc_frame is None:
                        continue
                    payloads, frame_timestamp, audio_level = enc_frame.payloads, enc_frame.timestamp, enc_frame.audio_level
                if not payloads:
                    continue
                packets = self.packets(payloads, frame_timestamp, audio_level)
                dtls = s._RTCRtpSender__transport
                direct = self.direct_for(dtls)
                if direct is not None:
                    direct.send_packets(packets)
                else:
                    self.loop_sending = True
                    try:
                        for data in packets:
                            await dtls._send_rtp(data)  # SRTP, then the ICE connection
                    finally:
                        self.loop_sending = False
        except (asyncio.CancelledError, ConnectionError, MediaStreamError):
            pass
        except Exception:
            # stop() waits for rtp_exited: never leave without setting it.
            log.warning("relay RTP sender failed:\n%s", traceback.format_exc())
        self.detach()
        if s._RTCRtpSender__track:
            s._RTCRtpSender__track.stop()
            s._RTCRtpSender__track = None
        s._RTCRtpSender__encoder = None
        s._RTCRtpSender__rtp_exited.set()


async def lean_run_rtp(sender: RTCRtpSender, codec: Any) -> None:
    """``RTCRtpSender._run_rtp`` for relay senders: same packets, same bookkeeping, less Python
    per packet (see the module docstring). Bound to one sender by ``install_lean_rtp``."""
    await LeanRtpLoop(sender, codec).run()


#: asyncio's private UDP transport class (typeshed does not declare it), or None if it is gone.
_UDP_TRANSPORT: Any = getattr(selector_events, "_SelectorDatagramTransport", None)


def asyncio_udp_fast_path() -> bool:
    """Whether asyncio's selector UDP transport is still what ``DirectRtpSend`` reads: its
    ``sendto`` tries ``_sock.sendto`` when ``_buffer`` is empty and the transport has not
    lost its connection (``_conn_lost``), and hands socket errors to ``error_received``.
    If a Python release changes that, the relay uses the transport's ``sendto`` (tests
    assert this is True on the Python we ship with)."""
    transport = _UDP_TRANSPORT
    base = getattr(selector_events, "_SelectorTransport", None)
    if transport is None or base is None:
        return False
    init = set(base.__init__.__code__.co_names)
    sendto = set(transport.sendto.__code__.co_names)
    return ({"_sock", "_buffer", "_conn_lost"} <= init
            and {"_sock", "_buffer", "_conn_lost", "sendto", "error_received"} <= sendto
            and transport._buffer_factory is collections.deque)


ASYNCIO_UDP_FAST_PATH = asyncio_udp_fast_path()


class DirectRtpSend:
    """``RTCDtlsTransport._send_rtp`` without its three awaited layers.

    ``_send_rtp(data)`` is: connected? → SRTP protect → ``await`` aioice ``Connection.send`` →
    ``sendto`` → ``StunProtocol.send_data`` → ``protocol.transport.sendto``, which never
    suspends (a UDP transport, or aioice's TurnTransport if the relay itself used TURN: its
    ``sendto`` is synchronous too). When the link is that path (the nominated pair's protocol
    is a ``StunProtocol``, and nobody wrapped ``_send_rtp`` or the ICE ``_send``, as tests do
    to emulate loss),
    ``send(data)`` does ``protect → sendto`` in one synchronous call and returns the bytes
    sent, so the caller keeps the transport's counters. Resolved when a sender's link is
    first seen and re-checked once per frame (``still_valid``: same transport, still
    connected, same nominated pair, ``_send_rtp`` still not wrapped); no await between a
    frame's packets, so nothing changes meanwhile.
    """

    __slots__ = ("dtls", "nominated", "pair", "send")

    def __init__(self, dtls: Any, nominated: dict[int, Any], pair: Any) -> None:
        self.dtls = dtls
        self.nominated = nominated
        self.pair = pair
        protocol = pair.protocol
        transport = protocol.transport
        udp_sendto = transport.sendto
        addr = pair.remote_addr
        protect = dtls._tx_srtp.protect

        if not (ASYNCIO_UDP_FAST_PATH and type(transport) is _UDP_TRANSPORT):
            def send(data: bytes) -> int:
                data = protect(data)
                udp_sendto(data, addr)
                return len(data)
        else:
            # asyncio's own sendto minus its Python checks: straight to the socket while
            # asyncio has nothing buffered (else behind it, to keep the order) and the
            # transport is open; what the socket refuses goes where asyncio would put it.
            sock_sendto = transport._sock.sendto
            buffered = transport._buffer

            def send(data: bytes) -> int:
                data = protect(data)
                if buffered or transport._conn_lost:
                    udp_sendto(data, addr)
                else:
                    try:
                        sock_sendto(data, addr)
                    except (BlockingIOError, InterruptedError):
                        udp_sendto(data, addr)  # asyncio buffers it and waits for the socket
                    except OSError as exc:
                        protocol.error_received(exc)
                return len(data)

        self.send = send

    def send_packets(self, packets: list[bytes]) -> None:
        """One frame's packets, counted as ``_send_rtp`` counts them for the transport's stats."""
        send = self.send
        wire = 0
        for data in packets:
            wire += send(data)
        self.dtls._RTCDtlsTransport__tx_bytes += wire
        self.dtls._RTCDtlsTransport__tx_packets += len(packets)

    @classmethod
    def resolve(cls, dtls: Any) -> DirectRtpSend | None:
        if dtls._state != State.CONNECTED or "_send_rtp" in vars(dtls):
            return None
        ice = dtls.transport
        connection = getattr(ice, "_connection", None)
        if connection is None or ice._send != connection.send:
            return None
        pair = connection._nominated.get(1)
        if pair is None or type(pair.protocol) is not StunProtocol:
            return None
        return cls(dtls, connection._nominated, pair)

    def still_valid(self, dtls: Any) -> bool:
        return (dtls is self.dtls and dtls._state is State.CONNECTED
                and self.nominated.get(1) is self.pair and "_send_rtp" not in dtls.__dict__)


def install_lean_rtp(sender: RTCRtpSender) -> bool:
    """Make ``sender.send()`` start ``lean_run_rtp`` instead of aiortc's loop. Must run before
    ``send()`` (i.e. before negotiation completes). Returns False, leaving aiortc's loop, when
    aiortc's sender logger is at DEBUG (its per-packet log lines are then wanted)."""
    if aiortc_sender_logger.isEnabledFor(logging.DEBUG):
        return False
    if getattr(sender, internals.SENDER_RTP_STARTED).is_set():
        raise RuntimeError("sender already started")
    setattr(sender, internals.SENDER_RUN_RTP, types.MethodType(lean_run_rtp, sender))
    return True
