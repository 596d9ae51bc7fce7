"""The domain of Chi bộ trực tuyến: plain Python and SQLAlchemy, no HTTP, no WebSocket.

Five parts follow a meeting's life, and depend one way, each on those below it::

    evaluation    yearly records, the three-month rule, reviews, the regularity audit
        ↓
    proceedings   presence, attendance, votes, minutes, chat
        ↓
    planning      meetings, schedules, agenda, documents, notices, absences, the online pilot
        ↓
    organisation  the committee tree, members and periods, accounts, scoping, eligibility
        ↓
    foundation    base types, errors, text, the audit log, the event dispatcher

A consequence that must flow upward (an attendance decision or a period change rechecks the
three-month rule) is published as an event (``foundation.events``) and handled by the higher
part in the same transaction. Importing this package imports ``evaluation``, which subscribes
those handlers, so no event is ever published before its handlers exist.

Nothing in this package may import ``app`` or ``realtime`` (``tests/test_layering.py``).
"""

from . import evaluation, proceedings  # noqa: F401  (imported for their event handlers)
