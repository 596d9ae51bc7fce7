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


def polite(local: str, remote: str) -> bool:
    """Perfect negotiation needs exactly one polite side per pair; both ends compute the same."""
    return local > remote
