"""Room chat, kept with the meeting: plain text, length-limited, deletable by the chair."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..foundation import audit
from ..foundation.actors import Actor
from ..foundation.base import Base, UTCDateTime
from ..foundation.errors import NotFound, ValidationError
from ..foundation.text import clean_text

MAX_CHARS = 1000


class ChatMessage(Base):
    __tablename__ = "chat_messages"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"), index=True)
    account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    #: The room participant id and the name shown, as they were when the message was sent.
    participant: Mapped[str] = mapped_column(String(64))
    author_name: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    sent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    deleted_by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))


def clean_message(text: str) -> str:
    """Strip control characters, normalise; refuse empty or over-long messages."""
    cleaned = "".join(ch for ch in text if ch in "\n\t" or ch.isprintable())
    cleaned = "\n".join(clean_text(line) for line in cleaned.splitlines()).strip()
    if not cleaned:
        raise ValidationError("Tin nhắn trống.")
    if len(cleaned) > MAX_CHARS:
        raise ValidationError(f"Tin nhắn quá dài (tối đa {MAX_CHARS} ký tự).")
    return cleaned


def post(session: Session, meeting_id: int, *, account_id: int | None, member_id: int | None, participant: str,
         author_name: str, text: str, at: dt.datetime) -> ChatMessage:
    message = ChatMessage(meeting_id=meeting_id, account_id=account_id, member_id=member_id,
                          participant=participant, author_name=author_name, text=clean_message(text), sent_at=at)
    session.add(message)
    session.flush()
    return message


def history(session: Session, meeting_id: int, limit: int = 200) -> list[ChatMessage]:
    rows = session.scalars(
        select(ChatMessage)
        .where(ChatMessage.meeting_id == meeting_id, ChatMessage.deleted_at.is_(None))
        .order_by(ChatMessage.id.desc())
        .limit(limit)
    ).all()
    return list(reversed(rows))


def delete(session: Session, actor: Actor, meeting_id: int, cell_id: int, message_id: int,
           at: dt.datetime) -> ChatMessage:
    message = session.get(ChatMessage, message_id)
    if message is None or message.meeting_id != meeting_id or message.deleted_at is not None:
        raise NotFound("Không tìm thấy tin nhắn.")
    before = {"text": message.text, "author_name": message.author_name}
    message.deleted_at = at
    message.deleted_by_id = actor.account_id
    session.flush()
    audit.record(session, actor, "chat.delete", message, before, None, organisation_id=cell_id,
                 note=f"Cuộc họp #{meeting_id}")
    return message
