"""Reply markup (keyboards and force_reply) checked the way Telegram checks it."""

import re
from typing import Any

from .errors import BotApiError
from .spec import BotApiSpec

MAX_CALLBACK_DATA_BYTES = 64
MAX_INLINE_BUTTONS = 100
_BUTTON_URL = re.compile(r"(https?|tg)://\S+")


def parse_reply_markup(spec: BotApiSpec, markup: dict[str, Any] | None, *, inline_only: bool) -> dict | None:
    """Check reply_markup and return the inline keyboard a message keeps, or None.

    Only inline keyboards stay attached to a message (and appear in the Message object); reply
    keyboards, keyboard removal and force_reply act on the user's client and are not echoed back.
    Edit methods accept inline keyboards only.
    """
    if markup is None:
        return None
    if "inline_keyboard" in markup:
        return {"inline_keyboard": _inline_keyboard(spec, markup["inline_keyboard"])}
    if inline_only:
        raise BotApiError.bad_request("can't parse inline keyboard markup: inline_keyboard expected")
    if "keyboard" in markup:
        _check_reply_keyboard(markup["keyboard"])
    elif markup.get("remove_keyboard") is not True and markup.get("force_reply") is not True:
        raise BotApiError.bad_request("can't parse reply keyboard markup JSON object")
    return None


def callback_data_values(markup: dict[str, Any] | None) -> list[str]:
    """The callback_data of every button of an inline keyboard."""
    if not markup:
        return []
    return [
        button["callback_data"]
        for row in markup["inline_keyboard"]
        for button in row
        if "callback_data" in button
    ]


def _inline_keyboard(spec: BotApiSpec, rows: Any) -> list[list[dict[str, Any]]]:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise BotApiError.bad_request(
            "can't parse inline keyboard markup: an Array of Arrays of buttons expected"
        )
    if sum(len(row) for row in rows) > MAX_INLINE_BUTTONS:
        raise BotApiError.bad_request("reply markup is too long")
    known_fields = spec.fields("InlineKeyboardButton")
    return [[_inline_button(button, known_fields) for button in row] for row in rows]


def _inline_button(button: Any, known_fields: dict[str, bool]) -> dict[str, Any]:
    if not isinstance(button, dict) or not isinstance(button.get("text"), str):
        raise BotApiError.bad_request(
            'can\'t parse inline keyboard button: Field "text" must be of type String'
        )
    # Telegram ignores fields it does not know, so the stored button keeps only the known ones.
    kept = {name: value for name, value in button.items() if name in known_fields}
    actions = [name for name in kept if name != "text"]
    if len(actions) != 1:
        raise BotApiError.bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
            if not actions
            else f"can't parse inline keyboard button: exactly one of {actions} must be used"
        )
    if "callback_data" in kept:
        data = kept["callback_data"]
        if not isinstance(data, str) or not 1 <= len(data.encode()) <= MAX_CALLBACK_DATA_BYTES:
            raise BotApiError.bad_request("BUTTON_DATA_INVALID")
    if "url" in kept and not (isinstance(kept["url"], str) and _BUTTON_URL.fullmatch(kept["url"])):
        raise BotApiError.bad_request("BUTTON_URL_INVALID")
    return kept


def _check_reply_keyboard(rows: Any) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise BotApiError.bad_request(
            "can't parse reply keyboard markup: an Array of Arrays of buttons expected"
        )
    for button in (button for row in rows for button in row):
        if not (
            isinstance(button, str) or (isinstance(button, dict) and isinstance(button.get("text"), str))
        ):
            raise BotApiError.bad_request('can\'t parse keyboard button: Field "text" must be of type String')
