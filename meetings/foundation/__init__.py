"""What every part of the domain stands on: the declarative base and column types (``base``),
typed domain errors (``errors``), who is acting (``actors``), text and date parsing (``text``),
local dates computed in SQL (``sqltime``), the in-transaction dispatcher of consequences that
flow upward (``events``) and the append-only, hash-chained audit log (``audit``).

Imports nothing else of ``meetings``.
"""
