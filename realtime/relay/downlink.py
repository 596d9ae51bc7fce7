"""Protecting a subscriber on a weak downlink: pause its video, keep its audio.

aiortc's senders do not adapt to a subscriber's link (no congestion control on the send
side): into a 512 kbps link they keep pushing 700+ kbps and both audio and video drown. A
forwarding relay cannot lower the bitrate of a frame it did not encode, so without
simulcast the one adaptation left is to stop sending video to that subscriber:

* RR report blocks for the subscriber's video SSRCs with ``fraction_lost ≥ pause_loss``
  ``pause_reports`` times in a row (or REMB below ``min_remb_bps``, when set) pause its video;
* audio keeps flowing, and its RR loss is the recovery signal: after ``backoff`` seconds and
  once audio loss is ≤ ``resume_loss``, video resumes on a fresh keyframe;
* relapsing within ``probation`` of a resume doubles the backoff (up to ``backoff_max``).

The guard only decides; the link applies the pause to every video track it forwards.
"""

from __future__ import annotations

import asyncio
import logging
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

log = logging.getLogger("chibo.relay")


@dataclass(frozen=True)
class DownlinkPolicy:
    pause_loss: float = 0.10
    pause_reports: int = 2
    resume_loss: float = 0.02
    backoff_initial: float = 2.0
    backoff_max: float = 30.0
    probation: float = 5.0
    min_remb_bps: int | None = None


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
    pauses: int = 0
    resumes: int = 0
    events: list[tuple[float, str, Any]] = field(default_factory=list)


class DownlinkGuard:
    def __init__(self, policy: DownlinkPolicy, set_video_paused: Callable[[bool], None], name: str = "") -> None:
        self.policy = policy
        self.name = name
        self.stats = DownlinkStats()
        self.video_paused = False
        self._set_video_paused = set_video_paused
        self._loop = asyncio.get_event_loop()
        self._bad_reports = 0
        self._paused_at = 0.0
        self._resumed_at: float | None = None
        self._backoff = policy.backoff_initial

    def observe(self, kind: str, ssrc: int, packet: Any) -> None:
        """One RTCP packet that reached the sender of ``kind`` with media SSRC ``ssrc``."""
        st = self.stats
        if isinstance(packet, RtcpRrPacket | RtcpSrPacket):
            for report in packet.reports:
                if report.ssrc != ssrc:
                    continue
                loss = report.fraction_lost / 256.0
                if kind == "video":
                    st.video_reports += 1
                    st.last_video_loss = loss
                    self._on_video_loss(loss)
                else:
                    st.audio_reports += 1
                    st.last_audio_loss = loss
                    st.audio_losses.append(loss)
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
            if self.policy.min_remb_bps and bitrate < self.policy.min_remb_bps:
                self._pause(f"remb={bitrate}")
        self._maybe_resume()

    def _on_video_loss(self, loss: float) -> None:
        if self.video_paused:
            return
        if loss >= self.policy.pause_loss:
            self._bad_reports += 1
            if self._bad_reports >= self.policy.pause_reports:
                self._pause(f"loss={loss:.2f}")
        else:
            self._bad_reports = 0

    def _pause(self, reason: str) -> None:
        if self.video_paused:
            return
        p = self.policy
        now = self._loop.time()
        if self._resumed_at is not None and now - self._resumed_at < p.probation:
            self._backoff = min(self._backoff * 2, p.backoff_max)
        else:
            self._backoff = p.backoff_initial
        self.video_paused = True
        self._paused_at = now
        self._bad_reports = 0
        self.stats.pauses += 1
        self.stats.events.append((now, "pause", reason))
        log.info("%s: video paused (%s), probing again in %.1f s", self.name, reason, self._backoff)
        self._set_video_paused(True)

    def _maybe_resume(self) -> None:
        if not self.video_paused:
            return
        now = self._loop.time()
        if now - self._paused_at < self._backoff:
            return
        audio_loss = self.stats.last_audio_loss
        if audio_loss is not None and audio_loss > self.policy.resume_loss:
            return  # (no audio report at all: probe anyway; a relapse doubles the backoff)
        self.video_paused = False
        self._resumed_at = now
        self.stats.resumes += 1
        self.stats.events.append((now, "resume", audio_loss))
        log.info("%s: video resumed (audio loss %.3f)", self.name, audio_loss)
        self._set_video_paused(False)
