"""One room's relay: a server-side aiortc peer with ONE peer connection per participant.

Each participant publishes its audio and video once, on the two upload m-lines of its link,
and receives every other participant's tracks on m-lines the relay adds as publishers come
and go (a track is added once its first frame arrives, not when its m-line is answered). The
relay is always the offering side of a link: browsers answer (aiortc cannot roll back, so it
must never be the polite side of a collision), and before each offer the relay sends
``relay_tracks``, which says which m-line (mid) carries whose audio or video.

A publisher that leaves, or comes back in a new session, never has its m-lines reused for
someone else: they go ``inactive`` and the new session gets new ones. Reusing them would make
the subscriber's RTP timestamps jump backwards mid-stream, which receivers treat as old
packets. The cost is m-lines that grow with churn (two per publisher session).

Per subscriber, video can be paused for three reasons, each applied to the video m-lines
it concerns (``ForwardedTrack.set_paused``):
* ``downlink`` — the weak-downlink guard's level (downlink.py): every video but the one in
  focus from ``FOCUS`` on, that one as keyframes only at ``KEYFRAMES``, all at ``PAUSED``;
* ``audio_only`` — the participant chose audio only (all video);
* ``saver`` — data saver: every video but the one in focus (the floor holder, else the
  latest speaker, else the hall device, else the first publisher).

Negotiation on a link is strictly sequential: one task per link takes events (offer needed,
answer, candidate) from a queue; while an offer is outstanding, changes are collected and
offered once the answer is in.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc import sdp as aiortc_sdp
from aiortc.sdp import candidate_from_sdp

from .. import protocol as p
from ..topology import RELAY_ID
from .codecs import answer_prefers_red, pin_codec, register_red
from .consent import install_patient_consent
from .downlink import DownlinkGuard, DownlinkPolicy, VideoLevel
from .forwarding import ForwardedSource, ForwardedTrack
from .internals import check_aiortc_internals, hook_sender, ice_connection
from .lean_sender import install_lean_rtp
from .nat import NatMapping

log = logging.getLogger("chibo.relay")

KINDS = ("audio", "video")
DEFAULT_POLICY = DownlinkPolicy()


@dataclass
class Slot:
    """One forwarded track on one subscriber's link."""

    publisher: str
    publisher_session: str
    kind: str
    transceiver: RTCRtpTransceiver
    track: ForwardedTrack
    active: bool = True


@dataclass
class Publisher:
    participant: str
    session: str
    sources: dict[str, ForwardedSource] = field(default_factory=dict)


#: The ``error`` message for a refused ``answer`` or ``candidate`` sent to the relay.
BAD_SIGNAL = {
    "answer": "Mô tả phiên (SDP) gửi máy chủ chuyển tiếp không hợp lệ.",
    "candidate": "Ứng viên ICE gửi máy chủ chuyển tiếp không hợp lệ.",
}


def parse_candidate(data: dict[str, Any] | None) -> Any:
    """A browser's trickled candidate as aiortc wants it; None for an end-of-candidates marker."""
    line = (data or {}).get("candidate") or ""
    if not line:
        return None
    candidate = candidate_from_sdp(line.removeprefix("candidate:"))
    check_candidate(candidate)
    candidate.sdpMid = (data or {}).get("sdpMid")
    candidate.sdpMLineIndex = (data or {}).get("sdpMLineIndex")
    return candidate


#: Candidate types of RFC 8445 §5.1.1 (and a peer-reflexive one a browser may learn).
CANDIDATE_TYPES = frozenset({"host", "srflx", "prflx", "relay"})


def check_candidate(candidate: Any) -> None:
    """Refuse a candidate no browser sends: the relay would otherwise send connectivity checks
    to whatever a client names — a port outside 1–65535, a protocol or type ICE does not
    have, an address that is neither an IP literal nor a browser's mDNS
    ``.local`` name (a DNS name would make the relay resolve names a client chose). A TCP
    candidate is well formed (browsers gather them) and is skipped by the caller, not refused."""
    if candidate.component not in (1, 2) or not 0 <= candidate.priority < 2**32:
        raise ValueError("candidate component or priority out of range")
    if candidate.protocol.lower() not in ("udp", "tcp") or candidate.type not in CANDIDATE_TYPES:
        raise ValueError("candidate protocol or type not accepted")
    if not 1 <= candidate.port <= 65535:
        raise ValueError("candidate port out of range")
    address = candidate.ip
    if not address.endswith(".local"):
        ipaddress.ip_address(address)  # ValueError if not an IP literal
    elif not MDNS_NAME.fullmatch(address):
        raise ValueError("candidate mDNS name malformed")


#: A browser's mDNS host name: a UUID (Chromium, Firefox) followed by ``.local``.
MDNS_NAME = re.compile(r"[0-9A-Za-z-]{1,63}\.local")


def _receiver_counts(source: ForwardedSource) -> tuple[int, int]:
    """(packets received, packets lost) on a publisher's track so far."""
    if source.audio_buffer is not None:
        return source.audio_buffer.received, source.audio_buffer.lost
    streams = getattr(source.receiver, "_RTCRtpReceiver__remote_streams", {})
    received = sum(s.packets_received for s in streams.values())
    lost = sum(max(s.packets_lost, 0) for s in streams.values())
    return received, lost


class RelayLink:
    """The relay's peer connection with one participant session."""

    def __init__(self, server: RelayServer, participant: str, session: str, *, red: bool = False,
                 deliver: Callable[[p.Message], None] | None = None) -> None:
        self.server = server
        self.participant = participant
        self.session = session
        #: A warm link (``RelayServer.warm``): its signalling goes to the member's socket
        #: directly, because the member is not in the room yet; None once adopted.
        self.deliver = deliver
        #: The upload sources by kind, and those whose first frame came while warm.
        self.sources: dict[str, ForwardedSource] = {}
        self._held: set[str] = set()
        #: Kinds offered to the others already (at the first frame, or earlier: ``adopt``).
        self._published: set[str] = set()
        #: Kinds offered to the others as soon as their upload m-line is answered.
        self._eager: set[str] = set()
        # Named in every relay_tracks: a participant that started over ignores what a link
        # it gave up on still sends (an offer in flight when it asked for a new one).
        server.links_made += 1
        self.number = server.links_made
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=server.ice_servers,
                                                     bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.slots: list[Slot] = []
        self.upload: dict[str, RTCRtpTransceiver] = {}
        self.red = red
        self.audio_only = False
        self.data_saver = False
        self.level = VideoLevel.FULL
        self.guard = (DownlinkGuard(server.policy, self._set_level, self.rtp_bytes_sent, name=participant,
                                    changes=self._level_changes,
                                    uplink_loss=lambda: server.last_uplink_loss.get(participant, 0.0))
                      if server.policy else None)
        self._queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._offer_needed = False
        self._closed = False
        self.offers = 0
        for kind in KINDS:
            transceiver = self.pc.addTransceiver(kind, direction="recvonly")
            # A browser sends the first codec of the offer: RED first for one that takes it.
            pin_codec(transceiver, red_first=red)
            self.upload[kind] = transceiver
        # Consent that a queueing mobile uplink can pass (consent.py); bundled: one connection.
        install_patient_consent(ice_connection(self.upload["audio"]))
        # A link that fails is not repaired here: the participant's watchdog sends
        # "renegotiate" and gets a fresh link (signal() below).
        self.pc.on("track", self._on_track)
        self._worker = asyncio.create_task(self._work(), name=f"relay-link-{participant}")

    # ------------------------------------------------------------------ publishing

    def _on_track(self, track: Any) -> None:
        for kind, transceiver in self.upload.items():
            if transceiver.receiver.track is track:
                receiver = transceiver.receiver
                source = ForwardedSource(receiver, kind, name=f"{self.participant}/{kind}")
                self.sources[kind] = source
                # Offered to the others once media flows: a browser answers "sendonly" on both
                # upload m-lines even without a camera (audio only, no device), and such a
                # track would otherwise cost every other link an m-line and its RTCP.
                source.on_first_frame = functools.partial(self._first_frame, kind, source)
                if kind in self._eager and self.deliver is None:
                    self._publish(kind)
                return

    def _first_frame(self, kind: str, source: ForwardedSource) -> None:
        if self.deliver is not None:  # warm: nothing is forwarded before the member joins
            self._held.add(kind)
            return
        self._publish(kind)

    def _publish(self, kind: str) -> None:
        if kind in self._published:
            return
        self._published.add(kind)
        self.server.publish(self.participant, self.session, kind, self.sources[kind])

    def _send(self, message: p.Message) -> None:
        if self.deliver is not None:
            self.deliver(message)
        else:
            self.server.send(self.participant, message)

    def usable(self) -> bool:
        return not self._closed and self.pc.connectionState not in ("failed", "closed")

    def adopt(self, session: str, *, audio: bool = True) -> None:
        """A warm link becomes the participant's link in ``session`` (RelayServer.add).

        With ``audio`` (the member enters with a microphone) the member's audio is offered to
        the others now, or as soon as the warm link's answer is in, instead of at its first
        frame: the others' links are renegotiated while the member's own DTLS completes,
        not after the first packet arrives, which is one step less before they hear the
        member. (Video still waits for its first frame: a member may have no camera.)"""
        self.session = session
        self.deliver = None
        if audio:
            self._eager.add("audio")
        for kind in sorted(self._held | (self._eager & set(self.sources))):
            self._publish(kind)
        self._held.clear()

    # ------------------------------------------------------------------ subscribing

    def add_slot(self, publisher: Publisher, kind: str) -> None:
        source = publisher.sources[kind]
        track = ForwardedTrack(source)
        transceiver = self.pc.addTransceiver(track, direction="sendonly")
        pin_codec(transceiver, kind)
        slot = Slot(publisher.participant, publisher.session, kind, transceiver, track)
        hook_sender(transceiver.sender, track.on_subscriber_keyframe_request, self._observe_rtcp(kind))
        install_lean_rtp(transceiver.sender)
        self.slots.append(slot)
        self.apply_video_pauses()
        self.need_offer()

    def drop_publisher(self, participant: str, session: str | None = None) -> None:
        changed = False
        for slot in self.slots:
            if slot.active and slot.publisher == participant and (session is None or slot.publisher_session == session):
                slot.active = False
                slot.track.stop()
                slot.transceiver.direction = "inactive"
                changed = True
        if changed:
            self.need_offer()

    def active_slots(self) -> list[Slot]:
        return [s for s in self.slots if s.active]

    def _observe_rtcp(self, kind: str) -> Callable[[RTCRtpSender, Any], None]:
        def observe(sender: RTCRtpSender, packet: Any) -> None:
            if self.guard is not None:
                self.guard.observe(kind, sender, packet)
        return observe

    def rtp_bytes_sent(self) -> int:
        """RTP bytes sent to this participant so far (all m-lines share one transport)."""
        for slot in self.slots:
            transport = slot.transceiver.sender.transport
            if transport is not None:
                return int(getattr(transport, "_RTCDtlsTransport__tx_bytes", 0))
        return 0

    def _set_level(self, level: VideoLevel) -> None:
        self.level = level
        self.apply_video_pauses()
        self.server.tracks_changed(self)

    def _level_changes(self, level: VideoLevel) -> bool:
        """Whether ``level`` sends this subscriber less video than the one above it."""
        if level == VideoLevel.FOCUS:
            return sum(1 for s in self.active_slots() if s.kind == "video") > 1
        return True

    def apply_video_pauses(self) -> None:
        level = self.level
        focus = self.server.focus_for(self.participant) if self.data_saver or level >= VideoLevel.FOCUS else None
        keyframes = self.server.policy.keyframe_interval if self.server.policy else 3.0
        for slot in self.active_slots():
            if slot.kind != "video":
                continue
            out_of_focus = slot.publisher != focus
            slot.track.set_paused("downlink", level == VideoLevel.PAUSED or (level >= VideoLevel.FOCUS and out_of_focus))
            slot.track.set_keyframes_only(keyframes if level == VideoLevel.KEYFRAMES else None)
            slot.track.set_paused("audio_only", self.audio_only)
            slot.track.set_paused("saver", self.data_saver and out_of_focus)

    def video_paused(self) -> list[str]:
        return sorted({s.publisher for s in self.active_slots() if s.kind == "video" and s.track.paused})

    def video_reduced(self) -> list[str]:
        """Publishers whose video goes to this participant as keyframes only."""
        return sorted({s.publisher for s in self.active_slots()
                       if s.kind == "video" and not s.track.paused and s.track.keyframes_only is not None})

    # ------------------------------------------------------------------ negotiation

    def need_offer(self) -> None:
        if not self._offer_needed:
            self._offer_needed = True
            self._queue.put_nowait(("offer", None))

    def answer(self, sdp: str) -> None:
        self._queue.put_nowait(("answer", sdp))

    def candidate(self, candidate: dict[str, Any] | None) -> None:
        self._queue.put_nowait(("candidate", candidate))

    async def _work(self) -> None:
        while True:
            kind, value = await self._queue.get()
            try:
                if kind == "offer":
                    await self._offer()
                elif kind == "answer":
                    await self._on_answer(value)
                elif kind == "candidate":
                    await self._on_candidate(value)
            except Exception as exc:  # a bad answer or candidate must not stop the link's worker
                if kind == "offer":
                    log.exception("relay link %s: offer failed", self.participant)
                    continue
                # What the participant sent does not parse or fit the relay's offer: say so to
                # it (its socket stays open and it may answer again); nobody else is affected.
                log.warning("relay link %s: %s refused: %r", self.participant, kind, exc)
                self._send(p.Error(code="bad_message", message=BAD_SIGNAL[kind], ref=kind))

    async def _offer(self) -> None:
        if self._closed or not self._offer_needed:
            return
        if self.pc.signalingState != "stable":
            return  # offered already; the answer re-queues the offer
        self._offer_needed = False
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.offers += 1
        self._send(self.tracks_message())
        self._send(p.RelayedOffer(sender=RELAY_ID, sender_session=self.server.session,
                                  sdp=self.server.advertised(self.pc.localDescription.sdp)))

    async def _on_answer(self, sdp: str) -> None:
        if self.pc.signalingState != "have-local-offer":
            return
        self._follow_audio_choice(sdp)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        if self._offer_needed:
            self._queue.put_nowait(("offer", None))

    def _follow_audio_choice(self, answer: str) -> None:
        """Send each audio m-line the codec the participant put first: RED to a browser that
        prefers it, Opus otherwise (aiortc would order them by the relay's own offer)."""
        by_mid = {t.mid: t for t in self.pc.getTransceivers() if t.mid is not None}
        for media in aiortc_sdp.SessionDescription.parse(answer).media:
            transceiver = by_mid.get(media.rtp.muxId)
            if media.kind == "audio" and transceiver is not None and transceiver.sender.track is not None:
                pin_codec(transceiver, "audio", red_first=answer_prefers_red(media))

    async def _on_candidate(self, data: dict[str, Any] | None) -> None:
        candidate = parse_candidate(data)  # first, so that a malformed one is refused in any state
        if self.pc.remoteDescription is None:
            return
        if candidate is not None and candidate.protocol.lower() == "udp":  # the relay's ICE is UDP only
            await self.pc.addIceCandidate(candidate)

    def resend(self) -> None:
        """The participant is back on a new socket with the same session: what it may have
        missed while its socket was gone (an offer, the track list) goes again."""
        self.server.tracks_changed(self)
        if self.pc.signalingState == "have-local-offer" and self.pc.localDescription is not None:
            self.server.send(self.participant, p.RelayedOffer(sender=RELAY_ID, sender_session=self.server.session,
                                                              sdp=self.server.advertised(self.pc.localDescription.sdp)))

    def tracks_message(self) -> p.RelayTracks:
        upload = {kind: t.mid for kind, t in self.upload.items() if t.mid is not None}
        tracks = [p.RelayTrack(mid=s.transceiver.mid, participant=s.publisher, kind=s.kind)
                  for s in self.active_slots() if s.transceiver.mid is not None]
        return p.RelayTracks(upload=upload, tracks=tracks, video_paused=self.video_paused(),
                             video_reduced=self.video_reduced(), link=self.number)

    async def close(self) -> None:
        self._closed = True
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker
        for slot in self.slots:
            slot.track.stop()
        await self.pc.close()


class RelayServer:
    """The relay of one room. ``send(participant, message)`` delivers signalling."""

    def __init__(self, send: Callable[[str, p.Message], None], *, ice_servers: list[RTCIceServer] | None = None,
                 policy: DownlinkPolicy | None = DEFAULT_POLICY, nat: NatMapping | None = None) -> None:
        check_aiortc_internals()
        register_red()
        self.send = send
        self.ice_servers = ice_servers or []  # never aiortc's default public STUN server
        self.policy = policy
        #: The public address members reach this machine at (RELAY_PUBLIC_IP), if NATed.
        self.nat = nat
        self.session = secrets.token_hex(4)
        self.links: dict[str, RelayLink] = {}
        #: How many links this relay has made: each link's number (``relay_tracks.link``).
        self.links_made = 0
        self.publishers: dict[str, Publisher] = {}
        #: Who data-saver subscribers see: set by the room (floor, speakers, hall).
        self.floor: str | None = None
        self.speakers: list[str] = []  # most recent first
        self._tasks: set[asyncio.Task[RelayLink]] = set()
        #: Per publisher: (packets received, packets lost) at the last report.
        self._uplink_counts: dict[tuple[str, str], tuple[int, int]] = {}
        #: Per publisher: its uplink loss in the last report (per cent).
        self.last_uplink_loss: dict[str, float] = {}
        self._reporter = asyncio.ensure_future(self._report_uplink_loss())

    # ------------------------------------------------------------------ participants

    def warm(self, participant: str, *, red: bool, deliver: Callable[[p.Message], None]) -> RelayLink:
        """A link for a member still on the join screen (issue 15): offered at once with the two
        upload m-lines only, so that ICE and DTLS are done by the time the member clicks. It
        is not in ``links``: nothing is forwarded to or from it, nobody learns of it, and
        its first frames (the page sends none before joining) are held. ``add`` adopts it
        when the member enters; the socket's end closes it otherwise."""
        link = RelayLink(self, participant, "", red=red, deliver=deliver)
        link.need_offer()
        return link

    async def add(self, participant: str, session: str, *, red: bool = False,
                  warm: RelayLink | None = None, audio: bool = True) -> RelayLink:
        """A participant (re)entered in ``session``: a new link, offered at once. ``red``: the
        participant takes RED audio (it is offered first on its upload m-line). ``warm``: the
        link this member's page opened from the join screen (``warm``), adopted instead of a
        new one when it is still up: its answer already came, so the offer that adds the
        others' tracks is a renegotiation on a connected transport. ``audio``: the participant
        enters with a microphone (see ``RelayLink.adopt``)."""
        await self.remove(participant)
        adopted = warm is not None and warm.server is self and warm.usable()
        if warm is not None and not adopted:
            await warm.close()
        link = warm if adopted and warm is not None else RelayLink(self, participant, session, red=red)
        self.links[participant] = link
        for publisher in self.publishers.values():
            if publisher.participant != participant:
                for kind in KINDS:
                    if kind in publisher.sources:
                        link.add_slot(publisher, kind)
        if adopted:
            link.adopt(session, audio=audio)  # in ``links`` first: publishing looks it up there
        link.need_offer()
        return link

    async def remove(self, participant: str) -> None:
        link = self.links.pop(participant, None)
        publisher = self.publishers.pop(participant, None)
        if publisher is not None:
            for other in self.links.values():
                other.drop_publisher(participant, publisher.session)
        if link is not None:
            await link.close()

    def publish(self, participant: str, session: str, kind: str, source: ForwardedSource) -> None:
        link = self.links.get(participant)
        if link is None or link.session != session:
            return
        publisher = self.publishers.get(participant)
        if publisher is None or publisher.session != session:
            if publisher is not None:
                for other in self.links.values():
                    other.drop_publisher(participant, publisher.session)
            publisher = Publisher(participant, session)
            self.publishers[participant] = publisher
        publisher.sources[kind] = source
        for other in self.links.values():
            if other.participant != participant:
                other.add_slot(publisher, kind)

    # ------------------------------------------------------------------ signalling from participants

    def signal(self, participant: str, message: p.Message) -> None:
        link = self.links.get(participant)
        if link is None:
            return
        match message:
            case p.RelayedAnswer(sender_session=session, sdp=sdp) if session == link.session:
                link.answer(sdp)
            case p.RelayedCandidate(sender_session=session, candidate=candidate) if session == link.session:
                link.candidate(candidate)
            case p.RelayedRenegotiate(sender_session=session) if session == link.session:
                # The participant's connection is stuck: start over with a new one.
                task = asyncio.ensure_future(self.add(participant, session, red=link.red))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            case _:
                pass  # offers from participants are not accepted: the relay always offers

    # ------------------------------------------------------------------ what each subscriber receives

    def set_preferences(self, participant: str, *, audio_only: bool | None = None,
                        data_saver: bool | None = None) -> None:
        link = self.links.get(participant)
        if link is None:
            return
        if audio_only is not None:
            link.audio_only = audio_only
        if data_saver is not None:
            link.data_saver = data_saver
        link.apply_video_pauses()
        self.tracks_changed(link)

    def set_focus(self, *, floor: str | None, speakers: list[str]) -> None:
        if floor == self.floor and speakers[:1] == self.speakers[:1]:
            self.speakers = speakers
            return
        self.floor, self.speakers = floor, speakers
        for link in self.links.values():
            if link.data_saver or link.level >= VideoLevel.FOCUS:
                link.apply_video_pauses()
                self.tracks_changed(link)

    def focus_for(self, participant: str) -> str | None:
        """The one video a data-saver subscriber receives."""
        publishing = [pid for pid, pub in self.publishers.items() if "video" in pub.sources and pid != participant]
        for candidate in (self.floor, *self.speakers, "hall"):
            if candidate in publishing:
                return candidate
        return publishing[0] if publishing else None

    def advertised(self, sdp: str) -> str:
        """The relay's offer as members get it: with the public address when behind a NAT."""
        return self.nat.rewrite(sdp) if self.nat is not None else sdp

    def tracks_changed(self, link: RelayLink) -> None:
        if link.pc.localDescription is not None:
            self.send(link.participant, link.tracks_message())

    # ------------------------------------------------------------------ honest indicators

    def uplink_loss(self) -> dict[str, float]:
        """Each publisher's packets lost on the way here since the last call, in per cent.

        Subscribers' own statistics see only the relay's leg to them; a member whose uplink
        loses 5 % would show 0 % everywhere else. Audio counts from the pass-through's
        sequence gaps, video from the receiver's statistics (before NACK repairs)."""
        out: dict[str, float] = {}
        for pid, publisher in self.publishers.items():
            received = lost = 0
            for kind, source in publisher.sources.items():
                r, l_ = _receiver_counts(source)
                key = (pid, kind)
                r0, l0 = self._uplink_counts.get(key, (0, 0))
                if r < r0 or l_ < l0:  # a new session's source
                    r0 = l0 = 0
                self._uplink_counts[key] = (r, l_)
                received += r - r0
                lost += l_ - l0
            if received + lost > 0:
                out[pid] = round(100 * lost / (received + lost), 1)
        return out

    async def _report_uplink_loss(self, interval: float = 2.0) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                loss = self.uplink_loss()
                self.last_uplink_loss = loss
                if loss:
                    message = p.UplinkLoss(loss_pct=loss)
                    for participant in list(self.links):
                        self.send(participant, message)
            except Exception:  # an indicator must never stop the relay
                log.exception("uplink loss report failed")

    async def close(self) -> None:
        self._reporter.cancel()
        for participant in list(self.links):
            await self.remove(participant)
