"""The append-only, hash-chained audit log.

Every change made by a secretary, auditor or admin records who, when, what, and the values
before and after, in the same transaction as the change itself: ``record`` only adds a row to
the caller's session, so the entry commits or rolls back together with the change. The
database refuses UPDATE and DELETE on the table (triggers created by the migrations).

**Hash chain.** Entries are numbered 1, 2, 3, … (``seq``) and each carries the hash of the
entry before it (``prev_hash``) and its own hash over its content and that link
(``entry_hash``, :func:`entry_hash`). Someone who gets around the triggers and alters a row
breaks its hash; removing a row leaves a gap in ``seq`` and a link that points nowhere;
removing the newest rows leaves the chain shorter than the head row (``audit_chain``) says.
:func:`verify` finds all three. Someone able to rewrite the *whole* chain after a point and
the head row is not caught by the chain alone: :func:`verify` also checks anchors — a
(seq, hash) pair written down elsewhere earlier (``python -m app verify-audit`` prints the
current one).

**Ordering and locking.** The next number and the previous hash come from the single head row,
claimed by ``UPDATE audit_chain SET seq = seq + 1 … RETURNING``: on PostgreSQL the row lock is
held until the transaction ends, so concurrent writers append one after another instead of
forking the chain (the second waits, then sees the first's committed head); SQLite allows one
writer at a time anyway. A transaction that writes an audit entry therefore holds the head
row until it commits — keep audited transactions short.

**When.** ``at`` is the wall clock when the row is written, never the app's settable clock
(``create_app(clock=…)``): the log says when a change really happened.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, select, text
from sqlalchemy.orm import Mapped, Session, mapped_column

from .actors import Actor
from .base import Base, JSONType, UTCDateTime, json_safe, utcnow

#: The link of entry 1.
GENESIS = "0" * 64


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_account_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"), index=True)
    actor_label: Mapped[str] = mapped_column(String(200))
    actor_address: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64), index=True)
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    #: The organisation the change concerns, for scoping the log to an auditor's subtree.
    organisation_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    before: Mapped[Any] = mapped_column(JSONType, nullable=True)
    after: Mapped[Any] = mapped_column(JSONType, nullable=True)
    note: Mapped[str | None] = mapped_column(Text)
    #: Position in the chain: 1, 2, 3, … without gaps.
    seq: Mapped[int] = mapped_column(Integer, unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """The newest entry's number and hash: one row (id 1), locked by each writer."""

    __tablename__ = "audit_chain"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, default=0)
    head_hash: Mapped[str] = mapped_column(String(64), default=GENESIS)


def entry_hash(prev_hash: str, seq: int, at: dt.datetime, actor_account_id: int | None, actor_label: str,
               actor_address: str | None, action: str, entity_type: str, entity_id: str | None,
               organisation_id: int | None, before: Any, after: Any, note: str | None) -> str:
    """SHA-256 over the entry's content and its link, as canonical JSON.

    Never change this function: every entry ever written must keep verifying under it (the
    migration that introduced the chain hashed the older entries with it too).
    """
    payload = [
        "chibo-audit-v1", seq, prev_hash,
        at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        actor_account_id, actor_label, actor_address, action, entity_type, entity_id, organisation_id,
        before, after, note,
    ]
    canonical = json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def hash_of(entry: Any) -> str:
    """The hash an entry (an ``AuditEntry`` or a row of the table) should carry."""
    return entry_hash(entry.prev_hash, entry.seq, entry.at, entry.actor_account_id, entry.actor_label,
                      entry.actor_address, entry.action, entry.entity_type, entry.entity_id, entry.organisation_id,
                      entry.before, entry.after, entry.note)


def snapshot(obj: Any, fields: Iterable[str]) -> dict[str, Any]:
    return json_safe({name: getattr(obj, name) for name in fields})


def _organisation_of(entity: Any) -> int | None:
    for attr in ("organisation_id", "cell_id", "home_cell_id"):
        value = getattr(entity, attr, None)
        if isinstance(value, int):
            return value
    if type(entity).__name__ == "Organisation":
        return int(entity.id)
    return None


def _claim_next(session: Session) -> tuple[int, str]:
    """Take the next number and the previous hash from the head row, locking it until the
    transaction ends (see the module docstring). Creates the head row on an empty log."""
    conn = session.connection()
    claim = text("UPDATE audit_chain SET seq = seq + 1 WHERE id = 1 RETURNING seq, head_hash")
    row = conn.execute(claim).first()
    if row is None:
        # A database whose log was emptied outside the app (a test's TRUNCATE): start over.
        if conn.dialect.name == "postgresql":
            conn.execute(text("INSERT INTO audit_chain (id, seq, head_hash) VALUES (1, 0, :g) ON CONFLICT DO NOTHING"),
                         {"g": GENESIS})
        else:
            conn.execute(text("INSERT OR IGNORE INTO audit_chain (id, seq, head_hash) VALUES (1, 0, :g)"),
                         {"g": GENESIS})
        row = conn.execute(claim).one()
    return int(row[0]), str(row[1])


def record(
    session: Session,
    actor: Actor,
    action: str,
    entity: Any,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    *,
    organisation_id: int | None = None,
    note: str | None = None,
    entity_type: str | None = None,
) -> AuditEntry:
    """Add an entry to the caller's transaction. ``entity`` is the changed object (or its id
    when the object is not at hand, with ``entity_type`` naming its kind)."""
    entity_id = entity if isinstance(entity, int) else getattr(entity, "id", None)
    seq, prev = _claim_next(session)
    entry = AuditEntry(
        at=utcnow(),
        actor_account_id=actor.account_id,
        actor_label=actor.label,
        actor_address=actor.address,
        action=action,
        entity_type=entity_type or type(entity).__name__,
        entity_id=str(entity_id) if entity_id is not None else None,
        organisation_id=organisation_id if organisation_id is not None else _organisation_of(entity),
        # Stored as they will read back, so that the hash is computed over the same values.
        before=json_safe(before),
        after=json_safe(after),
        note=note,
        seq=seq,
        prev_hash=prev,
    )
    entry.entry_hash = hash_of(entry)
    session.connection().execute(text("UPDATE audit_chain SET head_hash = :h WHERE id = 1"), {"h": entry.entry_hash})
    session.add(entry)
    return entry


def entries_for(session: Session, organisation_ids: Iterable[int], limit: int = 200) -> list[AuditEntry]:
    ids = list(organisation_ids)
    return list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.organisation_id.in_(ids))
            .order_by(AuditEntry.id.desc())
            .limit(limit)
        )
    )


# --------------------------------------------------------------------------- verification


@dataclass(frozen=True)
class Break:
    """One place where the chain does not hold."""

    #: "altered", "removed", "link", "tail" or "anchor"
    kind: str
    seq: int
    entry_id: int | None
    at: dt.datetime | None
    organisation_id: int | None
    message: str


@dataclass
class ChainReport:
    entries: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    breaks: list[Break] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.breaks


def _walk(session: Session, batch: int) -> Iterator[Any]:
    """Every entry in chain order (plain rows, outside the session's identity map), a batch
    at a time: a log can hold millions."""
    table = AuditEntry.__table__
    last = 0
    while True:
        rows = session.connection().execute(
            select(table).where(table.c.seq > last).order_by(table.c.seq).limit(batch)).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def verify(session: Session, *, anchors: Iterable[tuple[int, str]] = (), batch: int = 2000) -> ChainReport:
    """Walk the whole chain and report every entry that was altered or removed.

    A changed entry fails its own hash (reported once: the walk continues from its stored
    hash); removed entries leave a gap in the numbering and a link to a hash that is not the
    previous entry's; removed newest entries leave the head row ahead of the last entry.
    """
    report = ChainReport()
    wanted = dict(anchors)
    expected_seq, prev_hash = 1, GENESIS
    prev_entry: Any = None
    for entry in _walk(session, batch):
        report.entries += 1
        if entry.seq != expected_seq:
            count = entry.seq - expected_seq
            after = f"sau mục #{prev_entry.seq}" if prev_entry else "ở đầu nhật ký"
            report.breaks.append(Break(
                "removed", expected_seq, entry.id, entry.at, entry.organisation_id,
                f"Thiếu {count} mục (#{expected_seq}–#{entry.seq - 1}) {after}: đã bị xóa khỏi nhật ký."))
        elif entry.prev_hash != prev_hash:
            report.breaks.append(Break(
                "link", entry.seq, entry.id, entry.at, entry.organisation_id,
                f"Mục #{entry.seq} không nối với mục liền trước: chuỗi đã bị sửa đổi."))
        if hash_of(entry) != entry.entry_hash:
            report.breaks.append(Break(
                "altered", entry.seq, entry.id, entry.at, entry.organisation_id,
                f"Mục #{entry.seq} ({entry.action}) đã bị sửa: nội dung không khớp mã băm."))
        if entry.seq in wanted and wanted.pop(entry.seq) != entry.entry_hash:
            report.breaks.append(Break(
                "anchor", entry.seq, entry.id, entry.at, entry.organisation_id,
                f"Mục #{entry.seq} không còn khớp mã băm đã ghi lại trước đây: chuỗi đã bị viết lại."))
        expected_seq, prev_hash, prev_entry = entry.seq + 1, entry.entry_hash, entry
    head = session.get(AuditChainHead, 1)
    report.head_seq = prev_entry.seq if prev_entry else 0
    report.head_hash = prev_hash
    if head is not None and (head.seq != report.head_seq or head.head_hash != report.head_hash):
        if head.seq > report.head_seq:
            message = (f"Nhật ký dừng ở mục #{report.head_seq} nhưng đã ghi đến mục #{head.seq}: "
                       f"{head.seq - report.head_seq} mục mới nhất đã bị xóa.")
        else:
            message = "Mã băm đầu chuỗi không khớp với mục mới nhất: chuỗi đã bị sửa đổi."
        report.breaks.append(Break("tail", report.head_seq + 1, None, None, None, message))
    for seq in wanted:
        report.breaks.append(Break("anchor", seq, None, None, None,
                                   f"Không còn mục #{seq} đã được ghi lại trước đây."))
    return report
