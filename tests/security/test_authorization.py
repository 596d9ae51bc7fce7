"""Who may do what: every route of the app's router, for every kind of account (issue 12).

The routes are taken from the router itself, and each must have an entry in ``POLICIES``: a
new route without one fails this test, and so does an entry for a route that is gone. Each
route is requested by an anonymous visitor, a member, a secretary, a deputy secretary, an
auditor, an admin, and two accounts holding roles in two different subtrees, against
objects inside and outside their scope (cell A in commune X, cell C in commune Y) — reads,
writes with the caller's own CSRF token, and meeting-room WebSocket joins. The expected
outcome is computed from the caller's relation to the object:

    ok         the request got past the access checks (2xx, a redirect other than to the
               login page; for writes also 400/409/422: the empty form itself was refused)
    forbidden  403 — readable, but not this caller's to change or see
    hidden     404 — outside the caller's organisations (nobody learns what exists there)
    login      303 to the login page

Denied writes change nothing (the audit log does not grow). SQLite only: the queries behind
these checks run on PostgreSQL in tests/test_scoping.py.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import func, select
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from app.factory import create_app
from meetings.foundation.actors import Actor
from meetings.foundation.audit import AuditEntry
from meetings.organisation import members, sessions
from meetings.organisation.accounts import Account, Role
from meetings.organisation.members import PeriodInput, PeriodKind
from meetings.organisation.organisations import Organisation
from meetings.planning import calendars, documents
from meetings.planning import meetings as mt
from meetings.planning.meetings import MeetingKind, MeetingStatus, PilotApproval, RemoteInvite
from meetings.proceedings.minutes import Minutes
from realtime.tokens import JoinGrant, issue_join_token
from tests.security.conftest import add_account
from tests.support.routes import PARAM
from tests.support.web import client_token, login
from tests.support.world import (
    PASSWORD,
    WORLD_NOW,
    build_world,
    hold_meeting,
    review_objects,
    schedule_objects,
)

ACTOR = Actor.system("test")
BASE = "http://127.0.0.1:8000"
SETS = ("A", "C")  # cell A in commune X, cell C in commune Y
OK_READ = {200, 303}
OK_WRITE = {200, 303, 400, 409, 422}


# --------------------------------------------------------------------------- who is who


@dataclass(frozen=True)
class Rel:
    """An account's relation to an object set's cell (or commune)."""

    role: str = "none"  # none | member | secretary | deputy | auditor | admin
    own: bool = False  # the object set's member (a2 in A) is the account's own
    has_member: bool = True  # the account is linked to a party member
    #: The account's member is the named minute-taker of the set's held meeting (decision 13:
    #: the minute-taker writes and confirms the minutes from their own account).
    taker: bool = False

    @property
    def reads(self) -> bool:
        return self.role != "none"


NONE = Rel()
ACCOUNTS = ("anonymous", "mem_a", "sec_a", "dep_a", "aud_x", "admin", "dual", "dual2")
#: Relation to the object set's cell.
CELL: dict[str, dict[str, Rel]] = {
    "mem_a": {"A": Rel("member", own=True), "C": NONE},
    "sec_a": {"A": Rel("secretary"), "C": NONE},
    "dep_a": {"A": Rel("deputy", taker=True), "C": NONE},
    "aud_x": {"A": Rel("auditor", has_member=False), "C": NONE},
    "admin": {"A": Rel("admin", has_member=False), "C": Rel("admin", has_member=False)},
    # auditor of X, member of C: only a member's rights in C (finding 12.3)
    "dual": {"A": Rel("auditor"), "C": Rel("member", taker=True)},
    # secretary of A, admin of Y: only a secretary's rights in A
    "dual2": {"A": Rel("secretary", has_member=False), "C": Rel("admin", has_member=False)},
}
#: Relation to the commune above it (X for A, Y for C).
ORG: dict[str, dict[str, Rel]] = {
    "mem_a": {"A": NONE, "C": NONE},
    "sec_a": {"A": NONE, "C": NONE},
    "dep_a": {"A": NONE, "C": NONE},
    "aud_x": {"A": Rel("auditor", has_member=False), "C": NONE},
    "admin": {"A": Rel("admin"), "C": Rel("admin")},
    "dual": {"A": Rel("auditor"), "C": NONE},
    "dual2": {"A": NONE, "C": Rel("admin")},
}

OK, FORBIDDEN, HIDDEN, LOGIN = "ok", "forbidden", "hidden", "login"
MANAGERS = ("secretary", "deputy", "admin")


def readable(then: Callable[[Rel], str]) -> Callable[[Rel], str]:
    return lambda rel: then(rel) if rel.reads else HIDDEN


def roles(*allowed: str, own: bool = False) -> Callable[[Rel], str]:
    return readable(lambda rel: OK if rel.role in allowed or (own and rel.own) else FORBIDDEN)


READ = readable(lambda rel: OK)
AUDIT = roles("secretary", "deputy", "auditor", "admin")
MANAGE = roles(*MANAGERS)
MINUTES = readable(lambda rel: OK if rel.role in MANAGERS or rel.taker else FORBIDDEN)
APPROVE = roles("admin")  # the higher committee's admin, never the cell's own secretary
SELF = roles(own=True)
RECORD = roles("secretary", "deputy", "auditor", "admin", own=True)
SELF_REVIEW = roles(*MANAGERS, own=True)
ABSENCE = readable(lambda rel: OK if rel.has_member else FORBIDDEN)
#: Room tokens (an open meeting): its chairs, and members on its remote list.
JOIN = roles(*MANAGERS, "member")
#: The room's WebSocket says "not allowed" (4403) outside the caller's cells, as inside.
JOIN_SOCKET = lambda rel: OK if rel.role in (*MANAGERS, "member") else FORBIDDEN  # noqa: E731


@dataclass(frozen=True)
class Policy:
    rule: Callable[[Rel], str] | None  # None: the same for everyone logged in (``logged_in``)
    target: str = "cell"  # cell | org: whose relation counts
    logged_in: str = OK
    anonymous: str = LOGIN
    #: Requested with one object set only (it ends the caller's session).
    once: bool = False
    #: Path parameters taken from another object than the set's (e.g. the open meeting).
    params: dict[str, str] = field(default_factory=dict)


OWN = Policy(None)
PUBLIC = Policy(None, anonymous=OK)
OPEN_MEETING = {"meeting_id": "open_meeting_id"}

POLICIES: dict[tuple[str, str], Policy] = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/favicon.ico"): PUBLIC,
    ("GET", "/manifest.webmanifest"): PUBLIC,
    ("GET", "/login"): PUBLIC,
    ("POST", "/login"): Policy(None, logged_in="rejected", anonymous="rejected"),  # empty form: 401
    ("POST", "/logout"): Policy(None, logged_in=LOGIN, once=True),  # back to the login page
    ("GET", "/password"): OWN,
    ("POST", "/password"): OWN,
    ("GET", "/sessions"): OWN,
    ("POST", "/sessions/{session_id:int}/end"): Policy(None, params={"session_id": "session_id"}),
    ("POST", "/sessions/end-others"): OWN,
    ("GET", "/accounts/{account_id:int}/sessions"): Policy(None, params={"account_id": "account_id"}),
    ("POST", "/accounts/{account_id:int}/sessions/end"): Policy(None, params={"account_id": "account_id"}),
    ("GET", "/"): OWN,
    ("GET", "/orgs/{org_id:int}"): Policy(READ, "org"),
    ("GET", "/cells/{cell_id:int}"): Policy(READ),
    ("GET", "/cells/{cell_id:int}/members/new"): Policy(MANAGE),
    ("POST", "/cells/{cell_id:int}/members/new"): Policy(MANAGE),
    ("GET", "/cells/{cell_id:int}/attached/new"): Policy(MANAGE),
    ("POST", "/cells/{cell_id:int}/attached/new"): Policy(MANAGE),
    ("GET", "/cells/{cell_id:int}/import"): Policy(MANAGE),
    ("POST", "/cells/{cell_id:int}/import"): Policy(MANAGE),
    ("GET", "/cells/{cell_id:int}/import/template.csv"): Policy(MANAGE),
    ("GET", "/cells/{cell_id:int}/log"): Policy(AUDIT),
    ("GET", "/members/{member_id:int}"): Policy(READ),
    ("GET", "/members/{member_id:int}/edit"): Policy(MANAGE),
    ("POST", "/members/{member_id:int}/edit"): Policy(MANAGE),
    ("GET", "/members/{member_id:int}/periods/new"): Policy(MANAGE),
    ("POST", "/members/{member_id:int}/periods/new"): Policy(MANAGE),
    ("POST", "/members/{member_id:int}/account"): Policy(MANAGE),
    ("POST", "/members/{member_id:int}/phone-sharing"): Policy(SELF),
    ("GET", "/periods/{period_id:int}/edit"): Policy(MANAGE),
    ("POST", "/periods/{period_id:int}/edit"): Policy(MANAGE),
    ("POST", "/periods/{period_id:int}/delete"): Policy(MANAGE),
    ("GET", "/cells/{cell_id:int}/schedule"): Policy(READ),
    ("GET", "/cells/{cell_id:int}/rules"): Policy(MANAGE),
    ("POST", "/cells/{cell_id:int}/rules"): Policy(MANAGE),
    ("GET", "/cells/{cell_id:int}/meetings/new"): Policy(MANAGE),
    ("POST", "/cells/{cell_id:int}/meetings/new"): Policy(MANAGE),
    ("GET", "/cells/{cell_id:int}/pilot"): Policy(READ),
    ("POST", "/cells/{cell_id:int}/pilot"): Policy(APPROVE),
    ("GET", "/cells/{cell_id:int}/compliance"): Policy(AUDIT),
    ("POST", "/members/{member_id:int}/calendar-feed"): Policy(SELF),
    ("GET", "/calendar/{token}.ics"): Policy(None, logged_in="feed", anonymous="feed"),
    ("POST", "/orgs/{org_id:int}/email"): Policy(APPROVE, "org"),
    ("GET", "/meetings/{meeting_id:int}"): Policy(READ),
    ("GET", "/meetings/{meeting_id:int}/edit"): Policy(MANAGE),
    ("POST", "/meetings/{meeting_id:int}/edit"): Policy(MANAGE),
    ("POST", "/meetings/{meeting_id:int}/move"): Policy(MANAGE),
    ("POST", "/meetings/{meeting_id:int}/cancel"): Policy(MANAGE),
    ("POST", "/meetings/{meeting_id:int}/actual"): Policy(MANAGE),
    ("GET", "/meetings/{meeting_id:int}/agenda"): Policy(MANAGE),
    ("POST", "/meetings/{meeting_id:int}/agenda"): Policy(MANAGE),
    ("POST", "/meetings/{meeting_id:int}/documents"): Policy(MANAGE),
    ("POST", "/meetings/{meeting_id:int}/remote"): Policy(MANAGE),
    ("POST", "/meetings/{meeting_id:int}/absence"): Policy(ABSENCE),
    ("GET", "/meetings/{meeting_id:int}/calendar.ics"): Policy(READ),
    ("GET", "/documents/{document_id:int}"): Policy(READ),
    ("POST", "/documents/{document_id:int}/remove"): Policy(MANAGE),
    ("POST", "/absences/{absence_id:int}/decide"): Policy(MANAGE),
    ("GET", "/meetings/{meeting_id:int}/room"): Policy(READ, params=OPEN_MEETING),
    ("GET", "/meetings/{meeting_id:int}/room/token"): Policy(JOIN, params=OPEN_MEETING),
    ("POST", "/meetings/{meeting_id:int}/open"): Policy(MANAGE),
    ("POST", "/meetings/{meeting_id:int}/close"): Policy(MANAGE),
    ("GET", "/meetings/{meeting_id:int}/attendance"): Policy(AUDIT),
    ("POST", "/meetings/{meeting_id:int}/attendance/{member_id:int}"): Policy(MANAGE),
    ("POST", "/meetings/{meeting_id:int}/attendance/confirm-online"): Policy(MANAGE),
    ("GET", "/meetings/{meeting_id:int}/attendance.json"): Policy(READ),
    ("GET", "/meetings/{meeting_id:int}/attendance.csv"): Policy(AUDIT),
    ("GET", "/members/{member_id:int}/attendance"): Policy(RECORD),
    ("GET", "/meetings/{meeting_id:int}/votes"): Policy(READ),
    ("POST", "/meetings/{meeting_id:int}/votes/new"): Policy(MANAGE),
    ("POST", "/meetings/{meeting_id:int}/votes/{motion_id:int}/counts"): Policy(MANAGE),
    ("POST", "/meetings/{meeting_id:int}/votes/{motion_id:int}/record"): Policy(MANAGE),
    ("POST", "/meetings/{meeting_id:int}/votes/{motion_id:int}/close"): Policy(MANAGE),
    ("GET", "/meetings/{meeting_id:int}/minutes"): Policy(READ),
    ("POST", "/meetings/{meeting_id:int}/minutes/draft"): Policy(MINUTES),
    ("POST", "/meetings/{meeting_id:int}/minutes/confirm"): Policy(MINUTES),
    ("POST", "/meetings/{meeting_id:int}/minutes/adopt"): Policy(MANAGE),
    ("GET", "/meetings/{meeting_id:int}/minutes/v/{version:int}"): Policy(READ),
    ("GET", "/meetings/{meeting_id:int}/minutes/v/{version:int}.docx"): Policy(READ),
    ("GET", "/meetings/{meeting_id:int}/minutes/v/{version:int}.pdf"): Policy(READ),
    ("GET", "/cells/{cell_id:int}/minutes"): Policy(READ),
    ("GET", "/members/{member_id:int}/record"): Policy(RECORD),
    ("GET", "/cells/{cell_id:int}/records"): Policy(AUDIT),
    ("GET", "/orgs/{org_id:int}/records"): Policy(AUDIT, "org"),
    ("GET", "/members/{member_id:int}/review/{year:int}"): Policy(RECORD),
    ("POST", "/members/{member_id:int}/review/{year:int}/self"): Policy(SELF_REVIEW),
    ("GET", "/members/{member_id:int}/review/{year:int}/file"): Policy(RECORD),
    ("POST", "/members/{member_id:int}/review/{year:int}/host-comment"): Policy(MANAGE),
    ("GET", "/members/{member_id:int}/review/{year:int}/comments/{comment_id:int}/file"): Policy(RECORD),
    ("POST", "/members/{member_id:int}/review/{year:int}/proposal"): Policy(MANAGE),
    ("POST", "/members/{member_id:int}/review/{year:int}/confirmation"): Policy(APPROVE),
    ("GET", "/orgs/{org_id:int}/audit"): Policy(AUDIT, "org"),
    ("GET", "/orgs/{org_id:int}/audit.csv"): Policy(AUDIT, "org"),
    ("GET", "/orgs/{org_id:int}/audit.xlsx"): Policy(AUDIT, "org"),
    ("POST", "/orgs/{org_id:int}/evaluation-policy"): Policy(APPROVE, "org"),
    ("GET", "/orgs/{org_id:int}/log"): Policy(AUDIT, "org"),
    ("GET", "/cells/{cell_id:int}/audit"): Policy(AUDIT),
    ("GET", "/static"): PUBLIC,
    ("WS", "/ws/meetings/{meeting_id:int}"): Policy(JOIN_SOCKET, params=OPEN_MEETING),
}


def expected(policy: Policy, account: str, objects: str) -> str:
    if account == "anonymous":
        return policy.anonymous
    if policy.rule is None:
        return special(policy, account, objects)
    relation = (ORG if policy.target == "org" else CELL)[account][objects]
    return policy.rule(relation)


def special(policy: Policy, account: str, objects: str) -> str:
    """Routes about accounts and sessions rather than organisations."""
    if "account_id" in policy.params:
        # Another account's sessions (mem_a in A, mem_c in C): admins whose grants cover it.
        return OK if account == "admin" or (account == "dual2" and objects == "C") else FORBIDDEN
    if "session_id" in policy.params:
        return OK if objects == "A" else HIDDEN  # A: one of the caller's own sessions; C: someone else's
    return policy.logged_in


# --------------------------------------------------------------------------- the scene


@dataclass
class Scene:
    #: Path parameters per object set, and per account on top (objects a write may consume).
    shared: dict[str, dict[str, Any]]
    own: dict[tuple[str, str], dict[str, Any]]

    def params(self, account: str, objects: str) -> dict[str, Any]:
        return {**self.shared[objects], **self.own.get((account, objects), {})}


def build(database, world, data_dir) -> Scene:  # type: ignore[no-untyped-def]
    shared: dict[str, dict[str, Any]] = {}
    own: dict[tuple[str, str], dict[str, Any]] = {}
    with database.session() as s:
        add_account(s, world, "mem_c", "c2", [(Role.MEMBER, "C")])
        for key, cell, commune, member, absent, invited in (("A", "A", "X", "a2", "a3", "a2"),
                                                           ("C", "C", "Y", "c2", "c2", "c1")):
            objects = schedule_objects(s, world, cell, absent, data_dir)
            objects.update(hold_meeting(s, objects["meeting_id"]))
            objects.update(review_objects(s, world, member, data_dir))
            org = s.get(Organisation, world.id(cell))
            s.add(PilotApproval(cell_id=org.id, decision_number="15-QĐ/ĐU", decided_on=dt.date(2026, 1, 5),
                                approving_org_id=world.id(commune), approving_body="Đảng ủy",
                                valid_from=dt.date(2026, 1, 5)))
            takers = {a for a, rels in CELL.items() if rels[key].taker}
            minutes_taker = s.scalar(select(Minutes.taker_member_id).where(Minutes.meeting_id == objects["meeting_id"]))
            assert {a for a in ACCOUNTS[1:] if s.get(Account, world.accounts[a]).member_id == minutes_taker} == takers
            live = mt.create_meeting(s, ACTOR, org, kind=MeetingKind.REGULAR, starts_at=WORLD_NOW, remote_open=True)
            mt.change_status(s, ACTOR, live, MeetingStatus.OPEN, now=WORLD_NOW)
            s.add(RemoteInvite(meeting_id=live.id, member_id=world.id(invited)))
            shared[key] = {**objects, "cell_id": org.id, "org_id": world.id(commune), "member_id": world.id(member),
                           "open_meeting_id": live.id,
                           "account_id": world.accounts["mem_a" if key == "A" else "mem_c"],
                           # a1's feed: nobody in the matrix reissues it (a2's feed is reissued by its owner)
                           "token": calendars.issue_feed(s, world.id("a1"), WORLD_NOW) if key == "A" else "x" * 32}
        someone_else, _ = sessions.start(s, world.accounts["mem_c"], now=WORLD_NOW, address="", user_agent="")
        shared["C"]["session_id"] = someone_else.id
        for n, account in enumerate(ACCOUNTS):
            for key in SETS:
                target = s.get(members.Member, shared[key]["member_id"])
                start = dt.date(2015 + n, 3, 1)  # periods of one kind must not overlap
                period = members.add_period(s, ACTOR, target, PeriodInput(
                    kind=PeriodKind.AWAY, start_on=start, end_on=start + dt.timedelta(days=30), place="Huế"))
                meeting = s.get(mt.Meeting, shared[key]["meeting_id"])
                doc = documents.add_document(s, ACTOR, meeting, filename=f"{account}.pdf", data=b"%PDF-1.4\n%\n",
                                             root=data_dir, max_bytes=1 << 20, now=WORLD_NOW)
                own[(account, key)] = {"period_id": period.id, "document_id": doc.id}
            if account != "anonymous":
                other, _ = sessions.start(s, world.accounts[account], now=WORLD_NOW, address="", user_agent="")
                own[(account, "A")]["session_id"] = other.id
            else:
                own[(account, "A")]["session_id"] = someone_else.id
    return Scene(shared, own)


def routes_of(app) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(method, path) of every route the router has (HEAD aside), WebSockets as "WS"."""
    found = []
    for route in app.routes:
        if isinstance(route, Route):
            found += [(m, route.path) for m in sorted(route.methods or ()) if m != "HEAD"]
        elif isinstance(route, WebSocketRoute):
            found.append(("WS", route.path))
        elif isinstance(route, Mount):
            found.append(("GET", route.path))
    return found


def url_for(path: str, params: dict[str, Any]) -> str:
    if path == "/static":
        return "/static/app.css"
    return PARAM.sub(lambda m: str(params[m.group(1)]), path)


def outcome(method: str, response) -> str:  # type: ignore[no-untyped-def]
    status = response.status_code
    if status == 303 and response.headers.get("location", "").startswith("/login"):
        return LOGIN
    if status == 403:
        return FORBIDDEN
    if status == 404:
        return HIDDEN
    if status in (OK_READ if method == "GET" else OK_WRITE):
        return OK
    return f"status {status}"


def join(client: TestClient, app, world, account: str, meeting_id: int) -> str:  # type: ignore[no-untyped-def]
    """Open the room's WebSocket with a token bound to the caller's session (a real token
    when the page would give one, or one signed by hand: the server must check anyway)."""
    session_id = None
    if account != "anonymous":
        with app.state.db.session() as s:
            session_id = s.scalars(select(sessions.LoginSession.id).where(
                sessions.LoginSession.account_id == world.accounts[account],
                sessions.LoginSession.ended_at.is_(None)).order_by(sessions.LoginSession.id.desc())).first()
    account_id = world.accounts.get(account, 0)
    member_id = None
    if account != "anonymous":
        with app.state.db.session() as s:
            member_id = s.get(Account, account_id).member_id
    token = issue_join_token(app.state.settings.secret_key, JoinGrant(
        meeting_id=meeting_id, account_id=account_id, member_id=member_id, device="member", session_id=session_id))
    try:
        url = BASE.replace("http://", "ws://") + f"/ws/meetings/{meeting_id}"  # the session cookie's host
        with client.websocket_connect(url, headers={"origin": BASE}) as ws:
            ws.send_text(json.dumps({"type": "hello", "version": 1, "token": token, "device": "member",
                                     "audio": False, "video": False}))
            first = ws.receive_json()
            if first["type"] == "welcome":
                ws.send_text(json.dumps({"type": "leave"}))
                return OK
            assert first["type"] == "error", first
            code = {"auth_failed": LOGIN, "not_allowed": FORBIDDEN, "not_found": HIDDEN}.get(first["code"])
            return code or f"error {first['code']}"
    except WebSocketDisconnect as gone:
        return f"closed {gone.code}"


# --------------------------------------------------------------------------- the test


@pytest.fixture
def matrix(settings, sqlite_database, clock):  # type: ignore[no-untyped-def]
    """The app on SQLite only (the matrix takes about 40 s; tests/test_scoping.py runs the
    same access checks on PostgreSQL too), with the security tests' extra accounts."""
    with sqlite_database.session() as s:
        world = build_world(s)
        add_account(s, world, "dep_a", "a3", [(Role.DEPUTY, "A")])
        add_account(s, world, "dual", "c1", [(Role.MEMBER, "C"), (Role.AUDITOR, "X")])
        add_account(s, world, "dual2", None, [(Role.SECRETARY, "A"), (Role.ADMIN, "Y")])
    return create_app(settings, database=sqlite_database, clock=clock), sqlite_database, world


def test_every_route_has_an_expectation(matrix):
    app, _, _ = matrix
    routes = set(routes_of(app))
    missing = sorted(routes - set(POLICIES))
    assert not missing, f"routes without an expectation in POLICIES (add them): {missing}"
    gone = sorted(set(POLICIES) - routes)
    assert not gone, f"expectations for routes that no longer exist: {gone}"


def test_every_role_gets_what_its_relation_allows(matrix, settings):
    app, database, world = matrix
    scene = build(database, world, settings.data_dir)
    routes = routes_of(app)
    assert len(routes) > 90
    with database.session() as s:
        before = s.scalar(select(func.count()).select_from(AuditEntry))
    wrong: list[str] = []
    allowed_writes = 0
    # Reads first, then joins, then writes; removals after the other writes on their objects,
    # and last what ends the caller's own session.
    last = [("POST", "/sessions/{session_id:int}/end"), ("POST", "/sessions/end-others"), ("POST", "/logout")]
    ordered = sorted(routes, key=lambda r: (r[0] == "POST", r[0] == "WS", r in last, r[1].endswith(("/delete", "/remove")),
                                            last.index(r) if r in last else -1, r))
    for n, account in enumerate(ACCOUNTS):
        client = TestClient(app, base_url=BASE, client=(f"10.0.0.{n + 1}", 50000))
        client.__enter__()
        if account != "anonymous":
            login(client, account, PASSWORD)
        token = client_token(client) if account != "anonymous" else _anonymous_token(client)
        for method, path in ordered:
            policy = POLICIES[(method, path)]
            for objects in SETS[:1] if policy.once else SETS:
                params = scene.params(account, objects)
                params = {**params, **{name: params[source] for name, source in policy.params.items()}}
                want = expected(policy, account, objects)
                if method == "WS":
                    got = join(client, app, world, account, params["meeting_id"])
                else:
                    url = url_for(path, params)
                    if method == "GET":
                        r = client.get(url, follow_redirects=False)
                    else:
                        form = {"csrf_token": token}
                        if path == "/login":  # a wrong password, for the caller's own name
                            form |= {"username": account, "password": "sai-mat-khau"}
                        r = client.post(url, data=form, follow_redirects=False)
                    got = outcome(method, r)
                    if want in ("rejected", "feed"):
                        want, got = _public(path, objects, r.status_code)
                    if method == "POST" and got == OK and want == OK:
                        allowed_writes += 1
                if got != want:
                    wrong.append(f"{account:9} {objects} {method:4} {path}: expected {want}, got {got}")
        client.__exit__(None, None, None)
    assert not wrong, "\n".join(wrong)
    assert allowed_writes > 100
    # The auditor may change nothing, and left no trace in the audit log; every entry added
    # was made by an account that had some write allowed.
    with database.session() as s:
        actors = set(s.scalars(select(AuditEntry.actor_account_id).where(AuditEntry.id > before)))
    assert world.accounts["aud_x"] not in actors
    assert actors <= {world.accounts[a] for a in ("mem_a", "sec_a", "dep_a", "admin", "dual", "dual2")}


def _anonymous_token(client: TestClient) -> str:
    return re.search(r'name="csrf-token" content="([^"]+)"', client.get("/login").text).group(1)  # type: ignore[union-attr]


def _public(path: str, objects: str, status: int) -> tuple[str, str]:
    """The two public routes whose answer is not simply "ok"."""
    if path == "/login":
        return "401", str(status)  # an empty login form: wrong name or password
    return ("200" if objects == "A" else "404"), str(status)  # A: a member's real feed; C: a made-up token
