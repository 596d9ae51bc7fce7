"""The relay's hold on aiortc, and its queueing rules, without a network.

If an aiortc upgrade renames or reshapes an internal the relay hooks, these fail loudly
(realtime/relay/internals.py lists them). The rest drive ForwardedSource/ForwardedTrack with
a stub receiver fed exactly as RTCRtpReceiver._handle_rtp_packet feeds its decoder queue.
"""

from __future__ import annotations

import asyncio
import datetime
import fractions
import queue
import threading

import aiortc
import av
import pytest
from aiortc.codecs.vpx import Vp8Encoder, vp8_depayload
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtcrtpreceiver import RTCRtpSynchronizationSource

from realtime.relay import codecs, internals
from realtime.relay.forwarding import ForwardedSource, ForwardedTrack

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=97)
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=96)
H264 = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=99)
KEY = b"\x10\x02\x00\x9d\x01\x2a" + b"\x00" * 100
DELTA = b"\x11\x02\x00" + b"\x00" * 50


def test_aiortc_is_the_pinned_version_and_has_every_internal_the_relay_hooks():
    assert aiortc.__version__ == internals.AIORTC_VERSION, (
        "realtime/relay/ hooks aiortc internals read from 1.16.0: re-check internals.py before upgrading")
    internals.check_aiortc_internals()


def test_a_missing_internal_fails_loudly(monkeypatch):
    monkeypatch.delattr(aiortc.RTCRtpSender, "_send_keyframe")
    with pytest.raises(internals.IncompatibleAiortc, match="_send_keyframe"):
        internals.check_aiortc_internals()


def test_a_changed_receiver_fails_loudly(monkeypatch):
    async def handle(self, packet, arrival_time_ms):  # no decoder queue any more
        return None

    monkeypatch.setattr(aiortc.RTCRtpReceiver, "_handle_rtp_packet", handle)
    with pytest.raises(internals.IncompatibleAiortc, match="decoder queue"):
        internals.check_aiortc_internals()


def test_vp8_keyframe_detection_on_real_encoder_output():
    encoder = Vp8Encoder()
    frames = []
    for i in range(3):
        frame = av.VideoFrame(320, 240, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes([(i * 40) % 256]) * plane.buffer_size)
        frame.pts = i * 3000
        frame.time_base = fractions.Fraction(1, 90000)
        frames.append(encoder.encode(frame)[0])
    key, delta = frames[0], frames[1]
    assert codecs.vp8_rtp_payload_is_keyframe_start(key[0])
    assert not codecs.vp8_rtp_payload_is_keyframe_start(delta[0])
    assert not any(codecs.vp8_rtp_payload_is_keyframe_start(p) for p in key[1:])
    assert codecs.vp8_frame_is_keyframe(b"".join(vp8_depayload(p) for p in key))
    assert not codecs.vp8_frame_is_keyframe(b"".join(vp8_depayload(p) for p in delta))


class StubReceiver:
    def __init__(self) -> None:
        self._RTCRtpReceiver__decoder_queue = queue.Queue()
        self._RTCRtpReceiver__jitter_buffer = JitterBuffer(capacity=16, prefetch=4)
        self.plis: list[int] = []

    def getSynchronizationSources(self):  # noqa: N802 - aiortc's name
        return [RTCRtpSynchronizationSource(timestamp=datetime.datetime.now(), source=1234)]

    async def _send_rtcp_pli(self, ssrc):
        self.plis.append(ssrc)


def feed(receiver, codec, data, ts):
    receiver._RTCRtpReceiver__decoder_queue.put((codec, JitterFrame(data, ts)))


async def started(track):
    task = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)
    task.cancel()


@pytest.mark.anyio
async def test_gating_resync_and_coalesced_keyframe_requests():
    rx = StubReceiver()
    source = ForwardedSource(rx, "video")
    track = ForwardedTrack(source, max_frames=10)
    feed(rx, VP8, DELTA, 0)
    assert track.stats.frames_dropped_gate == 1  # nothing before a keyframe
    pending = asyncio.ensure_future(track.recv())  # the sender starts: ask for a keyframe
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert rx.plis == [1234]
    feed(rx, VP8, DELTA, 3000)
    assert not pending.done()
    feed(rx, VP8, KEY, 6000)
    packet = await pending
    assert bytes(packet) == KEY and packet.pts == 6000 and packet.time_base == fractions.Fraction(1, 90000)
    for i in range(25):  # the sender stalls: the backlog is bounded, then a resync
        feed(rx, VP8, DELTA, 9000 + i * 3000)
    await asyncio.sleep(0)
    assert len(track._queue) <= 10
    assert track.stats.resyncs == 1 and track._need_keyframe and rx.plis == [1234, 1234]
    await started(ForwardedTrack(source))  # a joiner meanwhile: coalesced into the pending request
    assert source.stats.keyframe_requests_coalesced >= 1 and len(rx.plis) == 2
    feed(rx, VP8, KEY, 200000)
    assert bytes(await track.recv()) == KEY
    rx._RTCRtpReceiver__decoder_queue.put(None)  # the publisher ends: so do its subscribers
    with pytest.raises(MediaStreamError):
        await track.recv()


@pytest.mark.anyio
async def test_pause_drops_and_resume_restarts_on_a_requested_keyframe():
    rx = StubReceiver()
    source = ForwardedSource(rx, "video")
    track = ForwardedTrack(source)
    await started(track)
    feed(rx, VP8, KEY, 0)
    assert bytes(await track.recv()) == KEY
    track.set_paused("downlink", True)
    track.set_paused("saver", True)
    feed(rx, VP8, DELTA, 3000)
    track.set_paused("downlink", False)
    feed(rx, VP8, DELTA, 6000)
    assert track.stats.frames_dropped_paused == 2 and not track._queue
    await asyncio.sleep(0)  # earlier requests out
    plis, sent = len(rx.plis), source.stats.plis_sent
    track.set_paused("saver", False)  # the last reason gone: gate, ask for a keyframe
    assert source.keyframe_pending and source.stats.plis_sent == sent + 1
    await asyncio.sleep(0)  # the PLI goes out from a task of its own
    assert len(rx.plis) == plis + 1
    feed(rx, VP8, DELTA, 9000)
    feed(rx, VP8, KEY, 12000)
    assert bytes(await track.recv()) == KEY


@pytest.mark.anyio
async def test_audio_drops_its_oldest_frames_when_behind():
    rx = StubReceiver()
    source = ForwardedSource(rx, "audio")
    track = ForwardedTrack(source, max_frames=5)
    for i in range(12):
        feed(rx, OPUS, bytes([i]) * 10, i * 960)
    assert len(track._queue) == 5
    assert (await track.recv()).pts == 7 * 960
    assert track.stats.frames_dropped_behind == 7


@pytest.mark.anyio
async def test_a_frame_of_another_codec_is_dropped_not_forwarded():
    rx = StubReceiver()
    source = ForwardedSource(rx, "video")
    track = ForwardedTrack(source)
    feed(rx, H264, KEY, 0)
    assert source.stats.codec_mismatch_drops == 1 and not track._queue


@pytest.mark.anyio
async def test_tap_installed_after_the_decoder_thread_started_still_stops_it():
    rx = StubReceiver()
    original = rx._RTCRtpReceiver__decoder_queue
    got = []
    thread = threading.Thread(target=lambda: got.append(original.get()))
    thread.start()
    source = ForwardedSource(rx, "video")
    rx._RTCRtpReceiver__decoder_queue.put((VP8, JitterFrame(KEY, 0)))
    assert source.stats.frames_received == 1 and original.qsize() == 0
    rx._RTCRtpReceiver__decoder_queue.put(None)
    thread.join(2)
    assert got == [None] and source.ended


@pytest.mark.anyio
async def test_audio_pass_through_hands_on_every_packet_at_once_and_counts_the_gaps():
    """A lost audio packet holds nothing up: aiortc's jitter buffer waited for the hole up to
    its capacity and then threw good frames away, doubling what the others heard lost."""
    from aiortc.rtp import RtpPacket

    rx = StubReceiver()
    source = ForwardedSource(rx, "audio")
    buffer = rx._RTCRtpReceiver__jitter_buffer
    assert buffer is source.audio_buffer
    released = []
    for seq in [*range(65530, 65536), *range(0, 3), 4, 5, 3, 5, *range(6, 30)]:  # 3 late, 5 twice
        packet = RtpPacket(payload_type=111, sequence_number=seq, timestamp=seq * 960)
        packet._data = bytes([seq % 256])
        pli, frame = buffer.add(packet)
        assert not pli
        if frame is not None:
            released.append(frame.timestamp // 960)
    # Every packet in order is released as it arrives, across the wrap; the late one and the
    # duplicate are not (an older timestamp would read as a wrap further on).
    assert released == [*range(65530, 65536), 0, 1, 2, 4, 5, *range(6, 30)]
    assert (buffer.received, buffer.lost, buffer.late) == (35, 0, 2)
    for seq in (40, 45):  # 30-39 and 41-44 lost
        packet = RtpPacket(payload_type=111, sequence_number=seq, timestamp=seq * 960)
        packet._data = b"x"
        assert buffer.add(packet)[1] is not None
    assert buffer.lost == 14


RED = RTCRtpCodecParameters(mimeType="audio/red", clockRate=48000, channels=2, payloadType=110)


@pytest.mark.anyio
async def test_red_from_a_publisher_repairs_its_own_lost_packets_for_subscribers_without_red():
    """A publisher sends RED (each packet: the previous Opus frame, then its own); one of its
    packets is lost on the way up. A subscriber that takes plain Opus still gets every frame,
    in order; one that takes RED gets the payloads as they came (and nothing twice)."""
    from realtime.relay.codecs import build_red, parse_red
    from realtime.relay.lean_sender import relay_packetizer

    rx = StubReceiver()
    source = ForwardedSource(rx, "audio")
    opus_sub, red_sub = ForwardedTrack(source), ForwardedTrack(source)
    frames = {n: bytes([n]) * (20 + n) for n in range(6)}
    for n in (0, 1, 3, 4, 5):  # frame 2's packet is lost upstream; packet 3 carries it again
        payload = build_red(96, frames[n], [(960, frames[n - 1])] if n else [])
        assert parse_red(payload)[-1] == (96, 0, frames[n])
        feed(rx, RED, payload, n * 960)
    got = []
    while opus_sub._queue:
        got.append(await opus_sub.recv_relay())
    assert [f.data for f in got] == [frames[n] for n in range(6)]
    assert [f.timestamp for f in got] == [n * 960 for n in range(6)]
    assert [f.recovered for f in got] == [False, False, True, False, False, False]
    assert source.stats.frames_recovered == 1
    # The RED subscriber's packetiser: the publisher's payloads, the recovered frame skipped.
    red = relay_packetizer("audio/red")
    opus = relay_packetizer("audio/opus")
    assert [red(f) for f in got] == [[] if f.recovered else [f.red] for f in got]
    assert got[3].red is not None and parse_red(got[3].red)[0][2] == frames[2]
    assert [opus(f) for f in got] == [[frames[n]] for n in range(6)]
    assert len(red_sub._queue) == 6
    # Malformed RED is dropped, not forwarded.
    feed(rx, RED, b"\x80\x00", 6 * 960)
    assert source.stats.red_malformed == 1 and not opus_sub._queue


@pytest.mark.anyio
async def test_a_subscriber_that_takes_red_gets_redundancy_even_from_an_opus_publisher():
    from realtime.relay.codecs import parse_red
    from realtime.relay.lean_sender import relay_packetizer

    rx = StubReceiver()
    source = ForwardedSource(rx, "audio")
    track = ForwardedTrack(source)
    for n in range(3):
        feed(rx, OPUS, bytes([n]) * 30, n * 960)
    red = relay_packetizer("audio/red")
    payloads = [red(await track.recv_relay())[0] for _ in range(3)]
    assert parse_red(payloads[0]) == [(96, 0, bytes([0]) * 30)]
    assert parse_red(payloads[2]) == [(96, 960, bytes([1]) * 30), (96, 0, bytes([2]) * 30)]
