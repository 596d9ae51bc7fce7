"""The weak-downlink guard's decisions, from the RTCP a subscriber sends (no network here:
tests/realtime/test_relay_weak_downlink.py runs it behind a real rate cap).

What a user would notice: a member on a link with random loss keeps the speaker's video (the
old guard paused it for good at 10 % loss); a congested member loses video step by step,
keeps audio, and gets video back when the link recovers — later each time a probe fails.
"""

from __future__ import annotations

import time

from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, RtcpReceiverInfo, RtcpRrPacket, pack_remb_fci

from realtime.relay.downlink import DownlinkGuard, DownlinkPolicy, VideoLevel

VIDEO, AUDIO = 1111, 2222


class Sender:
    """What the guard reads from an aiortc sender: its SSRC and its last sender report."""

    def __init__(self, ssrc: int) -> None:
        self._ssrc = ssrc
        self._RTCRtpSender__lsr = 0x12345678
        self._RTCRtpSender__lsr_time = time.time()


class Link:
    """A subscriber's link at a given rate: the relay sends ``rate`` unless the guard cut it."""

    def __init__(self, policy: DownlinkPolicy | None = None) -> None:
        self.now = 0.0
        self.sent = 0
        self.levels: list[VideoLevel] = []
        # One publisher's video: FOCUS sends what FULL sends.
        self.guard = DownlinkGuard(policy or DownlinkPolicy(), self.levels.append, lambda: self.sent,
                                   name="test", clock=lambda: self.now,
                                   changes=lambda level: level != VideoLevel.FOCUS)
        self.video, self.audio = Sender(VIDEO), Sender(AUDIO)
        self.estimate = 300_000

    def rate(self) -> int:
        return {VideoLevel.FULL: 320_000, VideoLevel.FOCUS: 320_000, VideoLevel.KEYFRAMES: 90_000,
                VideoLevel.PAUSED: 45_000}[self.guard.level]

    def second(self, *, loss: float = 0.0, remb: int | None = None, rtt: float | None = None) -> None:
        """One second of traffic and the RTCP it brings back (an RR per sender, maybe a REMB).

        ``remb`` is the link's capacity. The receiver's estimate behaves as a browser's: cut
        to 0.85 × what arrives when more is sent than the link carries, otherwise climbing
        8 % a second, to at most 1.5 × what arrives. More sent than the link carries also
        builds a queue (200 ms more RTT) unless ``rtt`` is given."""
        congested = remb is not None and self.rate() > remb
        if remb is not None:
            arriving = min(self.rate(), remb)
            if congested:
                self.estimate = int(0.85 * arriving)
            else:
                self.estimate = int(min(max(self.estimate, arriving) * 1.08, 1.5 * arriving + 10_000))
            remb = self.estimate
        if rtt is None:
            rtt = 0.5 if congested else 0.3
        for _ in range(4):
            self.now += 0.25
            self.sent += self.rate() // 32
        for sender in (self.video, self.audio):
            sender._RTCRtpSender__lsr_time = time.time() - rtt  # the report answers an SR rtt ago
            rr = RtcpRrPacket(ssrc=9, reports=[RtcpReceiverInfo(
                ssrc=sender._ssrc, fraction_lost=int(loss * 256), packets_lost=0, highest_sequence=0, jitter=0,
                lsr=sender._RTCRtpSender__lsr, dlsr=1)])
            self.guard.observe("video" if sender is self.video else "audio", sender, rr)
        if remb is not None:
            packet = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=9, media_ssrc=0, fci=pack_remb_fci(remb, [VIDEO]))
            self.guard.observe("video", self.video, packet)


def test_random_loss_alone_never_takes_the_video_away():
    link = Link()
    for _ in range(60):  # a minute at 5-12 % loss, a steady 300 ms RTT, REMB above the rate
        link.second(loss=0.12, remb=600_000)
    assert link.guard.level == VideoLevel.FULL and link.levels == []
    assert link.guard.stats.last_video_loss and link.guard.stats.last_video_loss > 0.1


def test_a_congested_link_steps_down_keeps_a_level_and_comes_back_when_it_clears():
    link = Link()
    for _ in range(5):
        link.second(remb=600_000)
    # The link now carries 200 kbps: the subscriber's estimate says so.
    for _ in range(3):
        link.second(remb=180_000)
    # One video only: FOCUS would change nothing, so the first step is keyframes only.
    assert link.levels == [VideoLevel.KEYFRAMES]
    for _ in range(20):  # keyframes fit (never paused); probes of the full rate fail
        link.second(remb=140_000)
    probes = link.guard.stats.steps_up
    assert probes >= 1
    assert link.levels == [VideoLevel.KEYFRAMES] + [VideoLevel.FULL, VideoLevel.KEYFRAMES] * probes
    # The link recovers: the next probe holds.
    for _ in range(25):
        link.second(remb=700_000)
    assert link.guard.level == VideoLevel.FULL
    assert link.guard.stats.events[-1][1:3] == ("up", "FULL")


def test_a_queue_building_up_steps_down_without_any_remb():
    link = Link()
    for _ in range(5):
        link.second(rtt=0.30)
    for _ in range(3):
        link.second(rtt=0.75)  # 450 ms of queue on a 300 ms link
    assert link.guard.level == VideoLevel.KEYFRAMES
    for _ in range(3):
        link.second(rtt=0.8)
    assert link.guard.level == VideoLevel.PAUSED  # still queueing: audio only


def test_a_failed_probe_doubles_the_wait_before_the_next():
    link = Link(DownlinkPolicy(floor=VideoLevel.KEYFRAMES))
    for _ in range(3):
        link.second(remb=600_000)
    for _ in range(3):
        link.second(remb=100_000)
    assert link.guard.level == VideoLevel.KEYFRAMES
    ups = []
    for second in range(80):  # a link that carries keyframes, never the full rate
        before = link.guard.level
        link.second(remb=400_000 if link.guard.level == VideoLevel.KEYFRAMES else 100_000)
        if before == VideoLevel.KEYFRAMES and link.guard.level == VideoLevel.FULL:
            ups.append(second)
    gaps = [b - a for a, b in zip(ups, ups[1:], strict=False)]
    assert len(ups) >= 3 and gaps == sorted(gaps) and gaps[-1] > gaps[0], ups


def test_a_long_round_trip_from_an_overfilled_uplink_is_not_taken_for_the_downlink():
    """The RTT crosses the member's uplink too: at 64 kbit/s up with a camera on, its queue
    made the relay step the member's *downlink* video down for nothing."""
    uplink = {"loss": 0.0}
    link = Link()
    link.guard._uplink_loss = lambda: uplink["loss"]
    for _ in range(5):
        link.second(remb=600_000)
    uplink["loss"] = 30.0
    for _ in range(6):
        link.second(remb=600_000, rtt=1.2)  # the uplink's queue; the downlink carries everything
    assert link.guard.level == VideoLevel.FULL and link.levels == []
    uplink["loss"] = 3.0  # random loss only: the same round trip is the downlink's queue
    for _ in range(3):
        link.second(remb=600_000, rtt=1.2)
    assert link.guard.level > VideoLevel.FULL
