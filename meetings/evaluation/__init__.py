"""What the year adds up to: each member's yearly record (``records``), the three-month rule
and its flags (``three_month``), the year-end review (``reviews``), the committees' audit of
meeting regularity (``regularity``) and the committees' evaluation settings (``policies``).

Stands on every other part of the domain; nothing below imports it. It subscribes to the
events that lower parts publish (a period change, an attendance decision) in ``three_month``.
"""

from . import monthly, three_month  # noqa: F401  (subscribe the handlers of upward events)
