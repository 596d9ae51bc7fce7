"""The joins' writes committed many to a transaction (``realtime.group_commit``), on each
database the service runs on: a join token still opens one connection when its uses arrive
together, and one failing write costs only its own caller."""

import asyncio
import datetime as dt
from collections.abc import Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.db import Database
from meetings.organisation.sessions import JoinTokenUse
from realtime.group_commit import GroupCommit
from realtime.rooms import use_nonce

pytestmark = pytest.mark.anyio

NOW = dt.datetime(2026, 12, 7, 19, 30, tzinfo=dt.UTC)


def use(nonce: str) -> Callable[[Session], bool]:
    return lambda session: use_nonce(session, nonce, NOW)


async def test_a_rush_of_token_uses_goes_in_few_transactions_and_each_token_opens_one(database: Database) -> None:
    writes = GroupCommit(database)
    nonces = [f"n-{k}" for k in range(60)] + [f"n-{k}" for k in range(0, 60, 6)]  # ten replayed at once
    used = await asyncio.gather(*(writes.run(use(n)) for n in nonces))
    assert used[:60] == [True] * 60
    assert used[60:] == [False] * 10  # the replays, in the same transactions as the first uses
    assert writes.writes == 70 and writes.batches < 10
    with database.session() as s:
        assert s.scalar(select(func.count()).select_from(JoinTokenUse)) == 60
    assert not await writes.run(use("n-3"))  # and later


async def test_a_failing_write_fails_alone(database: Database) -> None:
    writes = GroupCommit(database)

    def broken(session: Session) -> bool:
        use_nonce(session, "broken", NOW)
        raise RuntimeError("this write fails")

    results = await asyncio.gather(writes.run(use("a")), writes.run(broken),
                                   writes.run(use("b")), return_exceptions=True)
    assert results[0] is True and results[2] is True
    assert isinstance(results[1], RuntimeError)
    with database.session() as s:
        assert set(s.scalars(select(JoinTokenUse.nonce))) == {"a", "b"}
