"""Import every model so that ``Base.metadata`` is complete (Alembic, tests)."""

from .absences import AbsenceRequest
from .accounts import Account, LoginFailure, RoleGrant
from .agenda import AgendaItem
from .audit import AuditEntry
from .base import Base
from .calendars import CalendarFeed
from .documents import DocumentAccess, MeetingDocument
from .meetings import Meeting, PilotApproval, RemoteInvite
from .members import Member, MemberPeriod, Membership
from .notices import Notice
from .organisations import Organisation, OrgParentLink
from .schedules import CellScheduleSettings, MeetingRule

__all__ = [
    "AbsenceRequest",
    "AgendaItem",
    "CalendarFeed",
    "CellScheduleSettings",
    "DocumentAccess",
    "MeetingDocument",
    "MeetingRule",
    "Notice",
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
