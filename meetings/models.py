"""Import every model so that ``Base.metadata`` is complete (Alembic, tests)."""

from .accounts import Account, LoginFailure, RoleGrant
from .audit import AuditEntry
from .base import Base
from .chat import ChatMessage
from .meetings import Meeting, PilotApproval, RemoteInvite
from .members import Member, MemberPeriod, Membership
from .organisations import Organisation, OrgParentLink
from .presence import PresenceEvent, PresenceInterval

__all__ = [
    "Account",
    "AuditEntry",
    "ChatMessage",
    "Base",
    "LoginFailure",
    "Meeting",
    "Member",
    "MemberPeriod",
    "Membership",
    "OrgParentLink",
    "PilotApproval",
    "PresenceEvent",
    "PresenceInterval",
    "RemoteInvite",
    "Organisation",
    "RoleGrant",
]
