"""The change log as people read it: each audit entry as a Vietnamese sentence that names the
member and the meeting it concerns and links to them, and the log's filters and pages.

The audit log stores codes ("attendance.mark", "AttendanceRecord #204") because they must
never change under the hash chain; what a secretary or an auditor reads is made here, in the
web layer, from those codes and the objects they point at (looked up a page at a time, one
query per kind of object).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from meetings.evaluation.reviews import Grade, HostComment, ReviewStatus, YearReview
from meetings.foundation.audit import AuditEntry
from meetings.foundation.base import LOCAL_TZ
from meetings.organisation.accounts import Account, Role
from meetings.organisation.members import Member, PeriodKind
from meetings.organisation.organisations import Organisation, OrgKind
from meetings.planning.absences import AbsenceRequest
from meetings.planning.documents import MeetingDocument
from meetings.planning.meetings import Meeting
from meetings.proceedings.attendance import (
    AttendanceMode,
    AttendanceRecord,
    AttendanceStatus,
    DuesRecord,
    DuesStatus,
    ReasonCategory,
)
from meetings.proceedings.chat import ChatMessage
from meetings.proceedings.minutes import Minutes, MinutesVersion
from meetings.proceedings.votes import Motion

PAGE_SIZE = 50

#: The filter "Loại thay đổi": label and the action prefixes it covers.
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "members": ("Đảng viên và tài khoản", ("member.", "period.", "account.", "role.")),
    "meetings": ("Cuộc họp và lịch họp", ("meeting.", "agenda.", "document.", "remote.", "rule.", "cell.",
                                          "room.", "chat.")),
    "attendance": ("Điểm danh, đảng phí, xin vắng", ("attendance.", "dues.", "absence.")),
    "votes": ("Biểu quyết", ("vote.",)),
    "minutes": ("Biên bản", ("minutes.",)),
    "reviews": ("Kiểm điểm, xếp loại", ("review.", "evaluation.")),
    "organisation": ("Tổ chức, thí điểm trực tuyến", ("organisation.", "pilot.")),
}

#: Field names in the entries' before/after, as the "Chi tiết" list shows them.
FIELD_LABELS = {
    "full_name": "Họ và tên", "birth_date": "Ngày sinh", "card_number": "Số thẻ đảng viên",
    "admitted_on": "Ngày vào Đảng", "status": "Trạng thái", "probation_ends_on": "Ngày hết dự bị",
    "official_on": "Ngày chính thức", "phone": "Điện thoại", "email": "Email", "home_cell_id": "Chi bộ",
    "kind": "Loại", "start_on": "Từ ngày", "end_on": "Đến ngày", "place": "Địa điểm",
    "host_org_name": "Nơi sinh hoạt/làm việc", "host_contact": "Liên hệ", "expected_return_on": "Dự kiến về",
    "decision_number": "Số quyết định", "reason": "Lý do", "exempt_kind": "Hình thức miễn", "note": "Ghi chú",
    "mode": "Hình thức", "excused": "Có lý do", "reason_category": "Loại lý do", "reason_text": "Lý do",
    "source": "Nguồn", "confirmed": "Đã xác nhận", "title": "Tên", "topic": "Chuyên đề",
    "starts_at": "Thời gian", "expected_minutes": "Thời lượng dự kiến (phút)", "remote_open": "Mở trực tuyến",
    "lobby": "Phòng chờ", "moved_reason": "Lý do dời lịch", "cancelled_reason": "Lý do hủy",
    "actual_start_at": "Bắt đầu thực tế", "actual_end_at": "Kết thúc thực tế", "opened_at": "Mở lúc",
    "closed_at": "Kết thúc lúc", "combined_thematic": "Kết hợp chuyên đề", "username": "Tên đăng nhập",
    "display_name": "Tên hiển thị", "is_active": "Đang dùng", "must_change_password": "Phải đổi mật khẩu",
    "agree": "Tán thành", "disagree": "Không tán thành", "abstain": "Không biểu quyết",
    "denominator": "Mẫu số D", "passed": "Thông qua", "filename": "Tệp", "text": "Nội dung",
    "author_name": "Người gửi", "self_grade": "Tự xếp loại", "proposed_grade": "Chi bộ đề xuất",
    "confirmed_grade": "Cấp trên quyết định", "proposal_reason": "Lý do đề xuất", "month": "Tháng",
    "version": "Phiên bản", "name": "Tên", "code": "Mã", "address": "Địa chỉ", "submitted_at": "Nộp lúc",
    "file_name": "Tệp đính kèm", "confirmation_note": "Ghi chú của cấp trên", "decided_at": "Quyết định lúc",
    "decision_note": "Ghi chú của bí thư", "filed_at": "Gửi lúc", "late": "Gửi muộn",
}
#: Fields whose values say nothing to a reader (ids, hashes, counters).
HIDDEN_FIELDS = {"sequence", "member_id", "meeting_id", "cell_id", "file_sha256", "sha256", "hash", "decided_by_id",
                 "confirming_org_id", "account_id", "organisation_id", "agenda_item_id", "size", "participant",
                 "revision", "items", "source", "month"}
VALUE_LABELS: dict[str, dict[str, str]] = {
    "status": {**{s.value: s.label for s in AttendanceStatus}, **{s.value: s.label for s in DuesStatus},
               "scheduled": "Đã lên lịch", "open": "Đang họp", "closed": "Đã kết thúc", "cancelled": "Đã hủy",
               "official": "Chính thức", "probationary": "Dự bị", "pending": "Chờ xem xét",
               "approved": "Đã chấp thuận", "rejected": "Không chấp thuận",
               **{r.value: r.label for r in ReviewStatus}},
    "reason_category": {r.value: r.label for r in ReasonCategory},
    "mode": {m.value: m.label for m in AttendanceMode},
    "kind": {**{k.value: k.label for k in PeriodKind}, "regular": "Thường kỳ", "thematic": "Chuyên đề",
             "committee": "Chi ủy", "extraordinary": "Bất thường", "open": "Công khai", "secret": "Bỏ phiếu kín"},
    "self_grade": {g.value: g.label for g in Grade},
    "proposed_grade": {g.value: g.label for g in Grade},
    "confirmed_grade": {g.value: g.label for g in Grade},
}


@dataclass
class Piece:
    """A run of the sentence: plain text, or text that links to ``href``."""

    text: str
    href: str | None = None


@dataclass
class Change:
    field: str
    before: str
    after: str


@dataclass
class Line:
    entry: AuditEntry
    pieces: list[Piece]
    changes: list[Change] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.pieces)


@dataclass
class Page:
    lines: list[Line]
    total: int
    page: int
    pages: int


# --------------------------------------------------------------------------- query


def query(organisation_ids: Iterable[int], *, kind: str | None = None, member_id: int | None = None,
          session: Session | None = None) -> Select[AuditEntry]:
    """The entries of these organisations, newest first, narrowed to a kind of change and to
    the changes that concern one member (their record, periods, marks, dues, requests, reviews,
    account, removal from a room)."""
    stmt = select(AuditEntry).where(AuditEntry.organisation_id.in_(list(organisation_ids)))
    if kind in KINDS:
        stmt = stmt.where(or_(*(AuditEntry.action.startswith(prefix) for prefix in KINDS[kind][1])))
    if member_id is not None:
        assert session is not None, "the member filter looks up the member's records"
        owned = [
            (type_, list(session.scalars(select(model.id).where(model.member_id == member_id))))
            for type_, model in (("AttendanceRecord", AttendanceRecord), ("DuesRecord", DuesRecord),
                                 ("YearReview", YearReview), ("HostComment", HostComment))
        ]
        stmt = stmt.where(or_(
            (AuditEntry.entity_type == "Member") & (AuditEntry.entity_id == str(member_id)),
            AuditEntry.after["member_id"].as_integer() == member_id,
            AuditEntry.before["member_id"].as_integer() == member_id,
            *((AuditEntry.entity_type == type_) & AuditEntry.entity_id.in_([str(i) for i in ids])
              for type_, ids in owned if ids),
        ))
    return stmt.order_by(AuditEntry.seq.desc())


def page_of(session: Session, organisation_ids: Iterable[int], *, page: int = 1, kind: str | None = None,
            member_id: int | None = None) -> Page:
    stmt = query(organisation_ids, kind=kind, member_id=member_id, session=session)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    entries = list(session.scalars(stmt.limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE)))
    return Page(lines=describe(session, entries), total=total, page=page, pages=pages)


# --------------------------------------------------------------------------- sentences


_M = TypeVar("_M")


class _Objects:
    """The objects a page of entries points at, loaded one query per kind."""

    MODELS: dict[str, Any] = {
        "Member": Member, "Meeting": Meeting, "AttendanceRecord": AttendanceRecord, "DuesRecord": DuesRecord,
        "Motion": Motion, "YearReview": YearReview, "HostComment": HostComment, "AbsenceRequest": AbsenceRequest,
        "ChatMessage": ChatMessage, "Minutes": Minutes, "MinutesVersion": MinutesVersion,
        "MeetingDocument": MeetingDocument, "Account": Account, "Organisation": Organisation,
    }

    def __init__(self, session: Session, entries: list[AuditEntry]) -> None:
        self.session = session
        self.by_type: dict[str, dict[int, Any]] = {}
        wanted: dict[str, set[int]] = {}
        for e in entries:
            if e.entity_type in self.MODELS and e.entity_id and e.entity_id.isdigit():
                wanted.setdefault(e.entity_type, set()).add(int(e.entity_id))
        self._load(wanted)
        # Second round: the members and meetings those objects point at.
        more: dict[str, set[int]] = {"Member": set(), "Meeting": set(), "Account": set(), "Organisation": set()}
        for objects in self.by_type.values():
            for obj in objects.values():
                for attr, type_ in (("member_id", "Member"), ("meeting_id", "Meeting")):
                    value = getattr(obj, attr, None)
                    if isinstance(value, int):
                        more[type_].add(value)
        for e in entries:
            for snap in (e.before, e.after):
                if isinstance(snap, dict):
                    for key, type_ in (("member_id", "Member"), ("meeting_id", "Meeting"),
                                       ("account_id", "Account"), ("organisation_id", "Organisation")):
                        if isinstance(snap.get(key), int):
                            more[type_].add(snap[key])
        self._load({t: ids - set(self.by_type.get(t, {})) for t, ids in more.items()})

    def _load(self, wanted: dict[str, set[int]]) -> None:
        for type_, ids in wanted.items():
            if not ids:
                continue
            model = self.MODELS[type_]
            found = self.session.scalars(select(model).where(model.id.in_(ids)))
            self.by_type.setdefault(type_, {}).update({obj.id: obj for obj in found})

    def get(self, type_: str, id_: Any) -> Any:
        if isinstance(id_, str) and id_.isdigit():
            id_ = int(id_)
        return self.by_type.get(type_, {}).get(id_) if isinstance(id_, int) else None

    def of(self, model: type[_M], id_: Any) -> _M | None:
        """``get`` for a model known here by its class name (Member, Meeting, ...)."""
        found = self.get(model.__name__, id_)
        return found if isinstance(found, model) else None


def _local_date(value: dt.datetime | None) -> str:
    return value.astimezone(LOCAL_TZ).strftime("%d/%m/%Y") if value else ""


def _value(name: str, value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "có" if value else "không"
    if isinstance(value, str):
        if name in VALUE_LABELS and value in VALUE_LABELS[name]:
            return VALUE_LABELS[name][value]
        try:
            if len(value) == 10:
                return dt.date.fromisoformat(value).strftime("%d/%m/%Y")
            if len(value) > 18 and value[10] == "T":
                return dt.datetime.fromisoformat(value).astimezone(LOCAL_TZ).strftime("%H:%M, %d/%m/%Y")
        except ValueError:
            pass
        return value
    if isinstance(value, (list, dict)):
        return f"{len(value)} mục"
    return str(value)


def _changes(entry: AuditEntry) -> list[Change]:
    before = entry.before if isinstance(entry.before, dict) else {}
    after = entry.after if isinstance(entry.after, dict) else {}
    out = []
    for key in dict.fromkeys([*before, *after]):
        if key in HIDDEN_FIELDS or before.get(key) == after.get(key):
            continue
        out.append(Change(FIELD_LABELS.get(key, key), _value(key, before.get(key)), _value(key, after.get(key))))
    return out


class _Sentence:
    """Builds one entry's sentence: "<who> <verb> <object link> …"."""

    def __init__(self, entry: AuditEntry, objects: _Objects) -> None:
        self.entry = entry
        self.objects = objects
        self.obj = objects.get(entry.entity_type, entry.entity_id)
        self.snap: dict[str, Any] = {**(entry.before if isinstance(entry.before, dict) else {}),
                                     **(entry.after if isinstance(entry.after, dict) else {})}

    # The member and the meeting the entry concerns, wherever they are recorded.
    def member(self) -> Member | None:
        if self.entry.entity_type == "Member":
            return self.obj if isinstance(self.obj, Member) else None
        member_id = getattr(self.obj, "member_id", None) or self.snap.get("member_id")
        return self.objects.of(Member, member_id)

    def meeting(self) -> Meeting | None:
        if self.entry.entity_type == "Meeting":
            return self.obj if isinstance(self.obj, Meeting) else None
        meeting_id = getattr(self.obj, "meeting_id", None) or self.snap.get("meeting_id")
        return self.objects.of(Meeting, meeting_id)

    def member_piece(self, fallback: str = "một đảng viên") -> Piece:
        m = self.member()
        return Piece(m.full_name, f"/members/{m.id}") if m else Piece(fallback)

    def meeting_piece(self, suffix: str = "") -> Piece:
        m = self.meeting()
        if m is None:
            return Piece("một cuộc họp")
        return Piece(f"{m.title} ({_local_date(m.starts_at)})", f"/meetings/{m.id}{suffix}")

    def build(self) -> list[Piece]:
        e = self.entry
        who = Piece(e.actor_label)
        body = self.body()
        if body is None:
            body = [Piece(f" thực hiện thay đổi “{e.action}”")]
        pieces = [who, *body]
        if e.note and e.action not in ("chat.delete",):
            pieces.append(Piece(f" — {e.note}"))
        return pieces

    def body(self) -> list[Piece] | None:  # noqa: C901 - one branch per kind of change, read as a table
        e, s = self.entry, self.snap
        group, _, verb = e.action.partition(".")
        member, meeting = self.member_piece, self.meeting_piece
        T = Piece
        if group == "member":
            return {"create": [T(" thêm đảng viên "), member()], "update": [T(" sửa thông tin đảng viên "), member()],
                    "move": [T(" chuyển đảng viên "), member(), T(" sang chi bộ khác")]}.get(verb)
        if group == "period":
            label = _value("kind", s.get("kind"))
            action = {"create": "thêm", "update": "sửa", "delete": "xóa"}.get(verb, "thay đổi")
            return [T(f" {action} giai đoạn “{label}” của "), member()]
        if group == "account":
            account = self.obj
            name = f"“{account.username}”" if account else "một tài khoản"
            return {"create": [T(f" tạo tài khoản {name} cho "), member("một người dùng")],
                    "password_change": [T(" đổi mật khẩu của mình")],
                    "password_reset": [T(f" cấp lại mật khẩu tạm cho tài khoản {name}")]}.get(verb)
        if group == "role":
            account = self.objects.get("Account", s.get("account_id"))
            role = Role(s["role"]).label if s.get("role") in Role._value2member_map_ else "một quyền"
            who = f"“{account.username}”" if account else "một tài khoản"
            org = self.objects.get("Organisation", s.get("organisation_id"))
            where = f" tại {org.name}" if org else ""
            return [T(f" {'cấp' if verb == 'grant' else 'thu hồi'} quyền “{role}”{where} cho tài khoản {who}")]
        if group == "meeting":
            phrases = {"create": " tạo cuộc họp ", "update": " sửa thông tin cuộc họp ", "move": " dời lịch ",
                       "open": " bắt đầu ", "closed": " kết thúc ", "cancelled": " hủy ",
                       "scheduled": " đưa về trạng thái đã lên lịch ", "delete": " xóa khỏi lịch ",
                       "follow_rule": " cập nhật theo lịch sinh hoạt mới ",
                       "actual_times": " ghi thời gian họp thực tế của "}
            return [T(phrases.get(verb, " thay đổi ")), meeting()]
        if group == "agenda":
            return [T(" sửa chương trình "), meeting()]
        if group == "document":
            name = f"“{s.get('filename')}”" if s.get("filename") else ""
            return [T(f" {'đăng' if verb == 'add' else 'gỡ'} tài liệu {name} của "), meeting()]
        if group == "remote":
            if verb == "add":
                return [T(" cho phép "), member(), T(" tham gia trực tuyến "), meeting()]
            return [T(" bỏ "), member(), T(" khỏi danh sách tham gia trực tuyến "), meeting()]
        if group == "rule":
            return [T({"create": " đặt lịch sinh hoạt định kỳ của chi bộ", "update": " sửa lịch sinh hoạt định kỳ",
                       "remove": " bỏ lịch sinh hoạt định kỳ cũ"}.get(verb, " thay đổi lịch sinh hoạt"))]
        if group == "cell":
            return [T(" đặt thời lượng họp tối thiểu riêng của chi bộ")]
        if group == "room":
            return [T(" mời "), member("một người"), T(" ra khỏi phòng họp "), meeting("/room")]
        if group == "chat":
            return [T(" xóa một tin nhắn trong phòng họp "), meeting("/room")]
        if group == "attendance":
            record = self.obj
            status = _value("status", s.get("status"))
            if s.get("status") == "present" and s.get("mode"):
                status += f" ({_value('mode', s.get('mode')).lower()})"
            if s.get("status") == "absent":
                status += " có lý do" if s.get("excused") else " không lý do"
            act = " điểm danh " if verb == "mark" else " sửa điểm danh (sau cuộc họp) của "
            return [T(act), member(), T(f": {status.lower()} — "),
                    meeting("/attendance") if record or self.meeting() else T("một cuộc họp")]
        if group == "dues":
            month = s.get("month", "")
            when = f" tháng {int(month[5:7])}/{month[:4]}" if len(month) >= 7 else ""
            return [T(f" ghi đảng phí{when} của "), member(), T(f": {_value('status', s.get('status')).lower()}")]
        if group == "absence":
            if verb == "file":
                return [T(" ghi đơn xin vắng của "), member(), T(" cho "), meeting("#don-xin-vang")]
            act = "chấp thuận" if verb == "approve" else "không chấp thuận"
            return [T(f" {act} đơn xin vắng của "), member(), T(" — "), meeting("#don-xin-vang")]
        if group == "vote":
            motion = self.obj
            title = f"“{motion.title}”" if motion else ""
            if verb == "open":
                return [T(f" mở biểu quyết {title} trong "), meeting("/votes")]
            if verb == "in_person":
                return [T(f" nhập kết quả tại hội trường cho biểu quyết {title} ("
                          f"tán thành {s.get('agree', 0)}, không tán thành {s.get('disagree', 0)}) — "),
                        meeting("/votes")]
            result = "thông qua" if s.get("passed") else "không thông qua"
            return [T(f" kết thúc biểu quyết {title}: {result} (tán thành {s.get('agree', 0)}/"
                      f"{s.get('denominator', '?')}) — "), meeting("/votes")]
        if group == "minutes":
            phrase = {"taker_confirm": " (thư ký) xác nhận biên bản ", "adopt": " thông qua biên bản ",
                      "amend": f" sửa biên bản (phiên bản {s.get('version', '')}) "}.get(verb, " thay đổi biên bản ")
            return [T(phrase), meeting("/minutes")]
        if group == "review":
            review = self.obj
            year = getattr(review, "year", None) or s.get("year")
            m = self.member()
            link = Piece(f"năm {year} của {m.full_name}", f"/members/{m.id}/review/{year}") if m and year else \
                Piece("của một đảng viên")
            phrase = {"self": " ghi bản tự kiểm điểm ", "host_comment": " ghi nhận xét của nơi cư trú/làm việc ",
                      "propose": " ghi đề xuất xếp loại của chi bộ ",
                      "confirm": " ghi quyết định xếp loại của cấp trên "}.get(verb, " thay đổi kiểm điểm ")
            return [T(phrase), link]
        if group == "evaluation":
            return [T(" đổi thiết lập đánh giá (tính vắng chuyên đề, ngày kiểm điểm)")]
        if group == "organisation":
            org = self.obj
            named = Piece(org.name, f"/cells/{org.id}" if org.kind == OrgKind.CELL else f"/orgs/{org.id}") if org \
                else Piece("một tổ chức")
            phrase = {"create": " lập ", "move": " chuyển cấp trên của ", "merge": " hợp nhất ",
                      "email": " đổi địa chỉ thư điện tử của "}.get(verb, " thay đổi ")
            return [T(phrase), named]
        if group == "pilot":
            return [T(" phê duyệt thí điểm sinh hoạt trực tuyến (Hướng dẫn 03-HD/TW)" if verb == "approve"
                      else " kết thúc thí điểm sinh hoạt trực tuyến")]
        return None


def describe(session: Session, entries: list[AuditEntry]) -> list[Line]:
    objects = _Objects(session, entries)
    return [Line(entry=e, pieces=_Sentence(e, objects).build(), changes=_changes(e)) for e in entries]
