"""Who sends media to whom: the one seam between room logic and the media plane.

The room asks its topology which peers a participant should hold connections with and
whether two participants may exchange signalling. ``Mesh`` connects every admitted
participant with every other (right for a hall device and a few remote members); a server
relay takes over by implementing the same two methods, without touching the room logic.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class Topology(Protocol):
    name: str

    def peers(self, participant: str, present: Iterable[str]) -> list[str]:
        """The participants ``participant`` should connect to, given who is present."""
        ...

    def allows(self, a: str, b: str) -> bool:
        """May ``a`` send signalling (offers, answers, candidates) to ``b``?"""
        ...


class Mesh:
    name = "mesh"

    def peers(self, participant: str, present: Iterable[str]) -> list[str]:
        return sorted(p for p in present if p != participant)

    def allows(self, a: str, b: str) -> bool:
        return a != b


#: The participant id of the room's server relay (realtime/relay/). Never a member's id
#: (those are "m…", "a…" and "hall").
RELAY_ID = "relay"


class Relay:
    """Everybody holds one connection, to the server relay.

    Direct signalling between participants stays allowed: during the switch from the mesh,
    the old direct connections keep media flowing until the relay connection is up
    ("make before break"), and their last candidates may still be in flight.
    """

    name = "relay"

    def peers(self, participant: str, present: Iterable[str]) -> list[str]:
        return [RELAY_ID] if participant != RELAY_ID else sorted(p for p in present if p != RELAY_ID)

    def allows(self, a: str, b: str) -> bool:
        return a != b


def polite(local: str, remote: str) -> bool:
    """Perfect negotiation needs exactly one polite side per pair; both ends compute the same.

    The relay is an aiortc peer, which cannot roll back an offer: it is always the impolite,
    offering side, and participants are polite towards it.
    """
    if RELAY_ID in (local, remote):
        return remote == RELAY_ID
    return local > remote
