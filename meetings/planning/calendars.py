"""Calendars (RFC 5545): an ``.ics`` file per meeting and a private feed per member.

Each meeting keeps one UID for life and its SEQUENCE grows with every change members are told
about, so calendar programs update the event in place; a cancelled meeting is sent with
STATUS:CANCELLED, and its own file with METHOD:CANCEL. Times are written in
Asia/Ho_Chi_Minh with the VTIMEZONE included. A member's feed URL carries a random secret; only
its SHA-256 is stored, and issuing a new one revokes the old.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Iterable

from icalendar import Calendar, Event
from sqlalchemy import ForeignKey, Integer, String, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..foundation.base import LOCAL_TZ, Base, UTCDateTime, utcnow
from ..organisation.eligibility import electorate
from ..organisation.members import Member
from ..organisation.organisations import Organisation
from ..organisation.scoping import member_cells
from .meetings import Meeting, MeetingKind, MeetingStatus
from .notices import cell_leader_ids

PRODID = "-//Chi bo truc tuyen//Lich sinh hoat chi bo//VI"


class CalendarFeed(Base):
    __tablename__ = "calendar_feeds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_feed(session: Session, member_id: int, now: dt.datetime) -> str:
    """A new secret feed token for the member; any earlier one stops working."""
    revoke_feeds(session, member_id, now)
    token = secrets.token_urlsafe(24)
    session.add(CalendarFeed(member_id=member_id, token_hash=_hash(token), created_at=now))
    session.flush()
    return token


def revoke_feeds(session: Session, member_id: int, now: dt.datetime) -> None:
    session.execute(update(CalendarFeed).where(CalendarFeed.member_id == member_id, CalendarFeed.revoked_at.is_(None))
                    .values(revoked_at=now))


def active_feed(session: Session, member_id: int) -> CalendarFeed | None:
    return session.scalar(select(CalendarFeed).where(CalendarFeed.member_id == member_id,
                                                     CalendarFeed.revoked_at.is_(None)))


def member_for_token(session: Session, token: str) -> Member | None:
    if not token or len(token) > 100:
        return None
    feed = session.scalar(select(CalendarFeed).where(CalendarFeed.token_hash == _hash(token),
                                                     CalendarFeed.revoked_at.is_(None)))
    return session.get(Member, feed.member_id) if feed else None


def _event(meeting: Meeting, cell_name: str, base_url: str, stamp: dt.datetime) -> Event:
    event = Event()
    event.add("uid", meeting.uid)
    event.add("sequence", meeting.sequence)
    event.add("dtstamp", stamp.astimezone(dt.UTC))
    event.add("dtstart", meeting.starts_at.astimezone(LOCAL_TZ))
    event.add("dtend", meeting.ends_at.astimezone(LOCAL_TZ))
    event.add("summary", f"{meeting.title} — {cell_name}")
    if meeting.place:
        event.add("location", meeting.place)
    url = f"{base_url.rstrip('/')}/meetings/{meeting.id}"
    description = [meeting.kind.label]
    if meeting.topic:
        description.append(f"Chuyên đề: {meeting.topic}")
    if meeting.moved_reason and meeting.status != MeetingStatus.CANCELLED:
        description.append(f"Lý do thay đổi: {meeting.moved_reason}")
    if meeting.status == MeetingStatus.CANCELLED and meeting.cancelled_reason:
        description.append(f"Đã hủy. Lý do: {meeting.cancelled_reason}")
    description.append(url)
    event.add("description", "\n".join(description))
    event.add("url", url)
    event.add("status", "CANCELLED" if meeting.status == MeetingStatus.CANCELLED else "CONFIRMED")
    event.add("last-modified", meeting.updated_at.astimezone(dt.UTC))
    return event


def _calendar(method: str, name: str) -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)
    cal.add("x-wr-calname", name)
    cal.add("x-wr-timezone", "Asia/Ho_Chi_Minh")
    return cal


def meeting_ics(meeting: Meeting, cell: Organisation, base_url: str, now: dt.datetime) -> bytes:
    """One meeting: METHOD:CANCEL once cancelled, PUBLISH otherwise."""
    method = "CANCEL" if meeting.status == MeetingStatus.CANCELLED else "PUBLISH"
    cal = _calendar(method, cell.name)
    cal.add_component(_event(meeting, cell.name, base_url, now))
    cal.add_missing_timezones()
    return bytes(cal.to_ical())


def member_meetings(session: Session, member: Member, now: dt.datetime, *, past_days: int = 92) -> list[Meeting]:
    """The meetings the member is expected at (home cell and any host cell), recent and ahead.

    Chi ủy meetings only for the cell's secretary and deputies (see ``notices.cell_leader_ids``).
    """
    cells = member_cells(session, member, now.astimezone(LOCAL_TZ).date())
    if not cells:
        return []
    found = session.scalars(select(Meeting).where(
        Meeting.cell_id.in_(cells), Meeting.starts_at >= now - dt.timedelta(days=past_days)
    ).order_by(Meeting.starts_at))
    result: list[Meeting] = []
    cache: dict[tuple[int, dt.date], bool] = {}
    leads = {c for c in cells if member.id in cell_leader_ids(session, c)}
    for meeting in found:
        if meeting.kind == MeetingKind.COMMITTEE and meeting.cell_id not in leads:
            continue
        key = (meeting.cell_id, meeting.local_date)
        if key not in cache:
            entry = electorate(session, meeting.cell_id, meeting.local_date).get(member.id)
            cache[key] = entry is not None and entry.expected
        if cache[key]:
            result.append(meeting)
    return result


def feed_ics(session: Session, member: Member, base_url: str, now: dt.datetime) -> bytes:
    cal = _calendar("PUBLISH", f"Lịch sinh hoạt đảng — {member.full_name}")
    meetings = member_meetings(session, member, now)
    names = {o.id: o.name for o in session.scalars(
        select(Organisation).where(Organisation.id.in_({m.cell_id for m in meetings})))} if meetings else {}
    for meeting in meetings:
        cal.add_component(_event(meeting, names.get(meeting.cell_id, ""), base_url, now))
    cal.add_missing_timezones()
    return bytes(cal.to_ical())


def all_uids(meetings: Iterable[Meeting]) -> list[str]:
    return [m.uid for m in meetings]
