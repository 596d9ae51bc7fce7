"""The party organisation tree: committees of any depth with cells as leaves.

Since 1 July 2025 commune committees sit directly under the provincial committee; older
records keep district committees (decision 11 in shared/domain/cases.md). The tree can be
restructured without rewriting history: every change of parent is kept as a dated link, so
``parent_on(org, date)`` answers where an organisation stood on any day, and an organisation
that is merged away is dissolved (never deleted) and points at its successor.

``path`` is a materialised path ("/1/7/19/") so that a subtree is one indexed prefix query,
which the auditors' roll-ups over a whole province rely on.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Date,
    ForeignKey,
    Integer,
    String,
    Text,
    case,
    func,
    literal_column,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from ..foundation import audit
from ..foundation.actors import Actor
from ..foundation.base import Base, UTCDateTime, utcnow, value_enum
from ..foundation.errors import Conflict, NotFound, ValidationError
from ..foundation.sqltime import AnySelect, plain_rows


class OrgKind(enum.StrEnum):
    PROVINCE = "province"
    DISTRICT = "district"
    COMMUNE = "commune"
    GRASSROOTS = "grassroots"
    CELL = "cell"

    @property
    def label(self) -> str:
        return ORG_KIND_LABELS[self]


ORG_KIND_LABELS = {
    OrgKind.PROVINCE: "Tỉnh ủy",
    OrgKind.DISTRICT: "Huyện ủy",
    OrgKind.COMMUNE: "Đảng ủy xã/phường",
    OrgKind.GRASSROOTS: "Đảng bộ cơ sở",
    OrgKind.CELL: "Chi bộ",
}


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[OrgKind] = mapped_column(
        value_enum(OrgKind)
    )
    name: Mapped[str] = mapped_column(String(200))
    code: Mapped[str] = mapped_column(String(40), unique=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    path: Mapped[str] = mapped_column(String(400), index=True, default="")
    depth: Mapped[int] = mapped_column(Integer, default=0)
    #: Cells with nine or more official members elect a chi ủy, which meets before each
    #: regular meeting (decision 2).
    has_committee: Mapped[bool] = mapped_column(Boolean, default=False)
    created_on: Mapped[dt.date] = mapped_column(Date)
    dissolved_on: Mapped[dt.date | None] = mapped_column(Date)
    successor_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"))
    address: Mapped[str | None] = mapped_column(String(300))
    #: Where a committee receives the notices of the cells it supervises (HD 42).
    email: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def is_cell(self) -> bool:
        return self.kind == OrgKind.CELL

    @property
    def active(self) -> bool:
        return self.dissolved_on is None

    @property
    def title(self) -> str:
        """The name as it is written in documents, e.g. "Chi bộ thôn An Mỹ"."""
        return self.name

    def __repr__(self) -> str:
        return f"<Organisation {self.id} {self.kind.value} {self.code}>"


class OrgParentLink(Base):
    """One period during which an organisation stood under a parent (None: a root)."""

    __tablename__ = "organisation_parent_links"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organisation_id: Mapped[int] = mapped_column(ForeignKey("organisations.id"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("organisations.id"), index=True)
    valid_from: Mapped[dt.date] = mapped_column(Date)
    #: Inclusive last day; None while the link holds.
    valid_to: Mapped[dt.date | None] = mapped_column(Date)


ORG_SNAPSHOT_FIELDS = ("kind", "name", "code", "parent_id", "has_committee", "dissolved_on", "successor_id", "address")


def _check_parent(kind: OrgKind, parent: Organisation | None) -> None:
    if kind == OrgKind.PROVINCE and parent is not None:
        raise ValidationError("Tỉnh ủy là cấp cao nhất, không thể trực thuộc tổ chức khác.")
    if kind != OrgKind.PROVINCE and parent is None:
        raise ValidationError("Tổ chức này phải trực thuộc một cấp ủy.")
    if parent is not None:
        if parent.is_cell:
            raise ValidationError("Chi bộ không thể có tổ chức trực thuộc.")
        if not parent.active:
            raise ValidationError(f"{parent.name} đã giải thể, không thể thêm tổ chức trực thuộc.")


def create_organisation(
    session: Session,
    actor: Actor,
    *,
    kind: OrgKind,
    name: str,
    code: str,
    parent: Organisation | None,
    created_on: dt.date,
    has_committee: bool = False,
    address: str | None = None,
) -> Organisation:
    name = name.strip()
    code = code.strip().upper()
    if not name:
        raise ValidationError("Tên tổ chức không được để trống.", field="name")
    if not code:
        raise ValidationError("Mã tổ chức không được để trống.", field="code")
    _check_parent(kind, parent)
    if session.scalar(select(Organisation.id).where(Organisation.code == code)) is not None:
        raise Conflict(f"Mã tổ chức {code} đã được dùng.", field="code")
    org = Organisation(
        kind=kind,
        name=name,
        code=code,
        parent_id=parent.id if parent else None,
        has_committee=has_committee and kind == OrgKind.CELL,
        created_on=created_on,
        address=address,
    )
    session.add(org)
    session.flush()
    org.path = (parent.path if parent else "/") + f"{org.id}/"
    org.depth = parent.depth + 1 if parent else 0
    session.add(
        OrgParentLink(organisation_id=org.id, parent_id=org.parent_id, valid_from=created_on)
    )
    audit.record(session, actor, "organisation.create", org, None, audit.snapshot(org, ORG_SNAPSHOT_FIELDS))
    session.flush()
    return org


def get_organisation(session: Session, org_id: int) -> Organisation:
    org = session.get(Organisation, org_id)
    if org is None:
        raise NotFound()
    return org


def ancestors(session: Session, org: Organisation) -> list[Organisation]:
    """From the root down to the parent of ``org`` (current tree)."""
    ids = [int(p) for p in org.path.strip("/").split("/") if p][:-1]
    if not ids:
        return []
    found = {o.id: o for o in session.scalars(select(Organisation).where(Organisation.id.in_(ids)))}
    return [found[i] for i in ids if i in found]


def subtree_filter(org: Organisation) -> ColumnElement[bool]:
    """A SQL condition selecting ``org`` and everything below it (current tree)."""
    return Organisation.path.startswith(org.path, autoescape=True)


def subtree(session: Session, org: Organisation, *, kind: OrgKind | None = None) -> list[Organisation]:
    stmt = select(Organisation).where(subtree_filter(org)).order_by(Organisation.path)
    if kind is not None:
        stmt = stmt.where(Organisation.kind == kind)
    return list(session.scalars(stmt))


def children(session: Session, org: Organisation) -> list[Organisation]:
    return list(
        session.scalars(
            select(Organisation).where(Organisation.parent_id == org.id).order_by(Organisation.name)
        )
    )


def parent_on(session: Session, org_id: int, on: dt.date) -> int | None:
    """The parent an organisation stood under on a given day (history-aware)."""
    link = session.scalars(
        select(OrgParentLink)
        .where(OrgParentLink.organisation_id == org_id, OrgParentLink.valid_from <= on)
        .order_by(OrgParentLink.valid_from.desc(), OrgParentLink.id.desc())
    ).first()
    if link is None or (link.valid_to is not None and link.valid_to < on):
        return None
    return link.parent_id


def lineage_on(session: Session, org_id: int, on: dt.date) -> list[int]:
    """``org_id`` and its ancestors as they stood on ``on``, nearest first."""
    chain = [org_id]
    seen = {org_id}
    current: int | None = org_id
    while current is not None:
        current = parent_on(session, current, on)
        if current is None or current in seen:
            break
        chain.append(current)
        seen.add(current)
    return chain


@dataclass(frozen=True, slots=True)
class Span:
    """Days ``start``–``end`` (inclusive) during which an organisation stood under a
    committee, reached through ``child_id``: the committee's child on the way down (the
    organisation itself when it was a direct child)."""

    start: dt.date
    end: dt.date
    child_id: int

    def covers(self, day: dt.date) -> bool:
        return self.start <= day <= self.end


def descent_statement(org_id: int, start: dt.date, end: dt.date) -> AnySelect:
    """The dated links below ``org_id`` that overlap ``start``–``end``, at any depth (one
    recursive query; bench/audit.py times it bare)."""
    link = OrgParentLink

    def overlapping(stmt: AnySelect) -> AnySelect:
        return stmt.where(link.valid_from <= end, or_(link.valid_to.is_(None), link.valid_to >= start))

    columns = (link.organisation_id, link.parent_id, link.valid_from, link.valid_to)
    tree = overlapping(select(*columns).where(link.parent_id == org_id)).cte("descent", recursive=True)
    tree = tree.union(overlapping(select(*columns).join(tree, link.parent_id == tree.c.organisation_id)))
    return select(tree.c.organisation_id, tree.c.parent_id, tree.c.valid_from, tree.c.valid_to)


@functools.lru_cache(maxsize=256)  # built once per committee and period: a millisecond each time
def cells_during_statement(org_id: int, start: dt.date, end: dt.date) -> AnySelect:
    """The cells that stood under ``org_id`` (at any depth) on some day of ``start``–``end``:
    per span, the cell's own columns (id, name, code, path, created_on, has_committee) and
    the span (the child of ``org_id`` it was reached through, its first and last day), by
    path and first day. :func:`descendants_during` with the walk done by the database (one
    recursive query, no Python per organisation: a province's audit, bench/audit.py)."""
    link = OrgParentLink

    def later(a: Any, b: Any) -> ColumnElement[dt.date]:
        return case((a > b, a), else_=b)

    def earlier(a: Any, b: Any) -> ColumnElement[dt.date]:
        return case((a < b, a), else_=b)

    top = (select(link.organisation_id.label("id"), link.organisation_id.label("through"),
                  later(link.valid_from, start).label("first"),
                  earlier(func.coalesce(link.valid_to, end), end).label("last"), literal_column("0").label("depth"))
           .where(link.parent_id == org_id, link.valid_from <= end, or_(link.valid_to.is_(None), link.valid_to >= start))
           .cte("spans", recursive=True))
    # As descendants_during's walk: each link clipped to its parent's span; a cycle in bad data
    # stops at depth 32.
    tree = top.union_all(
        select(link.organisation_id, top.c.through, later(link.valid_from, top.c.first),
               earlier(func.coalesce(link.valid_to, top.c.last), top.c.last), top.c.depth + 1)
        .join(top, link.parent_id == top.c.id)
        .where(link.valid_from <= top.c.last, or_(link.valid_to.is_(None), link.valid_to >= top.c.first),
               top.c.depth < 32))
    o = Organisation
    return (select(o.id, o.name, o.code, o.path, o.created_on, o.has_committee, tree.c.through, tree.c.first,
                   tree.c.last)
            .join(o, o.id == tree.c.id).where(o.kind == OrgKind.CELL).order_by(o.path, tree.c.first))


def descendants_during(session: Session, org: Organisation, start: dt.date, end: dt.date) -> dict[int, list[Span]]:
    """Every organisation that stood under ``org`` (at any depth) on some day of ``start``–
    ``end``, with those days and the child of ``org`` it stood under — from the dated links,
    never today's tree (decision 11). A cell moved from one commune to another on 1 July has
    a span under each for the year."""
    below: dict[int, list[tuple[int, dt.date, dt.date | None]]] = {}
    # The driver's tuples (a province has thousands of links): dates come as text on SQLite.
    for organisation_id, parent_id, valid_from, valid_to in plain_rows(session, descent_statement(org.id, start, end)):
        if isinstance(valid_from, str):
            valid_from = dt.date.fromisoformat(valid_from)
            valid_to = dt.date.fromisoformat(valid_to) if valid_to else None
        below.setdefault(parent_id, []).append((organisation_id, valid_from, valid_to))
    found: dict[int, list[Span]] = {}

    def walk(parent: int, lo: dt.date, hi: dt.date, child: int | None, depth: int) -> None:
        for organisation_id, valid_from, valid_to in below.get(parent, ()):
            first, last = max(lo, valid_from), min(hi, valid_to or hi)
            if first > last:
                continue
            through = child if child is not None else organisation_id
            found.setdefault(organisation_id, []).append(Span(first, last, through))
            if depth < 32:  # the tree is a few levels deep; a cycle in bad data must not hang
                walk(organisation_id, first, last, through, depth + 1)

    walk(org.id, start, end, None, 0)
    for spans in found.values():
        if len(spans) > 1:
            spans.sort(key=lambda span: span.start)
    return found


def move_organisation(
    session: Session, actor: Actor, org: Organisation, new_parent: Organisation, on: dt.date
) -> None:
    """Re-attach ``org`` (and its subtree) under ``new_parent`` from day ``on``."""
    if org.kind == OrgKind.PROVINCE:
        raise ValidationError("Không thể chuyển tỉnh ủy.")
    _check_parent(org.kind, new_parent)
    if new_parent.path.startswith(org.path):
        raise ValidationError("Không thể chuyển một tổ chức vào chính cấp dưới của nó.")
    if new_parent.id == org.parent_id:
        return
    before = audit.snapshot(org, ORG_SNAPSHOT_FIELDS)
    _close_link(session, org.id, on)
    session.add(OrgParentLink(organisation_id=org.id, parent_id=new_parent.id, valid_from=on))
    old_prefix = org.path
    new_prefix = f"{new_parent.path}{org.id}/"
    depth_shift = new_parent.depth + 1 - org.depth
    for node in subtree(session, org):
        node.path = new_prefix + node.path[len(old_prefix):]
        node.depth += depth_shift
    org.parent_id = new_parent.id
    session.flush()
    audit.record(session, actor, "organisation.move", org, before, audit.snapshot(org, ORG_SNAPSHOT_FIELDS))


def merge_organisations(
    session: Session,
    actor: Actor,
    sources: Sequence[Organisation],
    target: Organisation,
    on: dt.date,
) -> None:
    """Merge committees: their children move under ``target`` and the sources are dissolved.

    Typical use: two communes merged into one (2025). Nothing is deleted, so the meetings and
    records of the old communes' cells still resolve to the commune of their time.
    """
    for source in sources:
        if source.id == target.id:
            raise ValidationError("Không thể hợp nhất một tổ chức với chính nó.")
        if source.is_cell or target.is_cell:
            raise ValidationError("Chỉ hợp nhất được các cấp ủy; chi bộ thì chuyển hoặc giải thể.")
        if not source.active:
            raise ValidationError(f"{source.name} đã giải thể từ trước.")
        for child in children(session, source):
            if child.active:
                move_organisation(session, actor, child, target, on)
        before = audit.snapshot(source, ORG_SNAPSHOT_FIELDS)
        source.dissolved_on = on - dt.timedelta(days=1)
        source.successor_id = target.id
        session.flush()
        audit.record(
            session, actor, "organisation.merge", source, before, audit.snapshot(source, ORG_SNAPSHOT_FIELDS)
        )


def _close_link(session: Session, org_id: int, on: dt.date) -> None:
    session.execute(
        update(OrgParentLink)
        .where(OrgParentLink.organisation_id == org_id, OrgParentLink.valid_to.is_(None))
        .values(valid_to=on - dt.timedelta(days=1))
    )


def cells_of(session: Session, orgs: Iterable[Organisation]) -> list[Organisation]:
    """All cells at or under any of ``orgs`` (current tree), by name."""
    result: dict[int, Organisation] = {}
    for org in orgs:
        for cell in subtree(session, org, kind=OrgKind.CELL):
            result[cell.id] = cell
    return sorted(result.values(), key=lambda o: o.name)
