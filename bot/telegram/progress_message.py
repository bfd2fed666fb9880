"""A training run in the admins' Telegram chats: one message per chat, edited in place."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from telegram import Bot
from telegram.error import BadRequest, RetryAfter, TelegramError

from bot.core.progress import RunProgress, Throttle, progress_text, summary_text

logger = logging.getLogger(__name__)

PROGRESS_EDIT_INTERVAL_SECONDS = 3.0
CAPTION_LIMIT = 1024  # Telegram's longest photo caption


class TelegramProgress:
    """Posts a run's progress as one message per admin chat, edited at most every 3 seconds."""

    def __init__(
        self, bot: Bot, chat_ids: list[int], interval_seconds: float = PROGRESS_EDIT_INTERVAL_SECONDS
    ) -> None:
        self.bot = bot
        self.chat_ids = chat_ids
        self.interval_seconds = interval_seconds
        self._run_id: int | None = None
        self._messages: dict[int, int] = {}
        self._throttle = Throttle(interval_seconds)
        self._pending_flush: asyncio.Task[None] | None = None
        self._latest: RunProgress | None = None
        self._last_text = ""

    async def progress(self, run: RunProgress) -> None:
        """Show the run's state now, or within the interval if an edit was made recently."""
        self._latest = run
        if run.run_id != self._run_id:
            await self._open(run)
            return
        if self._throttle.ready():
            await self._edit_all(progress_text(run))
        elif self._pending_flush is None:
            self._pending_flush = asyncio.create_task(self._flush_later())

    async def finished(self, run: RunProgress, curves_png: bytes | None) -> None:
        """Show the final state, then the summary with the curves and the promotion decision."""
        if self._pending_flush is not None:
            self._pending_flush.cancel()
            self._pending_flush = None
        if run.run_id == self._run_id:
            await self._edit_all(progress_text(run))
        summary = summary_text(run)
        for chat_id in self.chat_ids:
            await self._send(chat_id, summary, curves_png)
        self._run_id = None
        self._messages = {}

    async def notify(self, text: str) -> None:
        """Tell the admins something (a skipped scheduled run, a broken model)."""
        for chat_id in self.chat_ids:
            await self._send(chat_id, text, None)

    async def _open(self, run: RunProgress) -> None:
        self._run_id = run.run_id
        self._messages = {}
        self._last_text = progress_text(run)
        self._throttle = Throttle(self.interval_seconds)
        self._throttle.ready()
        for chat_id in self.chat_ids:
            try:
                message = await self.bot.send_message(chat_id, self._last_text)
            except TelegramError as error:
                logger.warning("Cannot post progress to chat %s: %s", chat_id, error)
                continue
            self._messages[chat_id] = message.message_id

    async def _flush_later(self) -> None:
        await asyncio.sleep(self._throttle.seconds_until_ready())
        self._pending_flush = None
        if self._latest is not None and self._latest.run_id == self._run_id and self._throttle.ready():
            await self._edit_all(progress_text(self._latest))

    async def _edit_all(self, text: str) -> None:
        if text == self._last_text:
            return  # Telegram refuses an edit that changes nothing
        self._last_text = text
        for chat_id, message_id in self._messages.items():
            try:
                await self.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id)
            except RetryAfter as error:
                # Flood control: skip this edit; the next one comes after Telegram's wait.
                logger.info("Progress edit throttled by Telegram for %s", error.retry_after)
                self._throttle.delay(_seconds(error.retry_after))
            except BadRequest as error:
                if "not modified" not in str(error).lower():
                    logger.warning("Cannot edit progress in chat %s: %s", chat_id, error)
            except TelegramError as error:
                logger.warning("Cannot edit progress in chat %s: %s", chat_id, error)

    async def _send(self, chat_id: int, text: str, picture: bytes | None) -> None:
        try:
            if picture is not None and len(text) <= CAPTION_LIMIT:
                await self.bot.send_photo(chat_id, picture, caption=text)
            else:
                await self.bot.send_message(chat_id, text)
                if picture is not None:
                    await self.bot.send_photo(chat_id, picture)
        except TelegramError as error:
            logger.warning("Cannot send to admin chat %s: %s", chat_id, error)


def _seconds(retry_after: int | timedelta) -> float:
    return retry_after.total_seconds() if isinstance(retry_after, timedelta) else float(retry_after)
