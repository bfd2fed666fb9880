"""The one place that builds the Discord bot: intents, cogs, persistent buttons, the admins' channel.

bot = build_discord_bot(services)
async with bot:
    await bot.start(token)      # bot/service.py runs it beside the other front ends
"""

from __future__ import annotations

import logging
from typing import Any

import discord
import yarl
from discord import app_commands
from discord.ext import commands

from bot.core.services import Services
from bot.core.texts import say
from bot.discord.admin_commands import AdminCommands
from bot.discord.pictures import Pictures
from bot.discord.progress_message import DiscordProgress
from bot.discord.verdicts import TypeNumberButton, VerdictButton
from bot.settings import DISCORD_API_BASE_URL, Settings

logger = logging.getLogger(__name__)

# discord.py waits for a 429 itself up to this long; longer waits come back as RateLimited.
MAX_RATE_LIMIT_WAIT_SECONDS = 10.0


class DigitBot(commands.Bot):
    """The product in Discord: reads pictures, takes verdicts, runs the admins' commands."""

    def __init__(self, services: Services) -> None:
        settings = services.settings
        super().__init__(
            command_prefix=commands.when_mentioned,  # no prefix commands: slash commands only
            help_command=None,
            intents=intents_for(settings),
            max_ratelimit_timeout=MAX_RATE_LIMIT_WAIT_SECONDS,
            allowed_mentions=discord.AllowedMentions.none(),
        )
        self.services = services
        self.progress = DiscordProgress(
            self, settings.discord_progress_channel_id, settings.discord_admin_user_ids
        )

    async def setup_hook(self) -> None:
        """Find the gateway, add the commands and persistent buttons, publish the slash commands."""
        settings = self.services.settings
        if settings.discord_api_base_url != DISCORD_API_BASE_URL:
            await self._use_gateway_of_api()
        await self.add_cog(Pictures(self))
        await self.add_cog(AdminCommands(self))
        self.add_dynamic_items(VerdictButton, TypeNumberButton)
        self.tree.error(self.on_app_command_error)
        await self.publish_commands()
        self.services.admins.add(self.progress)

    async def publish_commands(self) -> None:
        """Sync the slash commands to DISCORD_GUILD_IDS at once, or globally (Discord may take an hour)."""
        guild_ids = sorted(self.services.settings.discord_guild_ids)
        if not guild_ids:
            await self.tree.sync()
            return
        for guild_id in guild_ids:
            guild = discord.Object(guild_id)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)

    def is_admin(self, interaction: discord.Interaction[Any]) -> bool:
        """One of DISCORD_ADMIN_USER_IDS, or a member with DISCORD_ADMIN_ROLE_ID in this server."""
        settings = self.services.settings
        if interaction.user.id in settings.discord_admin_user_ids:
            return True
        role_id = settings.discord_admin_role_id
        user = interaction.user
        return role_id is not None and isinstance(user, discord.Member) and user.get_role(role_id) is not None

    async def on_app_command_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        """Log the error and tell the person something went wrong (a refused check was already told)."""
        if isinstance(error, app_commands.CheckFailure):
            return
        logger.error(
            "Slash command /%s failed", interaction.command and interaction.command.name, exc_info=error
        )
        try:
            if interaction.response.is_done():
                await interaction.followup.send(say("internal_error"), ephemeral=True)
            else:
                await interaction.response.send_message(say("internal_error"), ephemeral=True)
        except discord.HTTPException:
            logger.warning("Could not tell the person about the error")

    async def close(self) -> None:
        """Stop showing runs here, then disconnect."""
        self.services.admins.remove(self.progress)
        await self.progress.close()
        await super().close()

    async def _use_gateway_of_api(self) -> None:
        """Connect to the gateway a self-hosted or test API names, not to Discord's own."""
        _, url, _ = await self.http.get_bot_gateway()
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url)
        logger.info("Discord: gateway %s", url)


def intents_for(settings: Settings) -> discord.Intents:
    """The gateway intents the product needs, and no more.

    Servers and their channels (guilds), messages in servers and in DMs. The privileged
    message-content intent only when DISCORD_READING_CHANNEL_IDS asks to read pictures without a
    mention: Discord shows a bot the attachments of DMs and of messages that mention it anyway.
    """
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.dm_messages = True
    intents.message_content = bool(settings.discord_reading_channel_ids)
    return intents


def build_discord_bot(services: Services) -> DigitBot:
    """Build the bot on the shared services, pointed at DISCORD_API_BASE_URL."""
    # discord.py builds every REST URL from this class attribute; it is one bot per process.
    discord.http.Route.BASE = services.settings.discord_api_base_url
    discord.VoiceClient.warn_nacl = False  # no voice here: no warnings about voice libraries
    discord.VoiceClient.warn_dave = False
    return DigitBot(services)
