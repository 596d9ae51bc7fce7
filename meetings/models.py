"""Import every model so that ``Base.metadata`` is complete (Alembic, tests)."""

from .absences import AbsenceRequest
from .accounts import Account, LoginFailure, RoleGrant
from .agenda import AgendaItem
from .attendance import AttendanceAmendment, AttendanceRecord, DuesRecord
from .audit import AuditChainHead, AuditEntry
from .base import Base
from .calendars import CalendarFeed
from .chat import ChatMessage
from .documents import DocumentAccess, MeetingDocument
from .meetings import Meeting, PilotApproval, RemoteInvite
from .members import Member, MemberPeriod, Membership
from .minutes import Minutes, MinutesVersion
from .notices import Notice
from .organisations import Organisation, OrgParentLink
from .policies import EvaluationPolicy
from .presence import PresenceEvent, PresenceInterval
from .reviews import HostComment, YearReview
from .schedules import CellScheduleSettings, MeetingRule
from .sessions import JoinTokenUse, LoginSession
from .three_month import MemberFlag
from .votes import BallotCast, Motion, OpenVote, SecretTally

__all__ = [
    "AbsenceRequest",
    "Account",
    "AgendaItem",
    "AttendanceAmendment",
    "AttendanceRecord",
    "AuditChainHead",
    "AuditEntry",
    "BallotCast",
    "Base",
    "CalendarFeed",
    "CellScheduleSettings",
    "ChatMessage",
    "DocumentAccess",
    "DuesRecord",
    "EvaluationPolicy",
    "HostComment",
    "JoinTokenUse",
    "LoginFailure",
    "LoginSession",
    "Meeting",
    "MeetingDocument",
    "MeetingRule",
    "Member",
    "MemberFlag",
    "MemberPeriod",
    "Membership",
    "Minutes",
    "MinutesVersion",
    "Motion",
    "Notice",
    "OpenVote",
    "OrgParentLink",
    "Organisation",
    "PilotApproval",
    "PresenceEvent",
    "PresenceInterval",
    "RemoteInvite",
    "RoleGrant",
    "SecretTally",
    "YearReview",
]
