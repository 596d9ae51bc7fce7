"""Notices of meetings: an outbox in the database, delivered in-app and by e-mail.

When a meeting is announced (it comes within ``horizon`` of today), changed, moved or
cancelled, and again at each reminder offset before it (default 3 days and 2 hours), every
member expected on its date gets a notice; the first notice also goes to the supervising
committee (HD 42-HD/BTCTW: notify members *and* the upper committee; decision 4). Members not
expected — exempt, suspended, transferred out — get none (``meetings.eligibility``). Chi ủy
meetings are notified to the cell's secretary and deputies only (:func:`cell_leader_ids`):
the platform does not record the chi ủy's other members yet.

Each notice has an idempotency key (meeting, SEQUENCE, event, recipient) with a unique
constraint, so the same notice is never created twice, however often the job runs. E-mail
delivery claims one row at a time with a conditional UPDATE committed *before* the SMTP
transaction and marks it sent right after, so a worker that stops or restarts resumes with the
rows still pending and never sends a delivered notice again. The one window that cannot be
closed — a process killed after the SMTP server accepted a message but before "sent" was
committed — leaves the row ``sending``; it is later marked ``uncertain`` and *not* re-sent
(never twice wins over at least once; the in-app notice is there regardless).
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import ForeignKey, Integer, String, Text, and_, or_, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..foundation.base import LOCAL_TZ, Base, UTCDateTime, rows_changed, unit_of_work, utcnow
from ..organisation.accounts import Account, Role, RoleGrant
from ..organisation.eligibility import electorate
from ..organisation.members import Member
from ..organisation.organisations import Organisation
from .agenda import items_of
from .meetings import Meeting, MeetingKind, MeetingStatus
from .online import remote_decision
from .schedules import extend_all

log = logging.getLogger("chibo.notices")

WEEKDAYS = ["Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ nhật"]
#: Stands for PUBLIC_URL in bodies written where the site's address is not known (the
#: three-month flags are raised inside the domain); replaced when the e-mail is sent.
SITE = "{site}"
#: A row left "sending" this long belongs to a worker that died.
STALE_CLAIM = dt.timedelta(minutes=10)
MAX_ATTEMPTS = 5


class NoticeEvent(enum.StrEnum):
    SCHEDULED = "scheduled"
    CHANGED = "changed"
    CANCELLED = "cancelled"
    REMINDER = "reminder"

    @property
    def label(self) -> str:
        return {"scheduled": "Thông báo lịch họp", "changed": "Thay đổi lịch họp", "cancelled": "Hủy cuộc họp",
                "reminder": "Nhắc lịch họp"}[self.value]


class EmailStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    NO_ADDRESS = "none"
    EXPIRED = "expired"  # the meeting began before the e-mail could go
    FAILED = "failed"
    UNCERTAIN = "uncertain"


class Notice(Base):
    __tablename__ = "notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    #: The meeting the notice is about; None for notices about a member's record
    #: (three-month flags, ``meetings.three_month``), which carry their page in ``url``.
    meeting_id: Mapped[int | None] = mapped_column(ForeignKey("meetings.id"), index=True)
    url: Mapped[str | None] = mapped_column(String(300))
    event: Mapped[str] = mapped_column(String(20))
    sequence: Mapped[int] = mapped_column(Integer)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    email: Mapped[str | None] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    email_status: Mapped[str] = mapped_column(String(12), index=True)
    email_attempts: Mapped[int] = mapped_column(Integer, default=0)
    email_claimed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    email_sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    email_error: Mapped[str | None] = mapped_column(String(500))

    @property
    def link(self) -> str:
        """The page the notice points to, relative to the site."""
        return self.url or f"/meetings/{self.meeting_id}"


@dataclass(frozen=True)
class NoticeOptions:
    public_url: str = "http://127.0.0.1:8000"
    reminders: tuple[dt.timedelta, ...] = (dt.timedelta(days=3), dt.timedelta(hours=2))
    horizon: dt.timedelta = dt.timedelta(days=30)


@dataclass(frozen=True)
class OutgoingMail:
    to: str
    subject: str
    body: str
    message_id: str
    key: str


@dataclass
class RunReport:
    created: int = 0
    sent: int = 0
    failed: int = 0
    expired: int = 0
    uncertain: int = 0
    errors: list[str] = field(default_factory=list)


def parse_offsets(text: str) -> tuple[dt.timedelta, ...]:
    """"3d,2h,30m" → offsets before the meeting."""
    units = {"d": "days", "h": "hours", "m": "minutes"}
    result = []
    for part in text.split(","):
        part = part.strip().lower()
        if not part:
            continue
        if part[-1] not in units or not part[:-1].isdigit():
            raise ValueError(f"bad reminder offset {part!r} (use e.g. 3d, 2h, 30m)")
        result.append(dt.timedelta(**{units[part[-1]]: int(part[:-1])}))
    return tuple(sorted(result, reverse=True))


def _offset_tag(offset: dt.timedelta) -> str:
    return f"{int(offset.total_seconds() // 60)}m"


def _when(meeting: Meeting) -> str:
    local = meeting.starts_at.astimezone(LOCAL_TZ)
    return f"{local:%H:%M}, {WEEKDAYS[local.weekday()]} {local:%d/%m/%Y}"


def _offset_text(offset: dt.timedelta) -> str:
    if offset >= dt.timedelta(days=1) and offset.total_seconds() % 86400 == 0:
        return f"{offset.days} ngày"
    if offset.total_seconds() % 3600 == 0:
        return f"{int(offset.total_seconds() // 3600)} giờ"
    return f"{int(offset.total_seconds() // 60)} phút"


def compose(session: Session, meeting: Meeting, cell: Organisation, event: NoticeEvent, *, greeting: str,
            join_link: str | None, remote: bool, options: NoticeOptions,
            offset: dt.timedelta | None = None) -> tuple[str, str]:
    base = options.public_url.rstrip("/")
    when = _when(meeting)
    subject = {
        NoticeEvent.SCHEDULED: f"[{cell.name}] {meeting.title}: {when}",
        NoticeEvent.CHANGED: f"[{cell.name}] Thay đổi lịch: {meeting.title}, nay vào {when}",
        NoticeEvent.CANCELLED: f"[{cell.name}] Hủy cuộc họp: {meeting.title}",
        NoticeEvent.REMINDER: f"[{cell.name}] Nhắc lịch: {meeting.title}, {when}",
    }[event]
    opening = {
        NoticeEvent.SCHEDULED: f"{cell.name} thông báo {meeting.title.lower()}.",
        NoticeEvent.CHANGED: f"{cell.name} thay đổi lịch {meeting.title.lower()}.",
        NoticeEvent.CANCELLED: f"{cell.name} hủy {meeting.title.lower()} (dự kiến {when}).",
        NoticeEvent.REMINDER: f"Còn {_offset_text(offset or dt.timedelta())} nữa đến {meeting.title.lower()}.",
    }[event]
    lines = [greeting, "", opening]
    if event == NoticeEvent.CHANGED and meeting.moved_reason:
        lines.append(f"Lý do thay đổi: {meeting.moved_reason}")
    if event == NoticeEvent.CANCELLED and meeting.cancelled_reason:
        lines.append(f"Lý do hủy: {meeting.cancelled_reason}")
    if event != NoticeEvent.CANCELLED:
        lines += ["", f"Thời gian: {when} (giờ Việt Nam)", f"Địa điểm: {meeting.place or 'sẽ thông báo sau'}"]
        if meeting.topic:
            lines.append(f"Chuyên đề: {meeting.topic}")
        items = items_of(session, meeting.id)
        if items:
            lines += ["", "Nội dung:"]
            for n, item in enumerate(items, 1):
                mark = ""
                if item.in_person_only:
                    mark = (" (chỉ thảo luận trực tiếp — người tham gia từ xa không nhận tài liệu của nội dung này)"
                            if remote else " (chỉ thảo luận trực tiếp)")
                lines.append(f"  {n}. {item.title}{mark}")
        if join_link:
            lines += ["", f"Đồng chí được tham gia trực tuyến: {join_link}"]
        lines += ["", f"Xem chi tiết, tài liệu, gửi đơn xin vắng: {base}/meetings/{meeting.id}",
                  f"Thêm vào lịch (.ics): {base}/meetings/{meeting.id}/calendar.ics"]
    lines += ["", "Chi bộ trực tuyến — thư gửi tự động, xin đừng trả lời thư này."]
    return subject, "\n".join(lines)


def _pending_events(meeting: Meeting, now: dt.datetime, options: NoticeOptions) -> list[tuple[NoticeEvent, str, dt.timedelta | None]]:
    events: list[tuple[NoticeEvent, str, dt.timedelta | None]] = []
    announced = meeting.announced_sequence
    if meeting.status == MeetingStatus.CANCELLED:
        if announced is not None and announced < meeting.sequence:
            events.append((NoticeEvent.CANCELLED, "cancelled", None))
        return events
    if meeting.status != MeetingStatus.SCHEDULED or meeting.starts_at <= now:
        return events
    if announced is None:
        if meeting.starts_at <= now + options.horizon:
            events.append((NoticeEvent.SCHEDULED, "scheduled", None))
    elif announced < meeting.sequence:
        events.append((NoticeEvent.CHANGED, "changed", None))
    elif meeting.announced_at is not None:
        for offset in options.reminders:
            due = meeting.starts_at - offset
            # Only reminders that fall after the announcement: a meeting announced two days
            # ahead gets no "3 days before" reminder.
            if meeting.announced_at <= due <= now:
                events.append((NoticeEvent.REMINDER, f"reminder-{_offset_tag(offset)}", offset))
    return events


def enqueue(session: Session, meeting: Meeting, now: dt.datetime, options: NoticeOptions) -> list[Notice]:
    """Create the notices due now for ``meeting`` (idempotent); the caller commits."""
    events = _pending_events(meeting, now, options)
    if not events:
        return []
    return _create(session, meeting, events, now, options)


def announce_change_now(session: Session, meeting: Meeting, now: dt.datetime) -> list[Notice]:
    """Tell the expected members at once that the meeting was moved — a move made as the
    meeting starts, which the job would never announce (it tells only of meetings still
    ahead). The keys are the job's, so nobody is told twice; the e-mail expires (the meeting
    has begun), the in-app notice stays."""
    return _create(session, meeting, [(NoticeEvent.CHANGED, "changed", None)], now, NoticeOptions(public_url=SITE))


def _create(session: Session, meeting: Meeting, events: list[tuple[NoticeEvent, str, dt.timedelta | None]],
            now: dt.datetime, options: NoticeOptions) -> list[Notice]:
    cell = session.get(Organisation, meeting.cell_id)
    assert cell is not None
    existing = set(session.scalars(select(Notice.key).where(Notice.meeting_id == meeting.id)))
    entries = electorate(session, meeting.cell_id, meeting.local_date).expected
    if meeting.kind == MeetingKind.COMMITTEE:
        leaders = cell_leader_ids(session, meeting.cell_id)
        entries = [e for e in entries if e.member_id in leaders]
    people = {m.id: m for m in session.scalars(select(Member).where(Member.id.in_([e.member_id for e in entries])))}
    base = options.public_url.rstrip("/")
    created: list[Notice] = []
    for event, tag, offset in events:
        prefix = f"m{meeting.id}:s{meeting.sequence}:{tag}"
        for entry in entries:
            key = f"{prefix}:member{entry.member_id}"
            if key in existing:
                continue
            decision = remote_decision(session, meeting, entry.member_id, is_secretary=False)
            remote = decision.allowed
            subject, body = compose(
                session, meeting, cell, event, greeting=f"Kính gửi đồng chí {entry.full_name},",
                join_link=f"{base}/meetings/{meeting.id}/room" if remote else None, remote=remote,
                options=options, offset=offset,
            )
            email = people[entry.member_id].email
            created.append(Notice(key=key, meeting_id=meeting.id, event=event.value, sequence=meeting.sequence,
                                  member_id=entry.member_id, email=email, subject=subject, body=body, created_at=now,
                                  email_status=EmailStatus.PENDING if email else EmailStatus.NO_ADDRESS))
        if event == NoticeEvent.SCHEDULED and meeting.supervisor_id is not None \
                and meeting.kind != MeetingKind.COMMITTEE:
            key = f"{prefix}:org{meeting.supervisor_id}"
            committee = session.get(Organisation, meeting.supervisor_id)
            if key not in existing and committee is not None:
                subject, body = compose(session, meeting, cell, event, greeting=f"Kính gửi {committee.name},",
                                        join_link=None, remote=False, options=options)
                created.append(Notice(key=key, meeting_id=meeting.id, event=event.value, sequence=meeting.sequence,
                                      organisation_id=committee.id, email=committee.email, subject=subject, body=body,
                                      created_at=now,
                                      email_status=EmailStatus.PENDING if committee.email else EmailStatus.NO_ADDRESS))
    if any(e in (NoticeEvent.SCHEDULED, NoticeEvent.CHANGED, NoticeEvent.CANCELLED) for e, _, _ in events):
        meeting.announced_sequence = meeting.sequence
        meeting.announced_at = now
    session.add_all(created)
    session.flush()
    return created


def cell_leader_ids(session: Session, cell_id: int) -> set[int]:
    """Members holding the secretary or deputy role of the cell.

    The platform does not yet record who sits on the chi ủy, so notices of chi ủy meetings go
    to the cell's secretary and deputies only, not to every member.
    """
    return set(session.scalars(
        select(Account.member_id).join(RoleGrant, RoleGrant.account_id == Account.id).where(
            RoleGrant.organisation_id == cell_id, RoleGrant.role.in_([Role.SECRETARY, Role.DEPUTY]),
            Account.member_id.is_not(None))
    ))


def due_meetings(session: Session, now: dt.datetime, options: NoticeOptions) -> list[Meeting]:
    longest = max(options.reminders, default=dt.timedelta())
    return list(session.scalars(select(Meeting).where(or_(
        and_(Meeting.status == MeetingStatus.SCHEDULED, Meeting.announced_sequence.is_(None),
             Meeting.starts_at > now, Meeting.starts_at <= now + options.horizon),
        and_(Meeting.announced_sequence.is_not(None), Meeting.announced_sequence < Meeting.sequence),
        and_(Meeting.status == MeetingStatus.SCHEDULED, Meeting.announced_sequence.is_not(None),
             Meeting.starts_at > now, Meeting.starts_at <= now + longest),
    )).order_by(Meeting.starts_at)))


def _message_id(key: str, domain: str) -> str:
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@{domain}>"


def run_due_notices(sessions: Callable[[], Session], now: dt.datetime, send: Callable[[OutgoingMail], None] | None,
                    options: NoticeOptions, *, should_stop: Callable[[], bool] = lambda: False,
                    extend: bool = True) -> RunReport:
    """One pass of the background job: extend schedules, create due notices, send e-mail.

    ``sessions`` makes a new database session; every step commits on its own, so the state
    lives in the database and a new worker after a restart continues where this one stopped.
    ``send`` delivers one message or raises; None leaves e-mail pending (no SMTP configured).
    """
    report = RunReport()
    with unit_of_work(sessions) as session:
        if extend:
            extend_all(session, now)
        report.uncertain = rows_changed(session,
            update(Notice).where(Notice.email_status == EmailStatus.SENDING, Notice.email_claimed_at < now - STALE_CLAIM)
            .values(email_status=EmailStatus.UNCERTAIN,
                    email_error="Máy chủ dừng giữa chừng khi gửi; không gửi lại để tránh trùng.")
        )
        for meeting in due_meetings(session, now, options):
            report.created += len(enqueue(session, meeting, now, options))
    if send is None:
        return report
    domain = options.public_url.split("//")[-1].split("/")[0].split(":")[0] or "chibo"
    while not should_stop():
        with unit_of_work(sessions) as session:
            row = session.execute(
                select(Notice.id, Notice.key, Notice.email, Notice.subject, Notice.body, Meeting.starts_at, Notice.event)
                .outerjoin(Meeting, Meeting.id == Notice.meeting_id)
                .where(Notice.email_status == EmailStatus.PENDING).order_by(Notice.id).limit(1)
            ).first()
            if row is None:
                break
            if row.starts_at is not None and row.starts_at <= now:
                session.execute(update(Notice).where(Notice.id == row.id).values(email_status=EmailStatus.EXPIRED))
                report.expired += 1
                continue
            claimed = rows_changed(session,
                update(Notice).where(Notice.id == row.id, Notice.email_status == EmailStatus.PENDING)
                .values(email_status=EmailStatus.SENDING, email_claimed_at=now, email_attempts=Notice.email_attempts + 1)
            )
            if claimed != 1:
                continue  # another worker took it
        mail = OutgoingMail(to=row.email, subject=row.subject, body=row.body.replace(SITE, options.public_url.rstrip("/")),
                            message_id=_message_id(row.key, domain), key=row.key)
        try:
            send(mail)
        except Exception as exc:  # the server refused or is unreachable: retry on a later run
            with unit_of_work(sessions) as session:
                attempts = session.scalar(select(Notice.email_attempts).where(Notice.id == row.id)) or 0
                session.execute(update(Notice).where(Notice.id == row.id).values(
                    email_status=EmailStatus.FAILED if attempts >= MAX_ATTEMPTS else EmailStatus.PENDING,
                    email_error=str(exc)[:500]))
            report.failed += 1
            report.errors.append(str(exc))
            log.warning("notice e-mail not sent", extra={"fields": {"notice": row.id, "error": str(exc)}})
            break
        except BaseException:
            # Shutdown while handing over the message (the mailer raises before the SMTP DATA
            # is accepted): give the row back so the next worker sends it.
            with unit_of_work(sessions) as session:
                session.execute(update(Notice).where(Notice.id == row.id, Notice.email_status == EmailStatus.SENDING)
                                .values(email_status=EmailStatus.PENDING))
            raise
        with unit_of_work(sessions) as session:
            session.execute(update(Notice).where(Notice.id == row.id).values(
                email_status=EmailStatus.SENT, email_sent_at=now, email_error=None))
        report.sent += 1
    return report


def notices_for_member(session: Session, member_id: int, limit: int = 20) -> list[Notice]:
    return list(session.scalars(
        select(Notice).where(Notice.member_id == member_id).order_by(Notice.id.desc()).limit(limit)
    ))


def notices_for_organisation(session: Session, org_id: int, limit: int = 20) -> list[Notice]:
    return list(session.scalars(
        select(Notice).where(Notice.organisation_id == org_id).order_by(Notice.id.desc()).limit(limit)
    ))


def notices_of_meeting(session: Session, meeting_id: int) -> list[Notice]:
    return list(session.scalars(select(Notice).where(Notice.meeting_id == meeting_id).order_by(Notice.id)))


def tell_account_owner(session: Session, account: Account, *, event: str, subject: str, body: str,
                       now: dt.datetime, url: str = "/") -> Notice | None:
    """An in-app notice and an e-mail to the person who owns ``account`` (security events:
    a password reset by someone else, a login lockout). Accounts not linked to a member have
    no inbox yet; the audit log keeps the event for them."""
    if account.member_id is None:
        return None
    member = session.get(Member, account.member_id)
    if member is None:
        return None
    # Two events in the same instant (two resets from two tabs) are two notices.
    stamp = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%f") + "-" + secrets.token_hex(4)
    notice = Notice(
        key=f"account:{account.id}:{event}:{stamp}", meeting_id=None, url=url, event=event, sequence=0,
        member_id=member.id, organisation_id=None, email=member.email, subject=subject[:300],
        body=f"Kính gửi đồng chí {member.full_name},\n\n{body}", created_at=now,
        email_status=EmailStatus.PENDING if member.email else EmailStatus.NO_ADDRESS,
    )
    session.add(notice)
    session.flush()
    return notice
