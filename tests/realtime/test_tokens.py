"""Join tokens and TURN REST credentials."""

import base64
import hashlib
import hmac
import time

import pytest
from itsdangerous import URLSafeTimedSerializer

from realtime import tokens
from realtime.tokens import JoinGrant, TokenError


def test_join_token_round_trip_and_tampering():
    grant = JoinGrant(meeting_id=7, account_id=3, member_id=12, device="member", session_id=41, nonce="n-1")
    token = tokens.issue_join_token("bí mật", grant)
    assert tokens.read_join_token("bí mật", token) == grant
    # Without a nonce of its own, each token gets a fresh random one.
    fresh = JoinGrant(meeting_id=7, account_id=3, member_id=12, device="member", session_id=41)
    nonces = {tokens.read_join_token("bí mật", tokens.issue_join_token("bí mật", fresh)).nonce for _ in range(3)}
    assert len(nonces) == 3 and "" not in nonces
    with pytest.raises(TokenError, match="không hợp lệ"):
        tokens.read_join_token("khác", token)
    with pytest.raises(TokenError, match="không hợp lệ"):
        tokens.read_join_token("bí mật", token[:-2] + "xx")


def test_join_token_expires(monkeypatch):
    issued = time.time() - tokens.JOIN_TOKEN_MAX_AGE - 5
    with monkeypatch.context() as m:
        m.setattr(time, "time", lambda: issued)  # issued a little over two minutes ago
        token = URLSafeTimedSerializer("k", salt=tokens.JOIN_SALT).dumps({"m": 1, "a": 2, "b": None, "d": "hall"})
    assert tokens.read_join_token("k", token, max_age=3600).device == "hall"
    with pytest.raises(TokenError, match="hết hạn"):
        tokens.read_join_token("k", token)


def test_turn_rest_credentials_follow_coturn_scheme():
    username, password = tokens.turn_credentials("s3cret", "m12", ttl_seconds=3600, now=1_800_000_000)
    assert username == "1800003600:m12"
    expected = base64.b64encode(hmac.new(b"s3cret", username.encode(), hashlib.sha1).digest()).decode()
    assert password == expected


def test_ice_servers_only_carry_turn_credentials_when_a_secret_is_set():
    urls = ["stun:stun.example.vn:3478", "turn:turn.example.vn:3478?transport=udp"]
    servers = tokens.ice_servers(urls, "s3cret", "m12", 600)
    assert servers[0] == {"urls": ["stun:stun.example.vn:3478"]}
    assert servers[1]["urls"] == ["turn:turn.example.vn:3478?transport=udp"]
    expiry = int(servers[1]["username"].split(":")[0])
    assert 0 < expiry - time.time() <= 600
    assert tokens.ice_servers(urls, "", "m12", 600) == [{"urls": ["stun:stun.example.vn:3478"]}]


def test_ice_settings_are_checked_when_read():
    from app.config import Settings

    def read(**env: str) -> Settings:
        return Settings.from_env(env)

    ok = read(ICE_SERVERS="stun:stun.example.vn, turn:turn.example.vn:3478?transport=udp,"
                          "turns:turn.example.vn:5349?transport=tcp",
              TURN_SECRET="s", TURN_TTL="3600", ICE_TRANSPORT_POLICY="Relay")
    assert ok.ICE_SERVERS[1] == "turn:turn.example.vn:3478?transport=udp"
    assert (ok.TURN_TTL, ok.ICE_TRANSPORT_POLICY) == (3600, "relay")
    assert read().ICE_TRANSPORT_POLICY == "all"
    for env, message in [
        ({"ICE_SERVERS": "https://turn.example.vn"}, "ICE_SERVERS"),
        ({"ICE_SERVERS": "turn://turn.example.vn", "TURN_SECRET": "s"}, "ICE_SERVERS"),
        ({"ICE_SERVERS": "stun:stun.example.vn?transport=udp"}, "takes no"),
        ({"ICE_SERVERS": "turn:turn.example.vn?transport=tls", "TURN_SECRET": "s"}, "transport"),
        ({"ICE_SERVERS": "turn:turn.example.vn:34x8", "TURN_SECRET": "s"}, "port"),
        ({"ICE_SERVERS": "turn:turn.example.vn"}, "TURN_SECRET is empty"),
        ({"ICE_TRANSPORT_POLICY": "relay"}, "needs a turn: URL"),
        ({"ICE_TRANSPORT_POLICY": "relay", "ICE_SERVERS": "stun:stun.example.vn"}, "needs a turn: URL"),
        ({"ICE_TRANSPORT_POLICY": "none"}, "ICE_TRANSPORT_POLICY"),
        ({"TURN_TTL": "0"}, "TURN_TTL"),
        ({"TURN_TTL": "-5"}, "TURN_TTL"),
    ]:
        with pytest.raises(SystemExit, match=message):
            read(**env)
