"""Votes (biểu quyết) during a meeting: open (named) votes and secret ballots.

Only members who may vote (official, not transferred out or suspended; exempt ones who
attend) and who are present vote, once. Online and in-person votes form one tally: online
voters vote in the room, the secretary enters the in-person count (or records named in-person
votes). When the vote closes the tally, the denominator D and pass/fail are fixed
(decision 7: agree > D / 2) and the motion can no longer change (a database trigger refuses
updates to a closed motion).

A secret ballot keeps *who has voted* (``BallotCast``) apart from *what was chosen*
(``SecretTally``, counters only): no row links a voter to a choice, and no per-ballot row
exists whose order or timestamp could be matched against the voters.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Integer,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..foundation import audit
from ..foundation.actors import Actor
from ..foundation.base import Base, UTCDateTime, utcnow, value_enum
from ..foundation.errors import NotFound, ValidationError
from ..foundation.text import clean_text
from ..organisation.eligibility import Standing, passes
from ..planning.meetings import Meeting, MeetingStatus
from .attendance import AttendanceStatus, counts, record_of, refresh_online, roster
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
    """Who has voted in a secret ballot — and nothing about what they chose, or when."""

    __tablename__ = "ballots_cast"
    __table_args__ = (PrimaryKeyConstraint("motion_id", "member_id"),)

    motion_id: Mapped[int] = mapped_column(ForeignKey("motions.id"))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"))


class SecretTally(Base):
    """The running count of one choice in a secret ballot."""

    __tablename__ = "secret_tallies"
    __table_args__ = (PrimaryKeyConstraint("motion_id", "choice"),)

    motion_id: Mapped[int] = mapped_column(ForeignKey("motions.id"))
    choice: Mapped[Choice] = mapped_column(value_enum(Choice))
    count: Mapped[int] = mapped_column(Integer, default=0)


# --------------------------------------------------------------------------- operations


def get_motion(session: Session, motion_id: int) -> Motion:
    motion = session.get(Motion, motion_id)
    if motion is None:
        raise NotFound("Không tìm thấy nội dung biểu quyết.")
    return motion


def motions_of(session: Session, meeting_id: int) -> list[Motion]:
    return list(session.scalars(select(Motion).where(Motion.meeting_id == meeting_id).order_by(Motion.id)))


def open_motion(session: Session, actor: Actor, meeting: Meeting, title: str, kind: VoteKind | str,
                now: dt.datetime) -> Motion:
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
    motion = Motion(meeting_id=meeting.id, title=text[:500], kind=kind, opened_at=now, opened_by_id=actor.account_id)
    session.add(motion)
    session.flush()
    if kind == VoteKind.SECRET:
        for choice in Choice:
            session.add(SecretTally(motion_id=motion.id, choice=choice, count=0))
    audit.record(session, actor, "vote.open", motion, None, {"title": motion.title, "kind": kind.value},
                 organisation_id=meeting.cell_id)
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


def check_voter(session: Session, meeting: Meeting, motion: Motion, member_id: int) -> None:
    """Raise ValidationError with the reason a member may not vote on ``motion`` now."""
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
        session.scalar(select(BallotCast.member_id).where(BallotCast.motion_id == motion.id,
                                                          BallotCast.member_id == member_id))
        if motion.kind == VoteKind.SECRET
        else session.scalar(select(OpenVote.id).where(OpenVote.motion_id == motion.id, OpenVote.member_id == member_id))
    )
    if voted is not None:
        raise ValidationError("Đồng chí đã biểu quyết nội dung này; mỗi người chỉ biểu quyết một lần.")


def cast(session: Session, meeting: Meeting, motion: Motion, member_id: int, choice: Choice | str,
         *, channel: str = "online", now: dt.datetime) -> None:
    try:
        choice = Choice(choice)
    except ValueError:
        raise ValidationError("Lựa chọn không hợp lệ.") from None
    if motion.meeting_id != meeting.id:
        raise NotFound("Không tìm thấy nội dung biểu quyết.")
    check_voter(session, meeting, motion, member_id)
    if motion.kind == VoteKind.SECRET:
        session.add(BallotCast(motion_id=motion.id, member_id=member_id))
        session.execute(update(SecretTally).where(SecretTally.motion_id == motion.id, SecretTally.choice == choice)
                        .values(count=SecretTally.count + 1))
    else:
        session.add(OpenVote(motion_id=motion.id, member_id=member_id, choice=choice, channel=channel, at=now))
    session.flush()


def set_in_person_counts(session: Session, actor: Actor, meeting: Meeting, motion: Motion, *, agree: int,
                         disagree: int, abstain: int) -> None:
    """The count of votes taken in the hall (hands raised, or paper ballots counted)."""
    if motion.status != MotionStatus.OPEN:
        raise ValidationError("Cuộc biểu quyết này đã kết thúc.")
    if min(agree, disagree, abstain) < 0:
        raise ValidationError("Số phiếu không được âm.")
    records = roster(session, meeting)
    online_voters = voter_ids(session, motion)
    in_hall = [r for r in records if r.may_vote and r.status == AttendanceStatus.PRESENT
               and r.mode is not None and r.mode.value == "in_person" and r.member_id not in online_voters]
    total = agree + disagree + abstain
    if total > len(in_hall):
        raise ValidationError(
            f"Tổng số phiếu tại hội trường ({total}) vượt số đảng viên có quyền biểu quyết có mặt trực tiếp "
            f"({len(in_hall)}).")
    before = {"agree": motion.in_person_agree, "disagree": motion.in_person_disagree,
              "abstain": motion.in_person_abstain}
    motion.in_person_agree, motion.in_person_disagree, motion.in_person_abstain = agree, disagree, abstain
    motion.in_person_voters = total
    session.flush()
    audit.record(session, actor, "vote.in_person", motion, before,
                 {"agree": agree, "disagree": disagree, "abstain": abstain}, organisation_id=meeting.cell_id)


def voter_ids(session: Session, motion: Motion) -> set[int]:
    if motion.kind == VoteKind.SECRET:
        return set(session.scalars(select(BallotCast.member_id).where(BallotCast.motion_id == motion.id)))
    return set(session.scalars(select(OpenVote.member_id).where(OpenVote.motion_id == motion.id)))


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
    if motion.kind == VoteKind.SECRET:
        found = {t.choice: t.count for t in session.scalars(select(SecretTally).where(SecretTally.motion_id == motion.id))}
        voted = len(voter_ids(session, motion))
    else:
        found = {c: 0 for c in Choice}
        votes = list(session.scalars(select(OpenVote).where(OpenVote.motion_id == motion.id)))
        for vote in votes:
            found[vote.choice] = found.get(vote.choice, 0) + 1
        voted = len(votes)
    return Tally(
        agree=found.get(Choice.AGREE, 0) + motion.in_person_agree,
        disagree=found.get(Choice.DISAGREE, 0) + motion.in_person_disagree,
        abstain=found.get(Choice.ABSTAIN, 0) + motion.in_person_abstain,
        voted=voted + motion.in_person_voters,
    )


def close_motion(session: Session, actor: Actor, meeting: Meeting, motion: Motion, now: dt.datetime) -> Motion:
    """Fix the tally, D and the result. After this the motion never changes."""
    if motion.status != MotionStatus.OPEN:
        raise ValidationError("Cuộc biểu quyết này đã kết thúc.")
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


def named_votes(session: Session, motion: Motion) -> list[OpenVote]:
    if motion.kind == VoteKind.SECRET:
        return []
    return list(session.scalars(select(OpenVote).where(OpenVote.motion_id == motion.id).order_by(OpenVote.id)))
