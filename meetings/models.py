"""Import every model so that ``Base.metadata`` is complete (Alembic, tests)."""

from .evaluation.monthly import CellMonth
from .evaluation.policies import EvaluationPolicy
from .evaluation.reviews import HostComment, YearReview
from .evaluation.three_month import MemberFlag
from .foundation.audit import AuditChainHead, AuditEntry
from .foundation.base import Base
from .organisation.accounts import Account, LoginFailure, RoleGrant
from .organisation.members import Member, MemberPeriod, Membership
from .organisation.organisations import Organisation, OrgParentLink
from .organisation.sessions import JoinTokenUse, LoginSession
from .planning.absences import AbsenceRequest
from .planning.agenda import AgendaItem
from .planning.calendars import CalendarFeed
from .planning.documents import DocumentAccess, MeetingDocument
from .planning.meetings import Meeting, PilotApproval, RemoteInvite
from .planning.notices import Notice
from .planning.schedules import CellScheduleSettings, MeetingRule
from .proceedings.access_epoch import AccessEpoch
from .proceedings.attendance import AttendanceAmendment, AttendanceRecord, DuesRecord
from .proceedings.chat import ChatMessage
from .proceedings.minutes import Minutes, MinutesVersion
from .proceedings.presence import PresenceEvent, PresenceInterval
from .proceedings.votes import BallotCast, Motion, OpenVote, SecretTally

__all__ = [
    "AbsenceRequest",
    "AccessEpoch",
    "Account",
    "AgendaItem",
    "AttendanceAmendment",
    "AttendanceRecord",
    "AuditChainHead",
    "AuditEntry",
    "BallotCast",
    "Base",
    "CalendarFeed",
    "CellMonth",
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
