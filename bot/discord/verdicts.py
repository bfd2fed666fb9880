"""The buttons under an answer (✅, ❌, the digit pad) and the modal to type the right number.

Each button is a `DynamicItem` whose custom_id carries the core's action string ("digitbot:ok:42"),
so a button pressed days later, after any number of restarts, still finds its answer; only the
person who sent the picture may judge it (bot.core refuses anyone else).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

import discord

from bot.core.reading import DigitReader, Verdict, VerdictRefused
from bot.core.replies import Action, PressedButton, Reply, correction_pad, parse_action, parse_correction
from bot.core.texts import say
from db.models import Channel
from mnist_engine.photo import MAX_DIGITS

if TYPE_CHECKING:
    from bot.discord.client import DigitBot

logger = logging.getLogger(__name__)

CUSTOM_ID_PREFIX = "digitbot:"
STYLES = {
    Action.RIGHT: discord.ButtonStyle.success,
    Action.WRONG: discord.ButtonStyle.danger,
    Action.TYPE: discord.ButtonStyle.secondary,
    Action.SAVE: discord.ButtonStyle.primary,
}


def reader_of(interaction: discord.Interaction[Any]) -> DigitReader:
    """The shared DigitReader, from the bot that received the interaction."""
    return cast("DigitBot", interaction.client).services.reader


class VerdictButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"digitbot:(?P<action>(?:ok|no|fx|sv):[0-9]{1,12}(?::[0-9]*)?)",
):
    """✅, ❌, a digit of the pad, ⌫ or Save: a button that sends one of the core's action strings."""

    def __init__(self, action: str, label: str = "?") -> None:
        pressed = parse_action(action)
        style = STYLES[pressed.action] if pressed is not None else discord.ButtonStyle.secondary
        if pressed is not None and pressed.action is Action.TYPE and not label.isdigit():
            style = discord.ButtonStyle.secondary  # ⌫
        super().__init__(discord.ui.Button(label=label, style=style, custom_id=CUSTOM_ID_PREFIX + action))
        self.action = action

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> VerdictButton:
        """Rebuild the button from its custom_id (after a restart as well)."""
        label = item.label if isinstance(item, discord.ui.Button) else None
        return cls(match["action"], label or "?")

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """Record the verdict, or show the pad with what was typed so far."""
        pressed = parse_action(self.action)
        if pressed is None:
            await interaction.response.send_message(say("verdict.stale"), ephemeral=True)
            return
        # Acknowledge at once (Discord allows three seconds), then edit the answer in place.
        await interaction.response.defer()
        try:
            shown = await judge_or_pad(reader_of(interaction), pressed, interaction.user.id)
        except VerdictRefused as refused:
            await interaction.followup.send(str(refused), ephemeral=True)
            return
        view = answer_view(shown.reply, shown.pad_for)
        await interaction.edit_original_response(content=shown.reply.text, view=view)


class TypeNumberButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]],
    template=r"digitbot:ty:(?P<prediction_id>[0-9]{1,12})",
):
    """⌨ under the pad: opens a modal to type the right number."""

    def __init__(self, prediction_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label=say("discord.button.type"),
                style=discord.ButtonStyle.secondary,
                custom_id=f"{CUSTOM_ID_PREFIX}ty:{prediction_id}",
            )
        )
        self.prediction_id = prediction_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction[Any],
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> TypeNumberButton:
        """Rebuild the button from its custom_id (after a restart as well)."""
        return cls(int(match["prediction_id"]))

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        """Open the modal, for the person who sent the picture only."""
        reader = reader_of(interaction)
        try:
            digits = await reader.digits_to_correct(Channel.DISCORD, self.prediction_id, interaction.user.id)
        except VerdictRefused as refused:
            await interaction.response.send_message(str(refused), ephemeral=True)
            return
        await interaction.response.send_modal(CorrectionModal(self.prediction_id, digits))


class CorrectionModal(discord.ui.Modal):
    """A text box for the right number; saving it records the correction and closes the answer."""

    def __init__(self, prediction_id: int, digits_read: str) -> None:
        super().__init__(
            title=say("discord.modal.title"), custom_id=f"{CUSTOM_ID_PREFIX}modal:{prediction_id}"
        )
        self.prediction_id = prediction_id
        self.digits = discord.ui.TextInput[CorrectionModal](
            custom_id="digits", min_length=1, max_length=2 * MAX_DIGITS, placeholder=digits_read
        )
        self.add_item(
            discord.ui.Label(
                text=say("discord.modal.label"),
                description=say("discord.modal.description", digits=digits_read, limit=MAX_DIGITS),
                component=self.digits,
            )
        )

    async def on_submit(self, interaction: discord.Interaction[Any]) -> None:
        """Store the typed number as the right answer."""
        typed = self.digits.value
        corrected = parse_correction(typed)
        if corrected is None:
            text = say("discord.modal.not_digits", typed=typed, limit=MAX_DIGITS)
            await interaction.response.send_message(text, ephemeral=True)
            return
        await interaction.response.defer()
        verdict = Verdict(Channel.DISCORD, self.prediction_id, interaction.user.id, False, corrected)
        try:
            final_text = await reader_of(interaction).judge(verdict)
        except VerdictRefused as refused:
            await interaction.followup.send(str(refused), ephemeral=True)
            return
        await interaction.edit_original_response(content=final_text, view=None)


@dataclass(frozen=True)
class AnswerState:
    """What the answer message becomes: its text and buttons, and ⌨ while the pad is open."""

    reply: Reply
    pad_for: int | None = None  # the prediction whose pad is open


async def judge_or_pad(reader: DigitReader, pressed: PressedButton, user_id: int) -> AnswerState:
    """What a pressed button leads to: the answer with its verdict, or the pad to correct it."""
    if pressed.action is Action.RIGHT or (pressed.action is Action.SAVE and pressed.typed):
        verdict = Verdict(
            Channel.DISCORD,
            pressed.prediction_id,
            user_id,
            correct=pressed.action is Action.RIGHT,
            corrected_digits=pressed.typed or None,
        )
        return AnswerState(Reply(await reader.judge(verdict)))
    digits_read = await reader.digits_to_correct(Channel.DISCORD, pressed.prediction_id, user_id)
    return AnswerState(
        correction_pad(pressed.prediction_id, digits_read, pressed.typed), pressed.prediction_id
    )


def answer_view(reply: Reply, pad_for: int | None = None) -> discord.ui.View | None:
    """The reply's rows of buttons (and ⌨ under an open pad) as a persistent view, or None."""
    if not reply.buttons:
        return None
    view = discord.ui.View(timeout=None)
    for row_index, row in enumerate(reply.buttons):
        for button in row:
            item = VerdictButton(button.action, button.label)
            item.row = row_index
            view.add_item(item)
    if pad_for is not None:
        type_button = TypeNumberButton(pad_for)
        type_button.row = len(reply.buttons)
        view.add_item(type_button)
    return view
