"""A member's yearly record, derived from rosters and periods: cases C3 and C4
(shared/domain/cases.md) and the three-month rule's counting (decision 9)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from meetings.evaluation import policies, records, three_month
from meetings.evaluation.records import Outcome
from meetings.evaluation.three_month import Level, Rule
from meetings.foundation.errors import ValidationError
from meetings.organisation import eligibility, members, organisations
from meetings.organisation.members import PeriodInput, PeriodKind
from meetings.organisation.organisations import Organisation, OrgKind
from meetings.planning.meetings import MeetingKind
from meetings.planning.notices import Notice
from meetings.proceedings import attendance
from meetings.proceedings.attendance import DuesStatus
from tests.support.world import add_member
from tests.support.year import ACTOR, MARKS, at, excuse_later, hold

D = dt.date


@pytest.fixture
def cell(session, world):
    return session.get(Organisation, world.id("A"))


def flag(session, member_id, rule=Rule.ABSENCE, year=2026):
    return three_month.flags_of_member(session, member_id, year).get(rule)


def notices_about(session, member_id):
    return list(session.scalars(select(Notice).where(Notice.url == f"/members/{member_id}/record?year=2026")
                                .order_by(Notice.id)))


def test_case_c3_warning_after_june_flag_in_september(session, world, cell):
    x = world.id("a2")
    secretary, commune = world.id("a1"), world.id("X")
    for month in range(1, 10):
        hold(session, cell, D(2026, month, 5), {x: "unexcused"} if month in (3, 6, 9) else {})
        got = flag(session, x)
        if month < 6:
            assert got is None or got.level == Level.NONE
        elif month < 9:
            # Raised the moment June's absence was marked: the secretary and the commune know.
            assert got.level == Level.WARNING and got.months == [3, 6]
        else:
            assert got.level == Level.REMOVAL_REVIEW and got.months == [3, 6, 9]
    sent = notices_about(session, x)
    assert [(n.event, n.member_id, n.organisation_id) for n in sent] == [
        ("flag_raised", secretary, None), ("flag_raised", None, commune),
        ("flag_raised", secretary, None), ("flag_raised", None, commune),
    ]
    assert sent[0].subject.startswith("[Chi bộ thôn An Lạc] Cảnh báo: đồng chí Trần Thị Bích Ngọc vắng sinh hoạt")
    assert "Xem xét xóa tên" in sent[2].subject and "3 tháng năm 2026" in sent[2].subject
    assert "Tháng 3: Sinh hoạt thường kỳ tháng 3/2026 (05/03/2026)" in sent[2].body
    assert "Tháng 9: Sinh hoạt thường kỳ tháng 9/2026 (05/09/2026)" in sent[2].body
    assert "không tự động xóa tên" in sent[2].body
    # Checking again changes nothing and tells nobody twice.
    assert three_month.recheck(session, [x], 2026) == []
    assert len(notices_about(session, x)) == 4
    # Never an automatic removal: X is still a member expected at the next meeting.
    assert eligibility.electorate(session, cell.id, D(2026, 10, 5)).get(x).expected
    record = records.record_of(session, x, 2026)
    assert (record.expected, record.in_person, record.unexcused) == (9, 6, 3)
    assert record.absence_months == [3, 6, 9] and record.attendance_rate == pytest.approx(6 / 9)


def test_case_c3_june_absence_later_excused_leaves_a_warning_only(session, world, cell):
    x = world.id("a2")
    june = None
    for month in (3, 6, 9):
        meeting = hold(session, cell, D(2026, month, 5), {x: "unexcused"})
        june = meeting if month == 6 else june
    assert flag(session, x).level == Level.REMOVAL_REVIEW
    excuse_later(session, june, x, at(D(2026, 9, 20)))
    got = flag(session, x)
    assert got.level == Level.WARNING and got.months == [3, 9]
    lowered = [n for n in notices_about(session, x) if n.event == "flag_lowered"]
    assert len(lowered) == 2 and "Hạ mức theo dõi" in lowered[0].subject
    record = records.record_of(session, x, 2026)
    assert record.absence_months == [3, 9] and (record.excused, record.unexcused) == (1, 2)
    june_line = record.months[5].lines[0]
    assert june_line.outcome == Outcome.EXCUSED and june_line.note == "Đi công tác đột xuất, có xác nhận của cơ quan"


def test_case_c3_exempt_in_june_does_not_count(session, world, cell):
    x = world.id("a2")
    member = session.get(members.Member, x)
    hold(session, cell, D(2026, 3, 5), {x: "unexcused"})
    members.add_period(session, ACTOR, member, PeriodInput(kind=PeriodKind.EXEMPT, start_on="2026-06-01",
                                                           end_on="2026-06-30", decision_number="07-NQ/CB",
                                                           reason="Điều trị dài ngày"))
    june = hold(session, cell, D(2026, 6, 5), {})
    # Not expected in June: the roster lists X apart and refuses an absence.
    with pytest.raises(ValidationError, match="không phải dự họp"):
        attendance.mark(session, ACTOR, june, x, MARKS["unexcused"], now=at(D(2026, 6, 5)),
                        amendment_reason="thử")
    hold(session, cell, D(2026, 9, 5), {x: "unexcused"})
    record = records.record_of(session, x, 2026)
    assert record.absence_months == [3, 9] and flag(session, x).level == Level.WARNING
    assert record.months[5].excluded == "Miễn sinh hoạt"
    assert record.months[5].lines[0].outcome == Outcome.NOT_EXPECTED and record.expected == 2


def test_exemption_recorded_after_the_absence_takes_the_month_out(session, world, cell):
    x = world.id("a2")
    for month in (3, 6, 9):
        hold(session, cell, D(2026, month, 5), {x: "unexcused"})
    assert flag(session, x).level == Level.REMOVAL_REVIEW
    members.add_period(session, ACTOR, session.get(members.Member, x),
                       PeriodInput(kind=PeriodKind.EXEMPT, start_on="2026-05-20", end_on="2026-07-31",
                                   decision_number="09-NQ/CB", reason="Điều trị dài ngày"))
    three_month.recheck(session, [x], 2026)  # the period hook does it for recent years; explicit here
    assert flag(session, x).level == Level.WARNING and flag(session, x).months == [3, 9]
    june = records.record_of(session, x, 2026).months[5].lines[0]
    assert (june.expected, june.outcome, june.note) == (False, Outcome.NOT_EXPECTED, "Miễn sinh hoạt")


def test_case_c3_two_absences_within_march_are_one_month(session, world, cell):
    x = world.id("a2")
    hold(session, cell, D(2026, 3, 5), {x: "unexcused"})
    hold(session, cell, D(2026, 3, 19), {x: "unexcused"}, kind=MeetingKind.EXTRAORDINARY)
    hold(session, cell, D(2026, 4, 5), {x: "unexcused"})
    record = records.record_of(session, x, 2026)
    assert record.unexcused == 3 and record.absence_months == [3, 4]
    assert flag(session, x).level == Level.WARNING  # two months, not three
    # A thematic absence counts only where the committee's setting says so — and still as
    # one month when it falls in a month already counted.
    hold(session, cell, D(2026, 4, 20), {x: "unexcused"}, kind=MeetingKind.THEMATIC)
    hold(session, cell, D(2026, 5, 20), {x: "unexcused"}, kind=MeetingKind.THEMATIC)
    assert records.record_of(session, x, 2026).absence_months == [3, 4]
    policies.set_policy(session, ACTOR, session.get(Organisation, world.id("X")), count_thematic=True,
                        review_date="15/12", basis="Hướng dẫn 05-HD/ĐU")
    three_month.recheck(session, [x], 2026)
    assert records.record_of(session, x, 2026).absence_months == [3, 4, 5]
    assert flag(session, x).level == Level.REMOVAL_REVIEW


def test_unpaid_dues_months_are_counted_separately(session, world, cell):
    x = world.id("a2")
    for month in range(1, 6):
        meeting = hold(session, cell, D(2026, month, 5), {x: "unexcused"} if month == 1 else {})
        status = DuesStatus.UNPAID if month in (2, 3, 5) else DuesStatus.PAID_AT_MEETING
        attendance.record_dues(session, ACTOR, meeting, x, status, at(D(2026, month, 5)))
        if month == 3:
            assert flag(session, x, Rule.DUES).level == Level.WARNING
    record = records.record_of(session, x, 2026)
    assert record.dues_months == [2, 3, 5] and record.absence_months == [1]
    assert flag(session, x, Rule.DUES).level == Level.REMOVAL_REVIEW
    assert flag(session, x, Rule.ABSENCE) is None  # one month: nothing to flag
    assert any("không đóng đảng phí 3 tháng" in n.subject for n in notices_about(session, x))


def test_case_c4_temporary_transfer_months_come_from_the_host_cell(session, world):
    home = session.get(Organisation, world.id("A"))
    host = organisations.create_organisation(session, ACTOR, kind=OrgKind.CELL, name="Chi bộ Khu công nghiệp",
                                             code="T-KCN", parent=session.get(Organisation, world.id("X")),
                                             created_on=D(2025, 7, 1))
    add_member(session, host, "Lý Văn Chủ")
    m = world.id("a2")
    members.add_period(session, ACTOR, session.get(members.Member, m),
                       PeriodInput(kind=PeriodKind.TRANSFER_OUT, start_on="2026-03-01", end_on="2026-08-31",
                                   host_org_name=host.name, host_cell_id=host.id, decision_number="03-GGT/ĐU"))
    home_meetings = {month: hold(session, home, D(2026, month, 5), {}) for month in range(1, 13)}
    for month in range(3, 9):
        hold(session, host, D(2026, month, 12), {m: "unexcused" if month == 4 else "online" if month == 5
                                                  else "in_person"})
    # In the home cell M is out of D and of the absences from March to August.
    march = attendance.roster(session, home_meetings[3])
    line = next(r for r in march if r.member_id == m)
    assert (line.expected, line.standing.label) == (False, "Giới thiệu SHT đi nơi khác")
    assert attendance.counts(march).denominator == 2  # a1 and a4; a3 is probationary
    record = records.record_of(session, m, 2026)
    assert (record.expected, record.in_person, record.online, record.unexcused) == (12, 10, 1, 1)
    for month in range(3, 9):
        lines = record.months[month - 1].lines
        home_line = next(x for x in lines if not x.attached)
        host_line = next(x for x in lines if x.attached)
        assert home_line.outcome == Outcome.NOT_EXPECTED and home_line.note == "Giới thiệu SHT đi nơi khác"
        assert host_line.expected and host_line.cell_id == host.id
        assert record.months[month - 1].excluded == "Giới thiệu SHT đi nơi khác"
    assert record.absence_months == [4]


def test_record_lists_votes_and_meetings_without_a_roster(session, world, cell):
    from meetings.planning.meetings import MeetingStatus, change_status, create_meeting
    from meetings.proceedings import votes

    x = world.id("a2")
    hold(session, cell, D(2026, 2, 5), {})
    second = hold(session, cell, D(2026, 3, 5), {}, everyone=None)  # roster drawn up, nobody marked
    voting = create_meeting(session, ACTOR, cell, kind=MeetingKind.REGULAR, starts_at=at(D(2026, 4, 5)))
    change_status(session, ACTOR, voting, MeetingStatus.OPEN, now=at(D(2026, 4, 5)))
    attendance.mark(session, ACTOR, voting, x, MARKS["in_person"], now=at(D(2026, 4, 5)))
    motion = votes.open_motion(session, ACTOR, voting, "Thông qua nghị quyết", "open", at(D(2026, 4, 5)))
    votes.cast(session, voting, motion, x, "agree", now=at(D(2026, 4, 5)))
    votes.close_motion(session, ACTOR, voting, motion, at(D(2026, 4, 5)))
    # A meeting held with nobody's attendance recorded.
    silent = create_meeting(session, ACTOR, cell, kind=MeetingKind.REGULAR, starts_at=at(D(2026, 5, 5)))
    silent.actual_start_at, silent.actual_end_at = at(D(2026, 5, 5)), at(D(2026, 5, 5)) + dt.timedelta(hours=2)
    session.flush()
    record = records.record_of(session, x, 2026)
    assert record.votes == 1 and record.months[3].lines[0].votes == 1
    assert [line.outcome for line in record.lines] == [Outcome.IN_PERSON, Outcome.UNMARKED, Outcome.IN_PERSON,
                                                       Outcome.UNMARKED]
    assert record.months[4].lines[0].recorded is False and record.unmarked == 2
    assert second.id in {line.meeting_id for line in record.lines}
    assert record.absence_months == []  # not marked is not absent


def test_record_page_shows_each_meeting_and_the_flag(world, client_as, database):
    x = world.id("a2")
    with database.session() as s:
        cell = s.get(Organisation, world.id("A"))
        for month in (3, 6, 9):
            hold(s, cell, D(2026, month, 5), {x: "unexcused"})
    page = client_as("mem_a").get(f"/members/{x}/record?year=2026")
    assert page.status_code == 200
    text = page.text
    assert "Hồ sơ sinh hoạt năm 2026" in text and "Xem xét xóa tên:" in text
    assert "vắng sinh hoạt không có lý do 3 tháng trong năm 2026 (tháng 3, 6, 9)" in text
    assert text.count("Vắng không có lý do") == 3 and "Sinh hoạt thường kỳ tháng 6/2026" in text
    assert "Nền tảng không tự động xóa tên" in text
    # The secretary's home page carries the notice; the commune's page too (for its auditor).
    assert "Xem xét xóa tên: đồng chí Trần Thị Bích Ngọc" in client_as("sec_a").get("/").text
    assert "Xem xét xóa tên: đồng chí Trần Thị Bích Ngọc" in client_as("aud_x").get(f"/orgs/{world.id('X')}").text
    # Someone else's record is not for an ordinary member.
    assert client_as("mem_a").get(f"/members/{world.id('a1')}/record").status_code == 403
    assert client_as("mem_a").get(f"/members/{x}/record?year=abc").status_code == 400


def test_flag_email_carries_the_site_address(world, database, clock, inbox, smtp):
    from app.mailer import SmtpMailer
    from meetings.planning.notices import NoticeOptions, run_due_notices

    x = world.id("a2")
    with database.session() as s:
        s.get(members.Member, world.id("a1")).email = "bithu@example.vn"
        s.get(Organisation, world.id("X")).email = "dangbo@example.vn"
        cell = s.get(Organisation, world.id("A"))
        for month in (3, 6):
            hold(s, cell, D(2026, month, 5), {x: "unexcused"})
    mailer = SmtpMailer(smtp.host, smtp.port, sender="Chi bo <no-reply@chibo.example.vn>")
    report = run_due_notices(database.sessions, clock.now, mailer.send,
                             NoticeOptions(public_url="https://chibo.example.vn"), extend=False)
    assert report.sent == 2 and inbox.recipients() == ["bithu@example.vn", "dangbo@example.vn"]
    body = inbox.to("dangbo@example.vn")[0].get_content()
    assert body.startswith("Kính gửi Đảng ủy xã Xuân Hòa,")
    assert f"https://chibo.example.vn/members/{x}/record?year=2026" in body and "{site}" not in body
