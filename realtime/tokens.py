"""Short-lived credentials: room join tokens and TURN REST credentials.

A join token is issued by the room page to a logged-in account and binds member, meeting,
device and the login session; the WebSocket accepts it only together with that session's
cookie, and only once (its nonce is recorded at the handshake, ``meetings.sessions``). TURN
credentials follow the TURN REST scheme coturn implements with ``use-auth-secret``: the
username is "<expiry unix time>:<user>", the password base64(HMAC-SHA1(secret, username)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

JOIN_SALT = "chibo.room-join"
JOIN_TOKEN_MAX_AGE = 120


@dataclass(frozen=True)
class JoinGrant:
    meeting_id: int
    account_id: int
    member_id: int | None
    device: str
    #: The login session the token was issued to (None only in old tokens).
    session_id: int | None = None
    #: Random; the handshake records it so that the token serves one connection only.
    nonce: str = ""


class TokenError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def issue_join_token(secret: str, grant: JoinGrant) -> str:
    serializer = URLSafeTimedSerializer(secret, salt=JOIN_SALT)
    return serializer.dumps({"m": grant.meeting_id, "a": grant.account_id, "b": grant.member_id, "d": grant.device,
                             "s": grant.session_id, "n": grant.nonce or secrets.token_urlsafe(16)})


def read_join_token(secret: str, token: str, max_age: int = JOIN_TOKEN_MAX_AGE) -> JoinGrant:
    serializer = URLSafeTimedSerializer(secret, salt=JOIN_SALT)
    try:
        data: Any = serializer.loads(token, max_age=max_age)
    except SignatureExpired:
        raise TokenError("Mã tham gia đã hết hạn. Hãy tải lại trang phòng họp.") from None
    except BadSignature:
        raise TokenError("Mã tham gia không hợp lệ.") from None
    try:
        return JoinGrant(meeting_id=int(data["m"]), account_id=int(data["a"]),
                         member_id=None if data["b"] is None else int(data["b"]), device=str(data["d"]),
                         session_id=None if data.get("s") is None else int(data["s"]), nonce=str(data.get("n", "")))
    except (KeyError, TypeError, ValueError):
        raise TokenError("Mã tham gia không hợp lệ.") from None


def turn_credentials(secret: str, user: str, ttl_seconds: int, now: float | None = None) -> tuple[str, str]:
    expiry = int((now if now is not None else time.time()) + ttl_seconds)
    username = f"{expiry}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()


def ice_servers(urls: list[str], turn_secret: str, user: str, ttl_seconds: int) -> list[dict[str, Any]]:
    """RTCIceServer dictionaries for the browser: STUN as is, TURN with fresh credentials."""
    servers: list[dict[str, Any]] = []
    stun = [u for u in urls if u.startswith("stun:")]
    turn = [u for u in urls if u.startswith(("turn:", "turns:"))]
    if stun:
        servers.append({"urls": stun})
    if turn and turn_secret:
        username, credential = turn_credentials(turn_secret, user, ttl_seconds)
        servers.append({"urls": turn, "username": username, "credential": credential})
    return servers
