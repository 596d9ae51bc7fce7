"""What happens while a meeting is held and right after: online presence (``presence``), the
one roster of in-person and online attendance with its counts (``attendance``), votes and
secret ballots (``votes``), the minutes and their exports (``minutes``, ``minutes_export``)
and the room's chat (``chat``).

Stands on ``planning``, ``organisation`` and ``foundation``. An attendance decision that must
recheck the three-month rule is published as an event (``attendance.AttendanceDecided``); the
evaluation subscribes to it.
"""

from . import (
    access_epoch,  # noqa: F401  (moves the access epoch with every change room access reads)
    votes,  # noqa: F401  (subscribes the refusal to end a meeting during a secret ballot)
)
