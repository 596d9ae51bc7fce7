"""A small organisation for tests: one province, two communes, three cells, five accounts.

    P (province) ─┬─ X (commune) ─┬─ A (cell): a1 secretary, a2 member, a3 probationary, a4 away
                  │               └─ B (cell): b1 secretary, b2, b3
                  └─ Y (commune) ─── C (cell): c1, c2
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from meetings.foundation.actors import Actor
from meetings.foundation.base import LOCAL_TZ
from meetings.organisation import accounts, members, organisations
from meetings.organisation.accounts import Role, RoleGrant
from meetings.organisation.members import Member, MemberInput, PeriodInput, PeriodKind
from meetings.organisation.organisations import Organisation, OrgKind
from meetings.planning.meetings import Meeting, MeetingKind, create_meeting

PASSWORD = "mat-khau-thu-nghiem"
FOUNDED = dt.date(2025, 7, 1)


@dataclass
class World:
    orgs: dict[str, Organisation] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    accounts: dict[str, int] = field(default_factory=dict)
    #: A scheduled regular meeting of each cell, by cell key.
    meetings: dict[str, int] = field(default_factory=dict)
    #: A closed motion of the meeting, by cell key (after ``hold_meetings``).
    motions: dict[str, int] = field(default_factory=dict)

    def id(self, key: str) -> int:
        if key in self.orgs:
            return self.orgs[key].id
        return self.members[key].id


_card = iter(range(48_100_000, 48_200_000, 7))


def add_member(
    session: Session,
    cell: Organisation,
    name: str,
    *,
    status: str = "chính thức",
    admitted: dt.date = dt.date(2010, 5, 19),
    today: dt.date = dt.date(2026, 11, 27),
) -> Member:
    return members.create_member(
        session,
        Actor.system("test"),
        cell,
        MemberInput(
            full_name=name,
            birth_date=dt.date(1980, 1, 15),
            card_number=str(next(_card)) if status == "chính thức" else None,
            admitted_on=admitted,
            status=status,
        ),
        today=today,
    )


def build_world(session: Session) -> World:
    actor = Actor.system("test")
    w = World()

    def org(key: str, kind: OrgKind, name: str, parent: str | None) -> None:
        w.orgs[key] = organisations.create_organisation(
            session, actor, kind=kind, name=name, code=f"T-{key}",
            parent=w.orgs[parent] if parent else None, created_on=FOUNDED,
        )

    org("P", OrgKind.PROVINCE, "Tỉnh ủy Thử Nghiệm", None)
    org("X", OrgKind.COMMUNE, "Đảng ủy xã Xuân Hòa", "P")
    org("Y", OrgKind.COMMUNE, "Đảng ủy xã Yên Bình", "P")
    org("A", OrgKind.CELL, "Chi bộ thôn An Lạc", "X")
    org("B", OrgKind.CELL, "Chi bộ thôn Bắc Sơn", "X")
    org("C", OrgKind.CELL, "Chi bộ thôn Cẩm Thủy", "Y")

    for key, cell, name, status in (
        ("a1", "A", "Nguyễn Văn Ấn", "chính thức"),
        ("a2", "A", "Trần Thị Bích Ngọc", "chính thức"),
        ("a3", "A", "Lê Hoàng Dũng", "dự bị"),
        ("a4", "A", "Phạm Thị Hường", "chính thức"),
        ("b1", "B", "Đỗ Văn Bằng", "chính thức"),
        ("b2", "B", "Hồ Thị Bé", "chính thức"),
        ("b3", "B", "Vũ Đức Bảo", "chính thức"),
        ("c1", "C", "Ngô Quang Cường", "chính thức"),
        ("c2", "C", "Dương Thị Cúc", "chính thức"),
    ):
        admitted = dt.date(2026, 6, 1) if status == "dự bị" else dt.date(2010, 5, 19)
        w.members[key] = add_member(session, w.orgs[cell], name, status=status, admitted=admitted)
    members.add_period(
        session, actor, w.members["a4"],
        PeriodInput(kind=PeriodKind.AWAY, start_on=dt.date(2026, 3, 1), place="TP. Hồ Chí Minh",
                    host_org_name="Công ty TNHH Nam Việt"),
    )

    for username, member, role, org_key in (
        ("sec_a", "a1", Role.SECRETARY, "A"),
        ("mem_a", "a2", Role.MEMBER, "A"),
        ("away_a", "a4", Role.MEMBER, "A"),
        ("sec_b", "b1", Role.SECRETARY, "B"),
        ("aud_x", None, Role.AUDITOR, "X"),
        ("admin", None, Role.ADMIN, None),
    ):
        account = accounts.create_account(
            session, actor, username=username, password=PASSWORD,
            display_name=w.members[member].full_name if member else username,
            member=w.members[member] if member else None, must_change_password=False,
        )
        accounts.grant_role(session, actor, account, role, w.orgs[org_key] if org_key else None)
        w.accounts[username] = account.id
    session.flush()
    return w


def add_voters(session: Session, cell: Organisation, meeting_id: int, count: int) -> dict[int, tuple[str, str]]:
    """``count`` official members of ``cell`` with accounts, invited to join ``meeting_id``
    remotely; member id → (username, full name)."""
    from meetings.planning.meetings import RemoteInvite

    actor = Actor.system("test")
    voters = {}
    for i in range(count):
        member = add_member(session, cell, f"Cử Tri Số {i + 1:02d}")
        username = f"cutri{i:02d}"
        account = accounts.create_account(session, actor, username=username, password=PASSWORD,
                                          display_name=member.full_name, member=member, must_change_password=False)
        accounts.grant_role(session, actor, account, Role.MEMBER, cell)
        session.add(RemoteInvite(meeting_id=meeting_id, member_id=member.id))
        voters[member.id] = (username, member.full_name)
    session.flush()
    return voters
def signers(session: Session, meeting: Meeting) -> tuple[tuple[Actor, Member], tuple[Actor, Member]]:
    """The chair (the cell's secretary, else its first expected member) and a different
    member as minute-taker, each acting from their own account (created when missing):
    decision 13, the minute-taker confirms and the chair adopts."""
    from meetings.proceedings import attendance

    cell_accounts = {a.member_id: a for a in session.scalars(
        select(accounts.Account).join(RoleGrant, RoleGrant.account_id == accounts.Account.id)
        .where(RoleGrant.organisation_id == meeting.cell_id))}
    secretaries = set(session.scalars(select(accounts.Account.member_id).join(
        RoleGrant, RoleGrant.account_id == accounts.Account.id).where(
        RoleGrant.organisation_id == meeting.cell_id, RoleGrant.role == Role.SECRETARY)))
    people = [r.member_id for r in attendance.roster(session, meeting) if r.expected and r.in_roll]
    people.sort(key=lambda m: (m not in secretaries, m not in cell_accounts))
    chosen = []
    for member_id in people[:2]:
        member = session.get(Member, member_id)
        assert member is not None
        account = cell_accounts.get(member_id) or session.scalar(
            select(accounts.Account).where(accounts.Account.username == f"ky{member_id}")) or accounts.create_account(
            session, Actor.system("test"), username=f"ky{member_id}", password=PASSWORD,
            display_name=member.full_name, member=member, must_change_password=False)
        chosen.append((Actor(account.id, member.full_name), member))
    return chosen[0], chosen[1]


def adopt_minutes(session: Session, meeting: Meeting, when: dt.datetime, data: dict | None = None):  # type: ignore[no-untyped-def,type-arg]
    """Write, confirm (as the minute-taker) and adopt (as the chair) version 1 of the minutes."""
    from meetings.proceedings import minutes

    (chair, chair_member), (taker, taker_member) = signers(session, meeting)
    draft = minutes.draft(session, meeting)
    minutes.save_draft(session, chair, meeting, {
        "chair_member_id": chair_member.id, "taker_member_id": taker_member.id,
        "chair_name": chair_member.full_name, "taker_name": taker_member.full_name, "items": [], **(data or {})},
        base_revision=draft.revision, now=when)
    minutes.confirm_as_taker(session, taker, meeting, when)
    return minutes.adopt(session, chair, meeting, when)


def hold_meeting(session: Session, meeting_id: int) -> dict[str, int]:
    """Hold a meeting: open it, mark everyone expected present in person, take and close one
    vote, and adopt minutes (version 1)."""
    from meetings.planning.meetings import MeetingStatus, change_status
    from meetings.proceedings import attendance, votes

    actor = Actor.system("test")
    meeting = session.get(Meeting, meeting_id)
    assert meeting is not None
    start = meeting.starts_at
    change_status(session, actor, meeting, MeetingStatus.OPEN, now=start)
    for record in attendance.roster(session, meeting):
        if record.expected:
            attendance.mark(session, actor, meeting, record.member_id,
                            attendance.Mark(status="present", mode="in_person"), now=start)
    motion = votes.open_motion(session, actor, meeting, "Thông qua nghị quyết tháng 12", "open", start)
    votes.set_in_person_counts(session, actor, meeting, motion, agree=2, disagree=0, abstain=0)
    votes.close_motion(session, actor, meeting, motion, start)
    adopt_minutes(session, meeting, start)
    session.flush()
    return {"motion_id": motion.id, "version": 1}


def add_meetings(session: Session, w: World, cells: tuple[str, ...] = ("A", "B", "C")) -> None:
    """A scheduled regular meeting of each cell on 5 December 2026, 19:30."""
    actor = Actor.system("test")
    for key in cells:
        meeting = create_meeting(session, actor, w.orgs[key], kind=MeetingKind.REGULAR,
                                 starts_at=dt.datetime(2026, 12, 5, 19, 30, tzinfo=LOCAL_TZ), place="Nhà văn hóa")
        w.meetings[key] = meeting.id


def hold_meetings(session: Session, w: World, cells: tuple[str, ...] = ("A", "B")) -> None:
    """Hold a meeting of each cell (added if the world has none yet)."""
    add_meetings(session, w, tuple(k for k in cells if k not in w.meetings))
    for key in cells:
        w.motions[key] = hold_meeting(session, w.meetings[key])["motion_id"]
MEETING_START = dt.datetime(2026, 12, 5, 19, 30, tzinfo=dt.timezone(dt.timedelta(hours=7)))
WORLD_NOW = dt.datetime(2026, 11, 27, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))


def schedule_objects(session: Session, w: World, cell_key: str, absent_key: str, data_dir) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """A meeting of the cell on 5 December 2026, a PDF attached to it and an absence request."""
    from meetings.planning import absences, documents, schedules
    from meetings.planning.meetings import MeetingKind

    actor = Actor.system("test")
    cell = session.get(Organisation, w.id(cell_key))
    meeting = schedules.create_adhoc(session, actor, cell, kind=MeetingKind.REGULAR, starts_at=MEETING_START,
                                     now=WORLD_NOW)
    doc = documents.add_document(session, actor, meeting, filename="du-thao-nghi-quyet.pdf",
                                 data=b"%PDF-1.4\n% test document\n", root=data_dir, max_bytes=1 << 20,
                                 now=WORLD_NOW)
    request = absences.file_request(session, actor, meeting, w.id(absent_key), "Đi công tác", now=WORLD_NOW)
    session.flush()
    return {"meeting_id": meeting.id, "document_id": doc.id, "absence_id": request.id}


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01 a signed self-assessment, photographed"


def review_objects(session: Session, w: World, member_key: str, data_dir) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """A 2026 self-assessment of the member, submitted as a signed JPEG, and a host comment
    with a scanned letter (the review pages' downloads need both)."""
    from meetings.evaluation import reviews

    actor = Actor.system("test")
    member = session.get(Member, w.id(member_key))
    assert member is not None
    reviews.submit_self_assessment(session, actor, member, 2026, form=None, self_grade="httnv",
                                   file=("tu-kiem-diem.jpg", JPEG), root=data_dir, max_bytes=1 << 20,
                                   today=WORLD_NOW.date(), now=WORLD_NOW)
    comment = reviews.add_host_comment(session, actor, member, 2026, host_name="Chi bộ Công ty Nam Việt",
                                       text="Chấp hành tốt nội quy nơi làm việc.", file=("nhan-xet.jpg", JPEG),
                                       host_cell_id=None, root=data_dir, max_bytes=1 << 20,
                                       today=WORLD_NOW.date(), now=WORLD_NOW)
    session.flush()
    return {"year": 2026, "comment_id": comment.id}
