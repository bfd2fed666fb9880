"""The web front end's canvas inside Telegram: the Draw menu button that opens it, and the drawings'
answers posted back into the chat (the web front end reads them; bot.core.delivery connects the two).
"""

from __future__ import annotations

from telegram import Bot, MenuButtonWebApp, ReplyParameters, WebAppInfo

from bot.core.replies import Reply
from bot.core.texts import say
from bot.telegram.keyboards import draw_url, keyboard


async def show_draw_menu_button(bot: Bot, public_url: str) -> None:
    """Put Draw in the chat's menu button, beside the message box, in every private chat."""
    await bot.set_chat_menu_button(
        menu_button=MenuButtonWebApp(say("web.telegram.button"), WebAppInfo(draw_url(public_url)))
    )


class TelegramChatSender:
    """Posts a picture made elsewhere into a chat, then the answer quoting it with its buttons.

    The answer is a text message like any photo's answer, so ✅ / ❌ and the digit pad work on it
    as they do on every other answer.
    """

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send_answer(self, chat_id: int, picture: bytes, reply: Reply) -> int:
        """Post the picture, then the reply quoting it; return the reply's message id."""
        photo = await self.bot.send_photo(chat_id, picture)
        answer = await self.bot.send_message(
            chat_id,
            reply.text,
            reply_markup=keyboard(reply.buttons),
            reply_parameters=ReplyParameters(photo.message_id),
        )
        return answer.message_id
