"""Documents attached to a meeting, and who opened them.

HD 42-HD/BTCTW asks that meeting documents reach members at least one day before the meeting
(decision 4): the meeting page warns about any document published later than that. Files are
type-checked by their first bytes (PDF, DOCX, PNG, JPEG — the name's extension must agree),
size-checked against a setting, and stored under ``DATA_DIR/documents``. Every opening by an
account is recorded (HD 03 practice: record who saw which document). Documents of an agenda
item marked *in person only* are not given to remote participants.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import uuid
import zipfile
from pathlib import Path

from sqlalchemy import ForeignKey, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column, relationship

from ..foundation import audit
from ..foundation.actors import Actor
from ..foundation.base import Base, UTCDateTime, utcnow
from ..foundation.errors import Forbidden, NotFound, ValidationError
from ..foundation.text import clean_text
from ..organisation.accounts import Account
from ..organisation.members import Member
from .agenda import AgendaItem
from .meetings import Meeting, MeetingStatus

#: HD 42: documents at least one day before the meeting.
MIN_NOTICE = dt.timedelta(days=1)

KINDS = {
    "pdf": ("application/pdf", {".pdf"}),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", {".docx"}),
    "png": ("image/png", {".png"}),
    "jpeg": ("image/jpeg", {".jpg", ".jpeg"}),
}


class MeetingDocument(Base):
    __tablename__ = "meeting_documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"), index=True)
    agenda_item_id: Mapped[int | None] = mapped_column(ForeignKey("agenda_items.id"), index=True)
    #: Deleting an agenda item sets this to None (the ORM's default for a relationship without
    #: a delete cascade): the document stays with the meeting, and ``agenda`` need not know
    #: about documents.
    agenda_item: Mapped[AgendaItem | None] = relationship(backref="documents")
    filename: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(10))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    stored_name: Mapped[str] = mapped_column(String(100), unique=True)
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    published_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    removed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    @property
    def content_type(self) -> str:
        return KINDS[self.kind][0]


class DocumentAccess(Base):
    """One opening of a document by an account (and the member behind it, if any)."""

    __tablename__ = "document_accesses"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("meeting_documents.id"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


DOCUMENT_FIELDS = ("meeting_id", "agenda_item_id", "filename", "kind", "size", "sha256", "published_at", "removed_at")


def sniff(data: bytes) -> str | None:
    """The document kind from its first bytes, or None if it is not one we accept."""
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                names = set(archive.namelist())
        except zipfile.BadZipFile:
            return None
        if "word/document.xml" in names and "[Content_Types].xml" in names:
            return "docx"
    return None


def _safe_name(filename: str) -> str:
    name = clean_text(Path(filename.replace("\\", "/")).name)
    name = "".join(c for c in name if c.isprintable() and c not in '"<>|:*?')
    return name[:200] or "tai-lieu"


def check_upload(filename: str, data: bytes, *, max_bytes: int, kinds: tuple[str, ...] = tuple(KINDS)
                 ) -> tuple[str, str]:
    """A safe file name and the kind of an uploaded file, checked by content and size; the
    name's extension must agree with the content. Raises ValidationError in Vietnamese."""
    name = _safe_name(filename or "")
    if not data:
        raise ValidationError("Tệp tải lên bị trống.", field="file")
    if len(data) > max_bytes:
        raise ValidationError(f"Tệp “{name}” quá lớn ({len(data) / 1048576:.1f} MB); giới hạn là "
                              f"{max_bytes / 1048576:.0f} MB.", field="file")
    kind = sniff(data)
    if kind is None or kind not in kinds:
        names = [k.upper() for k in kinds]
        allowed = f"{', '.join(names[:-1])} hoặc {names[-1]}" if len(names) > 1 else names[0]
        raise ValidationError(f"Tệp “{name}” không phải {allowed} (kiểm tra theo nội dung tệp).", field="file")
    if Path(name).suffix.lower() not in KINDS[kind][1]:
        raise ValidationError(f"Tên tệp “{name}” không khớp với nội dung (tệp là {kind.upper()}).", field="file")
    return name, kind


def store(root: Path, folder: str, prefix: str, data: bytes) -> str:
    """Write an upload under ``root/folder`` with an unguessable name; returns that name."""
    stored = f"{prefix}-{uuid.uuid4().hex}"
    directory = root / folder
    directory.mkdir(parents=True, exist_ok=True)
    (directory / stored).write_bytes(data)
    return stored


def load(root: Path, folder: str, stored: str) -> bytes:
    path = root / folder / stored
    if not path.exists():
        raise NotFound("Không tìm thấy tệp trên máy chủ.")
    return path.read_bytes()


def add_document(session: Session, actor: Actor, meeting: Meeting, *, filename: str, data: bytes, root: Path,
                 max_bytes: int, now: dt.datetime, agenda_item_id: int | None = None) -> MeetingDocument:
    if meeting.status == MeetingStatus.CANCELLED:
        raise ValidationError("Cuộc họp đã bị hủy, không đăng tài liệu được.")
    name, kind = check_upload(filename, data, max_bytes=max_bytes)
    if agenda_item_id is not None:
        item = session.get(AgendaItem, agenda_item_id)
        if item is None or item.meeting_id != meeting.id:
            raise ValidationError("Nội dung chương trình đã chọn không thuộc cuộc họp này.", field="agenda_item_id")
    stored = store(root, "documents", str(meeting.id), data)
    doc = MeetingDocument(meeting_id=meeting.id, agenda_item_id=agenda_item_id, filename=name, kind=kind,
                          size=len(data), sha256=hashlib.sha256(data).hexdigest(), stored_name=stored,
                          uploaded_by_id=actor.account_id, published_at=now)
    session.add(doc)
    meeting.touched = True
    session.flush()
    audit.record(session, actor, "document.add", doc, None, audit.snapshot(doc, DOCUMENT_FIELDS),
                 organisation_id=meeting.cell_id)
    return doc


def remove_document(session: Session, actor: Actor, doc: MeetingDocument, meeting: Meeting, now: dt.datetime) -> None:
    """Withdraw a document (the file and its access log are kept)."""
    if doc.removed_at is not None:
        raise ValidationError(f"Tài liệu “{doc.filename}” đã được gỡ.")
    before = audit.snapshot(doc, DOCUMENT_FIELDS)
    doc.removed_at = now
    session.flush()
    audit.record(session, actor, "document.remove", doc, before, audit.snapshot(doc, DOCUMENT_FIELDS),
                 organisation_id=meeting.cell_id)


def documents_of(session: Session, meeting_id: int) -> list[MeetingDocument]:
    return list(session.scalars(
        select(MeetingDocument)
        .where(MeetingDocument.meeting_id == meeting_id, MeetingDocument.removed_at.is_(None))
        .order_by(MeetingDocument.published_at, MeetingDocument.id)
    ))


def in_person_item_ids(session: Session, meeting_id: int) -> set[int]:
    return set(session.scalars(
        select(AgendaItem.id).where(AgendaItem.meeting_id == meeting_id, AgendaItem.in_person_only.is_(True))
    ))


def is_late(doc: MeetingDocument, meeting: Meeting) -> bool:
    return doc.published_at > meeting.starts_at - MIN_NOTICE


def late_warning(doc: MeetingDocument, meeting: Meeting) -> str | None:
    if not is_late(doc, meeting):
        return None
    hours = max(0, int((meeting.starts_at - doc.published_at).total_seconds() // 3600))
    when = "sau khi cuộc họp bắt đầu" if doc.published_at >= meeting.starts_at else f"{hours} giờ trước cuộc họp"
    return (f"Tài liệu “{doc.filename}” đăng {when}: < 1 ngày, chưa đủ thời gian đảng viên nghiên cứu "
            "(Hướng dẫn 42-HD/BTCTW).")


def open_document(session: Session, doc_id: int, *, meeting: Meeting, account_id: int, member_id: int | None,
                  remote_only: bool, root: Path, now: dt.datetime) -> tuple[MeetingDocument, bytes]:
    """Read a document and log the opening. ``remote_only``: the reader takes part remotely."""
    doc = session.get(MeetingDocument, doc_id)
    if doc is None or doc.meeting_id != meeting.id or doc.removed_at is not None:
        raise NotFound()
    if remote_only and doc.agenda_item_id in in_person_item_ids(session, meeting.id):
        raise Forbidden("Tài liệu này thuộc nội dung chỉ thảo luận trực tiếp, không gửi cho người tham gia từ xa.")
    data = load(root, "documents", doc.stored_name)
    session.add(DocumentAccess(document_id=doc.id, account_id=account_id, member_id=member_id, at=now))
    session.flush()
    return doc, data


def readers(session: Session, meeting_id: int) -> dict[int, list[tuple[str, dt.datetime]]]:
    """For each document of the meeting: who opened it (member name or account), first opening."""
    rows = session.execute(
        select(DocumentAccess.document_id, Member.full_name, Account.display_name, DocumentAccess.at)
        .join(MeetingDocument, MeetingDocument.id == DocumentAccess.document_id)
        .outerjoin(Member, Member.id == DocumentAccess.member_id)
        .outerjoin(Account, Account.id == DocumentAccess.account_id)
        .where(MeetingDocument.meeting_id == meeting_id)
        .order_by(DocumentAccess.at)
    )
    result: dict[int, list[tuple[str, dt.datetime]]] = {}
    seen: set[tuple[int, str]] = set()
    for doc_id, member_name, account_name, at in rows:
        who = member_name or account_name or "?"
        if (doc_id, who) in seen:
            continue
        seen.add((doc_id, who))
        result.setdefault(doc_id, []).append((who, at))
    return result
