"""A meeting's agenda: a template per kind, then edited per meeting by the secretary.

The templates follow the order the guidance prescribes for a cell meeting (Hướng dẫn
12-HD/BTCTW, 06/7/2018, continued by Hướng dẫn 42-HD/BTCTW, 28/10/2025; shared/domain/
regulations.md §2): dues, guests and attendance, agenda and minute-taker, then the body, the
vote on the resolution, and the minutes read back. A thematic meeting replaces "evaluate last
month" by "present the topic → discussion → conclusion".

An item can be marked *in person only* (chỉ thảo luận trực tiếp): remote participants are told
so, and its documents are not given to them (a design precaution of HD 03-HD/TW practice).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..foundation import audit
from ..foundation.actors import Actor
from ..foundation.base import Base, UTCDateTime, utcnow
from ..foundation.errors import ValidationError
from ..foundation.text import clean_text, optional_text
from .meetings import Meeting, MeetingKind


class AgendaItem(Base):
    __tablename__ = "agenda_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(300))
    detail: Mapped[str | None] = mapped_column(Text)
    in_person_only: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


_OPENING = [
    "Thu đảng phí",
    "Giới thiệu đại biểu; báo cáo tình hình đảng viên dự họp (tổng số, miễn sinh hoạt, có mặt, "
    "vắng mặt có lý do và không có lý do)",
    "Thông qua chương trình và những nội dung trọng tâm; cử thư ký cuộc họp",
]
_CLOSING = ["Thông qua biên bản cuộc họp; bế mạc"]
_THEMATIC_BODY = [
    "Trình bày chuyên đề",
    "Thảo luận chuyên đề",
    "Chủ trì kết luận chuyên đề",
]

TEMPLATES: dict[MeetingKind, list[str]] = {
    MeetingKind.REGULAR: [
        *_OPENING,
        "Thông tin thời sự, chính trị và chỉ đạo của cấp trên",
        "Đánh giá kết quả thực hiện nghị quyết tháng trước: việc đã làm, chưa làm, nguyên nhân",
        "Thảo luận, đề ra nhiệm vụ tháng tới; phân công nhiệm vụ cho đảng viên",
        "Biểu quyết thông qua kết luận / nghị quyết",
        *_CLOSING,
    ],
    MeetingKind.THEMATIC: [*_OPENING, *_THEMATIC_BODY, *_CLOSING],
    MeetingKind.COMMITTEE: [
        "Thống nhất nội dung sinh hoạt chi bộ tháng này",
        "Kiểm điểm việc thực hiện nhiệm vụ tháng trước, dự kiến nhiệm vụ tháng tới",
        "Chuẩn bị dự thảo nghị quyết; phân công người chuẩn bị nội dung",
        "Thông báo thời gian, địa điểm, nội dung cho đảng viên và cấp ủy cấp trên; đăng tài liệu "
        "trước ít nhất 1 ngày",
    ],
    MeetingKind.EXTRAORDINARY: [
        *_OPENING,
        "Nội dung cần giải quyết",
        "Thảo luận",
        "Biểu quyết thông qua kết luận / nghị quyết",
        *_CLOSING,
    ],
}


def template_for(kind: MeetingKind, *, combined_thematic: bool = False) -> list[str]:
    items = list(TEMPLATES[kind])
    if kind == MeetingKind.REGULAR and combined_thematic:
        # The thematic session comes after the month's tasks, before the vote (HD 12/2018:
        # one session holding both).
        vote = items.index("Biểu quyết thông qua kết luận / nghị quyết")
        items[vote:vote] = [f"Sinh hoạt chuyên đề: {t.lower()}" for t in _THEMATIC_BODY]
    return items


def apply_template(session: Session, meeting: Meeting) -> list[AgendaItem]:
    session.execute(delete(AgendaItem).where(AgendaItem.meeting_id == meeting.id))
    items = [
        AgendaItem(meeting_id=meeting.id, position=i, title=title, in_person_only=False)
        for i, title in enumerate(template_for(meeting.kind, combined_thematic=meeting.combined_thematic), 1)
    ]
    session.add_all(items)
    session.flush()
    return items


def items_of(session: Session, meeting_id: int) -> list[AgendaItem]:
    return list(
        session.scalars(
            select(AgendaItem).where(AgendaItem.meeting_id == meeting_id).order_by(AgendaItem.position, AgendaItem.id)
        )
    )


@dataclass
class ItemInput:
    title: str
    detail: str | None = None
    in_person_only: bool = False
    item_id: int | None = None


def _snapshot(items: list[AgendaItem]) -> list[dict[str, object]]:
    return [{"title": i.title, "detail": i.detail, "in_person_only": i.in_person_only} for i in items]


def save_items(session: Session, actor: Actor, meeting: Meeting, rows: list[ItemInput]) -> list[AgendaItem]:
    """Replace the agenda with ``rows`` (in order); items keep their ids where given."""
    cleaned: list[ItemInput] = []
    for n, row in enumerate(rows, 1):
        title = clean_text(row.title)
        if not title:
            continue
        if len(title) > 300:
            raise ValidationError(f"Mục {n} của chương trình quá dài (tối đa 300 ký tự).")
        cleaned.append(ItemInput(title, optional_text(row.detail), row.in_person_only, row.item_id))
    if not cleaned:
        raise ValidationError("Chương trình cuộc họp phải có ít nhất một nội dung.")
    existing = {i.id: i for i in items_of(session, meeting.id)}
    before = _snapshot(list(existing.values()))
    kept: list[AgendaItem] = []
    for position, row in enumerate(cleaned, 1):
        item = existing.pop(row.item_id, None) if row.item_id is not None else None
        if item is None:
            item = AgendaItem(meeting_id=meeting.id)
            session.add(item)
        item.position, item.title, item.detail, item.in_person_only = position, row.title, row.detail, row.in_person_only
        kept.append(item)
    for gone in existing.values():
        # Documents attached to a removed item stay with the meeting (``documents`` maps the
        # link so that deleting the item sets their item to none).
        session.delete(gone)
    session.flush()
    after = _snapshot(kept)
    if after != before:
        audit.record(session, actor, "agenda.update", meeting, {"items": before}, {"items": after},
                     organisation_id=meeting.cell_id)
    return kept
