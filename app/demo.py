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

from meetings import accounts, members, organisations
from meetings import meetings as mt
from meetings.accounts import Role
from meetings.actors import Actor
from meetings.base import LOCAL_TZ
from meetings.members import ExemptKind, MemberInput, PeriodInput, PeriodKind
from meetings.organisations import Organisation, OrgKind

DEMO_PASSWORD = "chibo-demo-2026"


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    role: str
    who: str


DEMO_ACCOUNTS = (
    DemoAccount("bithu", DEMO_PASSWORD, "Bí thư Chi bộ thôn An Mỹ", "secretary"),
    DemoAccount("dangvien", DEMO_PASSWORD, "Đảng viên Chi bộ thôn An Mỹ", "member"),
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

    # An Mỹ: most members work far away, so the commune approved it for the online pilot
    # (HD 03-HD/TW) and this month's meeting is open to remote participation.
    session.add(mt.PilotApproval(
        cell_id=cells[0].id, decision_number="128-QĐ/ĐU", decided_on=dt.date(2026, 2, 10),
        approving_org_id=communes[0].id, approving_body=communes[0].name, valid_from=dt.date(2026, 2, 15),
        note="Hơn một nửa đảng viên đi làm ăn xa"))
    mt.create_meeting(
        session, actor, cells[0], kind=mt.MeetingKind.REGULAR,
        starts_at=dt.datetime.combine(today, dt.time(19, 30), tzinfo=LOCAL_TZ), expected_minutes=120,
        place="Nhà văn hóa thôn An Mỹ", remote_open=True)

    anmy = first_members["QT-CL-ANMY"]
    for demo, member, role, org in (
        (DEMO_ACCOUNTS[0], anmy[0], Role.SECRETARY, cells[0]),
        (DEMO_ACCOUNTS[1], anmy[-4], Role.MEMBER, cells[0]),
        (DEMO_ACCOUNTS[2], anmy[1], Role.MEMBER, cells[0]),
        (DEMO_ACCOUNTS[3], None, Role.AUDITOR, communes[0]),
        (DEMO_ACCOUNTS[4], None, Role.ADMIN, province),
    ):
        account = accounts.create_account(
            session, actor, username=demo.username, password=demo.password,
            display_name=member.full_name if member else demo.role, member=member,
            must_change_password=False,
        )
        accounts.grant_role(session, actor, account, role, org)
        if member is not None and role != Role.MEMBER:
            accounts.grant_role(session, actor, account, Role.MEMBER, org)
    session.flush()
    return True
