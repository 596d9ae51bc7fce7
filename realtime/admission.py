"""The join path's copy of room access decisions: who a login session is in a meeting's room,
kept per (login session, meeting, device, day) while the access epoch stands still.

At 19:30 a province's members join within minutes, each with a token request and a WebSocket
handshake; deciding afresh each time (``scoping.scope_for``, the cell's electorate, the remote
list, removals) made joining the bottleneck. The decision is still the one function,
``proceedings.room_access``; this keeps what it said, without ORM objects, until anything it
reads changes (``proceedings.access_epoch``, one primary-key read per join, valid across
processes). Whether the login session is still live is never kept: the handshake checks it
every time.

What the decision reads about the meeting itself (the cell's electorate, the pilot approval, the
remote list, the removals: ``room_access.MeetingFacts``) is kept per meeting under the same
epoch, so a cell's members arriving one after the other read its roster once, not once each.
"""

from __future__ import annotations

import datetime as dt
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from meetings.organisation.accounts import Account
from meetings.organisation.organisations import Organisation
from meetings.organisation.scoping import Scope, scope_for
from meetings.planning.meetings import Meeting
from meetings.proceedings import access_epoch
from meetings.proceedings.room_access import (
    MeetingFacts,
    RoomAccess,
    RoomRefusal,
    RoomRole,
    meeting_facts,
    room_access,
)

#: Kept decisions at most (a province's evening: tens of thousands of joins); past it the copy
#: starts empty again.
LIMIT = 100_000


@dataclass(frozen=True)
class Admission:
    """A room access decision as the join path keeps it."""

    meeting_id: int
    device: str
    role: RoomRole
    chair: bool
    #: Why not now (``RoomAccess.refusal``), for the token route and for the socket.
    refusal: RoomRefusal | None
    refusal_open: RoomRefusal | None
    status: str
    #: The member's name and vote on the meeting's day, when they stand in the cell.
    name: str | None
    voter: bool
    #: The meeting as ``welcome`` shows it.
    meeting: dict[str, Any]


def admission_of(session: Session, access: RoomAccess, cell_name: str | None = None) -> Admission:
    """``cell_name``: the meeting's cell's, when already known."""
    meeting = access.meeting
    if cell_name is None:
        cell = session.get(Organisation, meeting.cell_id)
        cell_name = cell.name if cell else ""
    entry = access.entry
    return Admission(
        meeting_id=meeting.id, device=access.device, role=access.role, chair=access.chair,
        refusal=access.refusal(), refusal_open=access.refusal(open_now=True), status=meeting.status.value,
        name=entry.full_name if entry else None, voter=bool(entry and entry.may_vote),
        meeting={"id": meeting.id, "cell_id": meeting.cell_id, "title": meeting.title,
                 "cell": cell_name, "status": meeting.status.value,
                 "starts_at": meeting.starts_at.isoformat(), "lobby": meeting.lobby},
    )


class AdmissionCache:
    def __init__(self, limit: int = LIMIT) -> None:
        self.limit = limit
        self._kept: dict[tuple[int, int, str, dt.date], tuple[int, Admission | RoomRefusal]] = {}
        #: Per meeting: the epoch, the meeting's facts and its cell's name.
        self._meetings: dict[int, tuple[int, MeetingFacts, str]] = {}
        #: Per meeting: held while one thread reads its facts.
        self._reading: dict[int, threading.Lock] = {}
        self._lock = threading.Lock()  # the token route and the handshake run on worker threads
        self.hits = 0
        self.misses = 0
        #: How often a meeting's facts were read (not kept).
        self.meeting_reads = 0

    def decide(self, session: Session, account: Account, login_session: int, meeting_id: int, device: str,
               today: dt.date, scope: Scope | None = None) -> Admission | RoomRefusal:
        """``room_access`` for this login session (of ``account``) as of ``today``, kept
        while the access epoch stands still. ``scope``: the account's, when already known."""
        epoch = access_epoch.current(session)
        key = (login_session, meeting_id, device, today)
        kept = self._kept.get(key)
        if kept is not None and kept[0] == epoch:
            self.hits += 1
            return kept[1]
        self.misses += 1

        def facts(session: Session, meeting: Meeting) -> MeetingFacts:
            return self._meeting(session, meeting, epoch)[0]

        access = room_access(session, scope or scope_for(session, account, today), meeting_id, device, facts=facts)
        decision = (access if isinstance(access, RoomRefusal)
                    else admission_of(session, access, self._meeting(session, access.meeting, epoch)[1]))
        with self._lock:
            if len(self._kept) >= self.limit:
                self._kept.clear()
            self._kept[key] = (epoch, decision)
        return decision

    def _meeting(self, session: Session, meeting: Meeting, epoch: int) -> tuple[MeetingFacts, str]:
        """The meeting's facts and its cell's name, as of ``epoch``. A cell's members arrive
        together: one of them reads the facts while the others wait for them."""
        kept = self._meetings.get(meeting.id)
        if kept is not None and kept[0] == epoch:
            return kept[1], kept[2]
        with self._lock:
            reading = self._reading.setdefault(meeting.id, threading.Lock())
        with reading:
            kept = self._meetings.get(meeting.id)
            if kept is not None and kept[0] == epoch:
                return kept[1], kept[2]
            self.meeting_reads += 1
            cell = session.get(Organisation, meeting.cell_id)
            fresh = (epoch, meeting_facts(session, meeting), cell.name if cell else "")
            with self._lock:
                if len(self._meetings) >= self.limit:
                    self._meetings.clear()
                    self._reading.clear()
                self._meetings[meeting.id] = fresh
        return fresh[1], fresh[2]
