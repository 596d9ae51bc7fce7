"""The demo organisation: Quảng Trị province → two commune committees → four cells.

Deterministic (seeded), idempotent (does nothing if the province already exists), and built
only through the domain operations, so the demo exercises the same rules as real use.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from dateutil.relativedelta import relativedelta
from sqlalchemy import select
from sqlalchemy.orm import Session

from meetings.foundation.actors import Actor
from meetings.foundation.base import LOCAL_TZ
from meetings.organisation import accounts, members, organisations
from meetings.organisation.accounts import Role
from meetings.organisation.members import ExemptKind, Member, MemberInput, PeriodInput, PeriodKind
from meetings.organisation.organisations import Organisation, OrgKind
from meetings.planning import absences, agenda, dates, pilot, schedules
from meetings.planning import meetings as mt
from meetings.planning.meetings import MeetingKind
from meetings.planning.schedules import RuleInput, ThematicInput

from .demo_year import demo_year

DEMO_PASSWORD = "chibo-demo-2026"


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    role: str
    who: str


DEMO_ACCOUNTS = (
    DemoAccount("bithu", DEMO_PASSWORD, "Bí thư Chi bộ thôn An Mỹ", "secretary"),
    DemoAccount("dangvien", DEMO_PASSWORD, "Đảng viên Chi bộ thôn An Mỹ, thư ký (ghi biên bản) các cuộc họp", "member"),
    DemoAccount("divang", DEMO_PASSWORD, "Đảng viên đi làm ăn xa, Chi bộ thôn An Mỹ", "away member"),
    DemoAccount("kiemtra", DEMO_PASSWORD, "Cấp ủy cấp trên: Đảng ủy xã Cam Lộ", "auditor"),
    DemoAccount("quantri", DEMO_PASSWORD, "Quản trị hệ thống (toàn tỉnh)", "admin"),
)

SURNAMES = ["Nguyễn", "Trần", "Lê", "Phạm", "Hoàng", "Phan", "Võ", "Đặng", "Bùi", "Đỗ", "Hồ", "Ngô", "Dương", "Lương"]
MIDDLE_M = ["Văn", "Đức", "Minh", "Quang", "Hữu", "Công", "Xuân", "Thanh"]
MIDDLE_F = ["Thị", "Thị Thu", "Thị Minh", "Ngọc", "Thị Hồng", "Thanh"]
GIVEN_M = ["Hùng", "Dũng", "Tuấn", "Hải", "Bình", "Sơn", "Long", "Quý", "Nhân", "Khánh", "Hòa", "Thắng", "Lộc", "Phước", "Toàn"]
GIVEN_F = ["Lan", "Hương", "Thảo", "Phương", "Nga", "Trang", "Hà", "Yến", "Huyền", "Nhung", "Oanh", "Ly", "Ánh"]
AWAY_PLACES = [
    ("phường Thuận An, TP. Hồ Chí Minh", "Công ty TNHH May mặc Tân Phú", "Chi bộ Công ty TNHH May mặc Tân Phú"),
    ("KCN Biên Hòa, tỉnh Đồng Nai", "Công ty CP Gỗ Đông Nam", "Đảng bộ Công ty CP Gỗ Đông Nam"),
    ("phường Hải Châu, TP. Đà Nẵng", "Công trình xây dựng cầu Hòa Xuân", None),
    ("Khu kinh tế Vũng Áng, tỉnh Hà Tĩnh", "Công ty CP Thép Hà Tĩnh", "Chi bộ Phân xưởng Cán thép"),
    ("xã Tân Uyên, TP. Hồ Chí Minh", "Công ty TNHH Điện tử Việt Hưng", None),
]

# (code, name, commune index, members, away, has committee)
CELLS = [
    ("QT-CL-ANMY", "Chi bộ thôn An Mỹ", 0, 18, 10, True),
    ("QT-CL-PHUHAU", "Chi bộ thôn Phú Hậu", 0, 12, 3, True),
    ("QT-HG-TANDINH", "Chi bộ thôn Tân Định", 1, 22, 5, True),
    ("QT-HG-KP3", "Chi bộ khu phố 3", 1, 9, 2, False),
]


def _name(rng: random.Random, used: set[str]) -> str:
    while True:
        if rng.random() < 0.55:
            name = f"{rng.choice(SURNAMES)} {rng.choice(MIDDLE_M)} {rng.choice(GIVEN_M)}"
        else:
            name = f"{rng.choice(SURNAMES)} {rng.choice(MIDDLE_F)} {rng.choice(GIVEN_F)}"
        if name not in used:
            used.add(name)
            return name


def load_demo(session: Session, today: dt.date) -> bool:
    """Create the demo organisation; returns False if it already exists."""
    if session.scalar(select(Organisation.id).where(Organisation.code == "QT")) is not None:
        return False
    actor = Actor.system("dữ liệu mẫu")
    rng = random.Random(20260701)
    founded = dt.date(2025, 7, 1)
    province = organisations.create_organisation(
        session, actor, kind=OrgKind.PROVINCE, name="Tỉnh ủy Quảng Trị", code="QT", parent=None, created_on=founded
    )
    communes = [
        organisations.create_organisation(
            session, actor, kind=OrgKind.COMMUNE, name=name, code=code, parent=province, created_on=founded
        )
        for code, name in (("QT-CL", "Đảng ủy xã Cam Lộ"), ("QT-HG", "Đảng ủy xã Hiếu Giang"))
    ]
    used: set[str] = set()
    card = 48_010_000
    cells: list[Organisation] = []
    first_members: dict[str, list[members.Member]] = {}
    for code, name, commune_index, size, away, committee in CELLS:
        cell = organisations.create_organisation(
            session, actor, kind=OrgKind.CELL, name=name, code=code, parent=communes[commune_index],
            created_on=founded, has_committee=committee,
            address=f"Nhà văn hóa {name.removeprefix('Chi bộ ')}",
        )
        cells.append(cell)
        created = []
        for i in range(size):
            probationary = i in (size - 1, size - 2) and size > 10
            birth = dt.date(rng.randint(1955, 1998), rng.randint(1, 12), rng.randint(1, 28))
            admitted = (
                today - relativedelta(months=rng.randint(4, 10))
                if probationary
                else dt.date(rng.randint(max(birth.year + 19, 1985), 2023), rng.randint(1, 12), rng.randint(1, 28))
            )
            card += rng.randint(3, 97)
            member = members.create_member(
                session, actor, cell,
                MemberInput(
                    full_name=_name(rng, used),
                    birth_date=birth,
                    card_number=None if probationary else str(card),
                    admitted_on=admitted,
                    status="dự bị" if probationary else "chính thức",
                    phone=f"09{rng.randint(10_000_000, 99_999_999)}",
                ),
                today=today,
            )
            created.append(member)
        # Away members: those working far from home (the pilot's reason for being).
        for member in created[1 : 1 + away]:
            place, employer, host = rng.choice(AWAY_PLACES)
            start = today - relativedelta(months=rng.randint(2, 14))
            members.add_period(
                session, actor, member,
                PeriodInput(
                    kind=PeriodKind.AWAY, start_on=start, place=place,
                    host_org_name=host or employer,
                    host_contact=f"Bí thư chi bộ nơi làm việc, ĐT 09{rng.randint(10_000_000, 99_999_999)}" if host else None,
                    expected_return_on=today + relativedelta(months=rng.randint(1, 8)),
                    note=f"Làm việc tại {employer}",
                ),
            )
        first_members[code] = created
    # One exempt member (old age) in An Mỹ.
    elder = first_members["QT-CL-ANMY"][-3]
    members.add_period(
        session, actor, elder,
        PeriodInput(kind=PeriodKind.EXEMPT, start_on=dt.date(2025, 3, 1), decision_number="05-NQ/CB",
                    reason="Tuổi cao, sức khỏe yếu", exempt_kind=ExemptKind.FULL),
    )
    # One temporary transfer: from Phú Hậu to Tân Định (shows up there as SHT).
    mover = first_members["QT-CL-PHUHAU"][-3]
    members.add_period(
        session, actor, mover,
        PeriodInput(kind=PeriodKind.TRANSFER_OUT, start_on=today - relativedelta(months=2),
                    end_on=today + relativedelta(months=4), host_org_name=cells[2].name,
                    host_cell_id=cells[2].id, decision_number="12-GGT/ĐU",
                    reason="Làm việc tạm thời tại xã Hiếu Giang"),
    )

    anmy = first_members["QT-CL-ANMY"]
    grants: tuple[tuple[DemoAccount, Member | None, Role, Organisation], ...] = (
        (DEMO_ACCOUNTS[0], anmy[0], Role.SECRETARY, cells[0]),
        (DEMO_ACCOUNTS[1], anmy[-4], Role.MEMBER, cells[0]),
        (DEMO_ACCOUNTS[2], anmy[1], Role.MEMBER, cells[0]),
        (DEMO_ACCOUNTS[3], None, Role.AUDITOR, communes[0]),
        (DEMO_ACCOUNTS[4], None, Role.ADMIN, province),
    )
    for demo, holder, role, org in grants:
        account = accounts.create_account(
            session, actor, username=demo.username, password=demo.password,
            display_name=holder.full_name if holder else demo.role, member=holder,
            must_change_password=False,
        )
        accounts.grant_role(session, actor, account, role, org)
        if holder is not None and role != Role.MEMBER:
            accounts.grant_role(session, actor, account, Role.MEMBER, org)
    # The chair (the secretary) and the minute-taker of every cell's meetings, each with an
    # account: they confirm and adopt the minutes from their own accounts (decision 13).
    signers = {cells[0].id: (_signer(session, anmy[0]), _signer(session, anmy[-4]))}
    for row, cell in zip(CELLS[1:], cells[1:], strict=True):
        code, away = row[0], row[4]
        people = first_members[code]
        slug = code.rsplit("-", 1)[1].lower()
        chair = _demo_account(session, actor, f"bithu-{slug}", people[0], Role.SECRETARY, cell)
        taker = _demo_account(session, actor, f"thuky-{slug}", people[1 + away], Role.MEMBER, cell)
        signers[cell.id] = (chair, taker)
    session.flush()
    _demo_schedules(session, actor, cells, communes, first_members["QT-CL-ANMY"], today, signers)
    return True


#: A meeting's chair and minute-taker: who acts, and the member they are.
Signer = tuple[Actor, members.Member]


def _signer(session: Session, member: members.Member) -> Signer:
    account = session.scalar(select(accounts.Account).where(accounts.Account.member_id == member.id))
    assert account is not None
    return Actor(account.id, member.full_name), member


def _demo_account(session: Session, actor: Actor, username: str, member: members.Member, role: Role,
                  cell: Organisation) -> Signer:
    account = accounts.create_account(session, actor, username=username, password=DEMO_PASSWORD,
                                      display_name=member.full_name, member=member, must_change_password=False)
    accounts.grant_role(session, actor, account, role, cell)
    if role != Role.MEMBER:
        accounts.grant_role(session, actor, account, Role.MEMBER, cell)
    return Actor(account.id, member.full_name), member


# (regular rule, thematic plan) per cell, in the order of CELLS.
DEMO_RULES = [
    (RuleInput(pattern="monthday", monthday=5, start_time="19:30", duration_minutes=120),
     ThematicInput(mode="combined", month_of_quarter=3, topic="Học tập và làm theo tư tưởng, đạo đức, phong cách "
                   "Hồ Chí Minh")),
    (RuleInput(pattern="weekday", ordinal=1, weekday="SA", start_time="08:00", duration_minutes=120),
     ThematicInput(mode="separate", month_of_quarter=2, pattern="monthday", monthday=20, start_time="14:00",
                   duration_minutes=120)),
    (RuleInput(pattern="monthday", monthday=10, start_time="19:00", duration_minutes=120),
     ThematicInput(mode="combined", month_of_quarter=3)),
    (RuleInput(pattern="weekday", ordinal=-1, weekday="SU", start_time="08:00", duration_minutes=90),
     ThematicInput(mode="combined", month_of_quarter=3)),
]


def _demo_schedules(session: Session, actor: Actor, cells: list[Organisation], communes: list[Organisation],
                    anmy: list[members.Member], today: dt.date, signers: dict[int, tuple[Signer, Signer]]) -> None:
    """Rules for every cell, the online pilot for An Mỹ, and An Mỹ's last three months held."""
    now = dt.datetime.combine(today, dt.time(10, 0), tzinfo=LOCAL_TZ)
    for cell, (regular, thematic) in zip(cells, DEMO_RULES, strict=True):
        schedules.set_rules(session, actor, cell, regular, thematic, now=now,
                            valid_from=today.replace(day=1) - relativedelta(months=3))
    anmy_cell = cells[0]
    pilot.record_approval(session, actor, anmy_cell, decision_number="27-QĐ/ĐU",
                          decided_on=today - relativedelta(months=2), approving_body=communes[0].name,
                          approving_org_id=communes[0].id, valid_from=today - relativedelta(months=2), valid_to=None,
                          note="Trên một nửa đảng viên đi làm ăn xa (Hướng dẫn 03-HD/TW)")
    # An Mỹ's year so far: every earlier month held (August's two weeks late), one meeting too
    # short (HD 42 warning), the second quarter's thematic session forgotten (case C6).
    held: list[tuple[mt.Meeting, int]] = []
    for back in range(12, -1, -1):
        planned = (today.replace(day=1) - relativedelta(months=back)).replace(day=5)
        day = planned.replace(day=19) if planned.month == 8 else planned
        start = dt.datetime.combine(day, dt.time(19, 30), tzinfo=LOCAL_TZ)
        if day.year != today.year or start >= now:
            continue
        combined = day.month in (3, 9)
        for kind, when, minutes in (
            (MeetingKind.COMMITTEE, start - dt.timedelta(days=3), 60),
            (MeetingKind.REGULAR, start, 75 if back == 2 else (125 if combined else 105)),
        ):
            if back == 0 and kind == MeetingKind.REGULAR:
                continue  # this month's meeting is today's (below)
            meeting = mt.create_meeting(session, actor, anmy_cell, kind=kind, starts_at=when,
                                        place=anmy_cell.address, combined_thematic=combined,
                                        topic=DEMO_RULES[0][1].topic if combined and kind == MeetingKind.REGULAR
                                        else None, title=f"{kind.label} tháng {day.month}/{day.year}",
                                        expected_minutes=120)
            meeting.occurrence_on = planned
            agenda.apply_template(session, meeting)
            dates.record_actual_times(session, actor, meeting, when, when + dt.timedelta(minutes=minutes), now=now)
            if kind == MeetingKind.REGULAR:
                held.append((meeting, minutes))
    todays = _todays_meeting(session, actor, anmy_cell, today, now)
    upcoming = [m for m in schedules.upcoming(session, anmy_cell.id, now, past_days=0)
                if m.kind == MeetingKind.REGULAR][:3]
    for meeting in upcoming:
        meeting.remote_open = True
    absences.file_request(session, actor, todays, anmy[5].id, "Đi viện thăm mẹ ốm ở Huế", now=now)
    session.flush()

    demo_year(session, actor, cells, held, anmy, now, signers)


#: Why the demo's meeting of this month is held today rather than on the rule's day.
TODAY_REASON = "Đổi ngày để đồng chí Đảng ủy viên phụ trách thôn dự sinh hoạt cùng chi bộ."


def _todays_meeting(session: Session, actor: Actor, cell: Organisation, today: dt.date,
                    now: dt.datetime) -> mt.Meeting:
    """This month's regular meeting of An Mỹ, held tonight: a newcomer opens it today, on
    its day, as the README's walk-through does. When the rule's day (the 5th) is another day,
    the meeting is moved here with a reason, as a secretary would (``planning.dates``)."""
    tonight = dt.datetime.combine(today, dt.time(19, 30), tzinfo=LOCAL_TZ)
    rule_day = today.replace(day=5)
    month_start = dt.datetime.combine(today.replace(day=1), dt.time.min, tzinfo=LOCAL_TZ)
    meeting = session.scalar(select(mt.Meeting).where(
        mt.Meeting.cell_id == cell.id, mt.Meeting.kind == MeetingKind.REGULAR, mt.Meeting.starts_at >= month_start,
        mt.Meeting.starts_at < month_start + relativedelta(months=1)))
    if meeting is None:  # the rule's day has passed: the schedule left the month to the secretary
        meeting = mt.create_meeting(session, actor, cell, kind=MeetingKind.REGULAR,
                                    starts_at=dt.datetime.combine(rule_day, dt.time(19, 30), tzinfo=LOCAL_TZ),
                                    place=cell.address, title=f"Sinh hoạt thường kỳ tháng {today.month}/{today.year}",
                                    combined_thematic=today.month in (3, 6, 9, 12),
                                    topic=DEMO_RULES[0][1].topic if today.month in (3, 6, 9, 12) else None)
        meeting.occurrence_on = rule_day
        agenda.apply_template(session, meeting)
    if meeting.local_date != today:
        dates.move_meeting(session, actor, meeting, tonight, TODAY_REASON, now=now)
    return meeting
