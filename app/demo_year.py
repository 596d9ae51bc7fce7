"""The demo's year so far: rosters, dues and minutes of every past meeting, so that the yearly
records, the three-month flags and the higher committees' audit have something to show.

Built through the domain operations (marks, dues, minutes, reviews), deterministic:

* Chi bộ thôn An Mỹ — every month held (August late); away members absent with reason until
  the online pilot began, online since; one member unexcused in March, June and September
  ("xem xét xóa tên"), one in February and August (a warning; July's absence excused later),
  one with two unpaid months of dues; two self-assessments for the year;
* Chi bộ thôn Phú Hậu — July missing, April held late, the second quarter's thematic
  meeting missing, minutes adopted a few days later;
* Chi bộ thôn Tân Định — every month held, three without adopted minutes;
* Chi bộ khu phố 3 — nothing held since June.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Sequence

from dateutil.relativedelta import relativedelta
from sqlalchemy.orm import Session

from meetings.evaluation import reviews
from meetings.foundation.actors import Actor
from meetings.foundation.base import LOCAL_TZ
from meetings.organisation.members import Member
from meetings.organisation.organisations import Organisation
from meetings.planning import meetings as mt
from meetings.planning.meetings import MeetingKind, MeetingStatus
from meetings.proceedings import attendance, minutes
from meetings.proceedings.attendance import DuesStatus, Mark

IN_PERSON = Mark(status="present", mode="in_person")
ONLINE = Mark(status="present", mode="online")
UNEXCUSED = Mark(status="absent", excused=False)
AWAY = Mark(status="absent", excused=True, reason_category="away", reason_text="Đi làm ăn xa, đã báo cáo chi bộ")
ILL = Mark(status="absent", excused=True, reason_category="illness", reason_text="Ốm, đang điều trị")


#: A meeting's chair and minute-taker: who acts (their own account), and the member they are.
Signer = tuple[Actor, Member]


def _hold(session: Session, actor: Actor, meeting: mt.Meeting, length: int,
          choose: Callable[[attendance.AttendanceRecord], Mark],
          dues_for: Callable[[attendance.AttendanceRecord], DuesStatus], adopt_after: dt.timedelta | None,
          now: dt.datetime, signers: tuple[Signer, Signer]) -> None:
    """Open the meeting, mark everyone expected (``choose(record) → Mark``; the chair and the
    minute-taker are there), record the month's dues, close it and adopt the minutes
    ``adopt_after`` later (None: not adopted): the minute-taker confirms, the chair adopts."""
    (chair, chair_member), (taker, taker_member) = signers
    present = {chair_member.id, taker_member.id}
    start = meeting.starts_at
    end = start + dt.timedelta(minutes=length)
    if meeting.status == MeetingStatus.SCHEDULED:  # recording its actual times may have closed it
        mt.change_status(session, actor, meeting, MeetingStatus.OPEN, now=start)
    for record in attendance.roster(session, meeting):
        if record.expected:
            mark = IN_PERSON if record.member_id in present else choose(record)
            attendance.mark(session, actor, meeting, record.member_id, mark, now=start)
        if record.in_roll and record.expected and meeting.kind == MeetingKind.REGULAR:
            attendance.record_dues(session, actor, meeting, record.member_id, dues_for(record), start)
    for record in attendance.roster(session, meeting):
        if record.mode and record.mode.value == "online":
            record.online_minutes = length - 5
    if meeting.status == MeetingStatus.OPEN:
        mt.change_status(session, actor, meeting, MeetingStatus.CLOSED, now=end)
    if adopt_after is not None and end + adopt_after < now:
        when = end + adopt_after
        minutes.save_draft(session, chair, meeting, {
            "chair_member_id": chair_member.id, "taker_member_id": taker_member.id,
            "items": [{"title": "Đánh giá kết quả tháng trước, triển khai nhiệm vụ tháng này",
                       "summary": "Chi bộ thống nhất các nhiệm vụ trọng tâm của tháng.", "opinions": [],
                       "conclusion": "Thống nhất."}],
            "resolution": "Chi bộ thống nhất nghị quyết tháng."}, base_revision=0, now=when)
        minutes.confirm_as_taker(session, taker, meeting, when)
        minutes.adopt(session, chair, meeting, when)


def _new_meeting(session: Session, actor: Actor, cell: Organisation, day: dt.date, planned: dt.date | None, *,
                 kind: MeetingKind = MeetingKind.REGULAR, combined: bool = False) -> mt.Meeting:
    start = dt.datetime.combine(day, dt.time(19, 0 if kind == MeetingKind.REGULAR else 14), tzinfo=LOCAL_TZ)
    meeting = mt.create_meeting(session, actor, cell, kind=kind, starts_at=start, place=cell.address,
                                combined_thematic=combined,
                                topic="Học tập và làm theo tư tưởng, đạo đức, phong cách Hồ Chí Minh"
                                if combined or kind == MeetingKind.THEMATIC else None,
                                title=f"{kind.label} tháng {day.month}/{day.year}")
    meeting.occurrence_on = planned
    return meeting


def _first_saturday(year: int, month: int) -> dt.date:
    day = dt.date(year, month, 1)
    return day + dt.timedelta(days=(5 - day.weekday()) % 7)


def demo_year(session: Session, actor: Actor, cells: Sequence[Organisation], anmy_held: Sequence[tuple[mt.Meeting, int]],
              anmy: Sequence[Member], now: dt.datetime, signers: dict[int, tuple[Signer, Signer]]) -> None:
    rng = random.Random(2026)
    today = now.astimezone(LOCAL_TZ).date()
    pilot_from = today - relativedelta(months=2)
    absent = {anmy[11].id: {3, 6, 9}, anmy[12].id: {2, 7, 8}}
    unpaid = {anmy[13].id: {4, 5}}

    def anmy_mark(month: int, day: dt.date) -> Callable[[attendance.AttendanceRecord], Mark]:
        def choose(record: attendance.AttendanceRecord) -> Mark:
            if month in absent.get(record.member_id, set()):
                return UNEXCUSED
            if record.away:
                return ONLINE if day >= pilot_from else (IN_PERSON if month == 2 else AWAY)
            return ILL if rng.random() < 0.04 else IN_PERSON
        return choose

    def anmy_dues(month: int) -> Callable[[attendance.AttendanceRecord], DuesStatus]:
        return lambda record: (DuesStatus.UNPAID if month in unpaid.get(record.member_id, set())
                               else DuesStatus.PAID_TRANSFER if record.away else DuesStatus.PAID_AT_MEETING)

    july = None
    for meeting, length in anmy_held:
        day = meeting.local_date
        delay = {2: dt.timedelta(days=3), 6: dt.timedelta(days=12), 10: None}.get(day.month, dt.timedelta(minutes=15))
        _hold(session, actor, meeting, length, anmy_mark(day.month, day), anmy_dues(day.month), delay, now,
              signers[meeting.cell_id])
        if day.month == 7:
            july = meeting
    if july is not None:  # the chi ủy accepted the reason afterwards
        attendance.mark(session, actor, july, anmy[12].id,
                        Mark(status="absent", excused=True, reason_category="work",
                             reason_text="Đi công tác đột xuất, có giấy xác nhận của cơ quan"),
                        now=july.starts_at + dt.timedelta(days=10), amendment_reason="Chi ủy chấp nhận lý do")

    def plain(record: attendance.AttendanceRecord) -> Mark:
        if record.away:
            return AWAY
        return ILL if rng.random() < 0.05 else IN_PERSON

    def paid(record: attendance.AttendanceRecord) -> DuesStatus:
        return DuesStatus.PAID_TRANSFER if record.away else DuesStatus.PAID_AT_MEETING

    phu_hau, tan_dinh, kp3 = cells[1], cells[2], cells[3]
    for month in range(1, 13):
        planned = _first_saturday(today.year, month)
        if month in (7,) or dt.datetime.combine(planned, dt.time(22, 0), tzinfo=LOCAL_TZ) >= now:
            continue
        day = planned + dt.timedelta(days=15) if month == 4 else planned
        _hold(session, actor, _new_meeting(session, actor, phu_hau, day, planned), 110, plain, paid,
              dt.timedelta(days=rng.randint(2, 6)), now, signers[phu_hau.id])
        if month in (2, 8):
            thematic = _new_meeting(session, actor, phu_hau, dt.date(today.year, month, 20), None,
                                    kind=MeetingKind.THEMATIC)
            _hold(session, actor, thematic, 120, plain, paid, dt.timedelta(minutes=20), now, signers[phu_hau.id])
    for month in range(1, 13):
        planned = dt.date(today.year, month, 10)
        if dt.datetime.combine(planned, dt.time(22, 0), tzinfo=LOCAL_TZ) >= now:
            continue
        _hold(session, actor, _new_meeting(session, actor, tan_dinh, planned, planned, combined=month in (3, 6, 9)),
              130 if month in (3, 6, 9) else 100, plain, paid,
              None if month in (5, 8, 10) else dt.timedelta(minutes=10), now, signers[tan_dinh.id])
    for month in range(1, 7):
        planned = dt.date(today.year, month, 1) + relativedelta(day=31)
        planned -= dt.timedelta(days=(planned.weekday() + 1) % 7)  # last Sunday
        if dt.datetime.combine(planned, dt.time(22, 0), tzinfo=LOCAL_TZ) >= now:
            continue
        _hold(session, actor, _new_meeting(session, actor, kp3, planned, planned, combined=month in (3, 6)),
              100, plain, paid, None, now, signers[kp3.id])

    # Two self-assessments for the year: a member with a clean record, and the flagged one.
    year = today.year
    form = {"politics": "Luôn kiên định, giữ gìn phẩm chất đạo đức, lối sống giản dị; chấp hành nghiêm kỷ luật "
                        "của Đảng.",
            "duties": "Hoàn thành nhiệm vụ được chi bộ phân công phụ trách tổ dân cư.",
            "pledge": "Thực hiện đúng cam kết tu dưỡng, rèn luyện đầu năm.",
            "shortcomings": "Có lúc chưa sắp xếp công việc để tham gia đầy đủ sinh hoạt chi bộ.",
            "plans": "Bố trí thời gian hợp lý, tham gia sinh hoạt chi bộ đầy đủ."}
    for member, grade in ((anmy[14], "httnv"), (anmy[11], "htxsnv")):
        if reviews.eligibility(session, member, year).eligible:
            reviews.submit_self_assessment(session, actor, member, year, form=form, self_grade=grade, file=None,
                                           root=None, max_bytes=0, today=today, now=now)  # type: ignore[arg-type]  # no file: no folder
    session.flush()
