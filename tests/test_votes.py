"""Votes: one tally for online and in-person voters; secret ballots keep no voter–choice link."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import DatabaseError

from meetings.foundation import audit
from meetings.foundation.errors import ValidationError
from meetings.proceedings import attendance as att
from meetings.proceedings import votes
from meetings.proceedings.attendance import AttendanceMode
from meetings.proceedings.votes import BallotCast, Choice, SecretTally
from tests.support.snapshot import unchanged
from tests.support.world import add_member
from tests.test_attendance import ACTOR, at, new_cell, open_meeting, present


@pytest.fixture
def hall(session):
    cell = new_cell(session)
    officials = [add_member(session, cell, f"Đảng Viên {i}") for i in range(6)]
    trainee = add_member(session, cell, "Dự Bị Mới", status="dự bị", admitted=__import__("datetime").date(2026, 6, 1))
    meeting = open_meeting(session, cell)
    for i, p in enumerate(officials):
        present(session, meeting, p, AttendanceMode.ONLINE if i < 3 else AttendanceMode.IN_PERSON)
    present(session, meeting, trainee)
    return meeting, officials, trainee


def test_secret_ballot_stores_no_link_between_voter_and_choice(session, hall):
    meeting, officials, trainee = hall
    motion = votes.open_motion(session, ACTOR, meeting, "Đề nghị công nhận đảng viên chính thức", "secret", at(20, 0))
    box = votes.BallotBox(motion.id)
    choices = {officials[2].id: "agree", officials[0].id: "disagree", officials[1].id: "agree"}
    for member_id, choice in choices.items():
        votes.cast(session, meeting, motion, member_id, choice, now=at(20, 1), box=box)
    # While the vote runs the database knows only how many ballots the room's box holds.
    assert motion.ballots_in_box == 3 and votes.tally(session, motion).voted == 3
    for table in ("ballots_cast", "secret_tallies", "open_votes"):
        assert session.execute(text(f"SELECT COUNT(*) FROM {table}")).scalar() == 0
    votes.close_motion(session, ACTOR, meeting, motion, at(20, 5), box=box)
    # Who voted is known; what each chose is not stored anywhere.
    assert set(session.scalars(select(BallotCast.member_id).where(BallotCast.motion_id == motion.id))) == set(choices)
    cast_columns = {c["name"] for c in inspect(session.get_bind()).get_columns("ballots_cast")}
    assert cast_columns == {"motion_id", "member_id"}
    tally_columns = {c["name"] for c in inspect(session.get_bind()).get_columns("secret_tallies")}
    assert tally_columns == {"motion_id", "choice", "count"}
    assert {t.choice: t.count for t in session.scalars(select(SecretTally))} == {
        Choice.AGREE: 2, Choice.DISAGREE: 1, Choice.ABSTAIN: 0}
    assert (motion.agree, motion.disagree, motion.abstain) == (2, 1, 0)
    assert votes.named_votes(session, motion) == []
    assert session.execute(text("SELECT COUNT(*) FROM open_votes")).scalar() == 0


def test_second_vote_probationary_vote_and_late_vote_are_refused(session, hall):
    meeting, officials, trainee = hall
    motion = votes.open_motion(session, ACTOR, meeting, "Bỏ phiếu kín", "secret", at(20, 0))
    box = votes.BallotBox(motion.id)
    votes.cast(session, meeting, motion, officials[0].id, "agree", now=at(20, 1), box=box)
    with unchanged(session), pytest.raises(ValidationError, match="chỉ biểu quyết một lần"):
        votes.cast(session, meeting, motion, officials[0].id, "disagree", now=at(20, 2), box=box)
    with unchanged(session), pytest.raises(ValidationError, match="dự bị không có quyền biểu quyết"):
        votes.cast(session, meeting, motion, trainee.id, "agree", now=at(20, 2), box=box)
    votes.set_in_person_counts(session, ACTOR, meeting, motion, agree=2, disagree=0, abstain=1)
    closed = votes.close_motion(session, ACTOR, meeting, motion, at(20, 10), box=box)
    # 3 agree of D = 6 is not more than half: the resolution does not pass.
    assert (closed.agree, closed.disagree, closed.abstain, closed.denominator, closed.passed) == (3, 0, 1, 6, False)
    with unchanged(session), pytest.raises(ValidationError, match="đã kết thúc"):
        votes.cast(session, meeting, motion, officials[1].id, "agree", now=at(20, 11), box=box)


def test_in_person_counts_cannot_exceed_the_voters_in_the_hall(session, hall):
    meeting, officials, _ = hall
    motion = votes.open_motion(session, ACTOR, meeting, "Biểu quyết công khai", "open", at(20, 0))
    votes.cast(session, meeting, motion, officials[0].id, "agree", now=at(20, 1))
    with unchanged(session), pytest.raises(ValidationError, match="vượt số đảng viên"):
        votes.set_in_person_counts(session, ACTOR, meeting, motion, agree=4, disagree=0, abstain=0)
    votes.set_in_person_counts(session, ACTOR, meeting, motion, agree=3, disagree=0, abstain=0)
    assert votes.tally(session, motion).agree == 4
    assert [v.member_id for v in votes.named_votes(session, motion)] == [officials[0].id]


def test_a_closed_vote_cannot_be_changed_in_the_database(database, session, hall):
    meeting, officials, _ = hall
    motion = votes.open_motion(session, ACTOR, meeting, "Đã chốt", "secret", at(20, 0))
    box = votes.BallotBox(motion.id)
    votes.cast(session, meeting, motion, officials[0].id, "agree", now=at(20, 1), box=box)
    votes.close_motion(session, ACTOR, meeting, motion, at(20, 5), box=box)
    session.commit()
    for statement in (f"UPDATE motions SET agree = 99 WHERE id = {motion.id}",
                      f"DELETE FROM motions WHERE id = {motion.id}",
                      f"UPDATE secret_tallies SET count = 99 WHERE motion_id = {motion.id}"):
        with pytest.raises(DatabaseError, match="can no longer change"), database.session() as other:
            other.execute(text(statement))
    with database.session() as other:
        assert other.get(votes.Motion, motion.id).agree == 1


def test_only_one_open_vote_at_a_time_and_only_during_the_meeting(session, hall):
    meeting, _, _ = hall
    votes.open_motion(session, ACTOR, meeting, "Thứ nhất", "open", at(20, 0))
    with unchanged(session), pytest.raises(ValidationError, match="chưa kết thúc"):
        votes.open_motion(session, ACTOR, meeting, "Thứ hai", "open", at(20, 1))
    with unchanged(session), pytest.raises(ValidationError, match="Hình thức"):
        votes.open_motion(session, ACTOR, meeting, "X", "giơ thẻ", at(20, 1))


def test_absent_members_cannot_vote(session, hall):
    meeting, officials, _ = hall
    att.mark(session, ACTOR, meeting, officials[5].id, att.Mark(status="absent", excused=False), now=at(20, 0))
    motion = votes.open_motion(session, ACTOR, meeting, "Nội dung", "open", at(20, 0))
    with unchanged(session), pytest.raises(ValidationError, match="có mặt"):
        votes.cast(session, meeting, motion, officials[5].id, "agree", now=at(20, 1))


def test_a_secret_ballot_is_never_recorded_by_name_in_the_hall(session, hall):
    meeting, officials, _ = hall
    motion = votes.open_motion(session, ACTOR, meeting, "Bỏ phiếu kín", "secret", at(20, 0))
    with unchanged(session), pytest.raises(ValidationError, match="chỉ bỏ trong phòng họp"):
        votes.cast(session, meeting, motion, officials[4].id, "agree", channel="in_person", now=at(20, 1))
    assert motion.ballots_in_box == 0


def test_a_lost_ballot_box_voids_the_ballot_and_runs_it_again(database, session, hall):
    meeting, officials, _ = hall
    motion = votes.open_motion(session, ACTOR, meeting, "Đề nghị kết nạp", "secret", at(20, 0))
    lost_box = votes.BallotBox(motion.id)
    for member in officials[:2]:
        votes.cast(session, meeting, motion, member.id, "agree", now=at(20, 1), box=lost_box)
    session.commit()
    # The process holding the box died: a new room has a new, empty box.
    new_box = votes.BallotBox(motion.id)
    assert votes.lost_ballot(session, meeting.id, new_box) is motion
    assert votes.lost_ballot(session, meeting.id, lost_box) is None
    with pytest.raises(votes.BallotsLost):
        votes.cast(session, meeting, motion, officials[2].id, "agree", now=at(20, 2), box=new_box)
    session.rollback()
    with pytest.raises(votes.BallotsLost):
        votes.close_motion(session, ACTOR, meeting, motion, at(20, 3), box=new_box)
    session.rollback()
    assert (motion.status, motion.ballots_in_box, motion.agree) == (votes.MotionStatus.OPEN, 2, None)

    voided = votes.void_ballot(session, ACTOR, meeting, motion, at(20, 4))
    session.commit()
    assert voided is not None and voided.motion.status == votes.MotionStatus.VOID
    again = voided.reopened
    assert again is not None and (again.title, again.kind, again.status) == (
        motion.title, votes.VoteKind.SECRET, votes.MotionStatus.OPEN)
    assert "2 phiếu" in voided.notice.text and "bỏ phiếu lại" in voided.notice.text
    assert voided.notice.participant == "system"
    entry = session.scalar(select(audit.AuditEntry).where(audit.AuditEntry.action == "vote.void"))
    assert entry.entity_id == str(motion.id) and entry.after == {"ballots_lost": 2}
    # Voiding twice does nothing; the voided motion can never change.
    assert votes.void_ballot(session, ACTOR, meeting, motion, at(20, 5)) is None
    session.commit()
    with pytest.raises(DatabaseError, match="can no longer change"), database.session() as other:
        other.execute(text(f"UPDATE motions SET status = 'open' WHERE id = {motion.id}"))
    # Everyone votes again; the new ballot counts exactly.
    box = votes.BallotBox(again.id)
    for member, choice in zip(officials[:3], ("agree", "agree", "disagree"), strict=True):
        votes.cast(session, meeting, again, member.id, choice, now=at(20, 6), box=box)
    closed = votes.close_motion(session, ACTOR, meeting, again, at(20, 7), box=box)
    assert (closed.agree, closed.disagree, closed.abstain) == (2, 1, 0)
    assert session.execute(text(f"SELECT COUNT(*) FROM ballots_cast WHERE motion_id = {motion.id}")).scalar() == 0


def test_two_boxes_never_take_ballots_for_one_ballot(session, hall):
    """Two processes that both think they run the room (one was cut off from Redis): only
    the box that took the first ballot counts, and once the ballot is voided neither does."""
    meeting, officials, _ = hall
    motion = votes.open_motion(session, ACTOR, meeting, "Nội dung", "secret", at(20, 0))
    first, second = votes.BallotBox(motion.id), votes.BallotBox(motion.id)
    votes.cast(session, meeting, motion, officials[0].id, "abstain", now=at(20, 1), box=first)
    session.commit()
    with pytest.raises(votes.BallotsLost):
        votes.cast(session, meeting, motion, officials[1].id, "agree", now=at(20, 2), box=second)
    session.rollback()
    votes.void_ballot(session, ACTOR, meeting, motion, at(20, 3))
    with unchanged(session), pytest.raises(ValidationError, match="đã kết thúc"):
        votes.cast(session, meeting, motion, officials[2].id, "agree", now=at(20, 4), box=first)


def test_hall_voters_who_also_voted_online_are_not_counted_twice(session, hall):
    meeting, officials, _ = hall
    motion = votes.open_motion(session, ACTOR, meeting, "Bỏ phiếu kín", "secret", at(20, 0))
    box = votes.BallotBox(motion.id)
    # officials[3] sits in the hall and votes from a phone as well.
    votes.cast(session, meeting, motion, officials[3].id, "disagree", now=at(20, 1), box=box)
    votes.set_in_person_counts(session, ACTOR, meeting, motion, agree=3, disagree=0, abstain=0)
    session.commit()
    with unchanged(session), pytest.raises(ValidationError, match=r"\(3\) vượt số đảng viên có quyền biểu quyết có mặt trực tiếp \(2\)"):
        votes.close_motion(session, ACTOR, meeting, motion, at(20, 2), box=box)
    session.rollback()
    assert motion.status == votes.MotionStatus.OPEN and len(box) == 1
    votes.set_in_person_counts(session, ACTOR, meeting, motion, agree=2, disagree=0, abstain=0)
    closed = votes.close_motion(session, ACTOR, meeting, motion, at(20, 3), box=box)
    assert (closed.agree, closed.disagree, closed.abstain, closed.denominator) == (2, 1, 0, 6)
