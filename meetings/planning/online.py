"""Who may take part in a meeting remotely (Hướng dẫn 03-HD/TW pilot; decision 5).

Remote participation needs three things: the cell is approved for the online pilot on the
meeting's date, the meeting has remote participation open, and the member is among those it
is open to — by default members with an away period (đi làm ăn xa) covering the date, plus
anyone the secretary added. The cell's secretaries always may join (to run the room and to
connect the hall device). Every refusal carries the reason shown to the member.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from ..organisation.eligibility import Electorate, Eligibility, electorate
from .meetings import Meeting, MeetingStatus, pilot_approval, remote_invites


@dataclass(frozen=True)
class RemoteDecision:
    allowed: bool
    reason: str
    #: The member's standing in the cell on the meeting's date, when they have one.
    eligibility: Eligibility | None = None
    #: Joining as the chair (secretary of the cell).
    chair: bool = False


@dataclass(frozen=True)
class RemoteFacts:
    """What the rule reads about a meeting, the same for every member: the cell's electorate on
    the meeting's day, the pilot approval, the remote list. Immutable, so the join path may
    keep it for every member of a meeting while nothing it was read from changes
    (``proceedings.access_epoch``)."""

    electorate: Electorate
    pilot_approved: bool
    invited: frozenset[int]


def remote_facts(session: Session, meeting: Meeting) -> RemoteFacts:
    on = meeting.local_date
    return RemoteFacts(electorate(session, meeting.cell_id, on), pilot_approval(session, meeting.cell_id, on) is not None,
                       frozenset(remote_invites(session, meeting.id)))


def remote_decision(session: Session, meeting: Meeting, member_id: int | None, *, is_secretary: bool,
                    facts: RemoteFacts | None = None) -> RemoteDecision:
    """May this member (or the cell's secretary) join the meeting's room from afar?
    ``facts``: the meeting's, when already read (``remote_facts``)."""
    facts = facts or remote_facts(session, meeting)
    entry = facts.electorate.get(member_id) if member_id is not None else None
    if meeting.status == MeetingStatus.CANCELLED:
        return RemoteDecision(False, "Cuộc họp đã bị hủy.", entry)
    if meeting.status == MeetingStatus.CLOSED:
        return RemoteDecision(False, "Cuộc họp đã kết thúc.", entry)
    if is_secretary:
        return RemoteDecision(True, "Bí thư chi bộ điều hành cuộc họp.", entry, chair=True)
    if entry is None:
        return RemoteDecision(False, "Bạn không sinh hoạt tại chi bộ này nên không thể tham gia cuộc họp.")
    if not entry.expected:
        return RemoteDecision(False, f"Bạn đang trong thời gian “{entry.standing.label}”, không tham dự cuộc họp này.", entry)
    if not facts.pilot_approved:
        return RemoteDecision(
            False,
            "Chi bộ chưa được cấp ủy cấp trên phê duyệt thí điểm sinh hoạt trực tuyến "
            "(Hướng dẫn 03-HD/TW), nên chưa thể tham gia từ xa.",
            entry,
        )
    if not meeting.remote_open:
        return RemoteDecision(False, "Cuộc họp này không mở tham gia trực tuyến.", entry)
    if not (entry.away or member_id in facts.invited):
        return RemoteDecision(
            False,
            "Bạn không có trong danh sách tham gia trực tuyến của cuộc họp này. "
            "Hãy dự họp trực tiếp, hoặc gửi đơn xin vắng, hoặc đề nghị bí thư bổ sung.",
            entry,
        )
    return RemoteDecision(True, "Được tham gia trực tuyến.", entry)
