"""Votes (biểu quyết) during a meeting: open (named) votes and secret ballots.

Only members who may vote (official, not transferred out or suspended; exempt ones who
attend) and who are present vote, once. Online and in-person votes form one tally: online
voters vote in the room, the secretary enters the in-person count (or records named in-person
votes). When the vote closes the tally, the denominator D and pass/fail are fixed
(decision 7: agree > D / 2) and the motion can no longer change (a database trigger refuses
updates to a closed motion).

A secret ballot (bỏ phiếu kín) must stay secret from whoever holds the database, its backups
and logs (docs/votes.md has the threat model). So an online choice is never written while the
vote runs: the room holds the choices in memory in a ``BallotBox`` (counts only, no order)
and, per ballot, the database learns only that one more ballot is in the box
(``Motion.ballots_in_box``) — not from whom, not which choice. When the vote closes, one
transaction writes the counts (``SecretTally``) and who voted (``BallotCast``, in member-id
order, no ids or times), so no row, row version, transaction id or log line links a voter
to a choice. If the box is lost before that (the server process died), the ballot is void:
it is reopened at once, everyone is told, and the loss is in the audit log
(``void_ballot``).
"""

from __future__ import annotations

import datetime as dt
import enum
import secrets
from dataclasses import dataclass

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Integer,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..foundation import audit, events
from ..foundation.actors import Actor
from ..foundation.base import Base, UTCDateTime, rows_changed, utcnow, value_enum
from ..foundation.errors import NotFound, ValidationError
from ..foundation.text import clean_text
from ..organisation.eligibility import Standing, passes
from ..planning.meetings import Meeting, MeetingEnded, MeetingStatus
from . import chat as chat_log
from .attendance import (
    AttendanceRecord,
    AttendanceStatus,
    counts,
    record_of,
    refresh_online,
    roster,
)
from .presence import PresenceInterval


class VoteKind(enum.StrEnum):
    OPEN = "open"
    SECRET = "secret"

    @property
    def label(self) -> str:
        return {"open": "Biểu quyết công khai (giơ tay)", "secret": "Bỏ phiếu kín"}[self.value]


class Choice(enum.StrEnum):
    AGREE = "agree"
    DISAGREE = "disagree"
    ABSTAIN = "abstain"

    @property
    def label(self) -> str:
        return {"agree": "Tán thành", "disagree": "Không tán thành", "abstain": "Không biểu quyết"}[self.value]


class MotionStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    #: A secret ballot whose ballot box was lost before it closed (see ``void_ballot``).
    VOID = "void"


class Motion(Base):
    __tablename__ = "motions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"), index=True)
    title: Mapped[str] = mapped_column(String(500))
    kind: Mapped[VoteKind] = mapped_column(value_enum(VoteKind))
    status: Mapped[MotionStatus] = mapped_column(value_enum(MotionStatus), default=MotionStatus.OPEN)
    opened_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Counts entered by the secretary for votes taken in the hall (hands or paper ballots).
    in_person_agree: Mapped[int] = mapped_column(Integer, default=0)
    in_person_disagree: Mapped[int] = mapped_column(Integer, default=0)
    in_person_abstain: Mapped[int] = mapped_column(Integer, default=0)
    in_person_voters: Mapped[int] = mapped_column(Integer, default=0)
    # Fixed when the vote closes.
    denominator: Mapped[int | None] = mapped_column(Integer)
    agree: Mapped[int | None] = mapped_column(Integer)
    disagree: Mapped[int | None] = mapped_column(Integer)
    abstain: Mapped[int | None] = mapped_column(Integer)
    voters_present: Mapped[int | None] = mapped_column(Integer)
    passed: Mapped[bool | None] = mapped_column(Boolean)
    # Secret ballots: the random token of the ballot box that holds the online choices while
    # the vote runs (the room's, in one server process's memory), and how many ballots it has
    # taken — never who cast them or what they chose.
    ballot_box: Mapped[str | None] = mapped_column(String(32))
    ballots_in_box: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    @property
    def votes_needed(self) -> int | None:
        return None if self.denominator is None else self.denominator // 2 + 1


class OpenVote(Base):
    """A named vote (open votes only)."""

    __tablename__ = "open_votes"
    __table_args__ = (UniqueConstraint("motion_id", "member_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    motion_id: Mapped[int] = mapped_column(ForeignKey("motions.id"), index=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))
    choice: Mapped[Choice] = mapped_column(value_enum(Choice))
    #: "online" (in the room) or "in_person" (recorded by the secretary)
    channel: Mapped[str] = mapped_column(String(10))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class BallotCast(Base):
    """Who voted in a secret ballot — and nothing about what they chose, or when: written
    all at once when the vote closes, in member-id order."""

    __tablename__ = "ballots_cast"
    __table_args__ = (PrimaryKeyConstraint("motion_id", "member_id"),)

    motion_id: Mapped[int] = mapped_column(ForeignKey("motions.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))


class SecretTally(Base):
    """The count of one choice among a secret ballot's online ballots, written when it closes."""

    __tablename__ = "secret_tallies"
    __table_args__ = (PrimaryKeyConstraint("motion_id", "choice"),)

    motion_id: Mapped[int] = mapped_column(ForeignKey("motions.id"))
    choice: Mapped[Choice] = mapped_column(value_enum(Choice))
    count: Mapped[int] = mapped_column(Integer, default=0)


# --------------------------------------------------------------------------- the ballot box


class BallotBox:
    """The online ballots of one secret ballot while it runs, held in memory by the room.

    It keeps who has voted (to refuse a second ballot) and a count per choice — no list, so
    not even this process's memory keeps the order in which choices came. Nothing here is
    written until ``close_motion``; losing the box (the process died) voids the ballot.
    """

    def __init__(self, motion_id: int) -> None:
        self.motion_id = motion_id
        #: Names this box in ``Motion.ballot_box``: ballots are counted in the database only
        #: while the motion names this box.
        self.token = secrets.token_hex(16)
        self._voters: set[int] = set()
        self._counts: dict[Choice, int] = {c: 0 for c in Choice}

    def __contains__(self, member_id: object) -> bool:
        return member_id in self._voters

    def __len__(self) -> int:
        return len(self._voters)

    def put(self, member_id: int, choice: Choice) -> None:
        if member_id in self._voters:
            raise ValidationError(ALREADY_VOTED)
        self._voters.add(member_id)
        self._counts[choice] += 1

    def voters(self) -> list[int]:
        """Who voted, in member-id order (the order ballots came in is not kept)."""
        return sorted(self._voters)

    def counts(self) -> dict[Choice, int]:
        return dict(self._counts)


class BallotsLost(ValidationError):
    """The secret ballot's box is gone (its server process died or lost the room) while it held
    ballots: they cannot be counted, so the ballot must be voided and run again."""

    def __init__(self) -> None:
        super().__init__("Hòm phiếu kín trực tuyến bị mất do sự cố máy chủ: cuộc bỏ phiếu này bị hủy và "
                         "được tổ chức lại, xin các đồng chí bỏ phiếu lại.")


ALREADY_VOTED = "Đồng chí đã biểu quyết nội dung này; mỗi người chỉ biểu quyết một lần."


# --------------------------------------------------------------------------- operations


def get_motion(session: Session, motion_id: int) -> Motion:
    motion = session.get(Motion, motion_id)
    if motion is None:
        raise NotFound("Không tìm thấy nội dung biểu quyết.")
    return motion


def motions_of(session: Session, meeting_id: int) -> list[Motion]:
    return list(session.scalars(select(Motion).where(Motion.meeting_id == meeting_id).order_by(Motion.id)))


def open_motion(session: Session, actor: Actor, meeting: Meeting, title: str, kind: VoteKind | str,
                now: dt.datetime, *, reopens: Motion | None = None) -> Motion:
    if meeting.status != MeetingStatus.OPEN:
        raise ValidationError("Chỉ biểu quyết khi cuộc họp đang diễn ra.")
    text = clean_text(title)
    if not text:
        raise ValidationError("Hãy ghi nội dung biểu quyết.")
    try:
        kind = VoteKind(kind)
    except ValueError:
        raise ValidationError("Hình thức biểu quyết không hợp lệ.") from None
    if session.scalar(select(Motion.id).where(Motion.meeting_id == meeting.id, Motion.status == MotionStatus.OPEN)):
        raise ValidationError("Đang có một nội dung biểu quyết chưa kết thúc.")
    motion = Motion(meeting_id=meeting.id, title=text[:500], kind=kind, opened_at=now, opened_by_id=actor.account_id,
                    ballots_in_box=0)
    session.add(motion)
    session.flush()
    after: dict[str, object] = {"title": motion.title, "kind": kind.value}
    if reopens is not None:
        after["reopens"] = reopens.id
    audit.record(session, actor, "vote.open", motion, None, after, organisation_id=meeting.cell_id)
    session.flush()
    return motion


def _present(session: Session, meeting: Meeting, member_id: int, status: AttendanceStatus) -> bool:
    """Marked present, or connected to the room right now."""
    if status == AttendanceStatus.PRESENT:
        return True
    return session.scalar(
        select(PresenceInterval.id).where(PresenceInterval.meeting_id == meeting.id,
                                          PresenceInterval.member_id == member_id,
                                          PresenceInterval.left_at.is_(None))
    ) is not None


def check_voter(session: Session, meeting: Meeting, motion: Motion, member_id: int,
                box: BallotBox | None = None) -> None:
    """Raise ValidationError with the reason a member may not vote on ``motion`` now. For a
    running secret ballot, who has voted is known only to its ``box``."""
    if motion.status != MotionStatus.OPEN:
        raise ValidationError("Cuộc biểu quyết này đã kết thúc.")
    record = record_of(session, meeting, member_id)
    if not record.may_vote:
        if record.standing == Standing.PROBATIONARY:
            raise ValidationError("Đảng viên dự bị không có quyền biểu quyết (Điều lệ Đảng, Điều 3).")
        if record.standing == Standing.ATTACHED:
            raise ValidationError("Đảng viên sinh hoạt tạm thời không biểu quyết tại chi bộ nơi sinh hoạt tạm thời.")
        raise ValidationError(f"{record.standing.label}: không biểu quyết tại cuộc họp này.")
    if not _present(session, meeting, member_id, record.status):
        raise ValidationError("Chỉ đảng viên có mặt (trực tiếp hoặc trực tuyến) mới biểu quyết.")
    voted = (
        box is not None and member_id in box
        if motion.kind == VoteKind.SECRET
        else session.scalar(select(OpenVote.id).where(OpenVote.motion_id == motion.id,
                                                      OpenVote.member_id == member_id)) is not None
    )
    if voted:
        raise ValidationError(ALREADY_VOTED)


def _parse_choice(choice: Choice | str) -> Choice:
    try:
        return Choice(choice)
    except ValueError:
        raise ValidationError("Lựa chọn không hợp lệ.") from None


def accept_ballot(session: Session, meeting: Meeting, motion: Motion, box: BallotBox, member_id: int) -> None:
    """Check the voter and count one more ballot in ``box`` — durably, but without the voter
    or the choice: the database learns only that the box holds one more ballot.

    The caller puts the choice in the box once this transaction has committed. The box must
    be the motion's: the first ballot makes it so when the motion has no box, or an empty
    one (its room was lost before anyone voted); otherwise the motion's ballots are in a
    box that is gone, and ``BallotsLost`` says so.
    """
    if motion.kind != VoteKind.SECRET or box.motion_id != motion.id:
        raise ValidationError("Hòm phiếu không thuộc cuộc bỏ phiếu kín này.")
    check_voter(session, meeting, motion, member_id, box)
    if motion.ballot_box != box.token:
        taken = rows_changed(session,
            update(Motion).where(Motion.id == motion.id, Motion.status == MotionStatus.OPEN,
                                 or_(Motion.ballot_box.is_(None), Motion.ballots_in_box == 0))
            .values(ballot_box=box.token).execution_options(synchronize_session=False))
        if taken != 1:
            raise BallotsLost()
    counted = rows_changed(session,
        update(Motion).where(Motion.id == motion.id, Motion.status == MotionStatus.OPEN,
                             Motion.ballot_box == box.token, Motion.ballots_in_box == len(box))
        .values(ballots_in_box=Motion.ballots_in_box + 1).execution_options(synchronize_session=False))
    if counted != 1:
        raise BallotsLost()
    session.refresh(motion)


def cast(session: Session, meeting: Meeting, motion: Motion, member_id: int, choice: Choice | str,
         *, channel: str = "online", now: dt.datetime, box: BallotBox | None = None) -> None:
    """Record a vote. Open votes are stored by name. Secret ballots are only ever cast online,
    into the room's ``box`` (``accept_ballot``); here the choice goes into the box at once,
    before the caller commits (the room itself waits for the commit)."""
    choice = _parse_choice(choice)
    if motion.meeting_id != meeting.id:
        raise NotFound("Không tìm thấy nội dung biểu quyết.")
    if motion.kind == VoteKind.SECRET:
        if box is None:
            raise ValidationError("Phiếu kín chỉ bỏ trong phòng họp trực tuyến; phiếu tại hội trường được kiểm "
                                  "và nhập tổng số.")
        accept_ballot(session, meeting, motion, box, member_id)
        box.put(member_id, choice)
        return
    check_voter(session, meeting, motion, member_id)
    session.add(OpenVote(motion_id=motion.id, member_id=member_id, choice=choice, channel=channel, at=now))
    session.flush()


def _in_hall(session: Session, meeting: Meeting, online_voters: set[int]) -> list[AttendanceRecord]:
    """Members who may vote, marked present in the hall, and did not vote online."""
    return [r for r in roster(session, meeting) if r.may_vote and r.status == AttendanceStatus.PRESENT
            and r.mode is not None and r.mode.value == "in_person" and r.member_id not in online_voters]


def _check_hall_count(total: int, in_hall: list[AttendanceRecord]) -> None:
    if total > len(in_hall):
        raise ValidationError(
            f"Tổng số phiếu tại hội trường ({total}) vượt số đảng viên có quyền biểu quyết có mặt trực tiếp "
            f"({len(in_hall)}).")


def set_in_person_counts(session: Session, actor: Actor, meeting: Meeting, motion: Motion, *, agree: int,
                         disagree: int, abstain: int) -> None:
    """The count of votes taken in the hall (hands raised, or paper ballots counted). While a
    secret ballot runs, who voted online is known only to the room, so members of the hall
    who also voted online are taken out when the vote closes (``close_motion``)."""
    if motion.status != MotionStatus.OPEN:
        raise ValidationError("Cuộc biểu quyết này đã kết thúc.")
    if min(agree, disagree, abstain) < 0:
        raise ValidationError("Số phiếu không được âm.")
    total = agree + disagree + abstain
    _check_hall_count(total, _in_hall(session, meeting, voter_ids(session, motion)))
    before = {"agree": motion.in_person_agree, "disagree": motion.in_person_disagree,
              "abstain": motion.in_person_abstain}
    motion.in_person_agree, motion.in_person_disagree, motion.in_person_abstain = agree, disagree, abstain
    motion.in_person_voters = total
    session.flush()
    audit.record(session, actor, "vote.in_person", motion, before,
                 {"agree": agree, "disagree": disagree, "abstain": abstain}, organisation_id=meeting.cell_id)


def voter_ids(session: Session, motion: Motion) -> set[int]:
    """Who voted online (or by name in the hall). Empty for a secret ballot that is still
    running: only its ballot box knows."""
    if motion.kind == VoteKind.SECRET:
        return set(session.scalars(select(BallotCast.member_id).where(BallotCast.motion_id == motion.id)))
    return set(session.scalars(select(OpenVote.member_id).where(OpenVote.motion_id == motion.id)))


def online_voted(session: Session, motion: Motion) -> int:
    """How many have voted online (for a running secret ballot: the ballots in its box)."""
    if motion.kind == VoteKind.SECRET and motion.status == MotionStatus.OPEN:
        return motion.ballots_in_box
    return len(voter_ids(session, motion))


@dataclass(frozen=True)
class Tally:
    agree: int
    disagree: int
    abstain: int
    voted: int

    @property
    def total(self) -> int:
        return self.agree + self.disagree + self.abstain


def tally(session: Session, motion: Motion) -> Tally:
    """Online and in-person votes together. A running secret ballot's online choices are in
    its box, not here: until it closes only the hall's count shows."""
    if motion.kind == VoteKind.SECRET:
        found = {t.choice: t.count for t in session.scalars(select(SecretTally).where(SecretTally.motion_id == motion.id))}
    else:
        found = {c: 0 for c in Choice}
        for vote in session.scalars(select(OpenVote).where(OpenVote.motion_id == motion.id)):
            found[vote.choice] = found.get(vote.choice, 0) + 1
    return Tally(
        agree=found.get(Choice.AGREE, 0) + motion.in_person_agree,
        disagree=found.get(Choice.DISAGREE, 0) + motion.in_person_disagree,
        abstain=found.get(Choice.ABSTAIN, 0) + motion.in_person_abstain,
        voted=online_voted(session, motion) + motion.in_person_voters,
    )


def _empty_the_box(session: Session, meeting: Meeting, motion: Motion, box: BallotBox | None) -> None:
    """Write a secret ballot's online ballots: the counts and who voted, in one go.

    The motion is claimed first with a compare-and-set on the number of ballots the box
    holds, so a ballot counted elsewhere (a box this process does not hold) is never
    silently left out: ``BallotsLost``.
    """
    held = box if box is not None and box.motion_id == motion.id else None
    taken = len(held) if held is not None else 0
    voters = held.voters() if held is not None else []
    # Checked before the claim, so that a refused close leaves the motion as it was.
    _check_hall_count(motion.in_person_voters, _in_hall(session, meeting, set(voters)))
    claim = update(Motion).where(Motion.id == motion.id, Motion.status == MotionStatus.OPEN,
                                 Motion.ballots_in_box == taken)
    if taken:
        assert held is not None
        claim = claim.where(Motion.ballot_box == held.token)
    if rows_changed(session, claim.values(ballot_box=None).execution_options(synchronize_session=False)) != 1:
        session.refresh(motion)
        if motion.status != MotionStatus.OPEN:
            raise ValidationError("Cuộc biểu quyết này đã kết thúc.")
        raise BallotsLost()
    session.refresh(motion)
    counts = held.counts() if held is not None else {c: 0 for c in Choice}
    session.add_all([BallotCast(motion_id=motion.id, member_id=member_id) for member_id in voters])
    session.add_all([SecretTally(motion_id=motion.id, choice=choice, count=counts[choice]) for choice in Choice])
    session.flush()


def close_motion(session: Session, actor: Actor, meeting: Meeting, motion: Motion, now: dt.datetime,
                 *, box: BallotBox | None = None) -> Motion:
    """Fix the tally, D and the result. After this the motion never changes. A secret ballot
    is closed with the ballot box that holds its online ballots (none when nobody voted
    online); raises ``BallotsLost`` when ballots were taken by a box that is gone."""
    if motion.status != MotionStatus.OPEN:
        raise ValidationError("Cuộc biểu quyết này đã kết thúc.")
    if motion.kind == VoteKind.SECRET:
        _empty_the_box(session, meeting, motion, box)
    result = tally(session, motion)
    c = counts(refresh_online(session, meeting, now))
    motion.agree, motion.disagree, motion.abstain = result.agree, result.disagree, result.abstain
    motion.voters_present = len(c.voters_present)
    motion.denominator = c.denominator
    motion.passed = passes(result.agree, c.denominator)
    motion.status = MotionStatus.CLOSED
    motion.closed_at = now
    session.flush()
    audit.record(session, actor, "vote.close", motion, None,
                 {"agree": motion.agree, "disagree": motion.disagree, "abstain": motion.abstain,
                  "denominator": motion.denominator, "passed": motion.passed}, organisation_id=meeting.cell_id)
    return motion


VOID_NOTICE = ("Sự cố máy chủ làm mất hòm phiếu kín trực tuyến của nội dung “{title}” ({lost} phiếu đã bỏ). "
               "Cuộc bỏ phiếu đó bị hủy{again}.")


@dataclass(frozen=True)
class Voided:
    motion: Motion
    #: The same question opened again (None when the meeting is over).
    reopened: Motion | None
    #: What everyone is told, as it stands in the meeting's chat.
    notice: chat_log.ChatMessage


def void_ballot(session: Session, actor: Actor, meeting: Meeting, motion: Motion, now: dt.datetime) -> Voided | None:
    """Void a secret ballot whose box was lost with ballots in it, and run it again.

    Its online choices are gone (they were never written, by design), so it cannot be
    counted; a ballot lost in silence would be worse. The voided motion stays, marked void,
    with how many ballots were lost, in the audit log and in the meeting's chat; while the
    meeting is open the same question is opened again at once. None when someone else
    already closed or voided it.
    """
    session.refresh(motion)
    lost = motion.ballots_in_box
    voided = rows_changed(session,
        update(Motion).where(Motion.id == motion.id, Motion.status == MotionStatus.OPEN)
        .values(status=MotionStatus.VOID, closed_at=now, ballot_box=None)
        .execution_options(synchronize_session=False))
    session.refresh(motion)
    if voided != 1:
        return None
    again = meeting.status == MeetingStatus.OPEN
    text = VOID_NOTICE.format(title=motion.title, lost=lost,
                              again=", nội dung được bỏ phiếu lại ngay, xin các đồng chí bỏ phiếu lại" if again
                              else " (cuộc họp đã kết thúc)")
    audit.record(session, actor, "vote.void", motion, None, {"ballots_lost": lost}, organisation_id=meeting.cell_id,
                 note=text)
    notice = chat_log.post(session, meeting.id, account_id=None, member_id=None, participant="system",
                           author_name="Hệ thống", text=text, at=now)
    reopened = open_motion(session, actor, meeting, motion.title, motion.kind, now, reopens=motion) if again else None
    return Voided(motion=motion, reopened=reopened, notice=notice)


def running_secret_ballot(session: Session, meeting_id: int) -> Motion | None:
    """The meeting's secret ballot that has online ballots in a box and is not closed yet."""
    return session.scalar(select(Motion).where(Motion.meeting_id == meeting_id, Motion.status == MotionStatus.OPEN,
                                               Motion.kind == VoteKind.SECRET, Motion.ballots_in_box > 0))


@events.subscribe(MeetingEnded)
def _refuse_to_end_during_a_secret_ballot(session: Session, event: MeetingEnded) -> None:
    """However a meeting is closed (the room's "Kết thúc cuộc họp", or its end recorded on the
    meeting page), not while a secret ballot holds online ballots: they live only in the
    room's box, and ending the room would void them. Raising rolls the closing back."""
    running = running_secret_ballot(session, event.meeting_id)
    if running is not None:
        raise ValidationError(f"Cuộc bỏ phiếu kín “{running.title}” đang diễn ra: hãy kết thúc biểu quyết "
                              "(kiểm phiếu) trước khi kết thúc cuộc họp.")


def lost_ballot(session: Session, meeting_id: int, box: BallotBox | None) -> Motion | None:
    """The meeting's running secret ballot when its ballots are in a box other than ``box``."""
    motion = running_secret_ballot(session, meeting_id)
    if motion is None:
        return None
    if box is not None and box.motion_id == motion.id and motion.ballot_box == box.token:
        return None
    return motion


def named_votes(session: Session, motion: Motion) -> list[OpenVote]:
    if motion.kind == VoteKind.SECRET:
        return []
    return list(session.scalars(select(OpenVote).where(OpenVote.motion_id == motion.id).order_by(OpenVote.id)))
