"""Minutes (biên bản) of a meeting: a draft the minute-taker edits while the meeting runs,
then versions that are adopted and never change.

The draft holds what people write (chair, minute-taker, guests, each agenda item's summary,
opinions and conclusion, the resolution). Everything countable — attendance, the absent with
their reasons, vote results — comes from the roster and the tallies, so it is never typed
twice. Adoption (after the minutes are read out) freezes a complete snapshot as a
``MinutesVersion`` with a SHA-256 content hash and the chair's and minute-taker's
confirmations; the database refuses to change or delete a version. A later correction is a
new version with a reason.

**Signatures** (decision 13; the signature blocks of the thư ký and the chủ trì in the party
document layout of Hướng dẫn 36-HD/VPTW, 03/4/2018): the minutes name their chair and their
minute-taker among the members on the meeting's roster, two different people; the
minute-taker's confirmation comes from the account of the member named as minute-taker, the
adoption from the account of the member named as chair. Nobody signs for someone else.

**Seal.** The hash of a version covers everything adopted — the text, the figures and votes,
and the adoption itself (version, reason, time, the two signers and when the minute-taker
confirmed), which is written into the hashed document. :func:`check` compares each stored
field with it and the hash with the one the hash-chained audit log recorded at adoption, so
that a raw change of any field, or of the content together with a recomputed hash, is found
(the version page and ``python -m app verify-audit``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..foundation import audit, events
from ..foundation.actors import Actor
from ..foundation.audit import AuditEntry
from ..foundation.base import LOCAL_TZ, Base, JSONType, UTCDateTime, json_safe, utcnow
from ..foundation.errors import Conflict, NotFound, ValidationError
from ..foundation.text import clean_text
from ..organisation.accounts import Account
from ..organisation.organisations import Organisation, lineage_on
from ..planning import agenda, documents
from ..planning.meetings import Meeting, MeetingStatus
from .attendance import counts, current_roster, record_of
from .votes import MotionStatus, motions_of

MAX_TEXT = 20_000
MAX_ITEMS = 40


class Minutes(Base):
    __tablename__ = "minutes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"), unique=True)
    chair_name: Mapped[str | None] = mapped_column(String(200))
    taker_name: Mapped[str | None] = mapped_column(String(200))
    chair_member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    taker_member_id: Mapped[int | None] = mapped_column(ForeignKey("members.id"))
    place: Mapped[str | None] = mapped_column(String(300))
    guests: Mapped[str | None] = mapped_column(Text)
    #: [{"title", "documents", "summary", "opinions": [{"speaker", "text"}], "conclusion"}]
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    resolution: Mapped[str | None] = mapped_column(Text)
    other: Mapped[str | None] = mapped_column(Text)
    #: Bumped on every save; a save based on an older revision is refused (two editors).
    revision: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    #: Minute-taker's confirmation of the draft as read out (cleared by any later edit).
    taker_confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    taker_confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    taker_confirmed_revision: Mapped[int | None] = mapped_column(Integer)


@dataclass(frozen=True)
class MinutesAdopted:
    """A version of a meeting's minutes was adopted: the cell-month figures follow
    (``evaluation.monthly``: how soon minutes were adopted)."""

    meeting_id: int


class MinutesVersion(Base):
    __tablename__ = "minutes_versions"
    __table_args__ = (UniqueConstraint("meeting_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meetings.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    content: Mapped[dict[str, Any]] = mapped_column(JSONType)
    content_hash: Mapped[str] = mapped_column(String(64))
    #: Why this version replaces the previous one (None for the first).
    reason: Mapped[str | None] = mapped_column(Text)
    adopted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    chair_confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    taker_confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("accounts.id"))
    taker_confirmed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


DRAFT_FIELDS = ("chair_name", "taker_name", "chair_member_id", "taker_member_id", "place", "guests", "items",
                "resolution", "other")


def draft(session: Session, meeting: Meeting) -> Minutes:
    minutes = session.scalar(select(Minutes).where(Minutes.meeting_id == meeting.id))
    if minutes is None:
        minutes = Minutes(meeting_id=meeting.id, place=meeting.place, items=_default_items(session, meeting))
        session.add(minutes)
        session.flush()
    return minutes


def _default_items(session: Session, meeting: Meeting) -> list[dict[str, Any]]:
    """The minutes follow the meeting's agenda: one section per item, in its order."""
    titles = [item.title for item in agenda.items_of(session, meeting.id)] or agenda.template_for(
        meeting.kind, combined_thematic=meeting.combined_thematic)
    names = ", ".join(d.filename for d in documents.documents_of(session, meeting.id))
    items = [{"title": t, "documents": "", "summary": "", "opinions": [], "conclusion": ""} for t in titles]
    if items and names:
        items[0]["documents"] = names
    return items


def _clean_items(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise ValidationError("Nội dung biên bản không hợp lệ.")
    if len(raw) > MAX_ITEMS:
        raise ValidationError(f"Biên bản có quá nhiều mục (tối đa {MAX_ITEMS}).")
    items = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise ValidationError("Nội dung biên bản không hợp lệ.")
        opinions = entry.get("opinions") or []
        if not isinstance(opinions, list):
            raise ValidationError("Ý kiến phát biểu không hợp lệ.")
        items.append({
            "title": _text(entry.get("title"), 500),
            "documents": _text(entry.get("documents"), 2000),
            "summary": _text(entry.get("summary"), MAX_TEXT),
            "opinions": [{"speaker": _text(o.get("speaker"), 200), "text": _text(o.get("text"), MAX_TEXT)}
                         for o in opinions if isinstance(o, dict) and (o.get("speaker") or o.get("text"))][:100],
            "conclusion": _text(entry.get("conclusion"), MAX_TEXT),
        })
    return items


def _text(value: Any, limit: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValidationError("Nội dung biên bản không hợp lệ.")
    text = "\n".join(clean_text(line) for line in value.replace("\r\n", "\n").split("\n")).strip()
    if len(text) > limit:
        raise ValidationError(f"Một đoạn biên bản quá dài (tối đa {limit} ký tự).")
    return text


def save_draft(session: Session, actor: Actor, meeting: Meeting, data: dict[str, Any], *, base_revision: int,
               now: dt.datetime) -> Minutes:
    """Autosave. Refused when someone else saved in between (the editor reloads their text)."""
    if meeting.status == MeetingStatus.CANCELLED:
        raise ValidationError("Cuộc họp đã bị hủy.")
    minutes = draft(session, meeting)
    if base_revision != minutes.revision:
        raise Conflict("Biên bản vừa được người khác sửa. Hãy tải lại trang để xem bản mới nhất.")
    values: dict[str, Any] = {
        "chair_name": _text(data.get("chair_name"), 200) or None,
        "taker_name": _text(data.get("taker_name"), 200) or None,
        "place": _text(data.get("place"), 300) or None,
        "guests": _text(data.get("guests"), 5000) or None,
        "items": _clean_items(data.get("items", [])),
        "resolution": _text(data.get("resolution"), MAX_TEXT) or None,
        "other": _text(data.get("other"), MAX_TEXT) or None,
    }
    for key, name in (("chair_member_id", "chair_name"), ("taker_member_id", "taker_name")):
        value = data.get(key)
        member_id = int(value) if isinstance(value, int) or (isinstance(value, str) and value.isdigit()) else None
        values[key] = member_id
        if member_id is not None:
            # The signer is a member on the meeting's roster; the minutes carry their name.
            try:
                values[name] = record_of(session, meeting, member_id).full_name
            except NotFound:
                raise ValidationError("Chủ trì và thư ký phải là đảng viên trong danh sách của cuộc họp.") from None
    changed = any(getattr(minutes, k) != v for k, v in values.items())
    if changed:
        for key, value in values.items():
            setattr(minutes, key, value)
        minutes.revision += 1
        minutes.updated_at = now
        minutes.updated_by_id = actor.account_id
        minutes.taker_confirmed_by_id = None
        minutes.taker_confirmed_at = None
        minutes.taker_confirmed_revision = None
        session.flush()
    return minutes


def latest_version(session: Session, meeting_id: int) -> MinutesVersion | None:
    return session.scalars(
        select(MinutesVersion).where(MinutesVersion.meeting_id == meeting_id).order_by(MinutesVersion.version.desc())
    ).first()


def versions(session: Session, meeting_id: int) -> list[MinutesVersion]:
    return list(session.scalars(select(MinutesVersion).where(MinutesVersion.meeting_id == meeting_id)
                                .order_by(MinutesVersion.version)))


def _member_of(session: Session, actor: Actor) -> int | None:
    account = session.get(Account, actor.account_id) if actor.account_id is not None else None
    return account.member_id if account is not None else None


def _check_signers(minutes: Minutes) -> None:
    """Decision 13: a chair and a minute-taker, named among the members, two people."""
    if minutes.chair_member_id is None or minutes.taker_member_id is None:
        raise ValidationError("Hãy chọn chủ trì và thư ký cuộc họp trong danh sách đảng viên: mỗi người xác nhận "
                              "biên bản từ tài khoản của mình.")
    if minutes.chair_member_id == minutes.taker_member_id:
        raise ValidationError("Chủ trì và thư ký cuộc họp phải là hai đồng chí khác nhau (thư ký xác nhận, chủ trì "
                              "thông qua biên bản).")


def confirm_as_taker(session: Session, actor: Actor, meeting: Meeting, now: dt.datetime) -> Minutes:
    """The minute-taker confirms the text as read out — from their own account only."""
    minutes = draft(session, meeting)
    _check_complete(minutes)
    _check_signers(minutes)
    if _member_of(session, actor) != minutes.taker_member_id:
        raise ValidationError(f"Chỉ đồng chí {minutes.taker_name}, thư ký cuộc họp, xác nhận biên bản, từ tài khoản "
                              "của mình.")
    minutes.taker_confirmed_by_id = actor.account_id
    minutes.taker_confirmed_at = now
    minutes.taker_confirmed_revision = minutes.revision
    session.flush()
    audit.record(session, actor, "minutes.taker_confirm", minutes, None, {"revision": minutes.revision},
                 organisation_id=meeting.cell_id)
    return minutes


def _check_complete(minutes: Minutes) -> None:
    missing = [label for label, value in (("chủ trì", minutes.chair_name), ("thư ký", minutes.taker_name))
               if not value]
    if missing:
        raise ValidationError(f"Biên bản còn thiếu: {', '.join(missing)}.")


def content_of(session: Session, meeting: Meeting, minutes: Minutes, now: dt.datetime) -> dict[str, Any]:
    """Everything the adopted minutes state, as one JSON document (hashed on adoption)."""
    cell = session.get(Organisation, meeting.cell_id)
    # The committees as they stood on the meeting's day (decision 11): a cell moved since, or
    # a meeting scheduled before a restructure, is headed by the committee of its time.
    above = lineage_on(session, meeting.cell_id, meeting.local_date)[1:]
    orgs = {o.id: o for o in session.scalars(select(Organisation).where(Organisation.id.in_(above)))} if above else {}
    supervisor = orgs.get(above[0]) if above else (
        session.get(Organisation, meeting.supervisor_id) if meeting.supervisor_id else None)
    lineage = [orgs[i].name for i in reversed(above) if i in orgs]
    roll = counts(current_roster(session, meeting, now))
    motions = []
    for motion in motions_of(session, meeting.id):
        if motion.status != MotionStatus.CLOSED:
            continue
        motions.append({"title": motion.title, "kind": motion.kind.value, "agree": motion.agree,
                        "disagree": motion.disagree, "abstain": motion.abstain, "denominator": motion.denominator,
                        "votes_needed": motion.votes_needed, "passed": motion.passed})
    start = meeting.opened_at or meeting.starts_at
    return json_safe({
        "meeting": {
            "id": meeting.id, "kind": meeting.kind.value, "kind_label": meeting.kind.label, "title": meeting.title,
            "topic": meeting.topic, "combined_thematic": meeting.combined_thematic,
            "started_at": start.astimezone(LOCAL_TZ).isoformat(),
            # Minutes are adopted as the meeting's last act: when it is still open, the meeting
            # ends with their adoption.
            "ended_at": (meeting.closed_at or now).astimezone(LOCAL_TZ).isoformat(),
        },
        "organisation": {"cell": cell.name if cell else "", "supervisor": supervisor.name if supervisor else "",
                         "lineage": lineage},
        "place": minutes.place or meeting.place or "",
        "chair": minutes.chair_name, "taker": minutes.taker_name, "guests": minutes.guests or "",
        "attendance": roll.as_dict(),
        "items": minutes.items or [],
        "resolution": minutes.resolution or "",
        "other": minutes.other or "",
        "votes": motions,
    })


def content_hash(content: dict[str, Any]) -> str:
    canonical = json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _stamp(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if value is not None else None


def adoption_of(version: MinutesVersion) -> dict[str, Any]:
    """The adoption as it is sealed in the content: every field of the version but the text."""
    return {"meeting_id": version.meeting_id, "version": version.version, "reason": version.reason,
            "adopted_at": _stamp(version.adopted_at), "chair_account_id": version.chair_confirmed_by_id,
            "taker_account_id": version.taker_confirmed_by_id, "taker_confirmed_at": _stamp(version.taker_confirmed_at)}


def _body(content: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in content.items() if k != "adoption"}


def adopt(session: Session, actor: Actor, meeting: Meeting, now: dt.datetime, reason: str | None = None) -> MinutesVersion:
    """The chair adopts the minutes the minute-taker confirmed: a new immutable version,
    sealed with everything adopted (see the module docstring)."""
    if meeting.status not in (MeetingStatus.OPEN, MeetingStatus.CLOSED):
        raise ValidationError("Chỉ thông qua biên bản của cuộc họp đã diễn ra.")
    minutes = draft(session, meeting)
    _check_complete(minutes)
    _check_signers(minutes)
    if _member_of(session, actor) != minutes.chair_member_id:
        raise ValidationError(f"Chỉ đồng chí {minutes.chair_name}, người chủ trì cuộc họp, thông qua biên bản, từ "
                              "tài khoản của mình.")
    if minutes.taker_confirmed_revision != minutes.revision:
        raise ValidationError("Thư ký chưa xác nhận bản biên bản này (mọi chỉnh sửa sau xác nhận cần xác nhận lại).")
    if any(m.status == MotionStatus.OPEN for m in motions_of(session, meeting.id)):
        raise ValidationError("Còn nội dung biểu quyết chưa kết thúc.")
    previous = latest_version(session, meeting.id)
    reason_text = clean_text(reason)
    if previous is not None and not reason_text:
        raise ValidationError("Sửa đổi biên bản đã thông qua phải ghi lý do.")
    body = content_of(session, meeting, minutes, now)
    if previous is not None and content_hash(_body(previous.content)) == content_hash(body):
        raise ValidationError("Biên bản không có gì thay đổi so với bản đã thông qua.")
    version = MinutesVersion(
        meeting_id=meeting.id, version=(previous.version + 1) if previous else 1, reason=reason_text or None,
        adopted_at=now, chair_confirmed_by_id=actor.account_id, taker_confirmed_by_id=minutes.taker_confirmed_by_id,
        taker_confirmed_at=minutes.taker_confirmed_at,
    )
    version.content = {**body, "adoption": adoption_of(version)}
    version.content_hash = content_hash(version.content)
    session.add(version)
    session.flush()
    audit.record(session, actor, "minutes.adopt" if previous is None else "minutes.amend", version, None,
                 {"version": version.version, "hash": version.content_hash}, organisation_id=meeting.cell_id,
                 note=reason_text or None)
    events.publish(session, MinutesAdopted(meeting.id))
    return version


#: Names of the sealed fields, for the messages of :func:`check`.
SEALED_LABELS = {"meeting_id": "cuộc họp", "version": "số phiên bản", "reason": "lý do sửa đổi",
                 "adopted_at": "thời điểm thông qua", "chair_account_id": "người chủ trì thông qua",
                 "taker_account_id": "thư ký xác nhận", "taker_confirmed_at": "thời điểm thư ký xác nhận"}


def check(session: Session, version: MinutesVersion) -> list[str]:
    """What no longer matches in an adopted version (empty: intact): its content against its
    hash, each sealed field against the stored one, and the hash against the one the audit
    log recorded when it was adopted. Versions adopted before the seal carry no adoption
    block: their text and hash are still checked, and the hash against the log."""
    problems = []
    if content_hash(version.content) != version.content_hash:
        problems.append("Nội dung không khớp mã kiểm tra SHA-256 của phiên bản.")
    sealed = version.content.get("adoption")
    if isinstance(sealed, dict):
        stored = adoption_of(version)
        for key, label in SEALED_LABELS.items():
            if sealed.get(key) != stored.get(key):
                problems.append(f"Trường “{label}” khác với bản đã thông qua.")
    entry = session.scalars(select(AuditEntry).where(
        AuditEntry.entity_type == "MinutesVersion", AuditEntry.entity_id == str(version.id),
        AuditEntry.action.in_(["minutes.adopt", "minutes.amend"])).order_by(AuditEntry.seq)).first()
    if entry is None:
        problems.append("Không tìm thấy bản ghi thông qua của phiên bản này trong nhật ký thay đổi.")
    elif not isinstance(entry.after, dict) or entry.after.get("hash") != version.content_hash:
        problems.append(f"Mã kiểm tra khác với mã được ghi vào nhật ký lúc thông qua (mục #{entry.seq}).")
    return problems


def check_all(session: Session) -> list[tuple[MinutesVersion, list[str]]]:
    """Every adopted version that fails :func:`check` (``python -m app verify-audit``)."""
    found = []
    for version in session.scalars(select(MinutesVersion).order_by(MinutesVersion.meeting_id, MinutesVersion.version)):
        problems = check(session, version)
        if problems:
            found.append((version, problems))
    return found


#: The adopted figures compared with the roster (``figures_drift``), with their labels.
DRIFT_FIGURES = (("total", "Tổng số đảng viên"), ("present", "Có mặt"), ("present_in_person", "Dự trực tiếp"),
                 ("present_online", "Dự trực tuyến"), ("absent_excused", "Vắng có lý do"),
                 ("absent_unexcused", "Vắng không có lý do"), ("denominator", "Mẫu số D"))


def _names(value: Any) -> list[str]:
    return sorted(v[0] if isinstance(v, list | tuple) else str(v) for v in value)


def figures_drift(session: Session, meeting: Meeting, version: MinutesVersion, now: dt.datetime) -> list[str]:
    """How the roster differs now from the figures ``version`` adopted (a late absence
    decision, an amendment), one line per figure; empty when they agree."""
    adopted = version.content.get("attendance") or {}
    current = counts(current_roster(session, meeting, now)).as_dict()
    lines = []
    for key, label in DRIFT_FIGURES:
        was, now_ = adopted.get(key), current.get(key)
        if isinstance(now_, list):
            before, after = _names(was or []), _names(now_)
            if before != after:
                added = [n for n in after if n not in before]
                gone = [n for n in before if n not in after]
                detail = "; ".join(part for part in (f"thêm {', '.join(added)}" if added else "",
                                                     f"bớt {', '.join(gone)}" if gone else "") if part)
                lines.append(f"{label}: {len(before)} → {len(after)} ({detail})")
        elif was != now_:
            lines.append(f"{label}: {was} → {now_}")
    return lines


def verify(version: MinutesVersion) -> bool:
    return content_hash(version.content) == version.content_hash


def get_version(session: Session, meeting_id: int, number: int) -> MinutesVersion:
    version = session.scalar(select(MinutesVersion).where(MinutesVersion.meeting_id == meeting_id,
                                                          MinutesVersion.version == number))
    if version is None:
        raise NotFound("Không tìm thấy biên bản.")
    return version
