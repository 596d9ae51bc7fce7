"""The room's media plane: which topology is in use, and the relay when there is one.

A room starts as a mesh (``topology.Mesh``). It moves to the server relay
(``topology.Relay`` + ``relay.server.RelayServer``) when more than ``relay_after`` participants
send video, or when a participant turns on data saver ("tiết kiệm dữ liệu"). The move is one
way for the life of the room: going back and forth would renegotiate everybody each time a
camera is turned on or off, and a relay that is already running costs little.

The switch renegotiates without dropping anyone: every participant gets ``topology`` with
its new peers (just the relay), the relay offers to each, and clients keep their direct
connections until the relay connection is up (make before break). Participants who enter
later are welcomed straight into the relay topology.

The room calls this object at a few points (entered, left, media changed, speaking, floor,
data saver, signalling addressed to the relay); it never needs to know whether a relay runs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from . import protocol as p
from .connection import Connection
from .relay.nat import NatMapping
from .relay.server import RelayLink, RelayServer
from .topology import RELAY_ID, Mesh, Relay, Topology, polite

if TYPE_CHECKING:
    from .rooms import Participant

log = logging.getLogger("chibo.realtime")


class RoomSide(Protocol):
    """What the media plane needs from its room."""

    meeting_id: int
    topology: Topology
    participants: dict[str, Participant]
    floor: str | None

    def present(self) -> list[str]: ...

    def send_to(self, pid: str, message: p.Message) -> None: ...


class MediaPlane:
    def __init__(self, room: RoomSide, *, relay_after: int = 4,
                 relay_factory: Callable[[Callable[[str, p.Message], None]], RelayServer] | None = None,
                 nat: NatMapping | None = None) -> None:
        self.room = room
        self.relay_after = relay_after
        self.nat = nat
        self._relay_factory = relay_factory
        self.relay: RelayServer | None = None
        self.data_saver: set[str] = set()
        self._speakers: list[str] = []

    # ------------------------------------------------------------------ topology

    def video_senders(self) -> int:
        return sum(1 for part in self.room.participants.values() if part.video and not part.audio_only)

    def _wanted(self) -> str | None:
        if self.data_saver:
            return "data_saver"
        if self.video_senders() > self.relay_after:
            return "video_senders"
        return None

    async def evaluate(self, *, exclude: str | None = None) -> None:
        """Move to the relay if the room now needs it. Called before a welcome (``exclude``:
        the newcomer, who learns the topology from its welcome and is linked after it), and
        when media state or data saver changes."""
        if isinstance(self.room.topology, Relay):
            return
        reason = self._wanted()
        if reason is None:
            return
        self.relay = self._make_relay()
        self.room.topology = Relay()
        self._focus()
        log.info("topology switch", extra={"fields": {"meeting": self.room.meeting_id, "to": "relay",
                                                       "reason": reason}})
        present = [pid for pid in self.room.present() if pid != exclude]
        for pid in present:
            self.room.send_to(pid, p.TopologyChanged(topology="relay", peers=[RELAY_ID], polite={RELAY_ID: True},
                                                     relay_session=self.relay.session, reason=reason))
        for pid in present:
            await self._link(pid)

    def _make_relay(self) -> RelayServer:
        if self._relay_factory is not None:
            return self._relay_factory(self.room.send_to)
        return RelayServer(self.room.send_to, nat=self.nat)

    @property
    def relay_session(self) -> str | None:
        return self.relay.session if self.relay is not None else None

    def polite_map(self, pid: str, present: list[str], peers: list[str]) -> dict[str, bool]:
        """For the welcome: whether ``pid`` is the polite side towards each possible peer."""
        others = peers if isinstance(self.room.topology, Relay) else present
        return {other: polite(pid, other) for other in others if other != pid}

    # ------------------------------------------------------------------ room events

    async def entered(self, part: Participant) -> None:
        """After the welcome: in relay mode, the relay offers to the new session."""
        await self._link(part.id)

    def warm(self, pid: str, *, red: bool, deliver: Callable[[p.Message], None]) -> RelayLink | None:
        """A relay link for a member on the join screen, when the room runs a relay (see
        ``RelayServer.warm``); None in a mesh, where nothing can be prepared without telling
        the other members."""
        if self.relay is None:
            return None
        return self.relay.warm(pid, red=red, deliver=deliver)

    async def _link(self, pid: str) -> None:
        part = self.room.participants.get(pid)
        if self.relay is None or part is None or part.conn is None:
            return
        # The link the member's page warmed from the join screen, if any (signalling.py).
        warm = part.conn.warm_link if isinstance(part.conn, Connection) else None
        if isinstance(part.conn, Connection):
            part.conn.warm_link = None
        link = self.relay.links.get(pid)
        if link is not None and link.session == part.session:
            if warm is not None:
                await warm.close()
            link.resend()  # the same session on a new socket: its relay connection stands
            return
        await self.relay.add(pid, part.session, red=part.identity.red, warm=warm, audio=part.audio)
        self.relay.set_preferences(pid, audio_only=part.audio_only, data_saver=pid in self.data_saver)

    async def left(self, pid: str) -> None:
        self.data_saver.discard(pid)
        if pid in self._speakers:
            self._speakers.remove(pid)
        if self.relay is not None:
            await self.relay.remove(pid)

    def _note_speaker(self, part: Participant) -> None:
        if part.speaking:  # the latest speaker first
            if part.id in self._speakers:
                self._speakers.remove(part.id)
            self._speakers.insert(0, part.id)

    async def changed(self, part: Participant) -> None:
        """Media state changed (camera, microphone, audio only)."""
        self._note_speaker(part)
        await self.evaluate()
        if self.relay is not None:
            self.relay.set_preferences(part.id, audio_only=part.audio_only)
            self._focus()

    def speaking_changed(self, part: Participant) -> None:
        """Only who speaks changed: the topology cannot change (that needs a camera or data
        saver change), but the relay's focus follows the active speaker."""
        if part.speaking:
            self._note_speaker(part)
            self._focus()

    def floor_changed(self) -> None:
        self._focus()

    async def set_data_saver(self, part: Participant, on: bool) -> None:
        if on:
            self.data_saver.add(part.id)
        else:
            self.data_saver.discard(part.id)
        await self.evaluate()
        if self.relay is not None:
            self.relay.set_preferences(part.id, data_saver=on)

    def _focus(self) -> None:
        if self.relay is not None:
            self.relay.set_focus(floor=self.room.floor, speakers=list(self._speakers))

    def signal(self, sender: str, message: Any) -> None:
        """Signalling addressed to the relay."""
        if self.relay is not None:
            self.relay.signal(sender, message)

    async def close(self) -> None:
        if self.relay is not None:
            await self.relay.close()
            self.relay = None
        self.room.topology = Mesh()
