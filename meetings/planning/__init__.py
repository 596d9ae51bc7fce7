"""The schedule of a cell's life before a meeting is held: meetings and their status machine
(``meetings``), each cell's rules and the meetings generated from them (``schedules``), agendas,
documents, absence requests, the online pilot and who may join remotely (``pilot``, ``online``),
notices and calendars, schedule compliance (``compliance``), and access to a meeting and its
room (``access``).

Stands on ``organisation`` and ``foundation``.
"""
