"""Protecting a subscriber on a weak downlink: step its video down, keep its audio.

aiortc's senders do not adapt to a subscriber's link (no congestion control on the send
side): into a 512 kbps link they keep pushing whatever the publishers send. A forwarding
relay cannot make a frame it did not encode smaller, so it adapts by sending fewer of them,
one step at a time (``VideoLevel``):

    FULL → FOCUS (only the floor holder's or latest speaker's video)
         → KEYFRAMES (that video as one keyframe every few seconds) → PAUSED (audio only)

**When to step down: congestion, never random loss.** A mobile link that loses 5 % of its
packets at random carries 250 kbps of video at 15 fps perfectly well (the mesh does it);
pausing on loss paused such links for good (issue 15). Congestion shows as:

* a queue building on the way: round-trip time (from the audio RR reports' LSR/DLSR) above the
  smallest seen on this link in the last 30 s by more than ``queue_delay``;
* the subscriber's own bandwidth estimate (REMB: the browser's delay-based estimator, which
  random loss does not move) below what the relay sends it, not climbing, with a queue
  starting to build (half of ``queue_delay``).

Either one for ``bad_seconds`` (half that just after a probe, which costs the audio
too) steps down one level; the step is held at least ``hold`` seconds. (The round trip also crosses the subscriber's uplink: while that loses
far more than random loss would — it is the one overfilled — the RTT is not counted.)
**Coming back:** after the hold, with no congestion for ``good_seconds``,
the guard steps up one level (a probe). Stepping down again within ``probation`` of a probe
doubles the hold (up to ``hold_max``); a probe that lasts resets it. A REMB well above what
the next level needs lets a step up come without waiting for the hold.

Loss is recorded (tests and the room's indicators read it) but decides nothing on its own.
The guard only decides; the link applies the level to every video it forwards.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_RTPFB_NACK,
    RtcpPsfbPacket,
    RtcpRrPacket,
    RtcpRtpfbPacket,
    RtcpSrPacket,
    unpack_remb_fci,
)

from . import internals

log = logging.getLogger("chibo.relay")


class VideoLevel(enum.IntEnum):
    """How much video a subscriber gets, from all of it to none."""

    FULL = 0
    #: Only the video in focus (floor holder, else latest speaker, else hall, else first).
    FOCUS = 1
    #: The video in focus as keyframes only, one every ``keyframe_interval`` seconds.
    KEYFRAMES = 2
    PAUSED = 3


@dataclass(frozen=True)
class DownlinkPolicy:
    #: Congested when the subscriber's REMB is below ``remb_margin`` × the rate sent to it.
    remb_margin: float = 0.9
    #: Congested when the RTT exceeds the link's smallest by this much (seconds).
    queue_delay: float = 0.25
    #: Congestion this long steps down one level.
    bad_seconds: float = 2.0
    #: No congestion this long (after the hold) steps up one level.
    good_seconds: float = 4.0
    hold_initial: float = 8.0
    hold_max: float = 60.0
    #: A step down this soon after a step up doubles the hold.
    probation: float = 8.0
    #: At KEYFRAMES, how often the publisher is asked for a keyframe.
    keyframe_interval: float = 3.0
    #: Above this uplink loss (per cent, measured on the subscriber's own upload) the RTT is
    #: not taken as the downlink's queue: the subscriber's uplink is the one that queues.
    uplink_loss_pct: float = 12.0
    #: Never go further down than this (tests).
    floor: VideoLevel = VideoLevel.PAUSED
    #: Rate windows: the send rate is measured over at least this long (seconds).
    rate_window: float = 1.0


@dataclass
class DownlinkStats:
    video_reports: int = 0
    audio_reports: int = 0
    last_video_loss: float | None = None
    last_audio_loss: float | None = None
    #: Every audio RR loss fraction seen (the weak-downlink test reads it).
    audio_losses: list[float] = field(default_factory=list)
    nacks: int = 0
    nacked_packets: int = 0
    last_remb_bps: int | None = None
    last_rtt: float | None = None
    min_rtt: float | None = None
    send_bps: float | None = None
    steps_down: int = 0
    steps_up: int = 0
    #: (loop time, "down" | "up", level name, reason)
    events: list[tuple[float, str, str, str]] = field(default_factory=list)

    @property
    def pauses(self) -> int:
        return sum(1 for _, way, level, _ in self.events if way == "down" and level == "PAUSED")


class DownlinkGuard:
    """Decides one subscriber's ``VideoLevel`` from its RTCP (see the module docstring).

    ``sent_bytes()`` is the number of RTP bytes the relay has sent to this subscriber so far;
    ``set_level(level)`` applies a new level; ``changes(level)`` says whether a level sends
    less than the one above it (FOCUS does not when only one video is forwarded): levels
    that do not are passed over. Called on the loop, from RTCP handling.
    """

    def __init__(self, policy: DownlinkPolicy, set_level: Callable[[VideoLevel], None],
                 sent_bytes: Callable[[], int] = lambda: 0, name: str = "",
                 clock: Callable[[], float] | None = None,
                 changes: Callable[[VideoLevel], bool] = lambda level: True,
                 uplink_loss: Callable[[], float] = lambda: 0.0) -> None:
        self._changes = changes
        self._uplink_loss = uplink_loss
        self.policy = policy
        self.name = name
        self.stats = DownlinkStats()
        self.level = VideoLevel.FULL
        self._set_level = set_level
        self._sent_bytes = sent_bytes
        self._clock = clock or asyncio.get_event_loop().time
        now = self._clock()
        self._bad_since: float | None = None
        self._good_since: float = now
        self._changed_at = now
        self._last_up_at: float | None = None
        self._hold = policy.hold_initial
        self._rates: deque[tuple[float, int]] = deque([(now, sent_bytes())])
        self._rtts: deque[tuple[float, float]] = deque()
        self._remb_at: float | None = None
        self._rtt_at: float | None = None
        self._rembs: deque[tuple[float, int]] = deque()

    @property
    def video_paused(self) -> bool:
        return self.level == VideoLevel.PAUSED

    # ------------------------------------------------------------------ signals

    def observe(self, kind: str, sender: Any, packet: Any) -> None:
        """One RTCP packet that reached the sender of ``kind`` (after aiortc handled it)."""
        st = self.stats
        ssrc = internals.sender_ssrc(sender)
        if isinstance(packet, RtcpRrPacket | RtcpSrPacket):
            for report in packet.reports:
                if report.ssrc != ssrc:
                    continue
                loss = report.fraction_lost / 256.0
                if kind == "video":
                    st.video_reports += 1
                    st.last_video_loss = loss
                else:
                    st.audio_reports += 1
                    st.last_audio_loss = loss
                    st.audio_losses.append(loss)
                # Audio only: it always flows. A sender with nothing to send (paused video)
                # keeps the NTP time of its last packet, so its successive sender reports
                # share one LSR and an RR answering an earlier one reads as a negative RTT.
                rtt = internals.report_rtt(sender, report) if kind == "audio" else None
                if rtt is not None and 0 <= rtt < 10:
                    self._note_rtt(rtt)
        elif isinstance(packet, RtcpRtpfbPacket) and packet.fmt == RTCP_RTPFB_NACK:
            if packet.media_ssrc == ssrc:
                st.nacks += 1
                st.nacked_packets += len(packet.lost)
        elif isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, _ = unpack_remb_fci(packet.fci)
            except ValueError:
                return
            st.last_remb_bps = bitrate
            self._remb_at = now = self._clock()
            self._rembs.append((now, bitrate))
            while now - self._rembs[0][0] > 5.0:
                self._rembs.popleft()
        self.evaluate()

    def _note_rtt(self, rtt: float) -> None:
        now = self._clock()
        st = self.stats
        st.last_rtt = rtt
        self._rtt_at = now
        self._rtts.append((now, rtt))
        while self._rtts and now - self._rtts[0][0] > 30.0:
            self._rtts.popleft()
        # The link's base RTT: the smallest of the last 30 s (routes change; a queue that
        # stays for longer than that is the link's new normal).
        st.min_rtt = min(r for _, r in self._rtts)

    def _send_rate(self, now: float) -> float | None:
        sent = self._sent_bytes()
        rates = self._rates
        rates.append((now, sent))
        while len(rates) > 2 and now - rates[1][0] >= self.policy.rate_window * 2:
            rates.popleft()
        t0, b0 = rates[0]
        if now - t0 < self.policy.rate_window:
            return self.stats.send_bps
        self.stats.send_bps = (sent - b0) * 8 / (now - t0)
        return self.stats.send_bps

    def _remb_climbing(self, now: float) -> bool:
        """The estimate rose in the last 2.5 s. A new link's estimate starts low and climbs a
        few per cent a second (to at most 1.5 × what arrives), and so does one after a step
        down when the relay probes again: below what the relay sends for many seconds, yet
        no sign of congestion. An overusing receiver cuts its estimate to about 0.85 × what
        arrives, and keeps it there while the queue stays."""
        window = [bps for t, bps in self._rembs if now - t <= 2.5]
        return len(window) >= 2 and window[-1] > 1.10 * min(window)

    def congestion(self, now: float) -> str | None:
        """Why the link looks congested right now, or None.

        A queue (RTT above the link's base by ``queue_delay``) is congestion by itself. The
        subscriber's estimate below what is sent counts when it is not climbing and a queue
        has started to build (half of ``queue_delay``): estimates differ between receivers
        (aiortc's hardly moves), and a queue is what hurts the audio."""
        st = self.stats
        send = self._send_rate(now)
        # Only evidence from after the last step counts: what came before describes a level
        # the link no longer carries.
        since = self._changed_at
        fresh_rtt = self._rtt_at is not None and self._rtt_at > since
        # A round trip also crosses the subscriber's *uplink*: when that one is overfilled (it
        # loses far more than random loss does), a long RTT says nothing about the downlink.
        if self._uplink_loss() > self.policy.uplink_loss_pct:
            fresh_rtt = False
        rtt, base = st.last_rtt, st.min_rtt
        queue = (rtt - base) if fresh_rtt and rtt is not None and base is not None else 0.0
        if queue > self.policy.queue_delay and rtt is not None and base is not None:
            return f"rtt={rtt * 1000:.0f}ms>base={base * 1000:.0f}ms"
        remb = st.last_remb_bps
        fresh = self._remb_at is not None and since < self._remb_at and now - self._remb_at < 3.0
        if fresh and remb is not None and send is not None and remb < self.policy.remb_margin * send \
                and not self._remb_climbing(now) and queue > self.policy.queue_delay / 2:
            return f"remb={remb // 1000}k<sent={send / 1000:.0f}k,queue={queue * 1000:.0f}ms"
        return None

    # ------------------------------------------------------------------ decisions

    def evaluate(self) -> None:
        p = self.policy
        now = self._clock()
        reason = self.congestion(now)
        if reason is not None:
            self._good_since = now
            if self._bad_since is None:
                self._bad_since = now
            # A probe that congests the link again costs the audio too: give it up sooner.
            probing = self._last_up_at is not None and now - self._last_up_at < p.probation
            if now - self._bad_since >= (p.bad_seconds / 2 if probing else p.bad_seconds) and self.level < p.floor:
                self._step(now, +1, reason)  # the next step needs fresh congestion for as long again
            return
        self._bad_since = None
        if self._last_up_at is not None and self._changed_at == self._last_up_at \
                and now - self._last_up_at >= p.probation:
            self._hold = p.hold_initial  # the last probe held: short holds again
        if self.level == VideoLevel.FULL:
            return
        held = now - self._changed_at
        calm = now - self._good_since
        if held >= self._hold and calm >= p.good_seconds:
            self._step(now, -1, "probe")
            self._good_since = now

    def _step(self, now: float, way: int, reason: str) -> None:
        p = self.policy
        if way > 0 and self._last_up_at is not None and now - self._last_up_at < p.probation:
            self._hold = min(self._hold * 2, p.hold_max)  # the probe failed: wait longer
        level = VideoLevel(self.level + way)
        while VideoLevel.FULL < level < VideoLevel.PAUSED and not self._changes(level):
            level = VideoLevel(level + way)  # a level that changes nothing here
        if way > 0 and level > p.floor:
            return
        self.level = level
        self._changed_at = now
        self._bad_since = None
        self._rates.clear()  # the send rate is measured afresh at the new level
        self._rates.append((now, self._sent_bytes()))
        self.stats.send_bps = None
        if way < 0:
            self._last_up_at = now
        st = self.stats
        if way > 0:
            st.steps_down += 1
        else:
            st.steps_up += 1
        st.events.append((now, "down" if way > 0 else "up", self.level.name, reason))
        log.info("%s: video level %s (%s), hold %.0f s", self.name, self.level.name, reason, self._hold)
        self._set_level(self.level)
