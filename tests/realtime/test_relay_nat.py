"""RELAY_PUBLIC_IP: the relay's offer names the public address of a 1:1 NAT.

The end-to-end proof (browsers reaching the relay only through a DNAT rule, two machines) is
tests/browser/test_two_machines.py; this file checks the rewrite itself and the setting.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from app.config import Settings
from app.factory import create_app
from realtime.relay.nat import NatMapping
from realtime.relay.server import RelayServer

# An aiortc offer's media section as the relay sends it (two IPv4 interfaces, one IPv6).
OFFER = "\r\n".join([
    "v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", "t=0 0", "a=group:BUNDLE 0 1",
    "m=audio 50000 UDP/TLS/RTP/SAVPF 96", "c=IN IP4 10.0.0.5", "a=mid:0", "a=rtcp:9 IN IP4 0.0.0.0",
    "a=candidate:aaaa 1 udp 2130706431 10.0.0.5 50000 typ host",
    "a=candidate:bbbb 1 udp 2130706431 172.17.0.1 50001 typ host",
    "a=candidate:cccc 1 udp 2130706431 fd00::5 50002 typ host",
    "a=candidate:dddd 1 udp 1694498815 198.51.100.200 40000 typ srflx raddr 10.0.0.5 rport 50000",
    "a=end-of-candidates",
    "m=video 50000 UDP/TLS/RTP/SAVPF 97", "c=IN IP4 10.0.0.5", "a=mid:1",
    "a=candidate:aaaa 1 udp 2130706431 10.0.0.5 50000 typ host", "a=end-of-candidates", "",
])


def candidates(sdp: str) -> list[tuple[str, str, str]]:
    """(address, port, type) of each candidate line."""
    return [(f[4], f[5], f[7]) for f in (line.split(" ") for line in sdp.split("\r\n"))
            if f[0].startswith("a=candidate:")]


def test_host_candidates_are_advertised_at_the_public_address_only():
    sdp = NatMapping("203.0.113.7").rewrite(OFFER)
    assert candidates(sdp) == [
        ("203.0.113.7", "50000", "host"), ("203.0.113.7", "50001", "host"),
        ("fd00::5", "50002", "host"),  # IPv6 is not NATed
        ("198.51.100.200", "40000", "srflx"),  # a STUN-learnt address stays as it was
        ("203.0.113.7", "50000", "host"),
    ]
    assert "c=IN IP4 10.0.0.5" not in sdp and "172.17.0.1" not in sdp
    assert sdp.count("c=IN IP4 203.0.113.7") == 2
    # Nothing else changes: same lines in the same order, CRLF kept.
    assert len(sdp.split("\r\n")) == len(OFFER.split("\r\n")) and sdp.endswith("\r\n")
    assert "a=rtcp:9 IN IP4 0.0.0.0" in sdp and "raddr 10.0.0.5 rport 50000" in sdp


def test_private_addresses_can_be_kept_next_to_the_public_one():
    sdp = NatMapping("203.0.113.7", keep_private=True).rewrite(OFFER)
    hosts = [c for c in candidates(sdp) if c[2] == "host"]
    assert hosts[:2] == [("203.0.113.7", "50000", "host"), ("10.0.0.5", "50000", "host")]
    assert ("172.17.0.1", "50001", "host") in hosts


def test_the_setting_reaches_every_room_of_the_process(tmp_path, sqlite_database):
    plain = create_app(Settings.from_env({}, DATA_DIR=str(tmp_path)), database=sqlite_database)
    assert plain.state.rooms.settings.relay_nat is None
    settings = Settings.from_env({"RELAY_PUBLIC_IP": " 203.0.113.7 ", "RELAY_KEEP_HOST_CANDIDATES": "yes"},
                                 DATA_DIR=str(tmp_path))
    nat = create_app(settings, database=sqlite_database).state.rooms.settings.relay_nat
    assert nat == NatMapping("203.0.113.7", keep_private=True)
    # The relay of a room offers what the mapping makes of aiortc's SDP.
    assert RelayServer.advertised(SimpleNamespace(nat=nat), OFFER) == nat.rewrite(OFFER)


@pytest.mark.parametrize("value", ["relay.example.vn", "203.0.113", "2001:db8::1", "203.0.113.7:3478"])
def test_a_public_address_that_is_not_ipv4_stops_the_app_at_start(value):
    with pytest.raises(SystemExit, match="RELAY_PUBLIC_IP: not an IPv4 address"):
        Settings.from_env({"RELAY_PUBLIC_IP": value})
    with pytest.raises(ValueError):
        NatMapping(value)
