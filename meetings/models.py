"""Import every model so that ``Base.metadata`` is complete (Alembic, tests)."""

from .accounts import Account, LoginFailure, RoleGrant
from .attendance import AttendanceAmendment, AttendanceRecord, DuesRecord
from .audit import AuditEntry
from .base import Base
from .chat import ChatMessage
from .meetings import Meeting, PilotApproval, RemoteInvite
from .members import Member, MemberPeriod, Membership
from .minutes import Minutes, MinutesVersion
from .organisations import Organisation, OrgParentLink
from .presence import PresenceEvent, PresenceInterval
from .votes import BallotCast, Motion, OpenVote, SecretTally

__all__ = [
    "AttendanceAmendment",
    "AttendanceRecord",
    "BallotCast",
    "DuesRecord",
    "Minutes",
    "MinutesVersion",
    "Motion",
    "OpenVote",
    "SecretTally",
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
