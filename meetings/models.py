"""Import every model so that ``Base.metadata`` is complete (Alembic, tests)."""

from .accounts import Account, LoginFailure, RoleGrant
from .audit import AuditEntry
from .base import Base
from .members import Member, MemberPeriod, Membership
from .organisations import Organisation, OrgParentLink

__all__ = [
    "Account",
    "AuditEntry",
    "Base",
    "LoginFailure",
    "Member",
    "MemberPeriod",
    "Membership",
    "OrgParentLink",
    "Organisation",
    "RoleGrant",
]
