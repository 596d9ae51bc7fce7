"""Which organisations an account may see and manage — decided here and nowhere else.

* a member (an account linked to a member) reads their home cell and, while attached
  elsewhere (sinh hoạt tạm thời), the host cell;
* a secretary or deputy secretary manages the cell they were granted;
* an auditor (cấp ủy cấp trên) reads the committee they were granted and its whole subtree,
  read-only;
* an admin manages the subtree they were granted, or everything when granted platform-wide.

Each role's rights hold only over the organisations that role was granted on: an auditor of
one commune who is also a plain member of a cell elsewhere reads that cell as a member, not as
an auditor (``auditable``), and an admin of one subtree who is a secretary elsewhere is only a
secretary there (``administered``).

Views and queries go through :func:`scope_for` and the ``access_*`` helpers (after Zulip's
``access_*_by_*``). An organisation outside the readable set is reported as *not found*, so
that nobody learns which cells exist elsewhere; one that is readable but not manageable
gives *forbidden*.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from ..foundation.errors import Forbidden, NotFound
from ..foundation.sqltime import plain_rows
from .accounts import Account, Role, RoleGrant
from .members import Member, MemberPeriod, PeriodKind
from .organisations import Organisation, OrgKind


@dataclass(frozen=True)
class Scope:
    account_id: int
    member_id: int | None
    #: None means everything (platform admin).
    readable: frozenset[int] | None
    manageable: frozenset[int] | None
    roles: frozenset[tuple[Role, int | None]] = field(default_factory=frozenset)
    #: Cells read as their own people (member, secretary, deputy; home and host cell), not
    #: through a committee's subtree: they read the cell's whole history.
    own_cells: frozenset[int] = field(default_factory=frozenset)
    #: Where the auditor role (read-only oversight) was granted, subtrees included.
    auditable: frozenset[int] = frozenset()
    #: Where an admin role was granted, subtrees included; None means everything.
    administered: frozenset[int] | None = frozenset()

    def can_read(self, org_id: int | None) -> bool:
        return org_id is not None and (self.readable is None or org_id in self.readable)

    def can_manage(self, org_id: int | None) -> bool:
        return org_id is not None and (self.manageable is None or org_id in self.manageable)

    def can_audit(self, org_id: int | None) -> bool:
        """Oversight pages (records, change log, audit, compliance, rosters and their
        exports): whoever manages the organisation (its secretary, an admin above it), or
        audits it read-only by an auditor grant that covers it (security finding 12.3: never
        through a grant elsewhere)."""
        return org_id is not None and (self.can_manage(org_id) or org_id in self.auditable)

    def administers(self, org_id: int | None) -> bool:
        """An admin role covers the organisation (not merely some admin role elsewhere)."""
        return org_id is not None and (self.administered is None or org_id in self.administered)

    def has_role(self, role: Role, org_id: int | None = None) -> bool:
        return any(r == role and (org_id is None or o == org_id) for r, o in self.roles)

    @property
    def is_admin(self) -> bool:
        return any(r == Role.ADMIN for r, _ in self.roles)

    @property
    def is_auditor(self) -> bool:
        return any(r == Role.AUDITOR for r, _ in self.roles)

    def chairs(self, cell_id: int) -> bool:
        """Runs the cell's meetings: its secretary or deputy, or an admin over it."""
        return self.can_manage(cell_id) and (
            self.has_role(Role.SECRETARY, cell_id) or self.has_role(Role.DEPUTY, cell_id)
            or self.administers(cell_id)
        )

    @property
    def committees(self) -> frozenset[int]:
        """The organisations granted to this account as an auditor or an admin."""
        return frozenset(o for r, o in self.roles if r in (Role.AUDITOR, Role.ADMIN) and o is not None)

    def reads_as_of(self, cell_id: int, lineage: list[int]) -> bool:
        """Whether a record of ``cell_id`` dated on a day when the cell's line up the tree was
        ``lineage`` (the cell first, ``organisations.lineage_on``) is readable: the cell's own
        people read its whole history; a committee's auditors and admins read what happened
        while the cell stood under that committee — as of its time, never through today's
        tree (decision 11)."""
        if self.readable is None or cell_id in self.own_cells:
            return True
        return any(org in self.committees for org in lineage)

    def audits_as_of(self, cell_id: int, lineage: list[int]) -> bool:
        """Oversight (rosters, absence requests, who read the documents) of a record of
        ``cell_id`` dated on a day when the cell's line up the tree was ``lineage``: whoever
        manages the cell, or an auditor or admin whose grant covered the cell on that day —
        never through a grant elsewhere (security finding 12.3), never through today's tree
        (decision 11)."""
        if self.administered is None or self.can_manage(cell_id):
            return True
        return any(org in self.committees for org in lineage)

    @property
    def managed_cells(self) -> frozenset[int]:
        return frozenset(o for r, o in self.roles if r in (Role.SECRETARY, Role.DEPUTY) and o is not None)


def _subtree_ids(session: Session, org_id: int) -> set[int]:
    org = session.get(Organisation, org_id)
    if org is None:
        return set()
    # The driver's own rows: a province's auditor reads 3,100 ids on every request, and the
    # ORM's handling of each row cost more than the query. (Flushed first, as the ORM's
    # query would: an organisation added in this transaction is in the subtree.)
    session.flush()
    rows = plain_rows(session, select(Organisation.id).where(Organisation.path.startswith(org.path, autoescape=True)))
    return {row[0] for row in rows}


def scope_for(session: Session, account: Account, today: dt.date) -> Scope:
    readable: set[int] = set()
    manageable: set[int] = set()
    own: set[int] = set()
    auditable: set[int] = set()
    administered: set[int] = set()
    everything = False
    roles: set[tuple[Role, int | None]] = set()
    for grant in session.scalars(select(RoleGrant).where(RoleGrant.account_id == account.id)):
        roles.add((grant.role, grant.organisation_id))
        if grant.role == Role.ADMIN:
            if grant.organisation_id is None:
                everything = True
            else:
                ids = _subtree_ids(session, grant.organisation_id)
                readable |= ids
                manageable |= ids
                administered |= ids
        elif grant.role == Role.AUDITOR and grant.organisation_id is not None:
            ids = _subtree_ids(session, grant.organisation_id)
            readable |= ids
            auditable |= ids
        elif grant.role in (Role.SECRETARY, Role.DEPUTY) and grant.organisation_id is not None:
            readable.add(grant.organisation_id)
            manageable.add(grant.organisation_id)
            own.add(grant.organisation_id)
        elif grant.role == Role.MEMBER and grant.organisation_id is not None:
            readable.add(grant.organisation_id)
            own.add(grant.organisation_id)
    if account.member_id is not None:
        member = session.get(Member, account.member_id)
        if member is not None and member.home_cell_id is not None:
            readable.add(member.home_cell_id)
            own.add(member.home_cell_id)
        hosts = {
            cell for cell in session.scalars(
                select(MemberPeriod.host_cell_id).where(
                    MemberPeriod.member_id == account.member_id,
                    MemberPeriod.kind == PeriodKind.TRANSFER_OUT,
                    MemberPeriod.host_cell_id.is_not(None),
                    MemberPeriod.start_on <= today,
                    or_(MemberPeriod.end_on.is_(None), MemberPeriod.end_on >= today),
                )
            ) if cell is not None
        }
        readable |= hosts
        own |= hosts
    return Scope(
        account_id=account.id,
        member_id=account.member_id,
        readable=None if everything else frozenset(readable),
        manageable=None if everything else frozenset(manageable),
        roles=frozenset(roles),
        own_cells=frozenset(own),
        auditable=frozenset(auditable),
        administered=None if everything else frozenset(administered),
    )


def access_organisation(session: Session, scope: Scope, org_id: int, *, manage: bool = False) -> Organisation:
    org = session.get(Organisation, org_id)
    if org is None or not scope.can_read(org.id):
        raise NotFound()
    if manage and not scope.can_manage(org.id):
        raise Forbidden()
    return org


def access_cell(session: Session, scope: Scope, cell_id: int, *, manage: bool = False) -> Organisation:
    org = access_organisation(session, scope, cell_id, manage=manage)
    if org.kind != OrgKind.CELL:
        raise NotFound()
    return org


def member_cells(session: Session, member: Member, today: dt.date) -> set[int]:
    """The home cell and any cell the member is attached to today."""
    cells = {member.home_cell_id} if member.home_cell_id is not None else set()
    cells |= {
        cell for cell in session.scalars(
            select(MemberPeriod.host_cell_id).where(
                MemberPeriod.member_id == member.id,
                MemberPeriod.kind == PeriodKind.TRANSFER_OUT,
                MemberPeriod.host_cell_id.is_not(None),
                MemberPeriod.start_on <= today,
                or_(MemberPeriod.end_on.is_(None), MemberPeriod.end_on >= today),
            )
        ) if cell is not None
    }
    return cells


def access_member(session: Session, scope: Scope, member_id: int, today: dt.date, *, manage: bool = False) -> Member:
    member = session.get(Member, member_id)
    if member is None:
        raise NotFound()
    cells = member_cells(session, member, today)
    if not (scope.member_id == member.id or any(scope.can_read(c) for c in cells)):
        raise NotFound()
    if manage:
        # The home cell manages its members; the host cell manages members attached from
        # outside the platform (they have no home cell here).
        managing = {member.home_cell_id} if member.home_cell_id is not None else cells
        if not any(scope.can_manage(c) for c in managing):
            raise Forbidden()
    return member


def readable_cells(session: Session, scope: Scope) -> list[Organisation]:
    stmt = select(Organisation).where(Organisation.kind == OrgKind.CELL).order_by(Organisation.name)
    if scope.readable is not None:
        if not scope.readable:
            return []
        stmt = stmt.where(Organisation.id.in_(scope.readable))
    return list(session.scalars(stmt))


def top_organisations(session: Session, scope: Scope) -> list[Organisation]:
    """The highest organisations the account can read (the roots of what it sees)."""
    stmt = select(Organisation).order_by(Organisation.path)
    if scope.readable is not None:
        if not scope.readable:
            return []
        stmt = stmt.where(Organisation.id.in_(scope.readable))
    orgs = list(session.scalars(stmt))
    tops: list[Organisation] = []
    for org in orgs:
        if not any(org.path.startswith(t.path) and org.id != t.id for t in tops):
            tops.append(org)
    return tops


def can_approve_for(session: Session, scope: Scope, cell: Organisation) -> bool:
    """Who records a cell's online-pilot approval and its duration override: an admin whose
    grant covers the cell (the higher committee's side), never the cell's own secretary."""
    if scope.has_role(Role.SECRETARY, cell.id) or scope.has_role(Role.DEPUTY, cell.id):
        return False
    for role, org_id in scope.roles:
        if role != Role.ADMIN:
            continue
        if org_id is None:
            return True
        granted = session.get(Organisation, org_id)
        if granted is not None and cell.path.startswith(granted.path):
            return True
    return False


def access_cell_as_approver(session: Session, scope: Scope, cell_id: int) -> Organisation:
    cell = access_cell(session, scope, cell_id)
    if not can_approve_for(session, scope, cell):
        raise Forbidden("Chỉ quản trị của cấp ủy cấp trên được ghi nhận phê duyệt cho chi bộ; "
                        "bí thư không tự phê duyệt chi bộ mình.")
    return cell
