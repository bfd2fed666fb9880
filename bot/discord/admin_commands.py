"""The admins' slash commands. Discord's default_permissions only hide them from most members (a
server's admins can change that), so the product checks DISCORD_ADMIN_USER_IDS and
DISCORD_ADMIN_ROLE_ID itself on every call."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.core import admin
from bot.core.texts import say
from bot.discord.limits import EMBED_DESCRIPTION_LIMIT, clip
from mnist_engine.training.architectures import ARCHITECTURES

if TYPE_CHECKING:
    from bot.discord.client import DigitBot

ARCHITECTURE_CHOICES = [app_commands.Choice(name=name, value=name) for name in ARCHITECTURES]


class AdminCommands(commands.Cog):
    """/train, /cancel, /model and /stats; each answer is shown only to the admin who asked."""

    def __init__(self, bot: DigitBot) -> None:
        self.bot = bot

    async def interaction_check(self, interaction: discord.Interaction[DigitBot], /) -> bool:  # type: ignore[override]
        """Refuse anyone who is not one of the product's admins, whatever Discord shows them."""
        if self.bot.is_admin(interaction):
            return True
        await interaction.response.send_message(say("admin.not_admin"), ephemeral=True)
        return False

    @app_commands.command(name="train", description=say("discord.command.train"))
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.describe(
        architecture=say("discord.command.train.architecture"), epochs=say("discord.command.train.epochs")
    )
    @app_commands.choices(architecture=ARCHITECTURE_CHOICES)
    async def train(
        self,
        interaction: discord.Interaction[DigitBot],
        architecture: str | None = None,
        epochs: app_commands.Range[int, admin.MIN_EPOCHS, admin.MAX_EPOCHS] | None = None,
    ) -> None:
        """/train [architecture] [epochs]: start a run now (one at a time across every front end)."""
        arguments = [value for value in (architecture, None if epochs is None else str(epochs)) if value]
        try:
            architecture, epochs = admin.parse_train_arguments(arguments)
        except admin.TrainArgumentsError as error:
            await interaction.response.send_message(str(error), ephemeral=True)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        text = await admin.start_training(
            self.bot.services, interaction.user.display_name, architecture, epochs
        )
        await interaction.followup.send(text, ephemeral=True)

    @app_commands.command(name="cancel", description=say("discord.command.cancel"))
    @app_commands.default_permissions(manage_guild=True)
    async def cancel(self, interaction: discord.Interaction[DigitBot]) -> None:
        """/cancel: stop the run in progress."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        await interaction.followup.send(await admin.cancel_training(self.bot.services), ephemeral=True)

    @app_commands.command(name="model", description=say("discord.command.model"))
    @app_commands.default_permissions(manage_guild=True)
    async def model(self, interaction: discord.Interaction[DigitBot]) -> None:
        """/model: the serving model's version and metrics."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        await interaction.followup.send(clip(await admin.model_report(self.bot.services)), ephemeral=True)

    @app_commands.command(name="stats", description=say("discord.command.stats"))
    @app_commands.default_permissions(manage_guild=True)
    async def stats(self, interaction: discord.Interaction[DigitBot]) -> None:
        """/stats: usage, accuracy as users judged it, recent runs and one chart."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        text, picture = await admin.stats_report(self.bot.services)
        embed = discord.Embed(description=clip(text, EMBED_DESCRIPTION_LIMIT))
        embed.set_image(url="attachment://stats.png")
        chart = discord.File(io.BytesIO(picture), filename="stats.png")
        await interaction.followup.send(embed=embed, file=chart, ephemeral=True)
