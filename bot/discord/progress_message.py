"""A training run in the admins' Discord channels: one message per channel, edited in place.

Edits go out at most every 3 seconds, from a task of their own, so a slow answer from Discord (or
a 429 that discord.py waits out) never holds up the training run's events. A wait longer than
discord.py's limit comes back as RateLimited and pushes the next edit back by that long. At the
end the summary goes out as an embed with the run's curves.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
from typing import TYPE_CHECKING

import discord

from bot.core.progress import RunProgress, Throttle, progress_text, summary_text
from bot.discord.limits import EMBED_DESCRIPTION_LIMIT, EMBED_TITLE_LIMIT, clip
from db.models import RunStatus

if TYPE_CHECKING:
    from bot.discord.client import DigitBot

logger = logging.getLogger(__name__)

PROGRESS_EDIT_INTERVAL_SECONDS = 3.0
COLOURS = {
    "promoted": discord.Colour.green(),
    "kept": discord.Colour.orange(),
    "failed": discord.Colour.red(),
}


class DiscordProgress:
    """Shows runs in DISCORD_PROGRESS_CHANNEL_ID, or else in each Discord admin's direct messages."""

    def __init__(
        self,
        bot: DigitBot,
        channel_id: int | None,
        admin_ids: frozenset[int],
        interval_seconds: float = PROGRESS_EDIT_INTERVAL_SECONDS,
    ) -> None:
        self.bot = bot
        self.channel_id = channel_id
        self.admin_ids = admin_ids
        self.interval_seconds = interval_seconds
        self._channels: list[discord.abc.Messageable] | None = None
        self._run_id: int | None = None
        self._messages: list[discord.Message] = []
        self._latest: RunProgress | None = None
        self._shown_text = ""
        self._throttle = Throttle(interval_seconds)
        self._changed = asyncio.Event()
        self._editor: asyncio.Task[None] | None = None
        self._editing = False

    async def progress(self, run: RunProgress) -> None:
        """Note the run's state; the editor shows the newest one when the interval allows."""
        self._latest = run
        self._changed.set()
        if self._editor is None or self._editor.done():
            self._editor = asyncio.create_task(self._edit_while_changing(), name="discord-progress")

    async def finished(self, run: RunProgress, curves_png: bytes | None) -> None:
        """Show the run's last state, then its summary with the curves and the promotion decision."""
        await self._stop_editor()
        if run.run_id == self._run_id:
            await self._show(run)
        for channel in await self._targets():
            await self._send(channel, embed=summary_embed(run, curves_png is not None), picture=curves_png)
        self._run_id, self._messages, self._latest = None, [], None

    async def notify(self, text: str) -> None:
        """Tell the admins something (a skipped scheduled run, a broken model)."""
        for channel in await self._targets():
            await self._send(channel, text=text)

    async def close(self) -> None:
        """Stop editing (the front end is stopping)."""
        await self._stop_editor()

    async def _edit_while_changing(self) -> None:
        while self._changed.is_set():
            await asyncio.sleep(self._throttle.seconds_until_ready())
            if not self._throttle.ready():
                continue  # Discord asked for a longer wait meanwhile
            self._changed.clear()
            if self._latest is not None:
                self._editing = True
                try:
                    await self._show(self._latest)
                finally:
                    self._editing = False

    async def _stop_editor(self) -> None:
        """Stop the editor: an edit under way lands (discord.py may be waiting out a 429 for it)."""
        editor, self._editor = self._editor, None
        if editor is None or editor.done():
            return
        self._changed.clear()  # no round after the edit under way
        if not self._editing:
            editor.cancel()  # it was only waiting for the interval
        with contextlib.suppress(asyncio.CancelledError):
            await editor

    async def _show(self, run: RunProgress) -> None:
        """Post the run's message (a new run) or edit it in place (only when its text changed)."""
        text = progress_text(run)
        if run.run_id != self._run_id:
            self._run_id, self._shown_text, self._messages = run.run_id, text, []
            for channel in await self._targets():
                message = await self._send(channel, text=text)
                if message is not None:
                    self._messages.append(message)
            return
        if text == self._shown_text:
            return
        for message in self._messages:
            try:
                await message.edit(content=text)
            except discord.RateLimited as limited:
                logger.info("Progress edit rate limited by Discord for %.1f s", limited.retry_after)
                self._throttle.delay(limited.retry_after)
            except discord.HTTPException as error:
                logger.warning(
                    "Cannot edit the progress message in channel %s: %s", message.channel.id, error
                )
        self._shown_text = text

    async def _targets(self) -> list[discord.abc.Messageable]:
        """The progress channel, or each admin's DM channel (opened once)."""
        if self._channels is None:
            channels: list[discord.abc.Messageable] = []
            if self.channel_id is not None:
                channels.append(self.bot.get_partial_messageable(self.channel_id))
            else:
                for admin_id in sorted(self.admin_ids):
                    try:
                        channels.append(await self.bot.create_dm(discord.Object(admin_id)))
                    except discord.HTTPException as error:
                        logger.warning("Cannot open a DM with Discord admin %s: %s", admin_id, error)
            self._channels = channels
        return self._channels

    async def _send(
        self,
        channel: discord.abc.Messageable,
        *,
        text: str | None = None,
        embed: discord.Embed | None = None,
        picture: bytes | None = None,
    ) -> discord.Message | None:
        try:
            if picture is not None and embed is not None:
                chart = discord.File(io.BytesIO(picture), filename="curves.png")
                return await channel.send(embed=embed, file=chart)
            if embed is not None:
                return await channel.send(embed=embed)
            return await channel.send(clip(text or ""))
        except discord.HTTPException as error:
            logger.warning("Cannot post to the Discord admin channel: %s", error)
            return None


def summary_embed(run: RunProgress, with_curves: bool) -> discord.Embed:
    """The run's summary as an embed: the first line as its title, the curves as its picture."""
    title, _, description = summary_text(run).partition("\n")
    report = run.report
    if run.status is not RunStatus.SUCCEEDED or report is None:
        colour = COLOURS["failed"]
    else:
        colour = COLOURS["promoted" if report.promoted else "kept"]
    embed = discord.Embed(
        title=clip(title, EMBED_TITLE_LIMIT),
        description=clip(description, EMBED_DESCRIPTION_LIMIT) or None,
        colour=colour,
    )
    if with_curves:
        embed.set_image(url="attachment://curves.png")
    return embed
