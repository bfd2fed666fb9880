"""The drawing canvas as a Telegram Web App: who is drawing comes from Telegram's signed initData.

Telegram hands the page `initData`, a query string signed with the bot's token: the page sends it
back with the drawing, and it is checked as Telegram specifies before anything is read or stored
(https://core.telegram.org/bots/webapps#validating-data-received-via-the-mini-app):

    secret_key = HMAC_SHA256(key="WebAppData", message=bot_token)
    hash       = hex(HMAC_SHA256(key=secret_key, message=data_check_string))

where data_check_string is every received field but `hash`, as `key=value`, sorted by key and
joined by line feeds.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from bot.core.texts import say
from bot.web.context import web_of
from bot.web.user_routes import receive_picture
from db.models import Channel, PredictionSource

logger = logging.getLogger(__name__)

# Telegram signs initData when it opens the Web App; older data is refused (a drawing takes minutes).
MAX_AGE_SECONDS = 24 * 3600
INIT_DATA_HEADER = "x-telegram-init-data"
MAX_INIT_DATA_LENGTH = 4096


class InitDataInvalid(ValueError):
    """initData that Telegram did not sign for this bot, or signed too long ago."""


@dataclass(frozen=True)
class WebAppUser:
    """The Telegram user who opened the Web App."""

    id: int
    first_name: str


def verify_init_data(
    init_data: str, bot_token: str, *, max_age_seconds: int = MAX_AGE_SECONDS, now: float | None = None
) -> WebAppUser:
    """The user in Telegram's initData, once its signature and age are checked; else InitDataInvalid."""
    if not init_data or len(init_data) > MAX_INIT_DATA_LENGTH:
        raise InitDataInvalid("no initData, or too long")
    try:
        fields = dict(parse_qsl(init_data, keep_blank_values=True, strict_parsing=True))
    except ValueError:
        raise InitDataInvalid("initData is not a query string") from None
    received_hash = fields.pop("hash", "")
    data_check_string = "\n".join(f"{key}={value}" for key, value in sorted(fields.items()))
    secret_key = hmac.new(b"WebAppData", bot_token.encode(), hashlib.sha256).digest()
    expected = hmac.new(secret_key, data_check_string.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), received_hash.encode()):
        raise InitDataInvalid("the signature does not match")
    auth_date = fields.get("auth_date", "")
    if not auth_date.isdigit() or (now or time.time()) - int(auth_date) > max_age_seconds:
        raise InitDataInvalid("initData is too old")
    try:
        user = json.loads(fields["user"])
        return WebAppUser(id=int(user["id"]), first_name=str(user.get("first_name", "")))
    except (KeyError, ValueError, TypeError):
        raise InitDataInvalid("initData names no user") from None


# --- The routes ------------------------------------------------------------------------------------


async def draw_page(request: Request) -> Response:
    """The canvas Telegram opens from the bot's Draw button."""
    web = web_of(request)
    return web.page(
        request,
        "telegram_draw.html",
        texts={key: say(key) for key in TELEGRAM_PAGE_TEXTS},
    )


async def send_drawing(request: Request) -> Response:
    """Read a drawing from the Web App and post it, with its answer, into the person's Telegram chat."""
    web = web_of(request)
    settings = web.services.settings
    sender = web.services.chat_senders.get(Channel.TELEGRAM)
    if settings.telegram_bot_token is None or sender is None:
        return JSONResponse({"text": say("web.telegram.unavailable")}, status_code=503)
    try:
        user = verify_init_data(request.headers.get(INIT_DATA_HEADER, ""), settings.telegram_bot_token)
    except InitDataInvalid as error:
        logger.info("Refused a Web App drawing: %s", error)
        return JSONResponse({"text": say("web.telegram.not_verified")}, status_code=401)
    reader = web.services.reader
    # The Web App is opened in the private chat with the bot: the chat is the user's own.
    picture = await receive_picture(
        request, reader, Channel.TELEGRAM, user.id, sender=user.id, source=PredictionSource.DRAWING
    )
    if isinstance(picture, Response):
        return picture
    answer = await reader.read(picture)
    await sender.send_answer(user.id, picture.data, answer.reply)
    return JSONResponse({"text": answer.reply.text, "sent": say("web.telegram.sent")})


TELEGRAM_PAGE_TEXTS = (
    "web.title",
    "web.draw_hint",
    "web.clear",
    "web.reading",
    "web.telegram.send",
    "web.telegram.sent",
    "web.telegram.open_in_telegram",
    "web.network_error",
    "web.server_error",
)
