"""Telegram's updates by webhook (TELEGRAM_WEBHOOK_URL) instead of long polling.

The web app's route /telegram/webhook hands each update to an inbox (bot/web/telegram_webhook.py):

- one instance: the update goes into PTB's update queue, and PerChatUpdateProcessor keeps each
  chat in order, as with polling;
- several instances (REDIS_URL): the update goes into its chat's queue in Redis (a sorted set by
  update_id), and whichever instance holds the chat's lease handles the chat's updates one by one,
  in order, so that answers come in the order of the photos whichever instance received them. An
  update is marked done once handled; an instance that dies mid-way leaves its chats' leases to
  expire, and another instance takes the chats over, handling again only what was not marked done.

While Redis cannot be reached, updates are handled by the instance that received them (each chat
still in order within an instance) and that is said once in the log; it recovers by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any, cast

from redis.asyncio import Redis
from redis.asyncio.lock import Lock
from redis.exceptions import LockError, RedisError
from telegram import Update

if TYPE_CHECKING:
    from bot.telegram.application import TelegramApplication

logger = logging.getLogger(__name__)

# Only what the handlers handle; Telegram keeps the rest to itself.
ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
# Telegram posts the next update once the last one was answered: arrivals keep Telegram's order. The
# webhook only queues, within a few milliseconds, so one connection carries far more than the
# 30 answers a second Telegram lets a bot send.
MAX_CONNECTIONS = 1
PENDING_CHATS = "digitbot:telegram:pending-chats"
LEASE_SECONDS = 5.0
SWEEP_SECONDS = 1.0
DONE_SECONDS = 24 * 3600  # how long a handled update is remembered, against a second handling
SET_WEBHOOK_LOCK_SECONDS = 60


def chat_queue(chat_id: int) -> str:
    """The chat's updates waiting to be handled, scored by update_id."""
    return f"digitbot:telegram:chat:{chat_id}:updates"


def chat_lease(chat_id: int) -> str:
    """Held by the instance handling the chat's updates."""
    return f"digitbot:telegram:chat:{chat_id}:lease"


def done_mark(update_id: int) -> str:
    """Set once an update was handled."""
    return f"digitbot:telegram:update:{update_id}:done"


def chat_of(update: dict[str, Any]) -> int | None:
    """The chat an update belongs to, read from the update as Telegram sent it."""
    for kind in ("message", "edited_message", "channel_post", "edited_channel_post"):
        if kind in update:
            return int(update[kind]["chat"]["id"])
    query = update.get("callback_query")
    if query is not None and isinstance(query.get("message"), dict):
        return int(query["message"]["chat"]["id"])
    return None


class DirectInbox:
    """One instance: updates go straight into PTB's update queue."""

    def __init__(self, application: TelegramApplication) -> None:
        self.application = application

    async def accept(self, update: dict[str, Any]) -> None:
        """Queue the update for PTB."""
        await self.application.update_queue.put(Update.de_json(update, self.application.bot))


class OrderedInbox:
    """Several instances: updates queued per chat in Redis, each chat handled in order by one instance."""

    def __init__(self, application: TelegramApplication, redis_url: str) -> None:
        self.application = application
        self.redis = Redis.from_url(redis_url)
        self._direct = DirectInbox(application)
        self._draining: dict[int, asyncio.Task[None]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self._unreachable = False

    def start(self) -> None:
        """Take over chats whose updates wait (another instance died, or Redis came back)."""
        self._sweeper = asyncio.create_task(self._sweep(), name="telegram-chat-sweeper")

    async def stop(self) -> None:
        """Stop handling; what waits in Redis is handled by another instance, or by this one next time."""
        tasks = [task for task in (self._sweeper, *self._draining.values()) if task is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.redis.aclose()

    async def accept(self, update: dict[str, Any]) -> None:
        """Queue the update in its chat's queue (a retried delivery is queued once) and handle the chat."""
        chat_id = chat_of(update)
        if chat_id is None:
            await self._direct.accept(update)  # no chat, no order to keep
            return
        try:
            member = json.dumps(update, sort_keys=True)
            async with self.redis.pipeline(transaction=True) as pipeline:
                pipeline.zadd(chat_queue(chat_id), {member: update["update_id"]})
                pipeline.sadd(PENDING_CHATS, chat_id)
                await pipeline.execute()
            self._reachable()
        except (RedisError, OSError) as error:
            self._unreachable_now(error)
            await self._direct.accept(update)
            return
        self._drain_soon(chat_id)

    def _drain_soon(self, chat_id: int) -> None:
        if chat_id in self._draining:
            return  # this instance handles the chat already and will see the new update
        task = asyncio.create_task(self._drain(chat_id), name=f"telegram-chat-{chat_id}")
        self._draining[chat_id] = task
        task.add_done_callback(lambda _: self._draining.pop(chat_id, None))

    async def _drain(self, chat_id: int) -> None:
        """Handle the chat's waiting updates in order, while holding its lease."""
        try:
            while await self._drain_once(chat_id):
                pass  # an update arrived as the lease was let go: look again
        except (RedisError, OSError) as error:
            self._unreachable_now(error)

    async def _drain_once(self, chat_id: int) -> bool:
        lease = Lock(
            self.redis, chat_lease(chat_id), timeout=LEASE_SECONDS, blocking=False, thread_local=False
        )
        if not await lease.acquire():
            return False  # another instance handles the chat
        keeper = asyncio.create_task(_keep(lease), name=f"lease-chat-{chat_id}")
        try:
            while head := cast(list[bytes], await self.redis.zrange(chat_queue(chat_id), 0, 0)):
                update = json.loads(head[0])
                if not await self.redis.exists(done_mark(update["update_id"])):
                    await self.application.process_update(Update.de_json(update, self.application.bot))
                    await self.redis.set(done_mark(update["update_id"]), 1, ex=DONE_SECONDS)
                await self.redis.zrem(chat_queue(chat_id), head[0])
            await self.redis.srem(PENDING_CHATS, chat_id)
        finally:
            keeper.cancel()
            with contextlib.suppress(LockError, RedisError):
                await lease.release()
        # An update queued between the last look and the release found the lease taken: look again.
        if await self.redis.zcard(chat_queue(chat_id)):
            await self.redis.sadd(PENDING_CHATS, chat_id)
            return True
        return False

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            try:
                waiting = await self.redis.smembers(PENDING_CHATS)
                self._reachable()
            except (RedisError, OSError) as error:
                self._unreachable_now(error)
                continue
            for chat_id in waiting:
                self._drain_soon(int(chat_id))

    def _unreachable_now(self, error: Exception) -> None:
        if not self._unreachable:
            logger.error(
                "Redis is unreachable (%s): Telegram updates are handled by the instance that receives "
                "them until it is back (each chat in order within an instance, not across instances)",
                error,
            )
            self._unreachable = True

    def _reachable(self) -> None:
        if self._unreachable:
            logger.warning("Redis is reachable again: Telegram updates are queued per chat again")
            self._unreachable = False


async def _keep(lease: Lock) -> None:
    """Renew a chat's lease while its updates are handled, however long one takes."""
    while True:
        await asyncio.sleep(LEASE_SECONDS / 3)
        with contextlib.suppress(LockError, RedisError):
            await lease.reacquire()


async def set_webhook_once(
    application: TelegramApplication, url: str, secret: str, redis_url: str | None
) -> None:
    """Point Telegram at the webhook; with several instances, only the first to start in a minute does."""
    if redis_url is not None:
        redis = Redis.from_url(redis_url)
        try:
            first = await redis.set("digitbot:telegram:set-webhook", 1, nx=True, ex=SET_WEBHOOK_LOCK_SECONDS)
        except (RedisError, OSError):
            first = True  # better twice (Telegram takes it again) than never
        finally:
            await redis.aclose()
        if not first:
            logger.info("Telegram's webhook was set by another instance")
            return
    await application.bot.set_webhook(
        url=url, secret_token=secret, allowed_updates=ALLOWED_UPDATES, max_connections=MAX_CONNECTIONS
    )
    logger.info("Telegram's webhook set to %s", url)
