"""Import every model so that ``Base.metadata`` is complete (Alembic, tests)."""

from .accounts import Account, LoginFailure, RoleGrant
from .audit import AuditEntry
from .base import Base
from .meetings import Meeting, PilotApproval, RemoteInvite
from .members import Member, MemberPeriod, Membership
from .organisations import Organisation, OrgParentLink

__all__ = [
    "Account",
    "AuditEntry",
    "Base",
    "LoginFailure",
    "Meeting",
    "Member",
    "MemberPeriod",
    "Membership",
    "OrgParentLink",
    "PilotApproval",
    "RemoteInvite",
    "Organisation",
    "RoleGrant",
]
