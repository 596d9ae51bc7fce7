"""How server processes reach each other: the broker.

A room lives on exactly one process, its *owner* (room affinity): that process holds the
room's state, writes its presence and chat, and runs its media relay. Participants may be
connected to any process; a process that is not the owner forwards their frames to the owner
and delivers the owner's frames to them. ``LocalBroker`` is the single-process default (this
process owns everything; nothing crosses a wire). ``RedisBroker`` uses Redis pub/sub — one
inbox channel per process, plus one channel every process listens to for what all must hear
at once (a login session ended: close its sockets wherever they are) — and a lease per room
(``SET NX PX``, renewed while the owner lives), so when an owner dies its lease runs out and
another process takes the room over.
The envelopes are listed in docs/protocol.md ("Between server processes").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import redis.asyncio as redis

log = logging.getLogger("chibo.broker")

Handler = Callable[[dict[str, Any]], Awaitable[None]]

#: How long a room's lease lasts without renewal, and how often owners renew. The lease is
#: long next to the renewal period so that a busy owner (a late renewal) does not lose its
#: rooms; a dead owner's rooms move within LEASE_MS + RENEW_SECONDS.
LEASE_MS = 10_000
RENEW_SECONDS = 2.0
#: At most this many envelopes per Redis pipeline.
PUBLISH_BATCH = 256
#: How long a process's published ballot key lives without being refreshed (every renewal).
KEY_TTL_MS = 60_000


class Broker(Protocol):
    process_id: str

    async def start(self, handler: Handler) -> None: ...

    async def stop(self) -> None: ...

    def publish(self, process_id: str, envelope: dict[str, Any]) -> None:
        """Queue an envelope for another process's inbox; never blocks."""
        ...

    def publish_all(self, envelope: dict[str, Any]) -> None:
        """Queue an envelope for every process (this one included); never blocks."""
        ...

    async def claim(self, meeting_id: int) -> str:
        """Become the room's owner if nobody is; return the owner's process id."""
        ...

    async def owner(self, meeting_id: int) -> str | None: ...

    async def renew(self, meeting_ids: list[int]) -> list[int]:
        """Extend this process's leases; returns the rooms whose lease was lost."""
        ...

    async def release(self, meeting_id: int) -> None: ...

    async def publish_key(self, record: str) -> None:
        """Publish this process's ballot key record (realtime/sealing.py)."""
        ...

    async def key_of(self, process_id: str) -> str | None:
        """Another process's ballot key record, if it is alive."""
        ...


class LocalBroker:
    """One process serves everything."""

    process_id = "local"

    async def start(self, handler: Handler) -> None:
        return None

    async def stop(self) -> None:
        return None

    def publish(self, process_id: str, envelope: dict[str, Any]) -> None:
        raise RuntimeError("a single process has nobody to publish to")

    def publish_all(self, envelope: dict[str, Any]) -> None:
        return None  # there are no other processes

    async def claim(self, meeting_id: int) -> str:
        return self.process_id

    async def owner(self, meeting_id: int) -> str | None:
        return self.process_id

    async def renew(self, meeting_ids: list[int]) -> list[int]:
        return []

    async def release(self, meeting_id: int) -> None:
        return None

    async def publish_key(self, record: str) -> None:
        return None

    async def key_of(self, process_id: str) -> str | None:
        return None


_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class RedisBroker:
    """Processes talk through Redis: pub/sub inboxes and leased room ownership."""

    def __init__(self, url: str, *, prefix: str = "chibo", process_id: str | None = None,
                 lease_ms: int = LEASE_MS) -> None:
        # A blocking pool: a burst of joins waits for a free connection instead of failing
        # with "too many connections".
        pool = redis.BlockingConnectionPool.from_url(url, decode_responses=True, max_connections=32, timeout=30)
        self.redis = redis.Redis(connection_pool=pool)
        self.prefix = prefix
        self.process_id = process_id or secrets.token_hex(6)
        self.lease_ms = lease_ms
        self._outbox: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue(maxsize=100_000)
        self._tasks: list[asyncio.Task[None]] = []
        self._pubsub: Any = None
        self._renew = self.redis.register_script(_RENEW)
        self._release = self.redis.register_script(_RELEASE)

    def _inbox(self, process_id: str) -> str:
        return f"{self.prefix}:proc:{process_id}"

    def _everyone(self) -> str:
        return f"{self.prefix}:all"

    def _lease(self, meeting_id: int) -> str:
        return f"{self.prefix}:room:{meeting_id}:owner"

    def _key(self, process_id: str) -> str:
        return f"{self.prefix}:proc:{process_id}:ballot-key"

    async def start(self, handler: Handler) -> None:
        self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await self._pubsub.subscribe(self._inbox(self.process_id), self._everyone())
        self._tasks = [asyncio.create_task(self._listen(handler)), asyncio.create_task(self._send())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()
        await self.redis.aclose()
        await self.redis.connection_pool.disconnect()  # the client does not own a pool it was given

    async def _listen(self, handler: Handler) -> None:
        async for message in self._pubsub.listen():
            if message.get("type") != "message":
                continue
            try:
                envelopes = json.loads(message["data"])
            except ValueError:
                log.warning("unreadable envelopes dropped")
                continue
            for envelope in envelopes if isinstance(envelopes, list) else [envelopes]:
                try:
                    await handler(envelope)
                except Exception:
                    log.exception("envelope handler failed", extra={"fields": {"op": envelope.get("op")}})

    async def _send(self) -> None:
        # One task publishes everything, in order: frames to a process keep their order. What
        # queued up while the previous batch was in flight goes out in one pipeline, so that
        # a busy room costs one Redis round trip per batch, not one per frame.
        while True:
            item = await self._outbox.get()
            batch = []
            while item is not None:
                batch.append(item)
                if len(batch) >= PUBLISH_BATCH or self._outbox.empty():
                    break
                item = self._outbox.get_nowait()
            if batch:
                # Envelopes for one process travel as one JSON array, in order.
                per_channel: dict[str, list[str]] = {}
                for channel, data in batch:
                    per_channel.setdefault(channel, []).append(data)
                try:
                    async with self.redis.pipeline(transaction=False) as pipe:
                        for channel, datas in per_channel.items():
                            pipe.publish(channel, "[" + ",".join(datas) + "]")
                        await pipe.execute()
                except Exception:
                    log.exception("publish failed", extra={"fields": {"envelopes": len(batch)}})
            if item is None:
                return

    def publish(self, process_id: str, envelope: dict[str, Any]) -> None:
        try:
            self._outbox.put_nowait((self._inbox(process_id), json.dumps(envelope, ensure_ascii=False)))
        except asyncio.QueueFull:
            log.error("broker outbox full; envelope dropped", extra={"fields": {"op": envelope.get("op")}})

    def publish_all(self, envelope: dict[str, Any]) -> None:
        try:
            self._outbox.put_nowait((self._everyone(), json.dumps(envelope, ensure_ascii=False)))
        except asyncio.QueueFull:
            log.error("broker outbox full; envelope dropped", extra={"fields": {"op": envelope.get("op")}})

    async def claim(self, meeting_id: int) -> str:
        key = self._lease(meeting_id)
        if await self.redis.set(key, self.process_id, nx=True, px=self.lease_ms):
            return self.process_id
        owner = await self.redis.get(key)
        if owner is None:  # expired between the two calls
            return await self.claim(meeting_id)
        return str(owner)

    async def owner(self, meeting_id: int) -> str | None:
        value = await self.redis.get(self._lease(meeting_id))
        return None if value is None else str(value)

    async def renew(self, meeting_ids: list[int]) -> list[int]:
        if not meeting_ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for meeting_id in meeting_ids:
                await self._renew(keys=[self._lease(meeting_id)], args=[self.process_id, self.lease_ms], client=pipe)
            renewed = await pipe.execute()
        return [meeting_id for meeting_id, ok in zip(meeting_ids, renewed, strict=True) if not ok]

    async def release(self, meeting_id: int) -> None:
        await self._release(keys=[self._lease(meeting_id)], args=[self.process_id])

    async def publish_key(self, record: str) -> None:
        await self.redis.set(self._key(self.process_id), record, px=KEY_TTL_MS)

    async def key_of(self, process_id: str) -> str | None:
        value = await self.redis.get(self._key(process_id))
        return None if value is None else str(value)
