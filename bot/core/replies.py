"""What the product answers and which buttons it shows, as plain data every front end can render.

A button carries its action in a short string (`ok:42`, `fx:42:20`), which a front end puts in
its own button field (Telegram's callback_data, at most 64 bytes; Discord's custom_id, at most
100 characters) and hands back to `parse_action` when the button is pressed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from bot.core.texts import say
from mnist_engine.photo import MAX_DIGITS, ImageError, Recognition

UNSURE_BELOW = 0.80  # below this confidence the answer names the runner-up
# The longest action string: "fx:" + a prediction id of 12 digits + ":" + MAX_DIGITS digits.
MAX_ACTION_LENGTH = 3 + 12 + 1 + MAX_DIGITS


class Action(StrEnum):
    """What a button under an answer does."""

    RIGHT = "ok"  # the answer is right
    WRONG = "no"  # open the digit pad
    TYPE = "fx"  # a digit or ⌫ tapped on the pad: the number typed so far
    SAVE = "sv"  # save the typed number as the right answer


@dataclass(frozen=True)
class Button:
    """A button a person sees, and the action string it sends back."""

    label: str
    action: str


@dataclass(frozen=True)
class Reply:
    """A message to send (or to edit into place), with rows of buttons."""

    text: str
    buttons: list[list[Button]] = field(default_factory=list)


@dataclass(frozen=True)
class PressedButton:
    """A parsed action string."""

    action: Action
    prediction_id: int
    typed: str = ""


def action_string(action: Action, prediction_id: int, typed: str = "") -> str:
    """`ok:42`, `fx:42:20`: what a button sends back."""
    if action in (Action.RIGHT, Action.WRONG):
        return f"{action.value}:{prediction_id}"
    return f"{action.value}:{prediction_id}:{typed}"


def parse_action(data: str) -> PressedButton | None:
    """The button behind an action string, or None for anything this product did not make."""
    parts = data.split(":")
    if len(data) > MAX_ACTION_LENGTH or len(parts) not in (2, 3) or not parts[1].isdigit():
        return None
    try:
        action = Action(parts[0])
    except ValueError:
        return None
    typed = parts[2] if len(parts) == 3 else ""
    if typed and (not typed.isdigit() or not typed.isascii() or len(typed) > MAX_DIGITS):
        return None
    return PressedButton(action, int(parts[1]), typed)


def reading_reply(recognition: Recognition, prediction_id: int) -> Reply:
    """What the product read, how sure it is, and the verdict buttons.

    When the product is unsure, the buttons offer its two best readings to pick from (the second
    one is stored as a correction), and ❌ for neither.
    """
    second = recognition.second_reading()
    if recognition.confidence >= UNSURE_BELOW or second is None:
        return Reply(text=reading_text(recognition), buttons=verdict_buttons(prediction_id))
    first = recognition.text.replace(" ", "")
    pick_first = action_string(Action.RIGHT, prediction_id)
    pick_second = action_string(Action.SAVE, prediction_id, second)
    buttons = [
        [
            Button(say("button.this_reading", digits=first), pick_first),
            Button(say("button.this_reading", digits=second), pick_second),
        ],
        [Button(say("button.neither"), action_string(Action.WRONG, prediction_id))],
    ]
    return Reply(text=reading_text(recognition), buttons=buttons)


def reading_text(recognition: Recognition) -> str:
    """Describe a reading; name the runner-up where the model is unsure."""
    digits = recognition.digits
    if len(digits) == 1:
        digit = digits[0]
        text = say("reading.digit", digit=digit.digit, confidence=digit.confidence)
        if digit.confidence < UNSURE_BELOW:
            text += say(
                "reading.digit_runner_up",
                runner_up=digit.runner_up,
                runner_up_confidence=digit.runner_up_confidence,
            )
        return text
    text = say("reading.number", number=recognition.text, confidence=recognition.confidence)
    unsure = [
        say(
            "reading.unsure_digit",
            position=position + 1,
            digit=digit.digit,
            confidence=digit.confidence,
            runner_up=digit.runner_up,
            runner_up_confidence=digit.runner_up_confidence,
        )
        for position, digit in enumerate(digits)
        if digit.confidence < UNSURE_BELOW
    ]
    if unsure:
        text += say("reading.least_sure", notes=", ".join(unsure))
    return text


def verdict_buttons(prediction_id: int) -> list[list[Button]]:
    """Right / Wrong under a reading."""
    return [
        [
            Button(say("button.right"), action_string(Action.RIGHT, prediction_id)),
            Button(say("button.wrong"), action_string(Action.WRONG, prediction_id)),
        ]
    ]


def correction_pad(prediction_id: int, digits_read: str, typed: str) -> Reply:
    """A digit pad to enter the right answer; a single digit is saved with one tap.

    The number typed on the pad stops at MAX_DIGITS, so the buttons' action strings stay short.
    """
    typed = typed[:MAX_DIGITS]
    single = len(digits_read.replace(" ", "")) == 1
    full = len(typed) >= MAX_DIGITS

    def digit_button(digit: str) -> Button:
        if single:
            return Button(digit, action_string(Action.SAVE, prediction_id, digit))
        return Button(digit, action_string(Action.TYPE, prediction_id, typed + digit))

    if single:
        rows = [[digit_button(str(digit)) for digit in range(start, start + 3)] for start in (1, 4, 7)]
        rows.append([digit_button("0")])
        return Reply(text=say("pad.single", digits=digits_read), buttons=rows)
    rows = (
        []
        if full
        else [[digit_button(str(digit)) for digit in range(start, start + 3)] for start in (1, 4, 7)]
    )
    rows.append(
        [Button(say("button.erase"), action_string(Action.TYPE, prediction_id, typed[:-1]))]
        + ([] if full else [digit_button("0")])
        + [Button(say("button.save"), action_string(Action.SAVE, prediction_id, typed))]
    )
    text = say("pad.number", digits=digits_read, typed=typed or say("pad.nothing_typed"))
    if full:
        text += "\n" + say("pad.full")
    return Reply(text=text, buttons=rows)


def verdict_recorded_text(digits_read: str, correct: bool, corrected: str | None) -> str:
    """The answer once its verdict is stored (its buttons are then removed)."""
    reading = say("reading.was", digits=digits_read)
    if correct:
        return say("verdict.right", reading=reading)
    return say("verdict.corrected", reading=reading, digits=corrected)


def parse_correction(text: str, max_digits: int = MAX_DIGITS) -> str | None:
    """The digits a person typed as a correction ("20 26" → "2026"), or None if it isn't one."""
    compact = "".join(text.split())
    if not compact.isascii() or not compact.isdigit() or not 1 <= len(compact) <= max_digits:
        return None
    return compact


def image_error_text(error: ImageError) -> str:
    """Why a picture could not be read, in the person's words."""
    return say(f"image.{error.kind}", **error.details)


def file_too_large_text(size_bytes: int, limit_bytes: int) -> str:
    """Refuse a file over the size limit."""
    return say("file_too_large", size_mb=size_bytes / 1e6, limit_mb=limit_bytes / 1e6)


def rate_limited_text(limit_per_minute: int, retry_after_seconds: float) -> str:
    """Ask a person to slow down."""
    return say("rate_limited", limit=limit_per_minute, seconds=max(1, round(retry_after_seconds)))
