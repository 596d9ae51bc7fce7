"""The party organisation and its people: the committee tree with its dated history
(``organisations``), members and their dated periods (``members``), accounts and roles
(``accounts``), which organisations an account may see and manage (``scoping``), who is
expected and who may vote on a day (``eligibility``), and the CSV import of a cell's members
(``member_import``).

Stands on ``foundation`` only. A period change that must recheck the three-month rule is
published as an event (``members.PeriodChanged``); the evaluation subscribes to it.
"""
