"""The aiortc internals the relay relies on, in one place, and the check that they exist.

aiortc has no public API for "give me the encoded frames" or "tell me about this
subscriber's PLI", nor a cheap way to send already-packetised media. The relay therefore
hooks the names below inside aiortc 1.16.0 (pinned in pyproject.toml). ``check_aiortc_internals()`` runs when a relay is created and in
tests/realtime/test_relay_internals.py, so an upgrade that renames or reshapes any of them
fails loudly instead of silently decoding, re-encoding or dropping media.

| name | kind | what the relay does with it |
|---|---|---|
| ``RTCRtpReceiver._RTCRtpReceiver__decoder_queue`` | instance attr, ``queue.Queue`` | replaced by ``EncodedFrameTap``: reassembled frames go to the fan-out instead of the decoder thread |
| ``RTCRtpReceiver._RTCRtpReceiver__jitter_buffer`` | instance attr, ``JitterBuffer`` (``add(packet) -> (pli, frame)``) | the audio one is replaced by ``AudioPassThrough``: each packet a frame at once, nothing waits for a lost one |
| ``RTCRtpReceiver._send_rtcp_pli(ssrc)`` | coroutine | asks the publisher for a keyframe |
| ``RTCRtpReceiver._RTCRtpReceiver__remote_streams`` | ``dict[ssrc, StreamStatistics]`` (``packets_received``, ``packets_lost``) | a publisher's video loss on its way to the relay (``uplink_loss``) |
| ``RTCRtpSender._send_keyframe()`` | method | replaced per sender: a subscriber's PLI/FIR goes to the keyframe-request coalescer |
| ``RTCRtpSender._handle_rtcp_packet(packet)`` | coroutine | wrapped per sender: RR loss, NACK and REMB feed the weak-downlink guard |
| ``RTCRtpSender._retransmit(seq)`` | coroutine, awaited per NACKed packet | wrapped per sender: at most 3 retransmissions per packet, 250 ms apart, however often it is NACKed |
| ``RTCRtpSender._ssrc`` | int | picks this sender's report blocks |
| ``RTCRtpSender._RTCRtpSender__{lsr, lsr_time}`` | int, float | the weak-downlink guard's RTT from each RR block (queuing delay) |
| ``RTCRtpSender._next_encoded_frame`` | coroutine | must still hand non-``Frame`` data to ``encoder.pack()`` (aiortc's pre-encoded path, which the relay's ``av.Packet`` frames take) |
| ``RTCRtpSender._run_rtp(codec)`` | coroutine, started by ``send()`` | replaced per sender by ``lean_sender.lean_run_rtp`` (same packets, far less Python per packet) |
| ``RTCRtpSender._RTCRtpSender__{rtp_started, rtp_exited, track, encoder, transport, mid, rtp_header_extensions_map}`` | instance attrs | read/set by the lean loop as aiortc's loop does (``stop()`` waits for ``rtp_exited``) |
| ``RTCRtpSender._RTCRtpSender__rtp_history`` | ``dict[seq % RTP_HISTORY_SIZE, packet]`` | the lean loop stores ``SentPacket``s; ``_retransmit`` (NACK → RTX) reads them |
| ``RTCRtpSender._RTCRtpSender__{ntp_timestamp, rtp_timestamp, octet_count, packet_count}`` | ints | updated by the lean loop; ``_run_rtcp`` (sender reports) and ``getStats()`` read them |
| ``RTCDtlsTransport._send_rtp(data)`` | coroutine | the lean loop's path when not connected or wrapped (tests); otherwise it does the same itself: |
| ``RTCDtlsTransport._state``, ``_tx_srtp.protect``, ``_RTCDtlsTransport__tx_{bytes,packets}`` | attrs | connected? → SRTP → the transport's counters (``lean_sender.DirectRtpSend``) |
| ``aiortc.codecs.vpx.PACKET_MAX``, ``Vp8Encoder.pack``/``OpusEncoder.pack`` output | format | the lean loop packetises relay frames itself, byte for byte as these do (tests compare) |
| ``RTCIceTransport._connection``, ``_send``; aioice ``Connection._nominated[1]``, ``CandidatePair.protocol/.remote_addr``, ``StunProtocol.send_data`` = ``transport.sendto`` | attrs | the plain UDP path under ``_send_rtp``, called directly |
| aioice ``Connection.query_consent``, called by ``connect()`` as ``self.query_consent()``; ``build_request``, ``_nominated``, ``remote_password``, ``_query_consent_task``, ``CONSENT_INTERVAL``/``CONSENT_FAILURES`` | method, attrs, constants | replaced per relay connection by ``consent.patient_query_consent`` (answers count for seconds, not 0.5 s; consent lost after 30 s without one) |
| asyncio ``_SelectorDatagramTransport._sock``, ``_buffer``, ``_conn_lost`` (CPython's, not aiortc's) | attrs | ``sendto`` on the socket itself while asyncio buffers nothing; checked by ``lean_sender.asyncio_udp_fast_path()``, which falls back to the transport's ``sendto`` if they change (a test asserts it does not) |
"""

from __future__ import annotations

import inspect
import queue
import time
from collections.abc import Callable
from typing import Any

import aiortc
from aioice.ice import Connection, StunProtocol
from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.codecs import vpx
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.rtcdtlstransport import RTCDtlsTransport
from aiortc.rtcicetransport import RTCIceTransport

from .codecs import VP8_PACKET_MAX

#: The version these names were read from (pyproject.toml pins it).
AIORTC_VERSION = "1.16.0"

RECEIVER_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"
RECEIVER_JITTER_BUFFER = "_RTCRtpReceiver__jitter_buffer"
RECEIVER_SEND_PLI = "_send_rtcp_pli"
SENDER_SEND_KEYFRAME = "_send_keyframe"
SENDER_HANDLE_RTCP = "_handle_rtcp_packet"
SENDER_SSRC = "_ssrc"
SENDER_NEXT_ENCODED_FRAME = "_next_encoded_frame"
SENDER_RUN_RTP = "_run_rtp"
SENDER_RETRANSMIT = "_retransmit"
#: Seconds before the relay answers another NACK for the same packet.
RETRANSMIT_GAP = 0.25
RETRANSMIT_MAX = 3
#: The middle 32 bits of the last sender report's NTP time and when it was sent (time.time()).
SENDER_LSR = "_RTCRtpSender__lsr"
SENDER_LSR_TIME = "_RTCRtpSender__lsr_time"
SENDER_RTP_STARTED = "_RTCRtpSender__rtp_started"
#: Private attributes the lean RTP loop reads or writes (set in RTCRtpSender.__init__ or
#: replaceTrack).
SENDER_PRIVATE_ATTRS = tuple(f"_RTCRtpSender__{name}" for name in (
    "rtp_started", "rtp_exited", "track", "encoder", "transport", "mid", "rtp_header_extensions_map",
    "rtp_history", "ntp_timestamp", "rtp_timestamp", "octet_count", "packet_count"))


class IncompatibleAiortc(RuntimeError):
    """The installed aiortc no longer has an internal the relay hooks."""


def check_aiortc_internals() -> None:
    """Raise ``IncompatibleAiortc`` naming every internal that is missing or changed."""
    problems = []
    if not inspect.iscoroutinefunction(getattr(RTCRtpReceiver, RECEIVER_SEND_PLI, None)):
        problems.append(f"RTCRtpReceiver.{RECEIVER_SEND_PLI} missing or not a coroutine")
    for name in (SENDER_HANDLE_RTCP, SENDER_NEXT_ENCODED_FRAME):
        if not inspect.iscoroutinefunction(getattr(RTCRtpSender, name, None)):
            problems.append(f"RTCRtpSender.{name} missing or not a coroutine")
    if not callable(getattr(RTCRtpSender, SENDER_SEND_KEYFRAME, None)):
        problems.append(f"RTCRtpSender.{SENDER_SEND_KEYFRAME} missing")
    else:
        if f"self.{SENDER_SEND_KEYFRAME}()" not in inspect.getsource(RTCRtpSender._handle_rtcp_packet):
            problems.append(f"RTCRtpSender._handle_rtcp_packet no longer calls {SENDER_SEND_KEYFRAME}()")
    # Name-mangled instance attributes: look at the code that sets and uses them.
    init_names = RTCRtpReceiver.__init__.__code__.co_names
    for attr in (RECEIVER_DECODER_QUEUE, RECEIVER_JITTER_BUFFER):
        if attr not in init_names:
            problems.append(f"RTCRtpReceiver.__init__ no longer sets {attr}")
    handler = getattr(RTCRtpReceiver, "_handle_rtp_packet", None)
    if handler is None or RECEIVER_DECODER_QUEUE not in handler.__code__.co_names:
        problems.append("RTCRtpReceiver._handle_rtp_packet no longer feeds the decoder queue")
    if "_ssrc" not in RTCRtpSender.__init__.__code__.co_names:
        problems.append(f"RTCRtpSender.__init__ no longer sets {SENDER_SSRC}")
    next_frame = getattr(RTCRtpSender, SENDER_NEXT_ENCODED_FRAME, None)
    if next_frame is not None and ".pack(" not in inspect.getsource(next_frame):
        problems.append(f"RTCRtpSender.{SENDER_NEXT_ENCODED_FRAME} no longer calls encoder.pack()")
    problems += _lean_rtp_problems()
    if problems:
        raise IncompatibleAiortc(f"aiortc {aiortc.__version__}: " + "; ".join(problems))


def _lean_rtp_problems() -> list[str]:
    """What lean_sender.lean_run_rtp relies on, beyond the names above."""
    problems = []
    run_rtp = getattr(RTCRtpSender, SENDER_RUN_RTP, None)
    if not inspect.iscoroutinefunction(run_rtp):
        problems.append(f"RTCRtpSender.{SENDER_RUN_RTP} missing or not a coroutine")
    if f"self.{SENDER_RUN_RTP}(" not in inspect.getsource(RTCRtpSender.send):
        problems.append(f"RTCRtpSender.send no longer starts self.{SENDER_RUN_RTP}()")
    init_names = set(RTCRtpSender.__init__.__code__.co_names) | set(RTCRtpSender.replaceTrack.__code__.co_names)
    for attr in SENDER_PRIVATE_ATTRS:
        if attr not in init_names:
            problems.append(f"RTCRtpSender.__init__/replaceTrack no longer set {attr}")
    # Whoever reads what the loop writes must still read it from there.
    readers = {"_retransmit": ("_RTCRtpSender__rtp_history", "serialize"),
               "_handle_rtcp_packet": (SENDER_LSR, SENDER_LSR_TIME),
               "_run_rtcp": ("_RTCRtpSender__ntp_timestamp", "_RTCRtpSender__rtp_timestamp",
                             "_RTCRtpSender__octet_count", "_RTCRtpSender__packet_count"),
               "stop": ("_RTCRtpSender__rtp_exited", "_RTCRtpSender__rtp_started")}
    for method, names in readers.items():
        code = getattr(getattr(RTCRtpSender, method, None), "__code__", None)
        for name in names:
            if code is None or name not in code.co_names:
                problems.append(f"RTCRtpSender.{method} no longer uses {name}")
    send_rtp = getattr(RTCDtlsTransport, "_send_rtp", None)
    if not inspect.iscoroutinefunction(send_rtp):
        problems.append("RTCDtlsTransport._send_rtp missing or not a coroutine")
    else:
        # DirectRtpSend does what _send_rtp does; check that is still all it does.
        used = set(send_rtp.__code__.co_names)
        for name in ("_state", "CONNECTED", "_tx_srtp", "protect", "transport", "_send",
                     "_RTCDtlsTransport__tx_bytes", "_RTCDtlsTransport__tx_packets"):
            if name not in used:
                problems.append(f"RTCDtlsTransport._send_rtp no longer uses {name}")


    if getattr(vpx, "PACKET_MAX", None) != VP8_PACKET_MAX:
        problems.append("aiortc.codecs.vpx.PACKET_MAX changed: the lean loop's VP8 packets would differ")

    if "self._send = self._connection.send" not in inspect.getsource(RTCIceTransport.__init__):
        problems.append("RTCIceTransport._send is no longer its aioice Connection's send")
    if "self.sendto(data, 1)" not in inspect.getsource(Connection.send):
        problems.append("aioice Connection.send no longer sends on component 1")
    sendto_src = inspect.getsource(Connection.sendto)
    if "self._nominated.get(component)" not in sendto_src or \
            "active_pair.protocol.send_data(data, active_pair.remote_addr)" not in sendto_src:
        problems.append("aioice Connection.sendto no longer sends through the nominated pair's protocol")
    if "self.transport.sendto(data, addr)" not in inspect.getsource(StunProtocol.send_data):
        problems.append("aioice StunProtocol.send_data is no longer the UDP transport's sendto")
    problems += _consent_problems()
    return problems


def _consent_problems() -> list[str]:
    """What consent.patient_query_consent relies on."""
    problems = []
    if "self.query_consent()" not in inspect.getsource(Connection.connect):
        problems.append("aioice Connection.connect no longer starts self.query_consent()")
    consent = inspect.getsource(Connection.query_consent)
    for name in ("self._nominated", "self.build_request", "self.remote_password", "self._query_consent_task",
                 "CONSENT_INTERVAL", "CONSENT_FAILURES"):
        if name not in consent:
            problems.append(f"aioice Connection.query_consent no longer uses {name}")
    if "self._connection = gatherer._connection" not in inspect.getsource(RTCIceTransport.__init__):
        problems.append("RTCIceTransport no longer takes its gatherer's aioice Connection")
    return problems


class EncodedFrameTap(queue.Queue[Any]):
    """Stands in for a receiver's decoder queue.

    ``RTCRtpReceiver._handle_rtp_packet`` calls ``put((codec, JitterFrame))`` on the event-loop
    thread once a frame is reassembled; the tap hands it to ``on_frame`` synchronously and
    the decoder thread never sees it. ``put(None)`` (receiver stopped) is passed to whichever
    queue the decoder thread blocks on — the original one if the tap was installed after
    ``receive()`` started it — so the thread exits and the receiver's track ends as usual.
    """

    def __init__(self, original: queue.Queue[Any], on_frame: Callable[[Any, Any], None],
                 on_end: Callable[[], None]) -> None:
        super().__init__()
        self._original = original
        self._on_frame = on_frame
        self._on_end = on_end

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            self._original.put(None)
            super().put(None)
            self._on_end()
            return
        codec, frame = item
        self._on_frame(codec, frame)


def install_encoded_tap(receiver: RTCRtpReceiver, on_frame: Callable[[Any, Any], None],
                        on_end: Callable[[], None]) -> EncodedFrameTap:
    original = getattr(receiver, RECEIVER_DECODER_QUEUE, None)
    if not isinstance(original, queue.Queue):
        raise IncompatibleAiortc(f"RTCRtpReceiver.{RECEIVER_DECODER_QUEUE} not found")
    if isinstance(original, EncodedFrameTap):
        raise RuntimeError("receiver already tapped")
    tap = EncodedFrameTap(original, on_frame, on_end)
    setattr(receiver, RECEIVER_DECODER_QUEUE, tap)
    return tap


class AudioPassThrough:
    """Stands in for a publisher's audio jitter buffer: every audio RTP packet is one frame,
    handed on the moment it arrives.

    aiortc's ``JitterBuffer`` suits a decoder, not a forwarder: it holds 4 frames (80 ms)
    before releasing one, releases a frame only once the next packet is in, and treats a
    lost packet as a hole to wait for — up to its capacity (16 packets, 320 ms), after
    which it throws away enough of what it holds, good frames included, and releases one
    frame per packet from then on. On a link with 5 % random loss that doubled the audio
    loss the others heard (10 % concealed through the relay against 5 % in the mesh).
    Here nothing waits: a packet older than the newest one seen (late, or a duplicate) is
    dropped — the subscriber's jitter buffer conceals that moment as it would a loss, and
    aiortc's ``TimestampMapper`` would take an older timestamp for a wrap — and the gaps
    in sequence numbers are counted (the publisher's upstream loss, reported to the room).
    """

    def __init__(self, capacity: int = 16) -> None:
        self._capacity = capacity
        self._highest: int | None = None
        self.received = 0
        self.lost = 0
        self.late = 0

    @property
    def capacity(self) -> int:
        return self._capacity

    def add(self, packet: Any) -> tuple[bool, Any]:
        seq = packet.sequence_number
        highest = self._highest
        if highest is not None:
            ahead = (seq - highest) & 0xFFFF
            if ahead == 0 or ahead >= 0x8000:  # a duplicate, or older than the newest
                self.late += 1
                if ahead and self.lost:
                    self.lost -= 1  # it was counted as lost when its gap opened
                return False, None
            self.lost += ahead - 1
        self._highest = seq
        self.received += 1
        return False, JitterFrame(data=packet._data, timestamp=packet.timestamp)

    def remove(self, count: int) -> None:
        """``JitterBuffer.remove``: nothing is held, so nothing to remove."""


def replace_audio_jitter_buffer(receiver: RTCRtpReceiver) -> AudioPassThrough:
    """Put an ``AudioPassThrough`` where the receiver keeps its audio jitter buffer."""
    current = getattr(receiver, RECEIVER_JITTER_BUFFER, None)
    if not isinstance(current, JitterBuffer):
        raise IncompatibleAiortc(f"RTCRtpReceiver.{RECEIVER_JITTER_BUFFER} not found")
    buffer = AudioPassThrough(current.capacity)
    setattr(receiver, RECEIVER_JITTER_BUFFER, buffer)
    return buffer


async def send_pli(receiver: RTCRtpReceiver, media_ssrc: int) -> None:
    await getattr(receiver, RECEIVER_SEND_PLI)(media_ssrc)


def hook_sender(sender: RTCRtpSender, on_keyframe_request: Callable[[], None],
                on_rtcp: Callable[[RTCRtpSender, Any], None]) -> None:
    """Route a subscriber's PLI/FIR to ``on_keyframe_request`` (instead of the unused encoder
    flag) and show every RTCP packet to ``on_rtcp`` after aiortc handled it (RTT, NACK →
    retransmission from the sender's RTP history)."""
    if not callable(getattr(sender, SENDER_SEND_KEYFRAME, None)):
        raise IncompatibleAiortc(f"RTCRtpSender.{SENDER_SEND_KEYFRAME} not found")
    setattr(sender, SENDER_SEND_KEYFRAME, on_keyframe_request)
    original = getattr(sender, SENDER_HANDLE_RTCP)

    async def handle_rtcp(packet: Any) -> None:
        await original(packet)
        on_rtcp(sender, packet)

    setattr(sender, SENDER_HANDLE_RTCP, handle_rtcp)
    retransmit = getattr(sender, SENDER_RETRANSMIT)
    sent: dict[int, tuple[float, int]] = {}  # seq -> (last retransmitted, how often)

    async def retransmit_once(sequence_number: int) -> None:
        # A receiver repeats its NACKs (aiortc's re-sends the whole missing list on each new
        # gap): answering every copy turned a weak link's losses into a retransmission storm
        # that took the whole link. A packet is retransmitted at most RETRANSMIT_MAX times,
        # RETRANSMIT_GAP apart.
        now = time.monotonic()
        last, count = sent.get(sequence_number, (-1e9, 0))
        if count >= RETRANSMIT_MAX or now - last < RETRANSMIT_GAP:
            return
        if len(sent) > 1024:
            for seq in [seq for seq, (at, _) in sent.items() if now - at > 5.0]:
                del sent[seq]
        sent[sequence_number] = (now, count + 1)
        await retransmit(sequence_number)

    setattr(sender, SENDER_RETRANSMIT, retransmit_once)


def sender_ssrc(sender: RTCRtpSender) -> int:
    return int(getattr(sender, SENDER_SSRC))


def report_rtt(sender: RTCRtpSender, report: Any) -> float | None:
    """The round-trip time one RR report block measures (RFC 3550 §6.4.1: now − LSR − DLSR),
    unsmoothed, as aiortc computes it before smoothing; None unless the block answers the
    sender report this sender sent last."""
    lsr = getattr(sender, SENDER_LSR, None)
    lsr_time = getattr(sender, SENDER_LSR_TIME, None)
    if lsr is None or lsr_time is None or report.lsr != lsr or not report.dlsr:
        return None

    return float(time.time() - lsr_time - report.dlsr / 65536)


def ice_connection(transceiver: Any) -> Any:
    """The aioice ``Connection`` under a transceiver's transport (the link's only one: bundled)."""
    return transceiver.receiver.transport.transport._connection
