"""The passthrough relay with real aiortc peers: a publisher, decoding subscribers, keyframes,
PLI coalescing, NACK under loss, resync, renegotiation as publishers come and go.

Marked ``netns``: scripts/test runs these inside a loopback-only network namespace.
"""

from __future__ import annotations

import asyncio
import random

import pytest
from aiortc.rtp import RtpPacket, is_rtcp

from realtime.relay.lean_sender import lean_run_rtp
from realtime.relay.server import RelayServer
from tests.support.relay_peers import (
    DecodeErrors,
    LossyLink,
    RelayParticipant,
    Switchboard,
    wait_for,
)

pytestmark = [pytest.mark.anyio, pytest.mark.netns]


class Room:
    """A RelayServer with a publisher "pub" already sending; subscribers join with ``join``."""

    def __init__(self, **server_options) -> None:  # type: ignore[no-untyped-def]
        self.board = Switchboard()
        self.server = RelayServer(self.board.send, **server_options)
        self.peers: list[RelayParticipant] = []

    async def __aenter__(self) -> Room:
        self.pub = await self.add(RelayParticipant("pub", publish=True, decode=False))
        await wait_for(lambda: "pub" in self.server.publishers
                       and self.server.publishers["pub"].sources.get("video") is not None
                       and self.video.stats.frames_received > 0, what="first published frame")
        return self

    async def add(self, participant: RelayParticipant) -> RelayParticipant:
        self.peers.append(participant)
        return await self.board.join(self.server, participant)

    async def join(self, pid: str, **options) -> RelayParticipant:  # type: ignore[no-untyped-def]
        peer = await self.add(RelayParticipant(pid, **options))
        await wait_for(lambda: peer.frames("pub", "video") > 0, timeout=10, what=f"{pid}'s first frame")
        return peer

    @property
    def video(self):  # type: ignore[no-untyped-def]
        return self.server.publishers["pub"].sources["video"]

    @property
    def audio(self):  # type: ignore[no-untyped-def]
        return self.server.publishers["pub"].sources["audio"]

    def slot(self, pid: str, kind: str = "video"):  # type: ignore[no-untyped-def]
        return next(s for s in self.server.links[pid].active_slots() if s.publisher == "pub" and s.kind == kind)

    async def __aexit__(self, *exc: object) -> None:
        for peer in self.peers:
            await peer.close()
        await self.server.close()


async def test_publisher_and_three_subscribers_decode_forwarded_audio_and_video():
    with DecodeErrors() as errors:
        async with Room() as room:
            subs = [await room.join(f"s{i}") for i in range(3)]
            start = {s.pid: (s.frames("pub", "video"), s.frames("pub", "audio")) for s in subs}
            v0, a0 = room.video.stats.frames_received, room.audio.stats.frames_received
            # How each subscriber's frames went out before the stretch: a link's first frames
            # may wait in its queue until its transport is up (more of them on a loaded machine).
            sent0 = {(s.pid, kind): (room.slot(s.pid, kind).track.stats.frames_forwarded,
                                     room.slot(s.pid, kind).track.stats.frames_sent_at_once)
                     for s in subs for kind in ("video", "audio")}
            # A stretch of 60 video and 100 audio frames at the relay (about 2 s at the source's
            # rate; how fast is bench/relay.py's question), then what each subscriber got of it.
            await wait_for(lambda: room.video.stats.frames_received - v0 >= 60
                           and room.audio.stats.frames_received - a0 >= 100, timeout=30, what="a stretch of media")
            dv = room.video.stats.frames_received - v0
            da = room.audio.stats.frames_received - a0
            for s in subs:
                v, a = start[s.pid]
                assert s.frames("pub", "video") - v >= 0.9 * dv - 3, (s.pid, s.decoded, dv)
                assert s.frames("pub", "audio") - a >= 0.9 * da - 5, (s.pid, s.decoded, da)
                assert s.first_keyframe["pub"] is True
            # The relay never decoded: its receivers' own tracks got no frame.
            for source in (room.video, room.audio):
                assert source.receiver.track._queue.qsize() == 0
            # Keyframes only on request (pict_type cleared); frames forwarded one for one.
            assert room.video.stats.keyframes_received <= 4
            for s in subs:
                assert room.slot(s.pid).track.stats.resyncs == 0
                # Connected over plain UDP: during the stretch, frames go out during the
                # fan-out itself, not from a task woken per frame and subscriber.
                for kind in ("video", "audio"):
                    st = room.slot(s.pid, kind).track.stats
                    forwarded0, at_once0 = sent0[(s.pid, kind)]
                    forwarded, at_once = st.frames_forwarded - forwarded0, st.frames_sent_at_once - at_once0
                    assert forwarded > 0 and at_once >= 0.9 * forwarded, (kind, forwarded, at_once, st)
            # The subscribers answered "sendonly" on their upload m-lines but send nothing (as a
            # browser without a camera does): no m-lines for them on the other links.
            assert set(room.server.publishers) == {"pub"}
            assert room.server.links["pub"].slots == []
            assert all(slot.publisher == "pub" for s in subs for slot in room.server.links[s.pid].slots)
            # Forwarded frames are the publisher's frames, byte for byte: every frame a
            # subscriber received is one another subscriber received too (same hashes).
            common = set(subs[0].frame_hashes["pub"]) & set(subs[1].frame_hashes["pub"])
            assert len(common) >= 0.9 * min(len(subs[0].frame_hashes["pub"]), len(subs[1].frame_hashes["pub"]))
    assert errors.messages == []


async def test_late_joiner_first_frame_is_a_keyframe_asked_for_once():
    with DecodeErrors() as errors:
        async with Room() as room:
            early = await room.join("early")
            # The publisher is mid-GOP now: keyframes come on request only.
            await wait_for(lambda: early.frames("pub", "video") >= 30, timeout=15, what="early's video")
            plis, keyframes = room.video.stats.plis_sent, room.video.stats.keyframes_received
            late = await room.join("late")
            await wait_for(lambda: late.frames("pub", "video") >= 15, timeout=15, what="late joiner's video")
            assert room.slot("late").track.stats.first_frame_keyframe is True
            assert late.first_keyframe["pub"] is True  # as it arrived on the wire
            assert room.video.stats.plis_sent == plis + 1
            assert room.video.stats.keyframes_received == keyframes + 1
            assert room.pub.plis_received >= 1
    assert errors.messages == []


async def test_a_subscribers_pli_yields_exactly_one_new_keyframe():
    async with Room() as room:
        subs = [await room.join(f"s{i}") for i in range(3)]

        async def quiet() -> tuple[int, int, list[int]]:
            """No keyframe request in flight, and frames sent before now have landed."""
            await wait_for(lambda: not room.video.keyframe_pending, timeout=15, what="no keyframe request in flight")
            frames = [s.frames("pub", "video") for s in subs]
            await wait_for(lambda: all(s.frames("pub", "video") >= n + 5 for s, n in zip(subs, frames, strict=True)),
                           timeout=15, what="five more frames at every subscriber")
            return room.pub.plis_received, room.video.stats.keyframes_received, [
                s.encoded_keyframes["pub"] for s in subs]

        def from_subscribers() -> int:
            return sum(room.slot(s.pid).track.stats.plis_from_subscriber for s in subs)

        pub_plis, keyframes, seen = await quiet()
        await subs[0].send_pli("pub")
        # The keyframe it brings, at every subscriber; then whatever else it caused is counted.
        await wait_for(lambda: all(s.encoded_keyframes["pub"] > k for s, k in zip(subs, seen, strict=True)),
                       timeout=15, what="the new keyframe at every subscriber")
        assert room.slot("s0").track.stats.plis_from_subscriber == 1
        assert (room.pub.plis_received, room.video.stats.keyframes_received) == (pub_plis + 1, keyframes + 1)
        assert [s.encoded_keyframes["pub"] for s in subs] == [k + 1 for k in seen]
        # Several at once (every subscriber, twice) still make one request upstream.
        pub_plis, keyframes, seen = await quiet()
        handled = from_subscribers()
        await asyncio.gather(*(s.send_pli("pub") for s in subs for _ in range(2)))
        await wait_for(lambda: from_subscribers() == handled + 6
                       and all(s.encoded_keyframes["pub"] > k for s, k in zip(subs, seen, strict=True)),
                       timeout=15, what="six PLIs handled and the new keyframe at every subscriber")
        assert (room.pub.plis_received, room.video.stats.keyframes_received) == (pub_plis + 1, keyframes + 1)


async def test_two_percent_downlink_loss_is_repaired_by_nack_without_decode_errors():
    with DecodeErrors() as errors:
        async with Room() as room:
            lossy = await room.join("lossy")
            link = room.server.links["lossy"]
            slots = link.active_slots()
            media_ssrcs = {s.transceiver.sender._ssrc for s in slots}
            # The relay's own RTP loop sends (and its history answers the NACKs below).
            assert all(s.transceiver.sender._run_rtp.__func__ is lean_run_rtp for s in slots)
            rng = random.Random(5)
            # 2 % of first transmissions dropped on this subscriber's downlink; retransmissions
            # (RTX, their own SSRC) pass, as they would on a link with independent 2 % loss most times.
            dropper = LossyLink(link.pc.getTransceivers()[0].sender.transport,
                                lambda pkt: pkt.ssrc in media_ssrcs and rng.random() < 0.02)
            before, v0 = lossy.frames("pub", "video"), room.video.stats.frames_received
            await wait_for(lambda: dropper.dropped >= 5 and link.guard is not None and link.guard.stats.nacks >= 1
                           and room.video.stats.frames_received - v0 >= 90, timeout=30,
                           what="losses, their NACKs and 90 frames")
            received = room.video.stats.frames_received - v0
            assert dropper.dropped >= 5
            assert link.guard is not None and link.guard.stats.nacks >= 1
            assert lossy.frames("pub", "video") - before >= 0.9 * received - 3
            assert link.guard.stats.pauses == 0  # 2 % is not a weak link
            # A wrapped transport is not the plain UDP path: the sender's loop sends, via _send_rtp.
            assert all(s.track.stats.frames_sent_at_once < s.track.stats.frames_forwarded - 30 for s in slots)
    assert errors.messages == []


async def test_a_stalled_subscriber_is_resynced_on_a_keyframe_not_buffered():
    with DecodeErrors() as errors:
        async with Room() as room:
            await room.join("ok")
            slow = await room.join("slow")
            sender = room.slot("slow").transceiver.sender
            transport = sender.transport
            original = transport._send_rtp
            stall = {"on": True}

            async def send_rtp(data: bytes) -> None:
                # One 1.5 s stall in this subscriber's video send path only.
                if stall["on"] and not is_rtcp(data) and RtpPacket.parse(data).ssrc == sender._ssrc:
                    stall["on"] = False
                    await asyncio.sleep(1.5)
                await original(data)

            transport._send_rtp = send_rtp
            plis = room.video.stats.plis_sent
            stats = room.slot("slow").track.stats
            await wait_for(lambda: not stall["on"] and stats.resyncs >= 1 and room.video.stats.plis_sent > plis,
                           timeout=15, what="the stall and the resync after it")
            assert stats.resyncs >= 1 and stats.frames_dropped_behind > 0
            assert stats.max_queue <= 20  # 0.5 s at 30 fps: never an unbounded backlog
            assert room.video.stats.plis_sent > plis
            assert room.slot("ok").track.stats.resyncs == 0
            decoded = slow.frames("pub", "video")
            await wait_for(lambda: slow.frames("pub", "video") >= decoded + 30, timeout=5, what="decoding again")
    assert errors.messages == []


async def test_publishers_joining_and_leaving_renegotiate_every_link():
    async with Room() as room:
        second = await room.add(RelayParticipant("second", publish=True))
        watcher = await room.join("watcher")
        await wait_for(lambda: watcher.frames("second", "video") > 5 and second.frames("pub", "video") > 5,
                       timeout=10, what="both publishers forwarded")
        offers = room.server.links["watcher"].offers
        await room.server.remove("second")
        await wait_for(lambda: room.server.links["watcher"].offers > offers, what="re-offer after a leave")
        mapping = room.board.participants["watcher"].mapping
        await wait_for(lambda: all(who != "second" for who, _ in mapping.values()) or
                       all(who != "second" for who, _ in room.board.participants["watcher"].mapping.values()),
                       what="the leaver's m-lines gone from relay_tracks")
        assert {kind for who, kind in room.board.participants["watcher"].mapping.values() if who == "pub"} == {"audio", "video"}
        before = watcher.frames("pub", "video")
        await wait_for(lambda: watcher.frames("pub", "video") > before + 10, what="pub still forwarded")
