"""Forwarding encoded frames: one ``ForwardedSource`` per published track, one
``ForwardedTrack`` per subscriber and track.

Data path (no decode, no re-encode)::

    publisher's RTCRtpReceiver: SRTP → RTX unwrap → NACK upstream → depayload → jitter buffer
        → EncodedFrameTap (instead of the decoder queue)
    ForwardedSource: keyframe detection, coalesced keyframe requests, fan-out of ONE RelayFrame
    ForwardedTrack.push() → the sender's lean loop (lean_sender.py): RTP (own seq/picture ids,
        own RTX history that answers the subscriber's NACKs) → SRTP → sendto
    (ForwardedTrack.recv() still returns an av.Packet for aiortc's own encoder.pack() path.)

Everything here runs on the event-loop thread, with no lock and no thread hop between the
publisher's receiver and the subscribers. While a subscriber's sender keeps up (connected over
plain UDP, nothing queued), ``push`` sends the frame at once through ``direct_sink``: a few
microseconds of packetising, SRTP and ``sendto`` (which never blocks) per subscriber, no task
woken. Otherwise the frame is queued and the sender's own task sends it; that queue is bounded
by time (resync), not by the number of subscribers, so one stuck subscriber never holds up
another.
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import av
from aiortc import RTCRtpReceiver
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from . import internals
from .codecs import RED_CODEC, VP8_PACKET_MAX, codec_for, is_keyframe, parse_red

log = logging.getLogger("chibo.relay")


@dataclass
class SourceStats:
    frames_received: int = 0
    keyframes_received: int = 0
    bytes_received: int = 0
    #: Asked for by subscribers' tracks (joining, resync, resume, a subscriber's PLI).
    keyframe_requests: int = 0
    keyframe_requests_coalesced: int = 0
    #: PLIs actually sent to the publisher.
    plis_sent: int = 0
    codec_mismatch_drops: int = 0
    #: Audio sent as RED: frames the relay took from a later packet's redundancy because the
    #: publisher's own packet never arrived; malformed RED payloads dropped.
    frames_recovered: int = 0
    red_malformed: int = 0




class RelayFrame:
    """One published frame as every subscriber's sender gets it, shared by all of them.

    ``packet`` is what ``ForwardedTrack.recv()`` returns (aiortc's sender packs it). The lean
    send loop (lean_sender.py) takes ``data``/``timestamp`` instead, and for VP8 the frame cut
    into RTP-sized pieces once for all subscribers (``vp8_chunks``), so no subscriber copies
    the frame or does Fraction arithmetic (what ``encoder.pack()`` costs per subscriber).
    """

    __slots__ = ("packet", "data", "timestamp", "clock_rate", "red", "recovered", "_vp8_chunks")

    def __init__(self, packet: av.Packet[Any], data: bytes, timestamp: int, clock_rate: int, *,
                 red: bytes | None = None, recovered: bool = False) -> None:
        self.packet = packet
        self.data = data  # for audio: the Opus frame (a RED payload's primary)
        self.timestamp = timestamp
        self.clock_rate = clock_rate
        #: Audio: the publisher's RED payload as it came (for subscribers that take RED).
        self.red = red
        #: Audio: taken from redundancy, the publisher's packet for it having been lost (a RED
        #: subscriber has it already, inside the next packet).
        self.recovered = recovered
        self._vp8_chunks: list[bytes] | None = None

    def vp8_chunks(self) -> list[bytes]:
        """The frame's bytes as ``Vp8Encoder._packetize`` splits them (each RTP payload is a
        4-byte payload descriptor with the sender's picture id, then one chunk)."""
        chunks = self._vp8_chunks
        if chunks is None:
            data, step = self.data, VP8_PACKET_MAX - 4
            chunks = self._vp8_chunks = [data[i:i + step] for i in range(0, len(data), step)]
        return chunks


class ForwardedSource:
    """One published track: taps its receiver and fans encoded frames out to sinks."""

    def __init__(self, receiver: RTCRtpReceiver, kind: str, *, name: str = "",
                 keyframe_retry: float = 1.0) -> None:
        self.receiver = receiver
        self.kind = kind
        self.name = name or kind
        self.expected_mime = codec_for(kind).lower()
        #: A keyframe request unanswered after this long is sent again (the PLI or the
        #: keyframe may have been lost) while some subscriber still waits.
        self.keyframe_retry = keyframe_retry
        self.stats = SourceStats()
        self.ended = False
        self._sinks: set[ForwardedTrack] = set()
        self._payload_type: int | None = None
        self._red = False
        #: Audio: the newest timestamp forwarded (RED recovery fills only what came after it).
        self._last_audio_ts: int | None = None
        self._time_base: fractions.Fraction | None = None
        self._clock_rate = 0
        self._kf_pending_since: float | None = None
        self._loop = asyncio.get_event_loop()
        self._tasks: set[asyncio.Task[None]] = set()
        self.on_end: Callable[[], None] | None = None
        #: Called once, with the first frame: the relay offers this track to subscribers
        #: only then (an upload m-line that carries nothing costs them nothing).
        self.on_first_frame: Callable[[], None] | None = None
        #: Audio: the pass-through that replaced aiortc's jitter buffer (it counts the
        #: publisher's upstream loss). Video keeps aiortc's buffer, which reassembles frames
        #: and asks (NACK) for what is missing.
        self.audio_buffer = internals.replace_audio_jitter_buffer(receiver) if kind == "audio" else None
        internals.install_encoded_tap(receiver, self._on_frame, self._on_end)

    # -- ingress: called synchronously from RTCRtpReceiver._handle_rtp_packet --

    def _on_frame(self, codec: Any, frame: Any) -> None:
        if codec.payloadType != self._payload_type:
            mime = codec.mimeType.lower()
            red = self.kind == "audio" and mime == RED_CODEC
            if mime != self.expected_mime and not red:
                self.stats.codec_mismatch_drops += 1
                return
            self._payload_type = codec.payloadType
            self._red = red
            self._time_base = fractions.Fraction(1, codec.clockRate)
            self._clock_rate = codec.clockRate
        if self.on_first_frame is not None:
            # Soon, not now: offering the track touches every link, and nothing it could raise
            # may reach aiortc's receive path (an exception there closes the publisher's link).
            first, self.on_first_frame = self.on_first_frame, None
            self._loop.call_soon(first)
        data = frame.data
        st = self.stats
        red_payload = None
        if self.kind == "audio":
            if self._red:
                blocks = parse_red(data)
                if not blocks:
                    st.red_malformed += 1
                    return
                red_payload = data
                self._recover(blocks, frame.timestamp)
                data = blocks[-1][2]
            last = self._last_audio_ts
            if last is not None and frame.timestamp <= last:
                return  # recovered already from an earlier packet's redundancy
            self._last_audio_ts = frame.timestamp
            if not data:
                return
        key = self.kind == "video" and is_keyframe(codec.mimeType, data)
        st.frames_received += 1
        st.bytes_received += len(data)
        now = self._loop.time()
        if key:
            st.keyframes_received += 1
            self._kf_pending_since = None
        elif self._kf_pending_since is not None and now - self._kf_pending_since >= self.keyframe_retry:
            self._kf_pending_since = None
            if any(s.waiting_for_keyframe for s in self._sinks):
                self._send_pli(now)
        # One packet shared by every subscriber: encoder.pack() only reads it.
        self._fan_out(RelayFrame(self._packet(data, frame.timestamp), data, frame.timestamp, self._clock_rate,
                                 red=red_payload), key, now)

    def _packet(self, data: bytes, timestamp: int) -> av.Packet[Any]:
        packet = av.Packet(data)
        packet.pts = timestamp
        assert self._time_base is not None, "set with the first frame, before any packet"
        packet.time_base = self._time_base
        return packet

    def _fan_out(self, shared: RelayFrame, key: bool, now: float) -> None:
        for sink in tuple(self._sinks):
            sink.push(shared, key, now)

    def _recover(self, blocks: list[tuple[int, int, bytes]], timestamp: int) -> None:
        """The redundant blocks of a RED packet whose own packets never came: forwarded, in
        order, before its primary (to the subscribers that take plain Opus)."""
        last = self._last_audio_ts
        now = self._loop.time()
        for _, offset, data in blocks[:-1]:
            ts = timestamp - offset
            if offset <= 0 or not data or last is None or ts <= last:
                continue  # arrived itself (or before the first packet we saw)
            self.stats.frames_recovered += 1
            self.stats.frames_received += 1
            self._fan_out(RelayFrame(self._packet(data, ts), data, ts, self._clock_rate, recovered=True), True, now)
            self._last_audio_ts = last = ts

    def _on_end(self) -> None:
        if self.ended:
            return
        self.ended = True
        for sink in tuple(self._sinks):
            sink.source_ended()
        if self.on_end is not None:
            self.on_end()

    # -- keyframe requests, coalesced: at most one PLI in flight --

    def request_keyframe(self, reason: str = "") -> bool:
        """Ask the publisher for a keyframe unless a request is already in flight; True if
        a PLI was sent."""
        if self.kind != "video" or self.ended:
            return False
        self.stats.keyframe_requests += 1
        now = self._loop.time()
        if self._kf_pending_since is not None and now - self._kf_pending_since < self.keyframe_retry:
            self.stats.keyframe_requests_coalesced += 1
            return False
        log.debug("%s: PLI upstream (%s)", self.name, reason)
        return self._send_pli(now)

    @property
    def keyframe_pending(self) -> bool:
        return self._kf_pending_since is not None

    def _send_pli(self, now: float) -> bool:
        sources = self.receiver.getSynchronizationSources()
        if not sources:
            return False  # nothing received yet: the publisher's first frame is a keyframe
        ssrc = max(sources, key=lambda s: s.timestamp).source
        self._kf_pending_since = now
        self.stats.plis_sent += 1
        self._spawn(internals.send_pli(self.receiver, ssrc))
        return True

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- sinks --

    def add_sink(self, sink: ForwardedTrack) -> None:
        self._sinks.add(sink)

    def remove_sink(self, sink: ForwardedTrack) -> None:
        self._sinks.discard(sink)

    @property
    def subscriber_count(self) -> int:
        return len(self._sinks)


@dataclass
class TrackStats:
    frames_forwarded: int = 0
    #: Of those, sent by ``direct_sink`` during the fan-out (no task woken, nothing queued).
    frames_sent_at_once: int = 0
    keyframes_forwarded: int = 0
    frames_dropped_gate: int = 0  # waiting for a keyframe
    frames_dropped_paused: int = 0
    #: Delta frames left out while only keyframes go to this subscriber (weak downlink).
    frames_dropped_thinned: int = 0
    frames_dropped_behind: int = 0  # resync or overflow
    resyncs: int = 0
    plis_from_subscriber: int = 0
    plis_from_subscriber_ignored: int = 0
    first_frame_keyframe: bool | None = None
    max_queue: int = 0


class ForwardedTrack(MediaStreamTrack):
    """What one subscriber's sender reads: ``recv()`` returns already-encoded ``av.Packet``s.

    * Gating: video starts gated; delta frames are dropped until a keyframe. The keyframe is
      requested on the first ``recv()``, when the sender has really started (so DTLS set-up
      does not turn into a PLI storm).
    * Resync: if the oldest queued frame is older than ``max_delay`` or the queue holds
      ``max_frames``, the sender is not draining (not connected yet, or starved). Video
      flushes and restarts from a keyframe; audio drops its oldest frames.
    * Pause: ``set_paused(reason, True)`` stops forwarding (weak downlink, data saver, audio
      only); when the last reason clears, video restarts on a requested keyframe.
    * Keyframes only (``set_keyframes_only(interval)``, a weak downlink's last step before a
      pause): only keyframes are forwarded, and one is asked for every ``interval`` seconds;
      back to every frame on the next keyframe (the deltas in between were never sent).
    * A subscriber's PLI is ignored while gated or paused, or within ``pli_grace`` of a
      keyframe already forwarded to it (they crossed in flight); otherwise it goes to the
      source's coalescer.
    Frames the relay drops never reach ``pack()``, so the subscriber sees continuous
    sequence numbers and picture ids, and its next frame after any drop is a keyframe.
    """

    def __init__(self, source: ForwardedSource, *, max_delay: float | None = None,
                 max_frames: int | None = None, pli_grace: float = 0.2) -> None:
        super().__init__()
        self.kind = source.kind
        self.source = source
        video = source.kind == "video"
        self.max_delay = max_delay if max_delay is not None else (0.5 if video else 0.2)
        self.max_frames = max_frames if max_frames is not None else (60 if video else 25)
        self.pli_grace = pli_grace
        self.stats = TrackStats()
        self.pause_reasons: set[str] = set()
        #: Seconds between keyframes while only keyframes are forwarded; None: every frame.
        self.keyframes_only: float | None = None
        self._need_keyframe = video
        self._started = False
        self._ended = source.ended
        self._queue: collections.deque[tuple[RelayFrame, bool, float]] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        # pyee's emitter (the track's base) declares ``_loop`` Optional; here it is always set.
        self._loop: asyncio.AbstractEventLoop = asyncio.get_event_loop()
        self.last_keyframe_forwarded_at: float | None = None
        #: Set by the sender's lean loop (``LeanRtpLoop.send_now``): sends a frame at once and
        #: returns True, or returns False when the frame must be queued for the loop.
        self.direct_sink: Callable[[RelayFrame], bool] | None = None
        #: Called with (packet, is_keyframe) for every frame handed to the sender (tests).
        self.on_forward: Callable[[av.Packet[Any], bool], None] | None = None
        source.add_sink(self)

    @property
    def paused(self) -> bool:
        return bool(self.pause_reasons)

    @property
    def waiting_for_keyframe(self) -> bool:
        return self._need_keyframe and self._started and not self.paused

    # -- producer side (loop thread, synchronous, O(1)) --

    def push(self, packet: RelayFrame, key: bool, now: float) -> None:
        st = self.stats
        q = self._queue
        if self.kind == "video":
            if self.pause_reasons:
                st.frames_dropped_paused += 1
                return
            if self.keyframes_only is not None and not key:
                st.frames_dropped_thinned += 1
                last = self.last_keyframe_forwarded_at
                if self._started and (last is None or now - last >= self.keyframes_only):
                    self.source.request_keyframe("keyframes-only")  # coalesced, retried by the source
                return
            if self._need_keyframe:
                if not key:
                    st.frames_dropped_gate += 1
                    return
                self._need_keyframe = False
            if q and (now - q[0][2] > self.max_delay or len(q) >= self.max_frames):
                st.resyncs += 1
                st.frames_dropped_behind += len(q)
                q.clear()
                if not key:
                    st.frames_dropped_behind += 1
                    self._gate_and_request("resync")
                    return
        else:
            if self.pause_reasons:
                st.frames_dropped_paused += 1
                return
            dropped = False
            while q and (now - q[0][2] > self.max_delay or len(q) >= self.max_frames):
                q.popleft()
                st.frames_dropped_behind += 1
                dropped = True
            if dropped:
                st.resyncs += 1
        if not q and self._started and (sink := self.direct_sink) is not None and sink(packet):
            self._forwarded(packet, key)  # sent already: nothing queued, no task woken
            st.frames_sent_at_once += 1
            return
        q.append((packet, key, now))
        if len(q) > st.max_queue:
            st.max_queue = len(q)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _gate_and_request(self, reason: str) -> None:
        self._need_keyframe = True
        if self._started:
            self.source.request_keyframe(reason)

    def source_ended(self) -> None:
        self._ended = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- control --

    def set_paused(self, reason: str, paused: bool) -> None:
        was = self.paused
        if paused:
            self.pause_reasons.add(reason)
        else:
            self.pause_reasons.discard(reason)
        if self.paused and not was:
            self.stats.frames_dropped_paused += len(self._queue)
            self._queue.clear()
        elif was and not self.paused and self.kind == "video":
            self._gate_and_request("resume")

    def set_keyframes_only(self, interval: float | None) -> None:
        """Forward only keyframes, one asked for every ``interval`` seconds (None: all frames
        again, from the next keyframe: the subscriber lacks the deltas in between)."""
        if self.kind != "video" or interval == self.keyframes_only:
            return
        was = self.keyframes_only
        self.keyframes_only = interval
        if interval is not None and was is None and not self.paused:
            self.source.request_keyframe("keyframes-only")
        elif interval is None and not self.paused:
            self._gate_and_request("full-rate")

    def on_subscriber_keyframe_request(self) -> None:
        """Replaces ``RTCRtpSender._send_keyframe`` for this sender: the subscriber sent PLI/FIR."""
        st = self.stats
        st.plis_from_subscriber += 1
        if self.paused or self._need_keyframe:
            st.plis_from_subscriber_ignored += 1  # a keyframe is coming anyway
            return
        last = self.last_keyframe_forwarded_at
        if last is not None and self._loop.time() - last < self.pli_grace:
            st.plis_from_subscriber_ignored += 1
            return
        self.source.request_keyframe("subscriber-pli")

    # -- consumer side: RTCRtpSender._run_rtp --

    async def recv(self) -> av.Packet[Any]:
        return (await self.recv_relay()).packet

    async def recv_relay(self) -> RelayFrame:
        """``recv()`` for the lean send loop: the shared frame, not just its ``av.Packet``."""
        if not self._started:
            self._started = True
            if self._need_keyframe and not self.paused:
                self.source.request_keyframe("join")
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            if self._ended:
                self.stop()
                raise MediaStreamError
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self.readyState != "live":
            raise MediaStreamError
        packet, key, _ = self._queue.popleft()
        self._forwarded(packet, key)
        return packet

    def _forwarded(self, packet: RelayFrame, key: bool) -> None:
        st = self.stats
        if st.first_frame_keyframe is None:
            st.first_frame_keyframe = key
        st.frames_forwarded += 1
        if key:
            st.keyframes_forwarded += 1
            self.last_keyframe_forwarded_at = self._loop.time()
        if self.on_forward is not None:
            self.on_forward(packet.packet, key)

    def stop(self) -> None:
        super().stop()
        self.direct_sink = None
        self.source.remove_sink(self)
        self._queue.clear()
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
