"""Group commit: the joins' database work, many joins to a transaction.

At 19:30 a province's members join within seconds, and each join writes (its token's nonce,
its presence). One transaction per join made them queue for the database's one writer (SQLite
lets one connection write at a time; a waiting one sleeps in growing steps up to 100 ms) or
for a commit each (PostgreSQL flushes its log at every commit): bench/join.py. Here the writes
wait in a queue while the transaction before them commits, and go together in the next one,
on one worker thread — one commit per batch instead of one per join. Each caller still
resumes only after its own write is committed, so nothing is told before it is stored.

The room socket's handshakes share transactions the same way for their checks (the login
session, the account, the access decision: ``realtime.signalling``), which seldom write.

Should one write of a batch fail, the batch is rolled back and each of its writes is run again
in a transaction of its own, so that one failure is its caller's only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from sqlalchemy.orm import Session

T = TypeVar("T")

#: Writes per transaction at most (a batch also holds SQLite's write lock while it runs).
MAX_BATCH = 200


class Database(Protocol):
    async def run(self, fn: Callable[[Session], T]) -> T: ...


def _all_of(batch: list[tuple[Callable[[Session], Any], asyncio.Future[Any]]]) -> Callable[[Session], list[Any]]:
    return lambda session: [fn(session) for fn, _ in batch]


class GroupCommit:
    def __init__(self, db: Database, max_batch: int = MAX_BATCH) -> None:
        self.db = db
        self.max_batch = max_batch
        self._queue: list[tuple[Callable[[Session], Any], asyncio.Future[Any]]] = []
        self._task: asyncio.Task[None] | None = None
        #: Transactions committed and writes they carried (for the benchmark and the tests).
        self.batches = 0
        self.writes = 0

    async def run(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` in a transaction shared with other writes; returns once it committed.
        Cancelled meanwhile, the caller still waits for its write to end (as ``db.run`` does)."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((fn, future))
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._drain())
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            if not future.done():
                await asyncio.wait([future])
            raise

    async def _drain(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:self.max_batch], self._queue[self.max_batch:]
            try:
                try:
                    results = await self.db.run(_all_of(batch))
                except Exception:
                    await self._one_by_one(batch)
                    continue
            except BaseException as exc:  # cancelled (the server stops): nobody waits forever
                for _, future in batch + self._queue:
                    if not future.done():
                        future.set_exception(exc if isinstance(exc, Exception) else RuntimeError("stopped"))
                raise
            self.batches += 1
            self.writes += len(batch)
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def _one_by_one(self, batch: list[tuple[Callable[[Session], Any], asyncio.Future[Any]]]) -> None:
        for fn, future in batch:
            try:
                result = await self.db.run(fn)
            except Exception as exc:
                if not future.done():
                    future.set_exception(exc)
            else:
                self.batches += 1
                self.writes += 1
                if not future.done():
                    future.set_result(result)
