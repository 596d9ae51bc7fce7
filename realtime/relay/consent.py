"""ICE consent freshness (RFC 7675) that a slow mobile link can pass.

aioice checks consent every ~5 s with ONE binding request and counts it as failed unless the
answer is back within its first retransmission timer, 0.5 s; six failures in a row close the
connection, and aiortc then closes the relay link. A member whose uplink queues more than
0.5 s of round trip (64 kbit/s up, 300 ms round trip: the audio alone nearly fills it) fails
every check although every answer arrives; the link then died ~30 s into such a stretch, or
8 s into a short cut that came after one, and the member was heard again only when the page
noticed and asked for a new link (issue 15: "audio from the member not back within 30 s").

RFC 7675 asks something else: consent is lost when no answer has come for 30 s. Here each
check is its own STUN transaction with retransmissions (answers to any copy count, for up
to a few seconds), the checks do not wait for one another, and the connection closes only
when no check has been answered for ``CONSENT_FAILURES × CONSENT_INTERVAL`` (aioice's
constants: 30 s). A peer that is really gone still loses consent in 30 s.
"""

from __future__ import annotations

import asyncio
import functools
import random
import time
from typing import Any

import aioice.ice
from aioice import stun

#: Retransmissions of each check: sent at 0, 0.5 and 1.5 s, answered until 3.5 s.
RETRANSMISSIONS = 2


async def patient_query_consent(connection: Any) -> None:
    """Replaces ``aioice.Connection.query_consent`` for one connection (see the module)."""
    last_answer = time.monotonic()
    checks: set[asyncio.Task[None]] = set()

    async def check(pair: Any) -> None:
        nonlocal last_answer
        request = connection.build_request(pair, nominate=False)
        try:
            await pair.protocol.request(request, pair.remote_addr,
                                        integrity_key=connection.remote_password.encode("utf8"),
                                        retransmissions=RETRANSMISSIONS)
        except stun.TransactionError:
            return
        last_answer = time.monotonic()

    try:
        while True:
            interval = aioice.ice.CONSENT_INTERVAL
            await asyncio.sleep(interval * (0.8 + 0.4 * random.random()))
            if time.monotonic() - last_answer >= aioice.ice.CONSENT_FAILURES * interval:
                connection._query_consent_task = None  # close() must not cancel this task
                await connection.close()
                return
            for pair in list(connection._nominated.values()):
                task = asyncio.ensure_future(check(pair))
                checks.add(task)
                task.add_done_callback(checks.discard)
    finally:
        for task in checks:
            task.cancel()


def install_patient_consent(connection: Any) -> None:
    """Before ``connection.connect()`` starts the checks (it calls ``self.query_consent()``)."""
    connection.query_consent = functools.partial(patient_query_consent, connection)
