"""Who an account is in a meeting's room — decided here once, for the room page, the join-token
route and the WebSocket handshake (and the meeting and start pages' "Tham gia trực tuyến").

The decision, in order:

1. the meeting exists and the account reads it (its cell as of the meeting's day,
   ``planning.access.reads_meeting``) — otherwise a :class:`RoomRefusal` (the pages answer 404,
   so nobody learns which meetings exist elsewhere);
2. whether the account *chairs* the meeting: ``Scope.chairs`` — the cell's secretary or deputy,
   or an admin over it. This is the one meaning of "secretary" for the room;
3. remote participation (``planning.online.remote_decision``: pilot approval, the remote list,
   the member's standing on the day); the hall device is the chair's only;
4. a member the chair removed from the room stays out (a persisted presence event).

What the decision reads about the meeting itself, the same for every account (the electorate,
the pilot approval, the remote list, the removals: :class:`MeetingFacts`), may be handed in
already read: the join path keeps it per meeting while the access epoch stands
(``realtime.admission``), so that a rush of a cell's members reads the cell's roster once.

Whoever reads the meeting but may not join is an *observer*: the page shows them why
(:attr:`RoomAccess.reason`). :meth:`RoomAccess.refusal` turns "may not join (now)" into a
refusal with a machine code and the Vietnamese reason, for the token route and the socket.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..foundation.base import MAX_ID
from ..organisation.eligibility import Eligibility
from ..organisation.scoping import Scope
from ..planning.access import reads_meeting
from ..planning.meetings import Meeting, MeetingStatus
from ..planning.online import RemoteDecision, RemoteFacts, remote_decision, remote_facts
from .presence import PresenceEvent, PresenceEventKind

#: The devices a room knows: a member's own phone or computer, or the meeting hall's one.
DEVICES = ("member", "hall")

REMOVED_MESSAGE = "Bạn đã được mời ra khỏi phòng họp này."
OUTSIDE_MESSAGE = "Bạn không sinh hoạt tại chi bộ này nên không thể tham gia cuộc họp."
NOT_FOUND_MESSAGE = "Không tìm thấy cuộc họp."
HALL_MESSAGE = "Chỉ bí thư chi bộ mới kết nối được thiết bị hội trường."
BAD_DEVICE_MESSAGE = "Thiết bị không hợp lệ."
NOT_OPEN_MESSAGE = "Cuộc họp chưa bắt đầu. Trang sẽ tự vào phòng khi bí thư mở cuộc họp."


class RoomRole(enum.StrEnum):
    CHAIR = "chair"
    MEMBER = "member"
    HALL = "hall"
    #: Reads the meeting but may not join its room (the reason says why).
    OBSERVER = "observer"


@dataclass(frozen=True)
class RoomRefusal:
    """Why an account may not enter the room. ``code`` is the protocol's error code
    (``not_found``, ``not_allowed``, ``removed``, ``meeting_not_open``); ``reason`` is shown
    as is. ``hidden``: the web pages answer "not found", as for a meeting that does not exist."""

    code: str
    reason: str
    hidden: bool = False


@dataclass(frozen=True)
class RoomAccess:
    meeting: Meeting
    device: str
    role: RoomRole
    #: Runs the meeting (``Scope.chairs``), whatever the device.
    chair: bool
    #: Remote participation as decided for the member (the page shows its reason).
    decision: RemoteDecision
    reason: str
    removed: bool = False

    @property
    def entry(self) -> Eligibility | None:
        """The member's standing in the cell on the meeting's day, when they have one."""
        return self.decision.eligibility

    @property
    def may_join(self) -> bool:
        return self.refusal() is None

    def refusal(self, *, open_now: bool = False) -> RoomRefusal | None:
        """Why this account may not join the room, or None. ``open_now``: the socket joins
        only an open meeting; a token may be fetched while it is still scheduled."""
        if self.role is RoomRole.OBSERVER:
            return RoomRefusal("not_allowed", self.reason)
        if self.removed:
            return RoomRefusal("removed", REMOVED_MESSAGE)
        if open_now and self.meeting.status != MeetingStatus.OPEN:
            return RoomRefusal("meeting_not_open", NOT_OPEN_MESSAGE)
        return None


@dataclass(frozen=True)
class MeetingFacts:
    """What the decision reads about a meeting, the same for every account (immutable)."""

    remote: RemoteFacts
    #: Removed from the room by the chair: (device, member id; None for the hall device).
    removed: frozenset[tuple[str, int | None]]


def meeting_facts(session: Session, meeting: Meeting) -> MeetingFacts:
    removed = session.execute(select(PresenceEvent.device, PresenceEvent.member_id).where(
        PresenceEvent.meeting_id == meeting.id, PresenceEvent.kind == PresenceEventKind.REMOVED))
    return MeetingFacts(remote_facts(session, meeting),
                        frozenset((device, None if device == "hall" else member_id) for device, member_id in removed))


def room_access(session: Session, scope: Scope, meeting_id: int, device: str = "member", *,
                facts: Callable[[Session, Meeting], MeetingFacts] = meeting_facts) -> RoomAccess | RoomRefusal:
    """Who the account of ``scope`` is in the room of meeting ``meeting_id`` on ``device``.
    ``facts``: where the meeting's facts come from (read afresh, or kept by the caller)."""
    meeting = session.get(Meeting, meeting_id) if 0 < meeting_id <= MAX_ID else None
    if meeting is None:
        return RoomRefusal("not_found", NOT_FOUND_MESSAGE)
    if not reads_meeting(session, scope, meeting):
        return RoomRefusal("not_allowed", OUTSIDE_MESSAGE, hidden=True)
    chair = scope.chairs(meeting.cell_id)
    known = facts(session, meeting)
    decision = remote_decision(session, meeting, scope.member_id, is_secretary=chair, facts=known.remote)
    role, reason = _role(device, chair, decision)
    removed = role is not RoomRole.OBSERVER and _removed(known, scope.member_id, device)
    return RoomAccess(meeting=meeting, device=device, role=role, chair=chair, decision=decision, reason=reason,
                      removed=removed)


def _role(device: str, chair: bool, decision: RemoteDecision) -> tuple[RoomRole, str]:
    if device not in DEVICES:
        return RoomRole.OBSERVER, BAD_DEVICE_MESSAGE
    if not decision.allowed:
        return RoomRole.OBSERVER, decision.reason
    if device == "hall":
        return (RoomRole.HALL, decision.reason) if chair else (RoomRole.OBSERVER, HALL_MESSAGE)
    return (RoomRole.CHAIR if chair else RoomRole.MEMBER), decision.reason


def _removed(facts: MeetingFacts, member_id: int | None, device: str) -> bool:
    """The chair removed this participant (a member, or the hall device) from the room."""
    if device == "member" and member_id is None:
        return False  # an account without a member record is not kept out across restarts
    return (device, None if device == "hall" else member_id) in facts.removed
