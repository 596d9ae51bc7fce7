"""The relay's address as members see it: a 1:1 NAT mapping (Janus's ``nat_1_1_mapping``).

On a cloud machine the relay's sockets are bound to a private address and the provider
forwards one public address to it, every port unchanged (and rewrites the source of what it
sends back). aioice only knows the private address, so without a mapping the relay's offer
carries candidates no member outside can reach, and every member needs TURN.

With a mapping, each IPv4 host candidate of the relay's SDP is advertised at the public
address with the same port, and the private one is left out unless ``keep_private``. Only the
SDP changes: the sockets and the candidate pairs aioice checks from stay on the private
address, and the NAT rewrites addresses on the way. IPv6 host candidates are left as they are
(not NATed), and so are server-reflexive and relayed ones.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True)
class NatMapping:
    public_ip: str
    #: Also advertise the private addresses (members on the same network as the machine).
    keep_private: bool = False

    def __post_init__(self) -> None:
        ipaddress.IPv4Address(self.public_ip)  # ValueError for anything else

    def rewrite(self, sdp: str) -> str:
        """``sdp`` as members should see it: mapped candidates, and the public address on
        ``c=`` lines that named a mapped one."""
        mapped: set[str] = set()
        out: list[str] = []
        for line in sdp.split("\r\n") if "\r\n" in sdp else sdp.split("\n"):
            if line.startswith("a=candidate:"):
                parts = line.split(" ")
                # foundation component transport priority address port "typ" type ...
                if len(parts) >= 8 and parts[6] == "typ" and parts[7] == "host" and _is_ipv4(parts[4]):
                    mapped.add(parts[4])
                    out.append(" ".join([*parts[:4], self.public_ip, *parts[5:]]))
                    if self.keep_private:
                        out.append(line)
                    continue
            out.append(line)
        newline = "\r\n" if "\r\n" in sdp else "\n"
        return newline.join(self._connection_line(line, mapped) for line in out)

    def _connection_line(self, line: str, mapped: set[str]) -> str:
        if line.startswith("c=IN IP4 ") and line.removeprefix("c=IN IP4 ").strip() in mapped:
            return f"c=IN IP4 {self.public_ip}"
        return line


def _is_ipv4(address: str) -> bool:
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        return False
    return True
