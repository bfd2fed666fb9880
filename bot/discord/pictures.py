"""Pictures people send: attached in a direct message, in a server message that mentions the bot or
in a reading channel, or given to /read. Each is answered with what was read and the verdict buttons."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.core.reading import Picture
from bot.core.replies import Reply
from bot.core.texts import say
from bot.discord.limits import clip
from bot.discord.turns import ChannelTurns
from bot.discord.verdicts import answer_view
from db.models import Channel, PredictionSource

if TYPE_CHECKING:
    from bot.discord.client import DigitBot

logger = logging.getLogger(__name__)

NOT_IMAGES = ("audio/", "text/", "application/", "font/", "model/")


class Pictures(commands.Cog):
    """Reads the digits in pictures and answers in the same channel, quoting the picture."""

    def __init__(self, bot: DigitBot) -> None:
        self.bot = bot
        self.turns = ChannelTurns()

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        """Answer every image of a message addressed to the bot, in the channel's order."""
        if message.author.bot or not self.addressed(message):
            return
        async with self.turns.turn(message.channel.id):  # before any other await: keeps the order
            if not message.attachments:
                await message.reply(say("text_without_photo"), mention_author=False)
                return
            for attachment in message.attachments:
                try:
                    await self.answer(message, attachment)
                except Exception:
                    logger.exception("Answering attachment %s failed", attachment.id)
                    await message.reply(say("internal_error"), mention_author=False)

    def addressed(self, message: discord.Message) -> bool:
        """A direct message, a message that mentions the bot, or one in a reading channel."""
        if message.guild is None:
            return True
        user = self.bot.user
        mentioned = user is not None and user in message.mentions
        return mentioned or message.channel.id in self.bot.services.settings.discord_reading_channel_ids

    async def answer(self, message: discord.Message, attachment: discord.Attachment) -> None:
        """Check, download and read one attachment; reply to the message with the answer."""
        reply = await self.read_attachment(
            attachment, message.author.id, message.channel.id, message.id, PredictionSource.FILE
        )
        if reply is not None:
            view = answer_view(reply) or discord.utils.MISSING
            await message.reply(clip(reply.text), view=view, mention_author=False)

    async def read_attachment(
        self,
        attachment: discord.Attachment,
        user_id: int,
        channel_id: int,
        message_id: int,
        source: PredictionSource,
    ) -> Reply | None:
        """What to answer about an attachment: a refusal, or what was read with its buttons.

        None when nothing should be said (a person already asked to slow down).
        """
        refusal = not_an_image(attachment)
        if refusal is not None:
            return Reply(refusal)
        reader = self.bot.services.reader
        refused = reader.admit(Channel.DISCORD, user_id, attachment.size)
        if refused is not None:
            return refused.reply
        try:
            data = await attachment.read()
        except discord.HTTPException as error:
            logger.warning("Downloading attachment %s failed: %s", attachment.id, error)
            return Reply(say("download_failed"))
        picture = Picture(data, Channel.DISCORD, channel_id, user_id, message_id, source)
        return (await reader.read(picture)).reply

    @app_commands.command(name="read", description=say("discord.command.read"))
    @app_commands.describe(image=say("discord.command.read.image"))
    async def read_command(
        self, interaction: discord.Interaction[DigitBot], image: discord.Attachment
    ) -> None:
        """/read image: read the digits in the attached picture."""
        refusal = not_an_image(image)
        if refusal is not None:
            await interaction.response.send_message(refusal, ephemeral=True)
            return
        # Reading may take longer than the three seconds Discord waits for an acknowledgement.
        await interaction.response.defer(thinking=True)
        channel_id = interaction.channel_id or interaction.user.id
        reply = await self.read_attachment(
            image, interaction.user.id, channel_id, interaction.id, PredictionSource.FILE
        )
        if reply is None:  # already asked to slow down: the "thinking…" message still needs an end
            reply = Reply(say("discord.slow_down"))
        await interaction.followup.send(clip(reply.text), view=answer_view(reply) or discord.utils.MISSING)

    @app_commands.command(name="help", description=say("discord.command.help"))
    async def help_command(self, interaction: discord.Interaction[DigitBot]) -> None:
        """/help: what the bot does, how to take a good photo, and the admin commands to admins."""
        text = say("help") + "\n\n" + say("discord.help_where")
        if self.bot.is_admin(interaction):
            text += "\n\n" + say("admin_help")
        await interaction.response.send_message(clip(text), ephemeral=True)


def not_an_image(attachment: discord.Attachment) -> str | None:
    """Why an attachment is refused before it is downloaded, or None to read it."""
    content_type = attachment.content_type or ""
    if content_type.startswith("video/"):
        return say("discord.video")
    if content_type.startswith(NOT_IMAGES) and content_type != "application/octet-stream":
        return say("discord.not_an_image", name=attachment.filename)
    return None
